//! Topics: one per table, named as Debezium names them (`<prefix>.<schema>.<table>`), created by
//! Passerelle with the partitions, replication and retention the user asked for.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use passerelle_model::endpoint::KafkaEndpoint;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::metadata::{Metadata, MetadataTopic};
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use crate::client::{self, Kept, Observer};
use crate::error::{configuration, describe, describe_code, KafkaError};

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
        table_topic(&self.prefix, schema, table)
    }

    /// The migration's control topic (see `control`). Its name has two parts where a table's topic
    /// has three, so no table can take it.
    pub fn control_topic(&self) -> String {
        control_topic(&self.prefix)
    }
}

pub fn table_topic(prefix: &str, schema: &str, table: &str) -> String {
    format!("{prefix}.{schema}.{table}")
}

pub fn control_topic(prefix: &str) -> String {
    format!("{prefix}.passerelle-control")
}

/// A client whose brokers answered, and what they said about the cluster: a broker that is down is
/// reported in seconds, not after an admin request's long timeout. A producer, polled here, rather
/// than the admin client, whose own events nobody serves: its log reaches Passerelle's, and a refusal
/// (credentials, a certificate) that librdkafka reports only as an event is reported as such.
fn cluster(endpoint: &KafkaEndpoint) -> Result<(Arc<BaseProducer<Observer>>, Metadata), KafkaError> {
    let producer = PRODUCERS.get(endpoint, || {
        client::config(endpoint)
            .create_with_context(Observer::new(endpoint))
            .map_err(|error| configuration(&endpoint.to_string(), &error))
    })?;
    // Serving the producer's events hands librdkafka's log and error events to the observer.
    let serve = || producer.poll(Duration::from_millis(10));
    match client::metadata(producer.client(), producer.context(), None, Duration::from_secs(10), serve) {
        Ok(metadata) => Ok((producer, metadata)),
        Err(error) => {
            PRODUCERS.forget(endpoint);
            ADMINS.forget(endpoint);
            Err(error)
        }
    }
}

/// An admin client, once [`cluster`] found the brokers answering.
fn admin(endpoint: &KafkaEndpoint) -> Result<Arc<AdminClient<Observer>>, KafkaError> {
    cluster(endpoint)?;
    ADMINS.get(endpoint, || {
        client::config(endpoint)
            .create_with_context(Observer::new(endpoint))
            .map_err(|error| configuration(&endpoint.to_string(), &error))
    })
}

/// The clients [`cluster`] and [`admin`] use, kept: the plan phase makes about twenty requests,
/// and a new client pays a connection and its handshakes for each (`client::Kept`).
static PRODUCERS: LazyLock<Kept<BaseProducer<Observer>>> = LazyLock::new(Kept::new);
static ADMINS: LazyLock<Kept<AdminClient<Observer>>> = LazyLock::new(Kept::new);

/// What the cluster imposes on the topics Passerelle creates: how many brokers hold replicas, and the
/// brokers' defaults a topic takes when it sets none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSettings {
    pub n_brokers: usize,
    /// `min.insync.replicas`: with `acks=all`, a write fails unless this many replicas have it.
    pub min_insync_replicas: Option<i32>,
    /// `log.retention.ms` (or `log.retention.hours`); -1 keeps records for ever.
    pub retention_ms: Option<i64>,
}

/// The brokers' count and defaults. A principal that may not describe the brokers' configuration
/// (as on some hosted clusters) gets the count, and `None` for the defaults.
pub async fn cluster_settings(endpoint: &KafkaEndpoint) -> Result<ClusterSettings, KafkaError> {
    let (_, metadata) = cluster(endpoint)?;
    let n_brokers = metadata.brokers().len();
    let mut settings = ClusterSettings { n_brokers, min_insync_replicas: None, retention_ms: None };
    let Some(broker) = metadata.brokers().first().map(|broker| broker.id()) else { return Ok(settings) };
    let admin = admin(endpoint)?;
    let described = admin.describe_configs(&[ResourceSpecifier::Broker(broker)], &options()).await;
    let Some(Ok(config)) = described.ok().and_then(|mut results| results.pop()) else { return Ok(settings) };
    let value =
        |name: &str| config.get(name).and_then(|entry| entry.value.as_deref()).and_then(|v| v.parse::<i64>().ok());
    settings.min_insync_replicas = value("min.insync.replicas").and_then(|n| i32::try_from(n).ok());
    settings.retention_ms =
        value("log.retention.ms").or_else(|| value("log.retention.hours").map(|hours| hours * 3_600_000));
    Ok(settings)
}

/// `topic`'s metadata when it exists with every partition led, by what `metadata` says; an error naming the
/// topic when it exists but is not readable yet (a broker restarting answers with leaderless
/// partitions, or with an error for the topic, for a while). Only Kafka's "unknown topic" means it
/// does not exist: a broker that answers at all has its metadata loaded.
pub(crate) fn readable<'a>(metadata: &'a Metadata, topic: &str) -> Result<Option<&'a MetadataTopic>, KafkaError> {
    let not_yet = |code: RDKafkaErrorCode| KafkaError::Topic { topic: topic.to_string(), cause: describe_code(code) };
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
    match found.error().map(RDKafkaErrorCode::from) {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Ok(None),
        Some(code) => return Err(not_yet(code)),
        None => {}
    }
    if found.partitions().is_empty() {
        return Err(not_yet(RDKafkaErrorCode::LeaderNotAvailable));
    }
    for partition in found.partitions() {
        // A follower missing (more than one replica) leaves the leader serving.
        match partition.error().map(RDKafkaErrorCode::from) {
            None | Some(RDKafkaErrorCode::ReplicaNotAvailable) => {}
            Some(code) => return Err(not_yet(code)),
        }
        if partition.leader() < 0 {
            return Err(not_yet(RDKafkaErrorCode::LeaderNotAvailable));
        }
    }
    Ok(Some(found))
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT))
}

/// How many brokers the cluster has; an error when none answers.
pub async fn broker_count(endpoint: &KafkaEndpoint) -> Result<usize, KafkaError> {
    let (_, metadata) = cluster(endpoint)?;
    Ok(metadata.brokers().len())
}

/// Creates the table topics that do not exist yet; existing ones are kept as they are.
pub async fn create_topics(endpoint: &KafkaEndpoint, layout: &TopicLayout, names: &[String]) -> Result<(), KafkaError> {
    create_new(endpoint, layout, names).await.map(|_| ())
}

/// How long a deletion or a creation may take to show in the cluster's metadata.
const SETTLE: Duration = Duration::from_secs(60);
/// How often the metadata is asked again meanwhile: a request on a kept client costs little.
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// Deletes `stale` and creates `fresh` anew, empty: a run's topics never hold an abandoned run's
/// records. Kafka deletes asynchronously, so this waits until the metadata no longer lists the
/// deleted topics, and takes "already exists" as "not deleted yet" rather than as success; after
/// [`SETTLE`] it gives up with the topic named.
pub async fn recreate_topics(
    endpoint: &KafkaEndpoint,
    layout: &TopicLayout,
    stale: &[String],
    fresh: &[String],
) -> Result<(), KafkaError> {
    delete_topics(endpoint, stale).await?;
    let deadline = tokio::time::Instant::now() + SETTLE;
    let still_there = |metadata: &Metadata| {
        metadata.topics().iter().map(|topic| topic.name().to_string()).find(|name| stale.contains(name))
    };
    loop {
        let (_, metadata) = cluster(endpoint)?;
        match still_there(&metadata) {
            None => break,
            Some(topic) if tokio::time::Instant::now() > deadline => {
                return Err(KafkaError::Topic {
                    topic,
                    cause: format!(
                        "still listed {} s after its deletion (is delete.topic.enable off?)",
                        SETTLE.as_secs()
                    ),
                })
            }
            Some(_) => tokio::time::sleep(SETTLE_POLL).await,
        }
    }
    let mut pending: Vec<String> = fresh.to_vec();
    loop {
        let existing = create_new(endpoint, layout, &pending).await?;
        if existing.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(KafkaError::Topic {
                topic: existing[0].clone(),
                cause: format!("still exists {} s after its deletion", SETTLE.as_secs()),
            });
        }
        pending = existing;
        tokio::time::sleep(SETTLE_POLL).await;
    }
    // A consumer or a watermark query right after the creation must find every partition.
    loop {
        let (_, metadata) = cluster(endpoint)?;
        let missing = fresh.iter().find(|name| {
            !metadata
                .topics()
                .iter()
                .any(|topic| &topic.name() == name && topic.partitions().len() == layout.partitions as usize)
        });
        match missing {
            None => return Ok(()),
            Some(topic) if tokio::time::Instant::now() > deadline => {
                return Err(KafkaError::Topic {
                    topic: topic.clone(),
                    cause: format!("not listed with its partitions {} s after its creation", SETTLE.as_secs()),
                })
            }
            Some(_) => tokio::time::sleep(SETTLE_POLL).await,
        }
    }
}

fn new_topics<'a>(layout: &TopicLayout, names: &'a [String], retention: &'a Option<String>) -> Vec<NewTopic<'a>> {
    names
        .iter()
        .map(|name| {
            let topic = NewTopic::new(name, layout.partitions, TopicReplication::Fixed(layout.replication));
            match retention {
                Some(ms) => topic.set("retention.ms", ms),
                None => topic,
            }
        })
        .collect()
}

/// Creates the table topics; returns those that already existed.
async fn create_new(
    endpoint: &KafkaEndpoint,
    layout: &TopicLayout,
    names: &[String],
) -> Result<Vec<String>, KafkaError> {
    let retention = layout.retention_ms.map(|ms| ms.to_string());
    create(endpoint, &new_topics(layout, names, &retention)).await
}

/// Creates the control topic if it does not exist: one partition, so its records keep their order,
/// compacted and never expired, so the newest record of each kind stays whatever the retention.
pub async fn create_control_topic(endpoint: &KafkaEndpoint, layout: &TopicLayout) -> Result<(), KafkaError> {
    let name = layout.control_topic();
    let topic = NewTopic::new(&name, 1, TopicReplication::Fixed(layout.replication))
        .set("cleanup.policy", "compact")
        .set("retention.ms", "-1");
    create(endpoint, &[topic]).await.map(|_| ())
}

/// Creates topics; returns those that already existed.
async fn create(endpoint: &KafkaEndpoint, topics: &[NewTopic<'_>]) -> Result<Vec<String>, KafkaError> {
    let admin = admin(endpoint)?;
    let results = admin
        .create_topics(topics, &options())
        .await
        .map_err(|error| KafkaError::Unreachable { brokers: endpoint.to_string(), cause: describe(&error) })?;
    let mut existing = Vec::new();
    for result in results {
        match result {
            Ok(_) => {}
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => existing.push(topic),
            Err((topic, code)) => {
                return Err(KafkaError::Topic { topic, cause: format!("{} (creating it)", describe_code(code)) })
            }
        }
    }
    Ok(existing)
}

/// Deletes topics; those already gone are fine.
pub async fn delete_topics(endpoint: &KafkaEndpoint, names: &[String]) -> Result<(), KafkaError> {
    if names.is_empty() {
        return Ok(());
    }
    let admin = admin(endpoint)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let results = admin
        .delete_topics(&names, &options())
        .await
        .map_err(|error| KafkaError::Unreachable { brokers: endpoint.to_string(), cause: describe(&error) })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::Topic { topic, cause: format!("{} (deleting it)", describe_code(code)) })
            }
        }
    }
    Ok(())
}

/// The most bytes one record batch may hold in each of `topics`: the topic's `max.message.bytes`,
/// which is the broker's `message.max.bytes` unless the topic sets its own. A topic whose
/// configuration this principal may not describe gets the broker's default (1,048,588).
pub async fn message_limits(endpoint: &KafkaEndpoint, topics: &[String]) -> Result<Vec<(String, usize)>, KafkaError> {
    const KAFKA_DEFAULT: usize = 1_048_588;
    if topics.is_empty() {
        return Ok(Vec::new());
    }
    let admin = admin(endpoint)?;
    let resources: Vec<ResourceSpecifier> = topics.iter().map(|topic| ResourceSpecifier::Topic(topic)).collect();
    let described = admin
        .describe_configs(&resources, &options())
        .await
        .map_err(|error| KafkaError::Unreachable { brokers: endpoint.to_string(), cause: describe(&error) })?;
    let limits = topics
        .iter()
        .zip(described)
        .map(|(topic, result)| {
            let limit = result.ok().and_then(|config| {
                config.get("max.message.bytes").and_then(|entry| entry.value.as_deref()?.parse::<usize>().ok())
            });
            (topic.clone(), limit.unwrap_or(KAFKA_DEFAULT))
        })
        .collect();
    Ok(limits)
}

/// The end of every partition of `topics`: the offset the next message will get.
pub async fn end_offsets(endpoint: &KafkaEndpoint, topics: &[String]) -> Result<Vec<PartitionEnd>, KafkaError> {
    let (producer, metadata) = cluster(endpoint)?;
    let mut ends = Vec::new();
    for topic in topics {
        let Some(found) = readable(&metadata, topic)? else {
            return Err(KafkaError::Topic { topic: topic.clone(), cause: "it does not exist".into() });
        };
        for partition in found.partitions() {
            let (_, end) =
                tokio::task::block_in_place(|| producer.client().fetch_watermarks(topic, partition.id(), TIMEOUT))
                    .map_err(|error| KafkaError::Topic { topic: topic.clone(), cause: describe(&error) })?;
            ends.push(PartitionEnd { topic: topic.clone(), partition: partition.id(), end });
        }
    }
    ends.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(ends)
}

/// Where a partition ends: the offset its next message will get.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionEnd {
    pub topic: String,
    pub partition: i32,
    pub end: i64,
}

/// Every one of `names` exists: topics created beforehand, by a principal that may create them, for
/// one that may not. The first missing one is named, with where its command is.
pub async fn require_topics(endpoint: &KafkaEndpoint, names: &[String]) -> Result<(), KafkaError> {
    let (_, metadata) = cluster(endpoint)?;
    for name in names {
        // A topic not led yet (a broker restarting) is an error that passes, not a missing one.
        if readable(&metadata, name)?.is_none() {
            return Err(KafkaError::Topic {
                topic: name.clone(),
                cause: "it does not exist, and --existing-topics creates none: create the topics with the commands \
                        passerelle plan writes to kafka-topics.sh"
                    .to_string(),
            });
        }
    }
    Ok(())
}

/// The topics whose names start with `prefix`.
pub async fn list_topics(endpoint: &KafkaEndpoint, prefix: &str) -> Result<Vec<String>, KafkaError> {
    let (_, metadata) = cluster(endpoint)?;
    let mut names: Vec<String> = metadata
        .topics()
        .iter()
        .map(|topic| topic.name().to_string())
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    Ok(names)
}

/// How many consumers are members of `group` now: `status` counts a run's sinks by its group.
pub async fn group_members(endpoint: &KafkaEndpoint, group: &str) -> Result<usize, KafkaError> {
    let (producer, _) = cluster(endpoint)?;
    let groups = tokio::task::block_in_place(|| producer.client().fetch_group_list(Some(group), TIMEOUT))
        .map_err(|error| KafkaError::Consume { cause: describe(&error) })?;
    Ok(groups.groups().iter().filter(|found| found.name() == group).map(|found| found.members().len()).sum())
}
