//! Opening a session on the target.

use std::time::Duration;

use mysql_async::{Conn, OptsBuilder};
use passerelle_model::endpoint::DbEndpoint;

use crate::MysqlError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the target server without selecting a database: the target database may not exist
/// yet, so statements name their database.
///
/// The password goes to the driver only; errors name the endpoint as `user@host:port`.
pub async fn connect(endpoint: &DbEndpoint) -> Result<Conn, MysqlError> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(endpoint.host.clone())
        .tcp_port(endpoint.port)
        .user(Some(endpoint.user.clone()))
        .pass(endpoint.password.as_ref().map(|p| p.expose().to_string()))
        .prefer_socket(false);
    let endpoint_name = endpoint.to_string();
    let connecting = Conn::new(opts);
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(error)) => Err(MysqlError::from_connect(endpoint_name, &endpoint.user, error)),
        Err(_) => Err(MysqlError::Unreachable {
            endpoint: endpoint_name,
            cause: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
        }),
    }
}
