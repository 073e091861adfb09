//! The producer: idempotent, `acks=all`, compressed, with bounded memory. A full local queue makes
//! `send` wait (backpressure) rather than grow; librdkafka rides through a broker restart on its own
//! for as long as the caller allows, then a failed delivery fails the run.
//!
//! A record too large for its topic travels in chunks (see [`CHUNK_HEADER`]), which the consumer
//! puts together again before its caller sees the record: the topics' limit is read from Kafka
//! ([`Producer::chunking`]), never assumed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use passerelle_model::endpoint::KafkaEndpoint;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};

use crate::client::{self, Observer};
use crate::error::{configuration, describe, KafkaError};

/// Counts deliveries and keeps the first failure, which `send` and `flush` then report.
struct DeliveryTracker {
    observer: Observer,
    delivered: AtomicU64,
    first_failure: Mutex<Option<KafkaError>>,
}

client::observed_client_context!(DeliveryTracker);

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                let mut first = self.first_failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                first.get_or_insert_with(|| KafkaError::Delivery {
                    topic: message.topic().to_string(),
                    cause: describe(error),
                });
            }
        }
    }
}

/// The header every record of a run carries, its value the run id: a sink applies only records of
/// the run it follows, whatever an abandoned run left in a topic.
pub const RUN_HEADER: &str = "passerelle-run";

/// The header of a chunk of a record too large for its topic, its value `index/count` (from 0): a
/// record's chunks lie in one partition at consecutive offsets, in order, and the consumer hands the
/// record on only once its last chunk is read, so whoever stores offsets stores whole records.
pub const CHUNK_HEADER: &str = "passerelle-chunk";

/// librdkafka's own bound on one produced message and on a batch of them (`message.max.bytes`).
const LIBRDKAFKA_MESSAGE_MAX: usize = 1_000_000;

/// What a record needs beside its value and key within a topic's limit: the record batch's framing,
/// the headers, and lz4's growth on values it cannot compress (at most 1/255).
fn payload_budget(limit: usize) -> usize {
    let limit = limit.min(LIBRDKAFKA_MESSAGE_MAX);
    limit.saturating_sub(limit / 128 + 1024).max(1024)
}

/// How a producer keeps its records in order, exactly once, through retries.
enum Delivery {
    /// librdkafka's idempotent producer: records in order and never twice, whatever is in flight.
    Idempotent,
    /// One request in flight at a time, for writers that flush each record before the next.
    OneAtATime,
}

pub struct Producer {
    inner: ThreadedProducer<DeliveryTracker>,
    /// The [`RUN_HEADER`] put on every record, once [`Producer::for_run`] names the run.
    run: Option<OwnedHeaders>,
    /// The most bytes of key and value one record may carry, per topic whose limit was read
    /// ([`Producer::chunking`]); larger records of these topics go in chunks, others' never do.
    budgets: HashMap<String, usize>,
    /// Taken by every send, so that no other record comes between the chunks of one.
    sending: tokio::sync::Mutex<()>,
}

impl Producer {
    /// `delivery_timeout`: how long librdkafka keeps trying to deliver a message (through a broker
    /// restart or a leader change) before the delivery fails.
    pub fn new(endpoint: &KafkaEndpoint, delivery_timeout: Duration) -> Result<Producer, KafkaError> {
        Producer::build(endpoint, delivery_timeout, LIBRDKAFKA_MESSAGE_MAX, HashMap::new(), Delivery::Idempotent)
    }

    /// A producer for the control topic, whose writers send a record and flush it before the next:
    /// no retry can reorder them, and a record written twice reads as once (the readers take the
    /// newest of each kind). Not idempotent, because librdkafka's idempotent producer sends nothing
    /// before it has its producer id, which it first asks for half a second after it starts: each
    /// control write (the run's announcement, the target a first sink fixes, a cutover request)
    /// waited that long.
    pub fn for_control(endpoint: &KafkaEndpoint, delivery_timeout: Duration) -> Result<Producer, KafkaError> {
        Producer::build(endpoint, delivery_timeout, LIBRDKAFKA_MESSAGE_MAX, HashMap::new(), Delivery::OneAtATime)
    }

    /// A producer that sends records larger than `topics` take in chunks: each topic's limit is its
    /// `max.message.bytes` (the broker's `message.max.bytes` unless the topic sets its own), read
    /// from Kafka, and librdkafka's batches are kept within the smallest.
    pub async fn chunking(
        endpoint: &KafkaEndpoint,
        delivery_timeout: Duration,
        topics: &[String],
    ) -> Result<Producer, KafkaError> {
        let limits = crate::topic::message_limits(endpoint, topics).await?;
        let budgets: HashMap<String, usize> =
            limits.into_iter().map(|(topic, limit)| (topic, payload_budget(limit))).collect();
        let batch = budgets.values().copied().min().unwrap_or(LIBRDKAFKA_MESSAGE_MAX);
        Producer::build(endpoint, delivery_timeout, batch, budgets, Delivery::Idempotent)
    }

    fn build(
        endpoint: &KafkaEndpoint,
        delivery_timeout: Duration,
        batch_bytes: usize,
        budgets: HashMap<String, usize>,
        delivery: Delivery,
    ) -> Result<Producer, KafkaError> {
        let mut config = client::config(endpoint);
        match delivery {
            Delivery::Idempotent => config.set("enable.idempotence", "true"),
            Delivery::OneAtATime => config.set("max.in.flight.requests.per.connection", "1"),
        };
        let inner = config
            .set("message.timeout.ms", delivery_timeout.as_millis().clamp(1000, i32::MAX as u128).to_string())
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "20")
            // A batch past a topic's limit would be refused whole: librdkafka does not split one.
            .set("batch.size", batch_bytes.to_string())
            // Java clients' partitioner: a key lands where Kafka Connect and Debezium would put it.
            .set("partitioner", "murmur2_random")
            // Bounded memory: at most this much waits in the local queue before `send` blocks (each
            // message also costs librdkafka about 200 bytes of its own). 8 MB is still 80 ms of the
            // snapshot's fastest stream, well above a broker's acknowledgement time.
            .set("queue.buffering.max.kbytes", "8192")
            .set("queue.buffering.max.messages", "20000")
            .create_with_context(DeliveryTracker {
                observer: Observer::new(endpoint),
                delivered: AtomicU64::new(0),
                first_failure: Mutex::new(None),
            })
            .map_err(|error| configuration(&endpoint.to_string(), &error))?;
        Ok(Producer { inner, run: None, budgets, sending: tokio::sync::Mutex::new(()) })
    }

    /// Every record sent from now on carries `run_id` in its [`RUN_HEADER`].
    pub fn for_run(mut self, run_id: &str) -> Producer {
        self.run = Some(OwnedHeaders::new().insert(Header { key: RUN_HEADER, value: Some(run_id) }));
        self
    }

    /// Queues one record, waiting while the local queue is full. `partition: None` lets the key
    /// choose (every event of a key lands in one partition, in order). A record larger than its
    /// topic takes goes as chunks, one after the other in one partition (partition 0 for a record
    /// with neither key nor partition).
    pub async fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<(), KafkaError> {
        self.send_headed(topic, partition, key, value, self.run.clone()).await
    }

    /// Queues one batch of snapshot rows as COPY text ([`crate::envelope::copy_batch`]) to `partition`,
    /// with the headers that say what it is, as [`Producer::send`] queues a record.
    pub async fn send_copy_batch(
        &self,
        topic: &str,
        partition: i32,
        text: &[u8],
        n_rows: u64,
    ) -> Result<(), KafkaError> {
        let mut headers = self.run.clone().unwrap_or_default();
        for (key, value) in crate::envelope::copy_batch::batch_headers(n_rows) {
            headers = headers.insert(Header { key, value: Some(&value) });
        }
        self.send_headed(topic, Some(partition), None, text, Some(headers)).await
    }

    /// [`Producer::send`] with `headers` on the record, and on each of its chunks.
    async fn send_headed(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<(), KafkaError> {
        self.check_failures()?;
        let _turn = self.sending.lock().await;
        let budget = self.budgets.get(topic).map(|budget| budget.saturating_sub(key.map_or(0, <[u8]>::len)).max(1));
        let chunk = match budget {
            Some(budget) if value.len() > budget => budget,
            _ => return self.enqueue(topic, partition, key, value, headers).await,
        };
        let partition = partition.or(key.is_none().then_some(0));
        let count = value.len().div_ceil(chunk);
        for (index, piece) in value.chunks(chunk).enumerate() {
            let label = format!("{index}/{count}");
            let headers = headers.clone().unwrap_or_default().insert(Header { key: CHUNK_HEADER, value: Some(&label) });
            self.enqueue(topic, partition, key, piece, Some(headers)).await?;
        }
        Ok(())
    }

    async fn enqueue(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<(), KafkaError> {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    self.check_failures()?;
                }
                Err((error, _)) => {
                    return Err(KafkaError::Delivery { topic: topic.to_string(), cause: describe(&error) })
                }
            }
        }
    }

    /// Waits until every queued message is acknowledged by the brokers; returns how many were.
    pub async fn flush(&self) -> Result<u64, KafkaError> {
        tokio::task::block_in_place(|| self.inner.flush(Duration::from_secs(300)))
            .map_err(|error| KafkaError::Delivery { topic: "*".to_string(), cause: describe(&error) })?;
        self.check_failures()?;
        Ok(self.inner.context().delivered.load(Ordering::Relaxed))
    }

    /// The first failed delivery, or a refusal (credentials, a certificate) that would otherwise
    /// show only once the deliveries time out.
    fn check_failures(&self) -> Result<(), KafkaError> {
        if let Some(refusal) = self.inner.context().observer.refusal() {
            return Err(refusal);
        }
        let mut first = self.inner.context().first_failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match first.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
