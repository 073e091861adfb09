//! The consumer group side: records in batches, in partition order, with the topic as an index into
//! the caller's table list. Offsets are the caller's to keep (in the target, with the rows); the
//! group's own commit is advisory, so a new member starts near where the last one stopped.

use std::collections::HashMap;
use std::time::Duration;

use passerelle_model::endpoint::KafkaEndpoint;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::client;
use crate::error::{describe, KafkaError};

/// One consumed message, its payload copied out of librdkafka's buffer.
pub struct Record {
    /// Position of the topic in the list given to [`Consumer::subscribe`].
    pub topic_idx: usize,
    pub partition: i32,
    pub offset: i64,
    pub value: Vec<u8>,
}

pub struct Consumer {
    inner: StreamConsumer,
    topics: Vec<String>,
    topic_idx: HashMap<String, usize>,
}

impl Consumer {
    /// Joins `group` and subscribes to `topics`; with no committed offset a partition starts at the
    /// beginning.
    pub fn subscribe(endpoint: &KafkaEndpoint, group: &str, topics: Vec<String>) -> Result<Consumer, KafkaError> {
        let brokers = endpoint.to_string();
        let inner: StreamConsumer = client::config(endpoint)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // A member that died (a killed sink) keeps its partitions until its session times out:
            // 10 s rather than 45 lets a restarted sink take them over sooner.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "3000")
            // librdkafka prefetches per partition, and holds what it fetched decompressed: JSON events
            // inflate about five times out of lz4. With a topic per table and several partitions each,
            // a 256 kB fetch per partition keeps the prefetched events to tens of MB at most.
            .set("fetch.max.bytes", "2097152")
            .set("max.partition.fetch.bytes", "262144")
            .set("queued.max.messages.kbytes", "1024")
            // A partition whose queue is full waits this long before fetching again: librdkafka's
            // default second stalls the sink once the queue is small.
            .set("fetch.queue.backoff.ms", "5")
            .create()
            .map_err(|error| KafkaError::Unreachable { brokers, cause: describe(&error) })?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        inner.subscribe(&names).map_err(|error| KafkaError::Consume { cause: describe(&error) })?;
        let topic_idx = topics.iter().enumerate().map(|(i, topic)| (topic.clone(), i)).collect();
        Ok(Consumer { inner, topics, topic_idx })
    }

    pub fn topic(&self, topic_idx: usize) -> &str {
        &self.topics[topic_idx]
    }

    /// Up to `max` records; returns early, possibly empty, when none arrives within `wait`.
    pub async fn next_batch(&self, max: usize, wait: Duration) -> Result<Vec<Record>, KafkaError> {
        let mut batch = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while batch.len() < max {
            let message = match tokio::time::timeout_at(deadline, self.inner.recv()).await {
                Err(_) => break,
                // A topic created a moment ago may not be in every broker's metadata yet; librdkafka
                // keeps asking, and so does the caller, which knows whether the topic should exist.
                Ok(Err(error)) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition) => {
                    tracing::debug!("consumer: {}", describe(&error));
                    continue;
                }
                Ok(Err(error)) => return Err(KafkaError::Consume { cause: describe(&error) }),
                Ok(Ok(message)) => message,
            };
            let Some(&topic_idx) = self.topic_idx.get(message.topic()) else { continue };
            batch.push(Record {
                topic_idx,
                partition: message.partition(),
                offset: message.offset(),
                value: message.payload().unwrap_or_default().to_vec(),
            });
        }
        Ok(batch)
    }

    /// Tells the group how far this member got (advisory: the target holds the real offsets).
    pub fn commit(&self, next_offsets: &HashMap<(usize, i32), i64>) -> Result<(), KafkaError> {
        let mut list = TopicPartitionList::new();
        for (&(topic_idx, partition), &offset) in next_offsets {
            list.add_partition_offset(&self.topics[topic_idx], partition, Offset::Offset(offset))
                .map_err(|error| KafkaError::Consume { cause: describe(&error) })?;
        }
        self.inner.commit(&list, CommitMode::Async).map_err(|error| KafkaError::Consume { cause: describe(&error) })
    }
}
