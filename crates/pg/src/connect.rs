//! Opening a session on the source.

use std::time::Duration;

use passerelle_model::endpoint::DbEndpoint;
use tokio_postgres::{Client, NoTls};

use crate::PgError;

/// Connects to the source and drives the connection on a background task.
///
/// The password goes to the driver only; errors name the endpoint as `user@host:port/db`.
pub async fn connect(endpoint: &DbEndpoint) -> Result<Client, PgError> {
    connect_with_options(endpoint, None).await
}

/// Connects with `options`, the startup parameter that carries `-c name=value` settings.
pub(crate) async fn connect_with_options(endpoint: &DbEndpoint, options: Option<&str>) -> Result<Client, PgError> {
    let database = endpoint.database.clone().unwrap_or_else(|| endpoint.user.clone());
    let mut config = tokio_postgres::Config::new();
    config
        .host(&endpoint.host)
        .port(endpoint.port)
        .user(&endpoint.user)
        .dbname(&database)
        .application_name("passerelle")
        .connect_timeout(Duration::from_secs(10));
    if let Some(options) = options {
        config.options(options);
    }
    if let Some(password) = &endpoint.password {
        config.password(password.expose());
    }
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|error| PgError::from_connect(endpoint.to_string(), &endpoint.user, &database, error))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %error, "source connection closed");
        }
    });
    Ok(client)
}
