//! The producer: idempotent, `acks=all`, compressed, with bounded memory. A full local queue makes
//! `send` wait (backpressure) rather than grow; librdkafka rides through a broker restart on its own
//! for as long as the caller allows, then a failed delivery fails the run.

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

pub struct Producer {
    inner: ThreadedProducer<DeliveryTracker>,
    /// The [`RUN_HEADER`] put on every record, once [`Producer::for_run`] names the run.
    run: Option<OwnedHeaders>,
}

impl Producer {
    /// `delivery_timeout`: how long librdkafka keeps trying to deliver a message (through a broker
    /// restart or a leader change) before the delivery fails.
    pub fn new(endpoint: &KafkaEndpoint, delivery_timeout: Duration) -> Result<Producer, KafkaError> {
        let inner = client::config(endpoint)
            .set("message.timeout.ms", delivery_timeout.as_millis().clamp(1000, i32::MAX as u128).to_string())
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "20")
            .set("batch.size", "1000000")
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
        Ok(Producer { inner, run: None })
    }

    /// Every record sent from now on carries `run_id` in its [`RUN_HEADER`].
    pub fn for_run(mut self, run_id: &str) -> Producer {
        self.run = Some(OwnedHeaders::new().insert(Header { key: RUN_HEADER, value: Some(run_id) }));
        self
    }

    /// Queues one message, waiting while the local queue is full. `partition: None` lets the key
    /// choose (every event of a key lands in one partition, in order).
    pub async fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<(), KafkaError> {
        self.check_failures()?;
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(run) = &self.run {
            record = record.headers(run.clone());
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
