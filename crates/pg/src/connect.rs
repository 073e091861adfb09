//! Opening a session on the source.

use std::time::Duration;

use passerelle_model::endpoint::DbEndpoint;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

use crate::tls::Tls;
use crate::PgError;

/// How long a statement of these sessions waits for a lock on a source table (the catalog read, the
/// table sizes, creating the publication) before it fails, retryably: a long transaction holding a
/// conflicting lock must not make the application's own statements queue behind Passerelle's request.
/// The copy workers ([`crate::session::connect`]) have none: their share lock conflicts with no write.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the source and drives the connection on a background task, with [`LOCK_TIMEOUT`].
///
/// The password goes to the driver only; errors name the endpoint as `user@host:port/db`. TLS follows
/// the URL's `sslmode` (`prefer` by default: encrypted whenever the server offers it).
pub async fn connect(endpoint: &DbEndpoint) -> Result<Client, PgError> {
    // Read-write even while `passerelle cutover --freeze` holds the database read-only (`freeze`):
    // Passerelle's sessions write only its publication, which a verified migration drops.
    let options = format!("-c lock_timeout={} -c default_transaction_read_only=off", LOCK_TIMEOUT.as_millis());
    connect_with_options(endpoint, Some(&options)).await
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
    if let Some(address) = endpoint.host_addr {
        config.hostaddr(address);
    }
    if let Some(options) = options {
        config.options(options);
    }
    if let Some(password) = &endpoint.password {
        config.password(password.expose());
    }
    let tls = Tls::for_endpoint(endpoint)?;
    let failed = |error: tokio_postgres::Error| match &tls {
        // tokio-postgres has no error kind to match; its message is stable.
        Some(tls) if error.to_string().starts_with("error performing TLS handshake") => {
            tls.failed(std::error::Error::source(&error).map_or_else(|| error.to_string(), ToString::to_string))
        }
        _ => PgError::from_connect(endpoint.to_string(), &endpoint.user, &database, error),
    };
    match &tls {
        None => {
            let (client, connection) = config.ssl_mode(SslMode::Disable).connect(NoTls).await.map_err(failed)?;
            drive(connection);
            Ok(client)
        }
        Some(tls) => {
            config.ssl_mode(if endpoint.tls.required() { SslMode::Require } else { SslMode::Prefer });
            let (client, connection) = config.connect(tls.make_tls_connect()).await.map_err(failed)?;
            drive(connection);
            Ok(client)
        }
    }
}

fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %error, "source connection closed");
        }
    });
}
