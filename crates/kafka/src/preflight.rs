//! Kafka's part of `passerelle check`: are the brokers reachable, and may Passerelle create and
//! delete topics (it creates one per table)? Asks through `topic`, as a migration would.

use passerelle_model::endpoint::KafkaEndpoint;
use passerelle_model::preflight::{Finding, System};

use crate::topic::{broker_count, create_topics, delete_topics, TopicLayout};

const KAFKA: System = System::Kafka;

/// Runs every Kafka check. Unreachable brokers end the list.
pub async fn run(endpoint: &KafkaEndpoint) -> Vec<Finding> {
    let n_brokers = match broker_count(endpoint).await {
        Ok(n_brokers) => n_brokers,
        Err(error) => return vec![Finding::fail(KAFKA, "connection", error.cause(), error.hint())],
    };
    let mut findings = vec![Finding::pass(KAFKA, "connection", format!("{n_brokers} broker(s) at {endpoint}"))];
    findings.push(create_and_delete_topic(endpoint, n_brokers).await);
    findings
}

/// Creates a uniquely named one-partition topic and deletes it again.
async fn create_and_delete_topic(endpoint: &KafkaEndpoint, n_brokers: usize) -> Finding {
    let prefix = format!("passerelle.check.{}.{}", std::process::id(), unique_suffix());
    let layout = TopicLayout { prefix, partitions: 1, replication: n_brokers.clamp(1, 3) as i32, retention_ms: None };
    let name = layout.topic_name("preflight", "topic");
    let names = std::slice::from_ref(&name);
    let fix =
        "grant the Passerelle principal CREATE and DELETE on topics (Kafka ACLs), or create the topics beforehand";
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
