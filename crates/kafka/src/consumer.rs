//! The consumer group side: records in batches, in partition order, with the topic as an index into
//! the caller's table list. Offsets are the caller's to keep (in the target, with the rows): a
//! partition given to this member is read from the position the caller set for it
//! ([`Consumer::set_position`]), never from the group's committed offset, which is only advisory.
//!
//! A record that travelled in chunks ([`crate::producer::CHUNK_HEADER`]) is handed on whole, once
//! its last chunk is read: a caller never sees a chunk, so the offsets it stores are at records.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use passerelle_model::endpoint::KafkaEndpoint;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{self, Observer};
use crate::envelope::copy_batch::BatchHeader;
use crate::error::{configuration, describe, KafkaError};
use crate::producer::{CHUNK_HEADER, RUN_HEADER};

/// One consumed record, its payload copied out of librdkafka's buffer.
pub struct Record {
    /// Position of the topic in the list given to [`Consumer::subscribe`].
    pub topic_idx: usize,
    pub partition: i32,
    /// Where the record begins: its offset, or its first chunk's.
    pub first: i64,
    /// Its offset, or its last chunk's: the next record begins after it.
    pub offset: i64,
    /// The run that produced it ([`crate::producer::RUN_HEADER`]); `None` when it carries none.
    pub run: Option<String>,
    /// A batch of snapshot rows ([`crate::envelope::copy_batch`]) rather than one event.
    pub batch: Option<BatchHeader>,
    pub value: Vec<u8>,
}

/// Assigns each partition at the position the caller set for it, and notes the assignments.
struct Positioning {
    observer: Observer,
    /// The next offset to read, per topic partition.
    positions: Mutex<HashMap<(String, i32), i64>>,
    /// Partitions assigned since [`Consumer::take_assigned`] last asked, and where they start.
    assigned: Mutex<Vec<(String, i32, i64)>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

client::observed_client_context!(Positioning);

impl ConsumerContext for Positioning {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            // A revocation, or a failed rebalance: this member reads nothing until the next assignment.
            if let Err(error) = consumer.unassign() {
                tracing::warn!("consumer: cannot give the partitions up: {}", describe(&error));
            }
            return;
        }
        let partitions: Vec<(String, i32)> =
            tpl.elements().iter().map(|elem| (elem.topic().to_string(), elem.partition())).collect();
        let positions = locked(&self.positions);
        let mut assigned = Vec::new();
        for (topic, partition) in partitions {
            if let Some(&next) = positions.get(&(topic.clone(), partition)) {
                if tpl.set_partition_offset(&topic, partition, Offset::Offset(next)).is_ok() {
                    assigned.push((topic, partition, next));
                }
            }
        }
        drop(positions);
        if let Err(error) = consumer.assign(tpl) {
            tracing::warn!("consumer: cannot take the assigned partitions: {}", describe(&error));
            return;
        }
        locked(&self.assigned).extend(assigned);
    }
}

/// The chunks of a record read so far.
struct Partial {
    first: i64,
    next_index: usize,
    count: usize,
    value: Vec<u8>,
}

/// What a chunk's [`CHUNK_HEADER`] says: its index and the record's count of chunks.
fn chunk_label(value: &[u8]) -> Option<(usize, usize)> {
    let (index, count) = std::str::from_utf8(value).ok()?.split_once('/')?;
    let (index, count) = (index.parse().ok()?, count.parse().ok()?);
    (index < count).then_some((index, count))
}

pub struct Consumer {
    inner: StreamConsumer<Positioning>,
    topics: Vec<String>,
    topic_idx: HashMap<String, usize>,
    /// Per partition, the record whose chunks are being read.
    partials: Mutex<HashMap<(usize, i32), Partial>>,
}

impl Consumer {
    /// Joins `group` and subscribes to `topics`. A partition this member is given starts at the
    /// position set by [`Consumer::set_position`], else at the committed offset, else at the beginning.
    pub fn subscribe(endpoint: &KafkaEndpoint, group: &str, topics: Vec<String>) -> Result<Consumer, KafkaError> {
        let brokers = endpoint.to_string();
        let inner: StreamConsumer<Positioning> = client::config(endpoint)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // A member that died (a killed sink) keeps its partitions until its session times out:
            // 10 s rather than 45 lets a restarted sink take them over sooner.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "3000")
            // librdkafka prefetches per partition, and holds what it fetched decompressed: JSON events
            // inflate about five times out of lz4, the chunks of a repetitive 25 MB value a hundred
            // times. A 64 kB fetch per partition (one record batch at least, however large) keeps the
            // prefetched events to tens of MB at most: 256 kB held 64 to 90 MB of such chunks.
            .set("fetch.max.bytes", "2097152")
            .set("max.partition.fetch.bytes", "65536")
            .set("queued.max.messages.kbytes", "1024")
            // A partition whose queue is full waits this long before fetching again: librdkafka's
            // default second stalls the sink once the queue is small.
            .set("fetch.queue.backoff.ms", "5")
            .create_with_context(Positioning {
                observer: Observer::new(endpoint),
                positions: Mutex::default(),
                assigned: Mutex::default(),
            })
            .map_err(|error| configuration(&brokers, &error))?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        inner.subscribe(&names).map_err(|error| KafkaError::Consume { cause: describe(&error) })?;
        let topic_idx = topics.iter().enumerate().map(|(i, topic)| (topic.clone(), i)).collect();
        Ok(Consumer { inner, topics, topic_idx, partials: Mutex::default() })
    }

    pub fn topic(&self, topic_idx: usize) -> &str {
        &self.topics[topic_idx]
    }

    /// Where a partition is read from when this member is next given it: the position only moves
    /// forward, so a stale lower value from the caller never takes it back.
    pub fn set_position(&self, topic_idx: usize, partition: i32, next: i64) {
        let mut positions = locked(&self.inner.context().positions);
        let position = positions.entry((self.topics[topic_idx].clone(), partition)).or_insert(next);
        *position = (*position).max(next);
    }

    /// The partitions assigned to this member since the last call, each with the offset it was
    /// positioned at.
    pub fn take_assigned(&self) -> Vec<(usize, i32, i64)> {
        std::mem::take(&mut *locked(&self.inner.context().assigned))
            .into_iter()
            .filter_map(|(topic, partition, next)| Some((*self.topic_idx.get(&topic)?, partition, next)))
            .collect()
    }

    /// The first offset Kafka still holds in a partition, and the offset its next record will get.
    pub fn watermarks(&self, topic_idx: usize, partition: i32) -> Result<(i64, i64), KafkaError> {
        let topic = &self.topics[topic_idx];
        tokio::task::block_in_place(|| self.inner.fetch_watermarks(topic, partition, Duration::from_secs(30)))
            .map_err(|error| KafkaError::Topic { topic: topic.clone(), cause: describe(&error) })
    }

    /// Up to `max_records` records, or fewer once they hold `max_bytes` (at least one record);
    /// returns early, possibly empty, when none arrives within `wait`. A record read in chunks is
    /// returned once its last chunk is read, whichever call reads it.
    pub async fn next_batch(
        &self,
        max_records: usize,
        max_bytes: usize,
        wait: Duration,
    ) -> Result<Vec<Record>, KafkaError> {
        let mut batch = Vec::new();
        let mut n_bytes = 0;
        let deadline = tokio::time::Instant::now() + wait;
        while batch.len() < max_records && n_bytes < max_bytes {
            let message = match tokio::time::timeout_at(deadline, self.inner.recv()).await {
                Err(_) => break,
                // A topic created a moment ago may not be in every broker's metadata yet; librdkafka
                // keeps asking, and so does the caller, which knows whether the topic should exist.
                Ok(Err(error)) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition) => {
                    tracing::debug!("consumer: {}", describe(&error));
                    continue;
                }
                Ok(Err(error)) => {
                    let refusal = self.inner.context().observer.refusal();
                    return Err(refusal.unwrap_or_else(|| KafkaError::Consume { cause: describe(&error) }));
                }
                Ok(Ok(message)) => message,
            };
            let Some(&topic_idx) = self.topic_idx.get(message.topic()) else { continue };
            let header = |name: &str| {
                message.headers().and_then(|headers| {
                    headers.iter().find(|header| header.key == name).and_then(|header| header.value)
                })
            };
            let run = header(RUN_HEADER).map(|value| String::from_utf8_lossy(value).into_owned());
            let payload = message.payload().unwrap_or_default();
            let (partition, offset) = (message.partition(), message.offset());
            let (first, value) = match header(CHUNK_HEADER) {
                None => {
                    // A record in the middle of another's chunks: that one will never be whole.
                    locked(&self.partials).remove(&(topic_idx, partition));
                    (offset, payload.to_vec())
                }
                Some(label) => {
                    let Some((first, value)) = self.chunk((topic_idx, partition), offset, label, payload) else {
                        continue;
                    };
                    (first, value)
                }
            };
            n_bytes += value.len();
            let batch_header = BatchHeader::read(header);
            batch.push(Record { topic_idx, partition, first, offset, run, batch: batch_header, value });
        }
        Ok(batch)
    }

    /// Takes one chunk; returns the record once this is its last chunk. A chunk that does not follow
    /// the one before (a record left incomplete by a producer that died, followed by its repetition;
    /// a partition read from inside a record) drops what was read of its record.
    fn chunk(&self, id: (usize, i32), offset: i64, label: &[u8], payload: &[u8]) -> Option<(i64, Vec<u8>)> {
        let mut partials = locked(&self.partials);
        let Some((index, count)) = chunk_label(label) else {
            tracing::warn!("{}/{}@{offset}: a chunk header that is not index/count; skipped", self.topics[id.0], id.1);
            partials.remove(&id);
            return None;
        };
        if index == 0 {
            let value = Vec::with_capacity(payload.len().saturating_mul(count));
            partials.insert(id, Partial { first: offset, next_index: 0, count, value });
        }
        let follows = partials.get(&id).is_some_and(|partial| partial.next_index == index && partial.count == count);
        if !follows {
            tracing::debug!(
                "{}/{}@{offset}: chunk {index} of {count} of an incomplete record; skipped",
                self.topics[id.0],
                id.1
            );
            partials.remove(&id);
            return None;
        }
        let partial = partials.get_mut(&id)?;
        partial.value.extend_from_slice(payload);
        partial.next_index += 1;
        if partial.next_index < count {
            return None;
        }
        let whole = partials.remove(&id)?;
        Some((whole.first, whole.value))
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
