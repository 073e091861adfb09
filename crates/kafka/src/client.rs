//! The librdkafka configuration every Passerelle client starts from.

use passerelle_model::endpoint::KafkaEndpoint;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::ClientConfig;

/// Base configuration: the bootstrap list and bounded connection timeouts, so that a broker that is
/// down is reported in seconds rather than retried forever, then the user's properties (security).
pub(crate) fn config(endpoint: &KafkaEndpoint) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &endpoint.bootstrap_servers)
        .set("client.id", "passerelle")
        .set("socket.connection.setup.timeout.ms", "5000")
        .set("reconnect.backoff.max.ms", "2000")
        // librdkafka's own logs repeat connection failures every retry; Passerelle reports them once.
        .set_log_level(RDKafkaLogLevel::Critical);
    for (key, value) in &endpoint.properties {
        config.set(key, value.expose());
    }
    config
}
