//! Kafka's part of `passerelle check`: are the brokers reachable, how is the connection secured, can
//! the cluster hold the topics as they would be created (replication against the brokers and their
//! `min.insync.replicas`, retention), and may Passerelle create and delete topics (it creates one per
//! table)? Asks through `topic`, as a migration would.

use passerelle_model::endpoint::{is_loopback, KafkaEndpoint, Secret};
use passerelle_model::preflight::{Finding, System};

use crate::topic::{cluster_settings, create_topics, delete_topics, require_topics, ClusterSettings, TopicLayout};
use crate::KafkaError;

const KAFKA: System = System::Kafka;

/// How the migration's topics would be created: `--replication-factor` and `--retention-ms`.
#[derive(Clone, Copy, Debug)]
pub struct Durability {
    pub replication: i32,
    /// `None`: the brokers' default.
    pub retention_ms: Option<i64>,
}

/// Runs every Kafka check. Unreachable brokers end the list. `existing`: the topics were created
/// beforehand (`--existing-topics`), and this is the migration's control topic, which must exist;
/// else Passerelle must be able to create and delete topics.
pub async fn run(endpoint: &KafkaEndpoint, durability: Durability, existing: Option<&str>) -> Vec<Finding> {
    let settings = match cluster_settings(endpoint).await {
        Ok(settings) => settings,
        Err(error) => return vec![Finding::fail(KAFKA, "connection", error.cause(), error.hint())],
    };
    let n_brokers = settings.n_brokers;
    let security = Security::of(endpoint);
    let detail = format!("{n_brokers} broker(s) at {endpoint}, {}", security.describe());
    let mut findings = vec![Finding::pass(KAFKA, "connection", detail)];
    if security.password_in_clear(endpoint) {
        findings.push(Finding::warn(
            KAFKA,
            "clear-text password",
            format!(
                "the SASL password of {} crosses the network to {endpoint}, which is not this machine, as it is \
                 (SASL_PLAINTEXT with PLAIN), and every record unencrypted",
                security.user
            ),
            "use security.protocol=SASL_SSL with ssl.ca.location (the brokers' CA certificate, PEM)",
        ));
    }
    findings.extend(durability_findings(&settings, durability));
    findings.push(match existing {
        Some(control_topic) => existing_topics(endpoint, control_topic).await,
        None => create_and_delete_topic(endpoint, durability.replication.clamp(1, n_brokers.max(1) as i32)).await,
    });
    findings
}

/// The replication and retention findings alone, for the commands that create topics: they refuse
/// to start on a failed one, before a slot, a topic or a table exists.
pub async fn topics(endpoint: &KafkaEndpoint, durability: Durability) -> Result<Vec<Finding>, KafkaError> {
    Ok(durability_findings(&cluster_settings(endpoint).await?, durability))
}

/// A day: records kept less long than that are lost to a sink that falls behind over a night.
const SHORT_RETENTION_MS: i64 = 24 * 3_600_000;

fn durability_findings(settings: &ClusterSettings, durability: Durability) -> Vec<Finding> {
    let (replication, n_brokers) = (durability.replication, settings.n_brokers);
    let min_insync = match settings.min_insync_replicas {
        Some(min) => format!("min.insync.replicas = {min}"),
        None => "min.insync.replicas unknown (the brokers' configuration cannot be read)".to_string(),
    };
    let replication_finding = if replication as usize > n_brokers {
        Finding::fail(
            KAFKA,
            "replication",
            format!("topics would get replication factor {replication}, and the cluster has {n_brokers} broker(s)"),
            format!("pass --replication-factor {n_brokers} or less"),
        )
    } else if let Some(min) = settings.min_insync_replicas.filter(|min| replication < *min) {
        Finding::fail(
            KAFKA,
            "replication",
            format!(
                "replication factor {replication} is below the brokers' min.insync.replicas = {min}: every write \
                 (acks=all) would fail with NotEnoughReplicas"
            ),
            format!(
                "pass --replication-factor {} (at most {n_brokers}, the brokers)",
                min.max(3).min(n_brokers as i32)
            ),
        )
    } else {
        Finding::pass(
            KAFKA,
            "replication",
            format!("replication factor {replication} of {n_brokers} broker(s), {min_insync}"),
        )
    };
    let (retention, whose) = match durability.retention_ms {
        Some(ms) => (Some(ms), "--retention-ms"),
        None => (settings.retention_ms, "the brokers' log.retention"),
    };
    let fix = "pass --retention-ms longer than the run may last, 604800000 for 7 days (a gap stops the sink, named)";
    let retention_finding = match retention {
        Some(ms) if ms < 0 => Finding::pass(KAFKA, "retention", format!("records kept for ever ({whose})")),
        Some(ms) if ms < SHORT_RETENTION_MS => Finding::warn(
            KAFKA,
            "retention",
            format!("records are deleted after {} ({whose}): a sink that falls behind longer loses events", hours(ms)),
            fix,
        ),
        Some(ms) => Finding::pass(KAFKA, "retention", format!("records kept {} ({whose})", hours(ms))),
        None => Finding::warn(KAFKA, "retention", "the brokers' retention cannot be read", fix),
    };
    vec![replication_finding, retention_finding]
}

fn hours(ms: i64) -> String {
    format!("{:.1} h", ms as f64 / 3_600_000.0)
}

/// How the client properties secure the connection, in librdkafka's terms and with its defaults.
/// The connection succeeded, so whatever verification they ask for passed.
struct Security {
    /// `security.protocol`: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    protocol: String,
    /// `sasl.mechanism` (GSSAPI by default) and `sasl.username`.
    mechanism: String,
    user: String,
    /// Whether the brokers' certificate is verified, and against which CA certificates.
    verified_against: Option<String>,
    host_name_verified: bool,
    client_certificate: bool,
}

impl Security {
    fn of(endpoint: &KafkaEndpoint) -> Security {
        let setting = |keys: &[&str], default: &str| {
            endpoint.property(keys).map_or_else(|| default.to_string(), |value| value.expose().trim().to_string())
        };
        let verify = !setting(&["enable.ssl.certificate.verification"], "true").eq_ignore_ascii_case("false");
        let ca = match (endpoint.property(&["ssl.ca.location"]), endpoint.property(&["ssl.ca.pem"])) {
            (Some(location), _) => format!("the CA in {}", location.expose()),
            (None, Some(_)) => "the CA of ssl.ca.pem".to_string(),
            (None, None) => "the system's CAs".to_string(),
        };
        Security {
            protocol: setting(&["security.protocol"], "PLAINTEXT").to_ascii_uppercase(),
            mechanism: setting(&["sasl.mechanism", "sasl.mechanisms"], "GSSAPI").to_ascii_uppercase(),
            user: setting(&["sasl.username"], "(no sasl.username)"),
            verified_against: verify.then_some(ca),
            host_name_verified: !setting(&["ssl.endpoint.identification.algorithm"], "https")
                .eq_ignore_ascii_case("none"),
            client_certificate: endpoint.property(&["ssl.certificate.location", "ssl.certificate.pem"]).is_some(),
        }
    }

    fn encrypted(&self) -> bool {
        self.protocol.ends_with("SSL")
    }

    fn sasl(&self) -> bool {
        self.protocol.starts_with("SASL_")
    }

    /// `SASL_SSL, encrypted, certificate and host name verified against the CA in /ca.pem, SASL
    /// SCRAM-SHA-512 as alice`.
    fn describe(&self) -> String {
        let mut parts = vec![self.protocol.clone()];
        if self.encrypted() {
            parts.push(match (&self.verified_against, self.host_name_verified) {
                (None, _) => "encrypted, certificate not verified".to_string(),
                (Some(ca), true) => format!("encrypted, certificate and host name verified against {ca}"),
                (Some(ca), false) => format!("encrypted, certificate verified against {ca}, host name not verified"),
            });
        } else {
            parts.push("unencrypted".to_string());
        }
        match (self.sasl(), self.client_certificate && self.encrypted()) {
            (true, _) => parts.push(format!("SASL {} as {}", self.mechanism, self.user)),
            (false, true) => parts.push("authenticated by a client certificate".to_string()),
            (false, false) => parts.push("unauthenticated".to_string()),
        }
        parts.join(", ")
    }

    /// SASL PLAIN sends the password as it is: over SASL_PLAINTEXT to another machine, anyone on
    /// the way reads it.
    fn password_in_clear(&self, endpoint: &KafkaEndpoint) -> bool {
        self.protocol == "SASL_PLAINTEXT"
            && self.mechanism == "PLAIN"
            && endpoint.property(&["sasl.password"]).is_some_and(|password: &Secret| !password.expose().is_empty())
            && endpoint.hosts().any(|host| !is_loopback(host))
    }
}

/// The migration's control topic exists, as created beforehand with the other topics (`migrate
/// --existing-topics` names any table topic still missing when it starts).
async fn existing_topics(endpoint: &KafkaEndpoint, control_topic: &str) -> Finding {
    match require_topics(endpoint, &[control_topic.to_string()]).await {
        Ok(()) => Finding::pass(KAFKA, "existing topics", format!("{control_topic} exists")),
        Err(error) => Finding::fail(
            KAFKA,
            "existing topics",
            error.cause(),
            "create the topics with the commands passerelle plan writes to kafka-topics.sh",
        ),
    }
}

/// Creates a uniquely named one-partition topic, replicated as the migration's would be, and deletes
/// it again.
async fn create_and_delete_topic(endpoint: &KafkaEndpoint, replication: i32) -> Finding {
    let prefix = format!("passerelle.check.{}.{}", std::process::id(), unique_suffix());
    let layout = TopicLayout { prefix, partitions: 1, replication, retention_ms: None };
    let name = layout.topic_name("preflight", "topic");
    let names = std::slice::from_ref(&name);
    let fix =
        "grant the Passerelle principal CREATE and DELETE on topics (Kafka ACLs), or create the topics beforehand \
         with the commands passerelle plan writes to kafka-topics.sh and run with --existing-topics";
    if let Err(error) = create_topics(endpoint, &layout, names).await {
        return Finding::fail(KAFKA, "create and delete a topic", error.cause(), fix);
    }
    if let Err(error) = delete_topics(endpoint, names).await {
        return Finding::fail(KAFKA, "create and delete a topic", error.cause(), fix);
    }
    Finding::pass(KAFKA, "create and delete a topic", format!("created and deleted {name}"))
}

/// Enough uniqueness for concurrent checks: the time in nanoseconds.
fn unique_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_is_checked_against_the_brokers_and_min_insync_replicas() {
        let hosted = ClusterSettings { n_brokers: 6, min_insync_replicas: Some(2), retention_ms: Some(604_800_000) };
        let findings = durability_findings(&hosted, Durability { replication: 1, retention_ms: None });
        assert_eq!(findings[0].outcome, passerelle_model::preflight::Outcome::Fail, "{findings:?}");
        assert!(findings[0].detail.contains("below the brokers' min.insync.replicas = 2"), "{findings:?}");
        assert_eq!(findings[0].fix.as_deref(), Some("pass --replication-factor 3 (at most 6, the brokers)"));
        assert_eq!(findings[1].detail, "records kept 168.0 h (the brokers' log.retention)");
        let findings = durability_findings(&hosted, Durability { replication: 3, retention_ms: Some(3_600_000) });
        assert_eq!(findings[0].detail, "replication factor 3 of 6 broker(s), min.insync.replicas = 2");
        assert_eq!(findings[1].outcome, passerelle_model::preflight::Outcome::Warn, "{findings:?}");
        let single = ClusterSettings { n_brokers: 1, min_insync_replicas: None, retention_ms: Some(-1) };
        let findings = durability_findings(&single, Durability { replication: 2, retention_ms: None });
        assert_eq!(findings[0].fix.as_deref(), Some("pass --replication-factor 1 or less"));
        assert_eq!(findings[1].detail, "records kept for ever (the brokers' log.retention)");
    }

    fn endpoint(brokers: &str, properties: &str) -> KafkaEndpoint {
        let mut endpoint = KafkaEndpoint::parse(brokers).unwrap();
        endpoint.set_from_properties(properties).unwrap();
        endpoint
    }

    #[test]
    fn the_connection_says_how_it_is_secured() {
        let hosted = endpoint(
            "broker.example.com:9092",
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=KEY\nsasl.password=SECRET\n\
             ssl.ca.location=/etc/ca.pem",
        );
        let security = Security::of(&hosted);
        assert_eq!(
            security.describe(),
            "SASL_SSL, encrypted, certificate and host name verified against the CA in /etc/ca.pem, SASL PLAIN as KEY"
        );
        assert!(!security.password_in_clear(&hosted));
        let plain = endpoint("127.0.0.1:9092", "");
        assert_eq!(Security::of(&plain).describe(), "PLAINTEXT, unencrypted, unauthenticated");
        let unverified = endpoint("b:1", "security.protocol=ssl\nenable.ssl.certificate.verification=false");
        assert_eq!(Security::of(&unverified).describe(), "SSL, encrypted, certificate not verified, unauthenticated");
    }

    #[test]
    fn a_plain_password_over_sasl_plaintext_to_another_machine_is_in_clear() {
        let properties = "security.protocol=SASL_PLAINTEXT\nsasl.mechanisms=PLAIN\nsasl.username=u\nsasl.password=p";
        let remote = endpoint("127.0.0.1:9092,broker.example.com:9092", properties);
        assert!(Security::of(&remote).password_in_clear(&remote));
        let local = endpoint("localhost:9092,127.0.0.1:9093", properties);
        assert!(!Security::of(&local).password_in_clear(&local), "the loopback");
        let scram = endpoint("broker.example.com:9092", &properties.replace("PLAIN\n", "SCRAM-SHA-512\n"));
        assert!(!Security::of(&scram).password_in_clear(&scram), "SCRAM never sends the password");
        let tls = endpoint("broker.example.com:9092", &properties.replace("SASL_PLAINTEXT", "SASL_SSL"));
        assert!(!Security::of(&tls).password_in_clear(&tls));
    }
}
