//! Topics: one per table, named as Debezium names them (`<prefix>.<schema>.<table>`), created by
//! Passerelle with the partitions, replication and retention the user asked for.

use std::time::Duration;

use passerelle_model::endpoint::KafkaEndpoint;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;

use crate::client;
use crate::error::{describe, KafkaError};

const TIMEOUT: Duration = Duration::from_secs(30);

/// How the topics of one migration are laid out.
#[derive(Clone, Debug)]
pub struct TopicLayout {
    /// Debezium's `topic.prefix`: the first part of every topic name.
    pub prefix: String,
    pub partitions: i32,
    pub replication: i32,
    /// `retention.ms`; `None` keeps the broker's default.
    pub retention_ms: Option<i64>,
}

impl TopicLayout {
    /// `<prefix>.<schema>.<table>`, Debezium's convention, so its consumers find our topics.
    pub fn topic_name(&self, schema: &str, table: &str) -> String {
        format!("{}.{schema}.{table}", self.prefix)
    }
}

/// An admin client whose brokers answered, and what they said about the cluster: a broker that is
/// down is reported in seconds, not after an admin request's long timeout.
fn admin(endpoint: &KafkaEndpoint) -> Result<(AdminClient<DefaultClientContext>, Metadata), KafkaError> {
    let unreachable = |error| KafkaError::Unreachable { brokers: endpoint.to_string(), cause: describe(&error) };
    let admin: AdminClient<DefaultClientContext> = client::config(endpoint).create().map_err(unreachable)?;
    let metadata = tokio::task::block_in_place(|| admin.inner().fetch_metadata(None, Duration::from_secs(10)))
        .map_err(unreachable)?;
    Ok((admin, metadata))
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT))
}

/// How many brokers the cluster has; an error when none answers.
pub async fn broker_count(endpoint: &KafkaEndpoint) -> Result<usize, KafkaError> {
    let (_, metadata) = admin(endpoint)?;
    Ok(metadata.brokers().len())
}

/// Creates the topics that do not exist yet; existing ones are kept as they are.
pub async fn create_topics(endpoint: &KafkaEndpoint, layout: &TopicLayout, names: &[String]) -> Result<(), KafkaError> {
    let (admin, _) = admin(endpoint)?;
    let retention = layout.retention_ms.map(|ms| ms.to_string());
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|name| {
            let topic = NewTopic::new(name, layout.partitions, TopicReplication::Fixed(layout.replication));
            match &retention {
                Some(ms) => topic.set("retention.ms", ms),
                None => topic,
            }
        })
        .collect();
    let results = admin
        .create_topics(&topics, &options())
        .await
        .map_err(|error| KafkaError::Unreachable { brokers: endpoint.to_string(), cause: describe(&error) })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaError::Topic { topic, cause: format!("cannot create it: {code}") }),
        }
    }
    Ok(())
}

/// Deletes topics; those already gone are fine.
pub async fn delete_topics(endpoint: &KafkaEndpoint, names: &[String]) -> Result<(), KafkaError> {
    if names.is_empty() {
        return Ok(());
    }
    let (admin, _) = admin(endpoint)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let results = admin
        .delete_topics(&names, &options())
        .await
        .map_err(|error| KafkaError::Unreachable { brokers: endpoint.to_string(), cause: describe(&error) })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => return Err(KafkaError::Topic { topic, cause: format!("cannot delete it: {code}") }),
        }
    }
    Ok(())
}

/// The topics whose names start with `prefix`.
pub async fn list_topics(endpoint: &KafkaEndpoint, prefix: &str) -> Result<Vec<String>, KafkaError> {
    let (_, metadata) = admin(endpoint)?;
    let mut names: Vec<String> = metadata
        .topics()
        .iter()
        .map(|topic| topic.name().to_string())
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    Ok(names)
}
