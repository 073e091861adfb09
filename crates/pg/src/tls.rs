//! TLS to PostgreSQL with OpenSSL, the stack librdkafka links too: libpq's `sslmode`, `sslrootcert`,
//! `sslcert` and `sslkey` (PEM files), for tokio-postgres' sessions and the replication connection.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslConnector, SslMethod, SslRef, SslVerifyMode};
use passerelle_model::endpoint::{DbEndpoint, Secret, TlsMode};
use postgres_openssl::MakeTlsConnector;

use crate::PgError;

/// An endpoint's TLS settings, ready to open connections with.
pub(crate) struct Tls {
    connector: SslConnector,
    /// Why OpenSSL refused the server's certificate, which its handshake error does not say.
    refused: Arc<Mutex<Option<String>>>,
    verify_host: bool,
    endpoint: String,
}

impl Tls {
    /// `None` under `sslmode=disable`. Reads the PEM files now, so a missing one is named up front.
    pub(crate) fn for_endpoint(endpoint: &DbEndpoint) -> Result<Option<Tls>, PgError> {
        let tls = &endpoint.tls;
        if tls.mode == TlsMode::Disable {
            return Ok(None);
        }
        let failed = |cause: String| PgError::Tls { endpoint: endpoint.to_string(), cause };
        let reading = |what: &str, path: &Path, error: ErrorStack| {
            failed(format!("cannot use {what} {}: {}", path.display(), reason(&error)))
        };
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(|e| failed(reason(&e)))?;
        let refused = Arc::new(Mutex::new(None));
        if tls.verifies_certificate() {
            let root = tls.root_cert.as_deref().ok_or_else(|| {
                failed(format!(
                    "sslmode={} needs sslrootcert, the CA certificate (PEM) that signed the server's",
                    tls.mode.name()
                ))
            })?;
            builder.set_ca_file(root).map_err(|e| reading("sslrootcert", root, e))?;
            let record = Arc::clone(&refused);
            builder.set_verify_callback(SslVerifyMode::PEER, move |preverified, context| {
                if !preverified {
                    let mut slot = record.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    slot.get_or_insert_with(|| context.error().to_string());
                }
                preverified
            });
        } else {
            builder.set_verify(SslVerifyMode::NONE);
        }
        if let Some(cert) = &tls.client_cert {
            builder.set_certificate_chain_file(cert).map_err(|e| reading("sslcert", cert, e))?;
        }
        if let Some(key) = &tls.client_key {
            let private_key = client_key(key, tls.key_password.as_ref()).map_err(failed)?;
            builder.set_private_key(&private_key).map_err(|e| reading("sslkey", key, e))?;
        }
        Ok(Some(Tls {
            connector: builder.build(),
            refused,
            verify_host: tls.mode == TlsMode::VerifyFull,
            endpoint: endpoint.to_string(),
        }))
    }

    /// For tokio-postgres: checks the host name only under `verify-full`.
    pub(crate) fn make_tls_connect(&self) -> MakeTlsConnector {
        let mut connector = MakeTlsConnector::new(self.connector.clone());
        let verify_host = self.verify_host;
        connector.set_callback(move |config, _| {
            config.set_verify_hostname(verify_host);
            Ok(())
        });
        connector
    }

    /// For the replication connection, which runs the handshake itself.
    pub(crate) fn ssl(&self, host: &str) -> Result<Ssl, PgError> {
        let mut config = self.connector.configure().map_err(|e| self.failed(reason(&e)))?;
        config.set_verify_hostname(self.verify_host);
        config.into_ssl(host).map_err(|e| self.failed(reason(&e)))
    }

    /// The handshake failed: the certificate's fault if OpenSSL refused it, else what OpenSSL said.
    pub(crate) fn failed(&self, cause: impl fmt::Display) -> PgError {
        let refused = self.refused.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let cause = match refused {
            Some(why) => format!("the server's certificate was refused: {why}"),
            None => cause.to_string(),
        };
        PgError::Tls { endpoint: self.endpoint.clone(), cause }
    }
}

/// The client key, decrypted with `sslpassword` when it is encrypted. Never a prompt on the terminal,
/// which OpenSSL's default would give (and wait for): an encrypted key without a passphrase is named.
fn client_key(path: &Path, password: Option<&Secret>) -> Result<PKey<Private>, String> {
    let pem = std::fs::read(path).map_err(|error| format!("cannot read sslkey {}: {error}", path.display()))?;
    let mut encrypted = false;
    let key = PKey::private_key_from_pem_callback(&pem, |buffer| {
        encrypted = true;
        let passphrase = password.map_or(&[][..], |password| password.expose().as_bytes());
        let length = passphrase.len().min(buffer.len());
        buffer[..length].copy_from_slice(&passphrase[..length]);
        Ok(length)
    });
    match key {
        Ok(key) => Ok(key),
        Err(_) if encrypted && password.is_none() => {
            Err(format!("sslkey {} is encrypted: give its passphrase as sslpassword", path.display()))
        }
        Err(_) if encrypted => Err(format!("sslpassword does not decrypt sslkey {}", path.display())),
        Err(error) => Err(format!("cannot use sslkey {}: {}", path.display(), reason(&error))),
    }
}

/// The `tls-server-end-point` channel binding of a TLS session (RFC 5929): the hash of the server's
/// certificate, with its signature's digest (SHA-256 for MD5 and SHA-1), as postgres-openssl computes
/// it for tokio-postgres' sessions. `None` when the certificate gives no usable digest.
pub(crate) fn server_end_point(ssl: &SslRef) -> Option<Vec<u8>> {
    let certificate = ssl.peer_certificate()?;
    let algorithms = certificate.signature_algorithm().object().nid().signature_algorithms()?;
    let digest = match algorithms.digest {
        Nid::MD5 | Nid::SHA1 => MessageDigest::sha256(),
        nid => MessageDigest::from_nid(nid)?,
    };
    certificate.digest(digest).ok().map(|bytes| bytes.to_vec())
}

/// OpenSSL's reason for the first error, without its codes and source file.
fn reason(error: &ErrorStack) -> String {
    error.errors().first().and_then(|e| e.reason()).map_or_else(|| error.to_string(), str::to_string)
}
