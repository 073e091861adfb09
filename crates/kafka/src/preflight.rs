//! Kafka's part of `passerelle check`: are the brokers reachable, and may Passerelle create and
//! delete topics (it creates one per table)?

use std::time::Duration;

use passerelle_model::endpoint::KafkaEndpoint;
use passerelle_model::preflight::{Finding, System};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication, TopicResult};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;

use crate::client;
use crate::error::describe;

const KAFKA: System = System::Kafka;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every Kafka check. Unreachable brokers end the list.
pub async fn run(endpoint: &KafkaEndpoint) -> Vec<Finding> {
    let admin: AdminClient<DefaultClientContext> = match client::config(endpoint).create() {
        Ok(admin) => admin,
        Err(error) => {
            return vec![Finding::fail(
                KAFKA,
                "connection",
                format!("cannot configure a Kafka client for {endpoint}: {error}"),
                "check the broker list in --kafka / PASSERELLE_KAFKA",
            )]
        }
    };
    // librdkafka's metadata call blocks; keep it off the async workers.
    let metadata = tokio::task::block_in_place(|| admin.inner().fetch_metadata(None, TIMEOUT));
    let n_brokers = match metadata {
        Ok(metadata) => metadata.brokers().len(),
        Err(error) => {
            return vec![Finding::fail(
                KAFKA,
                "connection",
                format!("cannot reach Kafka at {endpoint}: {}", describe(&error)),
                "check the broker list in --kafka / PASSERELLE_KAFKA and that the brokers are up",
            )]
        }
    };
    let mut findings = vec![Finding::pass(KAFKA, "connection", format!("{n_brokers} broker(s) at {endpoint}"))];
    findings.push(create_and_delete_topic(&admin, n_brokers).await);
    findings
}

/// Creates a uniquely named one-partition topic and deletes it again.
async fn create_and_delete_topic(admin: &AdminClient<DefaultClientContext>, n_brokers: usize) -> Finding {
    let name = format!("passerelle.check.{}.{}", std::process::id(), unique_suffix());
    let replication = n_brokers.clamp(1, 3) as i32;
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    let topic = NewTopic::new(&name, 1, TopicReplication::Fixed(replication));
    let fix =
        "grant the Passerelle principal CREATE and DELETE on topics (Kafka ACLs), or create the topics beforehand";
    if let Err(error) = first_result(admin.create_topics([&topic], &options).await) {
        return Finding::fail(KAFKA, "create and delete a topic", format!("cannot create topic {name}: {error}"), fix);
    }
    if let Err(error) = first_result(admin.delete_topics(&[&name], &options).await) {
        return Finding::fail(KAFKA, "create and delete a topic", format!("cannot delete topic {name}: {error}"), fix);
    }
    Finding::pass(KAFKA, "create and delete a topic", format!("created and deleted {name}"))
}

/// An admin call answers once for the request and once per topic; either may carry the error.
fn first_result(result: Result<Vec<TopicResult>, KafkaError>) -> Result<(), String> {
    match result {
        Err(error) => Err(describe(&error)),
        Ok(topics) => match topics.into_iter().find_map(Result::err) {
            Some((_, code)) => Err(code.to_string()),
            None => Ok(()),
        },
    }
}

/// Enough uniqueness for concurrent checks: the time in nanoseconds.
fn unique_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}
