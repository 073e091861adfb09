//! The librdkafka configuration every Passerelle client starts from, and what every client's context
//! does with librdkafka's events ([`Observer`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use passerelle_model::endpoint::KafkaEndpoint;
use rdkafka::client::Client;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext};

use crate::error::{describe, KafkaError};

/// Base configuration: the bootstrap list and bounded connection timeouts, so that a broker that is
/// down is reported in seconds rather than retried forever, then the user's properties (security).
pub(crate) fn config(endpoint: &KafkaEndpoint) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &endpoint.bootstrap_servers)
        .set("client.id", "passerelle")
        .set("socket.connection.setup.timeout.ms", "5000")
        .set("reconnect.backoff.max.ms", "2000")
        .set_log_level(log_level());
    for (key, value) in &endpoint.properties {
        config.set(key, value.expose());
    }
    config
}

/// Clients kept for the life of the process, one per endpoint, for requests made again and again
/// (the control topic is read a few times while a run is planned, and polled while one streams):
/// a new client pays its connection and handshakes (TLS, SASL), and a consumer's close about 100 ms.
/// librdkafka reconnects a kept client by itself after an outage; one that failed is forgotten, so
/// the next attempt starts from a new client as it did before.
pub(crate) struct Kept<T> {
    clients: Mutex<HashMap<String, Arc<T>>>,
}

impl<T> Kept<T> {
    pub(crate) fn new() -> Kept<T> {
        Kept { clients: Mutex::new(HashMap::new()) }
    }

    /// The client kept for `endpoint`, made by `create` when there is none.
    pub(crate) fn get(
        &self,
        endpoint: &KafkaEndpoint,
        create: impl FnOnce() -> Result<T, KafkaError>,
    ) -> Result<Arc<T>, KafkaError> {
        let mut clients = self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let identity = identity(endpoint);
        if let Some(client) = clients.get(&identity) {
            return Ok(client.clone());
        }
        let client = Arc::new(create()?);
        clients.insert(identity, client.clone());
        Ok(client)
    }

    /// Drops the client kept for `endpoint` (once its last user is done with it).
    pub(crate) fn forget(&self, endpoint: &KafkaEndpoint) {
        self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&identity(endpoint));
    }
}

/// What tells endpoints apart: the brokers and every property, secrets included (the key stays in
/// memory, never in a log).
fn identity(endpoint: &KafkaEndpoint) -> String {
    let mut identity = endpoint.bootstrap_servers.clone();
    for (key, value) in &endpoint.properties {
        identity.push_str(&format!("\n{key}={}", value.expose()));
    }
    identity
}

/// Asks for the cluster's metadata (of `topic`, or of every topic) for up to `timeout`, in short
/// attempts with the client's events served between them (`serve`, which hands them to `observer`),
/// so that a refusal ends the wait at once rather than at the timeout as a transport failure.
pub(crate) fn metadata<C: ClientContext>(
    client: &Client<C>,
    observer: &Observer,
    topic: Option<&str>,
    timeout: Duration,
    serve: impl Fn(),
) -> Result<Metadata, KafkaError> {
    let deadline = Instant::now() + timeout;
    tokio::task::block_in_place(|| loop {
        let attempt = client.fetch_metadata(topic, ATTEMPT.min(deadline.saturating_duration_since(Instant::now())));
        serve();
        match attempt {
            Ok(metadata) => {
                // A kept client may have seen a refusal in an outage (a broker restarting mid-handshake),
                // which this answer outdates.
                observer.refusal();
                return Ok(metadata);
            }
            Err(error) => {
                if let Some(refusal) = observer.refusal() {
                    return Err(refusal);
                }
                if Instant::now() >= deadline {
                    return Err(observer.unreachable(&error));
                }
            }
        }
    })
}

/// One attempt of [`metadata`].
const ATTEMPT: Duration = Duration::from_millis(500);

/// librdkafka's log goes into Passerelle's under the target `librdkafka`: its debug lines (the
/// contexts the `debug` property names) at trace, the rest at debug. It repeats a connection failure
/// every attempt, and Passerelle reports outages itself, once per retry, so none of it is a warning.
/// librdkafka is told to produce only what the filter would show.
fn log_level() -> RDKafkaLogLevel {
    if tracing::enabled!(target: "librdkafka", tracing::Level::TRACE) {
        RDKafkaLogLevel::Debug
    } else if tracing::enabled!(target: "librdkafka", tracing::Level::DEBUG) {
        RDKafkaLogLevel::Info
    } else {
        RDKafkaLogLevel::Emerg
    }
}

/// What every client's context does with librdkafka's events: its log goes into Passerelle's (see
/// [`log_level`]), and a refusal that librdkafka reports only as an error event (credentials refused,
/// a certificate not verified) is kept, so that the call that then fails, which librdkafka reports
/// as a transport failure or a timeout, is reported as that refusal and not retried.
pub(crate) struct Observer {
    brokers: String,
    /// The user the brokers refused, if SASL is configured.
    user: Option<String>,
    refusal: Mutex<Option<KafkaError>>,
}

impl Observer {
    pub(crate) fn new(endpoint: &KafkaEndpoint) -> Observer {
        let user = endpoint.properties.iter().find(|(key, _)| key == "sasl.username");
        Observer {
            brokers: endpoint.to_string(),
            user: user.map(|(_, user)| user.expose().to_string()),
            refusal: Mutex::new(None),
        }
    }

    /// The refusal librdkafka reported, if any, else `error` as a failure to reach the brokers.
    pub(crate) fn unreachable(&self, error: &RdKafkaError) -> KafkaError {
        self.refusal()
            .unwrap_or_else(|| KafkaError::Unreachable { brokers: self.brokers.clone(), cause: describe(error) })
    }

    /// The first refusal librdkafka reported, taken.
    pub(crate) fn refusal(&self) -> Option<KafkaError> {
        self.refusal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Debug => tracing::trace!(target: "librdkafka", "{facility}: {message}"),
            _ => tracing::debug!(target: "librdkafka", "{facility}: {message}"),
        }
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{}: {reason}", describe(&error));
        let Some(refusal) = refusal(error.rdkafka_error_code(), reason, &self.brokers, self.user.as_deref()) else {
            return;
        };
        self.refusal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_or_insert(refusal);
    }
}

/// The error an error event's code and text amount to, when they say the brokers refused Passerelle
/// rather than could not be reached: SASL credentials refused, or a broker certificate not verified.
fn refusal(code: Option<RDKafkaErrorCode>, reason: &str, brokers: &str, user: Option<&str>) -> Option<KafkaError> {
    let reason = brief(reason);
    match code? {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
            Some(KafkaError::Credentials {
                brokers: brokers.to_string(),
                user: user.unwrap_or("(no sasl.username)").to_string(),
                cause: reason,
            })
        }
        RDKafkaErrorCode::SSL => Some(KafkaError::Tls { brokers: brokers.to_string(), cause: reason }),
        _ => None,
    }
}

/// librdkafka's error text without the broker it names first (`sasl_ssl://host:port/id: `), which the
/// caller names, nor its timing and repetition count at the end (`(after 5ms in state ...)`).
fn brief(reason: &str) -> String {
    let reason = match reason.split_once("://") {
        Some((_, rest)) => rest.split_once(": ").map_or(reason, |(_, rest)| rest),
        None => reason,
    };
    let reason = reason.rsplit_once(" (after ").map_or(reason, |(text, _)| text);
    reason.trim().to_string()
}

impl ClientContext for Observer {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        Observer::log(self, level, facility, message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        Observer::error(self, error, reason);
    }
}

impl ConsumerContext for Observer {}

/// The metadata requests of `topic` go through a producer that sends nothing.
impl ProducerContext for Observer {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// Implements `ClientContext` for a context whose `observer` field is an [`Observer`], which then
/// gets the client's log and error events.
macro_rules! observed_client_context {
    ($context:ty) => {
        impl rdkafka::ClientContext for $context {
            fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
                rdkafka::ClientContext::log(&self.observer, level, facility, message);
            }

            fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
                rdkafka::ClientContext::error(&self.observer, error, reason);
            }
        }
    };
}
pub(crate) use observed_client_context;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_password_and_an_unverified_certificate_are_refusals() {
        let sasl = "sasl_ssl://127.0.0.1:59294/bootstrap: SASL authentication error: Authentication failed \
                    during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 12ms \
                    in state AUTH_REQ, 1 identical error(s) suppressed)";
        let refused = refusal(Some(RDKafkaErrorCode::Authentication), sasl, "b:1", Some("alice")).unwrap();
        assert_eq!(
            refused.cause(),
            "Kafka at b:1 refused the SASL credentials of alice: SASL authentication error: Authentication failed \
             during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        );
        assert!(!refused.retryable());
        let ssl = "ssl://127.0.0.1:59294/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate \
                   verify failed: broker certificate could not be verified (after 4ms in state SSL_HANDSHAKE)";
        let refused = refusal(Some(RDKafkaErrorCode::SSL), ssl, "b:1", None).unwrap();
        assert!(refused.cause().ends_with("certificate verify failed: broker certificate could not be verified"));
        assert!(!refused.retryable());
        assert!(refusal(Some(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down", "b:1", None).is_none());
    }
}
