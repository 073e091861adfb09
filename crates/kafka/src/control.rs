//! The control topic, `<prefix>.passerelle-control`: what a sink process needs besides the table
//! topics, so that it can run on any machine with only Kafka and the target in reach.
//!
//! Seven kinds of record, each keyed by its kind (the topic is compacted, so the newest of each stays):
//! - `run`: a new attempt began; its id, the encoding, and the source schema the sink plans from;
//! - `snapshot-done`: every snapshot row of that run is in Kafka, and where each partition ended;
//! - `cutover` (online runs, written by `passerelle cutover`): stream up to this LSN, then stop;
//! - `stream-done`: every change up to the cutover LSN is in Kafka, where each partition ended, and
//!   the sequences' last values at that point;
//! - `failed`: the source process of that run ended with an error, which nothing will retry by
//!   itself; the cause and the way out. A source that takes the run up again clears it with an empty
//!   `failed` record;
//! - `altered:<schema>.<table>:<version>`: the stream met a table whose columns changed in a way the
//!   target can follow (columns added or dropped, types widened): its new definition, which sinks
//!   apply before the first event that uses it. One record per version, so that compaction keeps
//!   every one;
//! - `target:<identity>`: the target server and databases of a run that `passerelle source` began,
//!   fixed by its first sink. Keyed by the server's identity, so that compaction never removes the
//!   first one: sinks that raced to fix different servers all read the same first record.
//!
//! `failed` came after the first control format and needs no new one: a Passerelle that does not know
//! it skips it, as every reader skips a kind it does not know, and only waits as it always did.
//! Neither does `altered`: a sink that skips it stops at the first event with a column it does not
//! know, or without one it expects, naming it, and applies nothing wrong.
//! `target:` does (format 3): a sink that skipped it would not refuse another target server.
//!
//! A reader takes the newest `run`, and the others only when they name that run: one left from an
//! interrupted earlier attempt says nothing about the current one.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use passerelle_model::endpoint::KafkaEndpoint;
use passerelle_model::schema::{QualifiedName, Schema, Table};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::client::{self, Kept, Observer};
use crate::error::{configuration, describe, describe_code, KafkaError};
use crate::producer::Producer;
use crate::topic::PartitionEnd;
use rdkafka::types::RDKafkaErrorCode;

const RUN_KEY: &[u8] = b"run";
const SNAPSHOT_DONE_KEY: &[u8] = b"snapshot-done";
const CUTOVER_KEY: &[u8] = b"cutover";
const STREAM_DONE_KEY: &[u8] = b"stream-done";
const FAILED_KEY: &[u8] = b"failed";
const TARGET_KEY_PREFIX: &str = "target:";
const ALTERED_KEY_PREFIX: &str = "altered:";
const TIMEOUT: Duration = Duration::from_secs(30);

/// The format of the control records this Passerelle writes: a Passerelle that changes what they
/// mean raises it, and one that finds a newer run than it can read refuses it (`config::run_encoding`).
/// Announcements without it are of the first format. Format 3 fixes the target server (a reader of
/// format 2 would not know to refuse another). Format 4 fixes the type mapping (a reader of format 3
/// would plan with its own flags). Format 5 says how the snapshot's rows travel
/// ([`RunAnnouncement::snapshot_encoding`]): a reader of format 4 would misread batches of COPY text.
pub const CONTROL_FORMAT: u32 = 5;

fn first_format() -> u32 {
    1
}

fn per_row() -> String {
    crate::envelope::copy_batch::SnapshotEncoding::Envelope.to_string()
}

/// A new attempt at a migration, announced before its first row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunAnnouncement {
    /// Names the attempt: a fresh start gets a new one, and with it a new consumer group.
    pub run_id: String,
    /// The format of the run's control records ([`CONTROL_FORMAT`] when this Passerelle wrote it).
    #[serde(default = "first_format")]
    pub format: u32,
    /// The Passerelle that wrote it (`source.version` of the events).
    pub version: String,
    /// How the table topics' events are encoded.
    pub encoding: String,
    /// How the snapshot's rows travel: `envelope` (one event per row, in `encoding`) or `copy-text`
    /// (batches of COPY text, `envelope::copy_batch`); announcements before format 5 have envelopes.
    #[serde(default = "per_row")]
    pub snapshot_encoding: String,
    /// The source database.
    pub database: String,
    /// The PostgreSQL schemas selected, each of which maps to a target database.
    pub schemas: Vec<String>,
    /// Every object of those schemas, as the catalog read them when the run began. Its tables are
    /// copied in this order, each into the topic `<prefix>.<schema>.<table>`.
    pub schema: Schema,
    /// PostgreSQL's estimate of each table's rows, for progress; `None` where it has none.
    pub estimated_rows: Vec<Option<u64>>,
    /// After the snapshot, the source streams changes until a cutover.
    #[serde(default)]
    pub online: bool,
    /// Where the run's records begin in each partition of each table topic: a sink reads and claims
    /// a partition from here, never from before, where an abandoned run's records could be.
    #[serde(default)]
    pub starts: Vec<PartitionEnd>,
    /// Each schema's target database, fixed when the run began (by `migrate`, which knows the
    /// target; empty when `passerelle source` began it).
    #[serde(default)]
    pub target_databases: BTreeMap<String, String>,
    /// The target server, fixed when the run began (by `migrate`; `None` when `passerelle source`
    /// began it, and then its first sink fixes it with a [`TargetFixed`]).
    #[serde(default)]
    pub target_server: Option<TargetServer>,
    /// How lossy types are held in the target, fixed when the run began (by `migrate`; `None` when
    /// `passerelle source` began it, and then its first sink fixes it with a [`TargetFixed`]).
    #[serde(default)]
    pub type_mapping: Option<TypeMapping>,
    /// The `--include` patterns of tables and views the run moves (empty: every one of its schemas).
    #[serde(default)]
    pub include: Vec<String>,
    /// The `--exclude` patterns of tables and views the run leaves out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The columns the run leaves out, `schema.table.column`.
    #[serde(default)]
    pub exclude_columns: Vec<String>,
}

/// The choices of the target's types that the flags make (`--uuid`, `--interval`, `--collation`),
/// by their flag values: every sink, `cutover` and `verify` of a run plans with the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeMapping {
    pub uuid: String,
    pub interval: String,
    /// The text columns' collation; `None` for the dialect's default.
    pub collation: Option<String>,
}

/// A target server, by an identity that another server never shares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetServer {
    /// `server_uuid <uuid>` (MySQL), or `installation id <uuid>` kept in the bookkeeping database
    /// where the server has no `@@server_uuid` (MariaDB).
    pub identity: String,
    /// Where it was reached (`user@host:port`, never a password), for messages only: one server may
    /// be reached by several addresses.
    pub address: String,
}

impl std::fmt::Display for TargetServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.identity, self.address)
    }
}

/// The target of a run that `passerelle source` began, fixed by its first sink.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetFixed {
    pub run_id: String,
    pub server: TargetServer,
    /// Each schema's target database.
    pub target_databases: BTreeMap<String, String>,
    #[serde(default)]
    pub type_mapping: Option<TypeMapping>,
}

/// Every snapshot row of a run is in Kafka.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotDone {
    pub run_id: String,
    /// The slot's consistent point, where the change stream starts.
    pub consistent_point: u64,
    /// Where each partition of each table topic ended: a sink is done when it applied up to these.
    pub ends: Vec<PartitionEnd>,
    /// Rows copied per table, in the announcement's table order.
    pub rows: Vec<u64>,
}

/// Stream every change committed before `lsn`, then stop: the source's writes have stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cutover {
    pub run_id: String,
    pub lsn: u64,
}

/// Every change committed before the cutover LSN is in Kafka.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamDone {
    pub run_id: String,
    pub lsn: u64,
    /// Where each partition of each table topic ended: a sink is done when it applied up to these.
    pub ends: Vec<PartitionEnd>,
    /// Each sequence's last value at the cutover, for the target's AUTO_INCREMENT.
    pub sequences: Vec<(QualifiedName, Option<i64>)>,
}

/// The run's source process ended with an error that nothing retries by itself: whoever waits for
/// the run (a sink, `cutover`, `status`) stops waiting and says this.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    pub run_id: String,
    /// What went wrong, in one line.
    pub cause: String,
    /// What to do about it.
    pub way_out: String,
}

/// A table of the run changed on the source while the stream ran, in a way the target follows
/// (`cli::altered`): from the event that follows it in the stream on, its events have these columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableAltered {
    pub run_id: String,
    /// 1 for the first change of the table in the run, then 2, ...
    pub version: u32,
    /// The table as the stream carries it from the change on: as the catalog read it then, with the
    /// columns dropped during the run still in it, where events written before have them.
    pub table: Table,
    /// The columns of `table` the source dropped during the run: events written after lack them, and
    /// the target drops them once the stream is applied.
    #[serde(default)]
    pub dropped: Vec<String>,
}

/// What the control topic says about the current run: each record present only when it belongs to
/// `run`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ControlState {
    pub run: Option<RunAnnouncement>,
    pub snapshot_done: Option<SnapshotDone>,
    pub cutover: Option<Cutover>,
    pub stream_done: Option<StreamDone>,
    pub failed: Option<Failed>,
    /// The first target fixed for the run by a sink, when the announcement named none.
    pub target: Option<TargetFixed>,
    /// The tables that changed during the run, every version, in the order they were announced.
    pub altered: Vec<TableAltered>,
}

impl ControlState {
    /// The target server the run applies into, once fixed (by its announcement or its first sink).
    pub fn target_server(&self) -> Option<&TargetServer> {
        let run = self.run.as_ref()?;
        run.target_server.as_ref().or(self.target.as_ref().map(|fixed| &fixed.server))
    }

    /// How the run's types are held, once fixed.
    pub fn type_mapping(&self) -> Option<&TypeMapping> {
        let run = self.run.as_ref()?;
        run.type_mapping.as_ref().or(self.target.as_ref().and_then(|fixed| fixed.type_mapping.as_ref()))
    }

    /// The run's tables as the stream carries them: the announcement's, each changed one at its last
    /// version, the columns dropped during the run still in it.
    pub fn stream_schema(&self) -> Option<Schema> {
        let mut schema = self.run.as_ref()?.schema.clone();
        for altered in &self.altered {
            if let Some(table) = schema.tables.iter_mut().find(|table| table.name == altered.table.name) {
                *table = altered.table.clone();
            }
        }
        Some(schema)
    }

    /// The run's tables as they stand now on the source: [`ControlState::stream_schema`] without the
    /// columns dropped during the run.
    pub fn current_schema(&self) -> Option<Schema> {
        let mut schema = self.stream_schema()?;
        for table in &mut schema.tables {
            let dropped = dropped(&self.altered, &table.name);
            table.columns.retain(|column| !dropped.contains(&column.name));
        }
        Some(schema)
    }

    /// Each schema's target database, once fixed; empty before.
    pub fn target_databases(&self) -> BTreeMap<String, String> {
        match (&self.run, &self.target) {
            (Some(run), _) if !run.target_databases.is_empty() => run.target_databases.clone(),
            (Some(_), Some(fixed)) => fixed.target_databases.clone(),
            _ => BTreeMap::new(),
        }
    }
}

pub async fn announce_run(producer: &Producer, topic: &str, run: &RunAnnouncement) -> Result<(), KafkaError> {
    publish(producer, topic, RUN_KEY, run).await
}

pub async fn announce_snapshot_done(producer: &Producer, topic: &str, done: &SnapshotDone) -> Result<(), KafkaError> {
    publish(producer, topic, SNAPSHOT_DONE_KEY, done).await
}

pub async fn request_cutover(producer: &Producer, topic: &str, cutover: &Cutover) -> Result<(), KafkaError> {
    publish(producer, topic, CUTOVER_KEY, cutover).await
}

pub async fn announce_stream_done(producer: &Producer, topic: &str, done: &StreamDone) -> Result<(), KafkaError> {
    publish(producer, topic, STREAM_DONE_KEY, done).await
}

pub async fn announce_failed(producer: &Producer, topic: &str, failed: &Failed) -> Result<(), KafkaError> {
    publish(producer, topic, FAILED_KEY, failed).await
}

/// Withdraws a `failed` record: a source has taken the run up again.
pub async fn clear_failed(producer: &Producer, topic: &str) -> Result<(), KafkaError> {
    producer.send(topic, Some(0), Some(FAILED_KEY), &[]).await?;
    producer.flush().await?;
    Ok(())
}

/// The columns of `table` dropped during the run, as the last of `altered`'s versions of it says.
pub fn dropped<'a>(altered: &'a [TableAltered], table: &QualifiedName) -> &'a [String] {
    let last = altered.iter().filter(|altered| &altered.table.name == table).max_by_key(|altered| altered.version);
    last.map_or(&[], |altered| &altered.dropped)
}

/// Announces a table's new definition, and waits until the brokers have it: the stream writes no
/// event of the new columns before.
pub async fn announce_altered(producer: &Producer, topic: &str, altered: &TableAltered) -> Result<(), KafkaError> {
    let key = format!("{ALTERED_KEY_PREFIX}{}:{}", altered.table.name, altered.version);
    publish(producer, topic, key.as_bytes(), altered).await
}

/// Fixes the target of a run whose announcement names none. Sinks that race may both write: the first
/// record read back decides, so each must read the topic again after writing.
pub async fn fix_target(producer: &Producer, topic: &str, fixed: &TargetFixed) -> Result<(), KafkaError> {
    publish(producer, topic, format!("{TARGET_KEY_PREFIX}{}", fixed.server.identity).as_bytes(), fixed).await
}

/// Sends one record and waits until the brokers have it: readers act on it at once.
async fn publish(producer: &Producer, topic: &str, key: &[u8], record: &impl Serialize) -> Result<(), KafkaError> {
    let value = serde_json::to_vec(record).expect("a control record serializes");
    producer.send(topic, Some(0), Some(key), &value).await?;
    producer.flush().await?;
    Ok(())
}

/// Reads the control topic from its start to its current end. A topic that does not exist reads as
/// empty: no run has begun; one whose partition has no leader yet (a broker restarting) is an error
/// that passes, never an empty topic.
pub async fn read(endpoint: &KafkaEndpoint, topic: &str) -> Result<ControlState, KafkaError> {
    read_within(endpoint, topic, TIMEOUT).await
}

/// [`read`], giving up after `timeout` (on the brokers' answer, then on reading to the end).
pub async fn read_within(endpoint: &KafkaEndpoint, topic: &str, timeout: Duration) -> Result<ControlState, KafkaError> {
    let reader = READERS.get(endpoint, || {
        // A group only because librdkafka assigns no partition without one: nothing is committed.
        client::config(endpoint)
            .set("group.id", "passerelle-control-reader")
            .set("enable.auto.commit", "false")
            .create_with_context(Observer::new(endpoint))
            .map(Mutex::new)
            .map_err(|error| configuration(&endpoint.to_string(), &error))
    })?;
    // One read at a time on the kept consumer: each assigns the partition it reads.
    let consumer = reader.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let read = read_with(&consumer, topic, timeout);
    if read.is_err() {
        READERS.forget(endpoint);
    }
    read
}

/// The consumers [`read_within`] reads with, kept: closing one takes about 100 ms (it leaves its
/// group's coordinator), which every read paid.
static READERS: LazyLock<Kept<Mutex<BaseConsumer<Observer>>>> = LazyLock::new(Kept::new);

fn read_with(consumer: &BaseConsumer<Observer>, topic: &str, timeout: Duration) -> Result<ControlState, KafkaError> {
    let topic_error = |error| KafkaError::Topic { topic: topic.to_string(), cause: describe(&error) };
    // Nothing is assigned between reads: polling serves only librdkafka's log and error events.
    let serve = || while consumer.poll(Duration::ZERO).is_some() {};
    let metadata = client::metadata(consumer.client(), consumer.context(), Some(topic), timeout, serve)?;
    tokio::task::block_in_place(|| {
        if crate::topic::readable(&metadata, topic)?.is_none() {
            return Ok(ControlState::default());
        }
        let (_, end) = consumer.fetch_watermarks(topic, 0, timeout).map_err(topic_error)?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, 0, Offset::Beginning).map_err(topic_error)?;
        // Assigning anew starts a new fetch: librdkafka drops what an earlier read had fetched.
        consumer.assign(&assignment).map_err(topic_error)?;
        let state = read_to(consumer, topic, end, timeout);
        // Not fetched in the background until the next read.
        consumer.unassign().map_err(topic_error)?;
        state
    })
}

/// The state the records of `topic` up to `end` say, from the consumer assigned to its start.
fn read_to(
    consumer: &BaseConsumer<Observer>,
    topic: &str,
    end: i64,
    timeout: Duration,
) -> Result<ControlState, KafkaError> {
    let mut state = ControlState::default();
    let mut next = 0;
    let deadline = std::time::Instant::now() + timeout;
    while next < end {
        if std::time::Instant::now() > deadline {
            return Err(KafkaError::Topic {
                topic: topic.to_string(),
                cause: format!(
                    "{}: read only up to offset {next} of {end} in {} s",
                    describe_code(RDKafkaErrorCode::OperationTimedOut),
                    timeout.as_secs()
                ),
            });
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else { continue };
        let message = message.map_err(|error| KafkaError::Consume { cause: describe(&error) })?;
        next = message.offset() + 1;
        let decode_error = |cause: serde_json::Error| KafkaError::Decode {
            topic: topic.to_string(),
            partition: 0,
            offset: message.offset(),
            cause: cause.to_string(),
        };
        let value = message.payload().unwrap_or_default();
        let current = |run_id: &str| state.run.as_ref().is_some_and(|run| run.run_id == run_id);
        match message.key() {
            Some(RUN_KEY) => {
                state = ControlState {
                    run: Some(serde_json::from_slice(value).map_err(decode_error)?),
                    ..ControlState::default()
                };
            }
            Some(SNAPSHOT_DONE_KEY) => {
                let done: SnapshotDone = serde_json::from_slice(value).map_err(decode_error)?;
                if current(&done.run_id) {
                    state.snapshot_done = Some(done);
                }
            }
            Some(CUTOVER_KEY) => {
                let cutover: Cutover = serde_json::from_slice(value).map_err(decode_error)?;
                if current(&cutover.run_id) {
                    state.cutover = Some(cutover);
                }
            }
            Some(STREAM_DONE_KEY) => {
                let done: StreamDone = serde_json::from_slice(value).map_err(decode_error)?;
                if current(&done.run_id) {
                    state.stream_done = Some(done);
                }
            }
            Some(FAILED_KEY) if value.is_empty() => state.failed = None,
            Some(FAILED_KEY) => {
                let failed: Failed = serde_json::from_slice(value).map_err(decode_error)?;
                if current(&failed.run_id) {
                    state.failed = Some(failed);
                }
            }
            Some(key) if key.starts_with(TARGET_KEY_PREFIX.as_bytes()) => {
                let fixed: TargetFixed = serde_json::from_slice(value).map_err(decode_error)?;
                if current(&fixed.run_id) && state.target.is_none() {
                    state.target = Some(fixed);
                }
            }
            Some(key) if key.starts_with(ALTERED_KEY_PREFIX.as_bytes()) => {
                let altered: TableAltered = serde_json::from_slice(value).map_err(decode_error)?;
                if current(&altered.run_id) {
                    // The same version written again (a source that crashed before it knew the
                    // first had landed) replaces it.
                    state
                        .altered
                        .retain(|known| (&known.table.name, known.version) != (&altered.table.name, altered.version));
                    state.altered.push(altered);
                }
            }
            // Written by a later Passerelle: not ours to interpret.
            _ => {}
        }
    }
    Ok(state)
}
