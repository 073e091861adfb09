//! Opening a session on the target.

use std::time::Duration;

use mysql_async::{ClientIdentity, Conn, DriverError, OptsBuilder, SslOpts};
use passerelle_model::endpoint::{DbEndpoint, TlsMode};

use crate::MysqlError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the target server without selecting a database: the target database may not exist
/// yet, so statements name their database.
///
/// The password goes to the driver only; errors name the endpoint as `user@host:port`. TLS follows
/// the URL's `ssl-mode`, `PREFERRED` by default as MySQL's clients: encrypted whenever the server can.
pub async fn connect(endpoint: &DbEndpoint) -> Result<Conn, MysqlError> {
    let ssl = ssl_opts(endpoint)?;
    let preferred = matches!(endpoint.tls.mode, TlsMode::Prefer | TlsMode::Allow);
    match open(endpoint, ssl.clone()).await {
        // PREFERRED goes on unencrypted with a server that offers no TLS.
        Err(MysqlError::Unreachable { .. }) | Err(MysqlError::Tls { .. }) if preferred && ssl.is_some() => {
            open(endpoint, None).await
        }
        result => result,
    }
}

async fn open(endpoint: &DbEndpoint, ssl: Option<SslOpts>) -> Result<Conn, MysqlError> {
    let encrypted = ssl.is_some();
    let opts = OptsBuilder::default()
        .ip_or_hostname(endpoint.host.clone())
        .tcp_port(endpoint.port)
        .user(Some(endpoint.user.clone()))
        .pass(endpoint.password.as_ref().map(|p| p.expose().to_string()))
        .prefer_socket(false)
        .ssl_opts(ssl);
    let endpoint_name = endpoint.to_string();
    let connecting = Conn::new(opts);
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer))) => Err(MysqlError::Tls {
            endpoint: endpoint_name,
            cause: format!("the server does not accept TLS (ssl-mode={})", endpoint.tls.mode.mysql_name()),
        }),
        Ok(Err(error @ mysql_async::Error::Io(mysql_async::IoError::Tls(_)))) => {
            Err(MysqlError::Tls { endpoint: endpoint_name, cause: crate::error::innermost(&error) })
        }
        Ok(Err(error)) => Err(MysqlError::from_connect(endpoint_name, &endpoint.user, encrypted, error)),
        Err(_) => Err(MysqlError::Unreachable {
            endpoint: endpoint_name,
            cause: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
        }),
    }
}

/// The driver's TLS settings (OpenSSL under native-tls), `None` under `DISABLED`. Certificates are
/// read as PEM, the driver's client identity is PKCS#12: it is made here, in memory.
fn ssl_opts(endpoint: &DbEndpoint) -> Result<Option<SslOpts>, MysqlError> {
    let tls = &endpoint.tls;
    if tls.mode == TlsMode::Disable {
        return Ok(None);
    }
    let failed = |cause: String| MysqlError::Tls { endpoint: endpoint.to_string(), cause };
    let mut opts = SslOpts::default();
    if tls.verifies_certificate() {
        let root = tls.root_cert.clone().ok_or_else(|| {
            failed(format!(
                "ssl-mode={} needs ssl-ca, the CA certificate (PEM) that signed the server's",
                tls.mode.mysql_name()
            ))
        })?;
        opts = opts
            .with_root_certs(vec![root.into()])
            .with_disable_built_in_roots(true)
            .with_danger_skip_domain_validation(tls.mode != TlsMode::VerifyFull);
    } else {
        opts = opts.with_danger_accept_invalid_certs(true);
    }
    match (&tls.client_cert, &tls.client_key) {
        (None, None) => {}
        (Some(cert), Some(key_path)) => {
            let read = |what: &str, path: &std::path::Path| {
                std::fs::read(path).map_err(|error| failed(format!("cannot read {what} {}: {error}", path.display())))
            };
            let (cert_pem, key_pem) = (read("ssl-cert", cert)?, read("ssl-key", key_path)?);
            let unusable = |error: openssl::error::ErrorStack| failed(format!("unusable ssl-cert or ssl-key: {error}"));
            let cert = openssl::x509::X509::from_pem(&cert_pem).map_err(unusable)?;
            // Never OpenSSL's default, a prompt on the terminal: an encrypted key is named instead.
            let mut encrypted = false;
            let key = openssl::pkey::PKey::private_key_from_pem_callback(&key_pem, |_| {
                encrypted = true;
                Ok(0)
            });
            if encrypted {
                return Err(failed(format!(
                    "ssl-key {} is encrypted: the target's client key must be unencrypted (MySQL clients take no passphrase)",
                    key_path.display()
                )));
            }
            let key = key.map_err(unusable)?;
            let archive = openssl::pkcs12::Pkcs12::builder()
                .name("passerelle")
                .pkey(&key)
                .cert(&cert)
                .build2(PKCS12_PASSWORD)
                .and_then(|archive| archive.to_der())
                .map_err(unusable)?;
            opts = opts.with_client_identity(Some(ClientIdentity::new(archive.into()).with_password(PKCS12_PASSWORD)));
        }
        _ => return Err(failed("ssl-cert and ssl-key go together".to_string())),
    }
    Ok(Some(opts))
}

/// The in-memory archive's password: it never leaves the process.
const PKCS12_PASSWORD: &str = "passerelle";
