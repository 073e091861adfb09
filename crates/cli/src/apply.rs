//! Applying the snapshot, Kafka to target: a consumer-group member reads batches, groups them by
//! partition and applies each partition's rows in one target transaction with its offsets (see
//! `mysql::sink`), on `jobs` connections at once. Partitions are independent, so their order across
//! connections does not matter; within a partition the order is Kafka's.
//!
//! The snapshot is applied when the control topic says where every partition ended and the target's
//! offsets reach those ends: the target, not this process, knows what every member of the group did.
//!
//! The target's offsets are also where reading starts: a partition this member is given is read from
//! the target's next offset for it, or from the run's start when the target has none, whatever the
//! group committed. Every record read is checked: one of another run, or a gap that Kafka can no
//! longer fill, stops the sink with the topic, partition and offsets named.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use passerelle_kafka::consumer::{Consumer, Record};
use passerelle_kafka::control;
use passerelle_kafka::envelope::copy_batch::check_batch;
use passerelle_kafka::envelope::{decode, Encoding, TableLayout};
use passerelle_kafka::topic::{control_topic, PartitionEnd};
use passerelle_kafka::KafkaError;
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::event::{ChangeEvent, Op, Row};
use passerelle_model::target::TargetTable;
use passerelle_mysql::bookkeeping;
use passerelle_mysql::sink::{BatchOrigin, LoadPath, Sink};
use tokio::sync::mpsc;

use crate::altered::Following;
use crate::failure;
use crate::pause;
use crate::progress::Progress;
use crate::retry::{self, Backoff};
use crate::shutdown;

/// The source started the migration over as a new run while this sink applied an older one: a sink
/// that follows the newest run (`passerelle sink`) begins again with the new one.
#[derive(Debug)]
pub struct StartedOver {
    pub current: String,
    pub applied: String,
}

impl std::fmt::Display for StartedOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the source started the migration over as run {} (this sink applied run {})",
            self.current, self.applied
        )
    }
}

impl std::error::Error for StartedOver {}

/// The most records one round takes from Kafka, and the most bytes of values: past either, the
/// round ends (after its first record, however large). Two rounds are in memory at most (one decoded
/// ahead, one applied), so the bytes bound keeps a table of large values (10 MB apiece) within the
/// process's memory bound as the records bound does small rows.
const ROUND_RECORDS: usize = 50_000;
const ROUND_BYTES: usize = 16 << 20;

/// A topic partition, by topic index.
type PartitionId = (usize, i32);

/// A run of one partition's events of one kind, with their offsets, in offset order: the snapshot's
/// rows load in bulk, changes apply as upserts and deletes.
enum Segment {
    Rows(Vec<(i64, Row)>),
    /// Batches of rows as COPY text, one a record: `(offset, rows, text)`.
    Batches(Vec<(i64, u64, Vec<u8>)>),
    Changes(Vec<(i64, ChangeEvent)>),
}

/// One topic: how to read its events and where its rows go.
#[derive(Clone)]
pub struct SinkTable {
    /// The table's position in the run's schema, which progress counts by.
    pub index: usize,
    pub layout: TableLayout,
    pub target: TargetTable,
}

/// How often an idle member asks whether the whole snapshot (or stream) is applied.
const COMPLETION_CHECK: Duration = Duration::from_secs(1);
/// As often once a cutover is asked for: its window waits on the answer.
const CUTOVER_CHECK: Duration = Duration::from_millis(200);

pub struct ApplyConfig<'a> {
    pub kafka: &'a KafkaEndpoint,
    pub target: &'a DbEndpoint,
    /// The database that holds the offsets table.
    pub bookkeeping_db: &'a str,
    /// The topic prefix.
    pub migration: &'a str,
    pub run_id: &'a str,
    /// Where the run's records begin, per partition (the run announcement's `starts`).
    pub starts: &'a [PartitionEnd],
    /// Changes stream after the snapshot until a cutover: done only once the stream is.
    pub online: bool,
    pub jobs: usize,
    /// Forces a load path; `None` takes the server's.
    pub load_path: Option<LoadPath>,
    /// How the run's events are encoded, which a table that changed is decoded by too.
    pub encoding: Encoding,
}

/// What this member did: the changes it applied, and how it loaded rows.
pub struct Outcome {
    pub changes: u64,
    pub load_path: LoadPath,
}

/// Applies every event this member is given until every partition of the run is applied up to its
/// end (the snapshot's, or for an online run the stream's), by this member or others.
pub async fn run(
    config: &ApplyConfig<'_>,
    tables: Vec<SinkTable>,
    following: &mut Following,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let topics: Vec<String> = tables.iter().map(|table| table.layout.topic.clone()).collect();
    let group = format!("{}.{}", config.migration, config.run_id);
    let consumer = Consumer::subscribe(config.kafka, &group, topics.clone())?;
    let mut sinks = Vec::with_capacity(config.jobs);
    for _ in 0..config.jobs.max(1) {
        let mut sink =
            retry::retry("connecting to the target", || Sink::open(config.target, config.bookkeeping_db)).await?;
        if let Some(load_path) = config.load_path {
            sink.set_load_path(load_path);
        }
        sinks.push(sink);
    }
    let load_path = sinks[0].load_path();
    tracing::info!("snapshot rows load with {}", load_path.describe());
    let starts: HashMap<PartitionId, i64> = config
        .starts
        .iter()
        .filter_map(|start| {
            Some(((topics.iter().position(|topic| *topic == start.topic)?, start.partition), start.end))
        })
        .collect();
    let (mut conn, applied) = retry::retry("reading the target's offsets", || async {
        let mut conn = passerelle_mysql::connect(config.target).await?;
        let applied = bookkeeping::offsets(&mut conn, config.target, config.bookkeeping_db, &topics).await?;
        Ok::<_, passerelle_mysql::MysqlError>((conn, applied))
    })
    .await?;
    for (&(topic_idx, partition), &start) in &starts {
        let stored = applied.get(&(topics[topic_idx].clone(), partition));
        consumer.set_position(topic_idx, partition, stored.copied().unwrap_or(start));
    }
    let mut completion = Completion { config, topics, starts: &starts, ends: None, checked: None, cutting_over: false };
    // One round decoded ahead: this process decodes the next round while the target applies this one.
    let (rounds, mut next_round) = mpsc::channel::<Option<Round>>(1);
    let applier = async {
        let (mut n_rows, mut n_changes) = (0, 0);
        while let Some(round) = next_round.recv().await {
            // Asked to stop: the rounds applied are committed with their offsets; take no other.
            shutdown::check()?;
            let Some(Round { tables, groups, next_offsets }) = round else {
                if completion.reached(&mut conn, progress, &consumer).await? {
                    break;
                }
                continue;
            };
            let (rows, changes) =
                apply_round(&mut sinks, &tables, groups, &starts, progress, &consumer, config.target).await?;
            n_rows += rows;
            n_changes += changes;
            for (&(topic_idx, partition), &next) in &next_offsets {
                consumer.set_position(topic_idx, partition, next);
            }
            // Advisory (the target holds the offsets): a broker that is down misses one commit.
            if let Err(error) = consumer.commit(&next_offsets) {
                tracing::info!("{}", error.cause());
            }
            pause::point(pause::ROWS_APPLIED, n_rows).await;
            pause::point(pause::CHANGES_APPLIED, n_changes).await;
        }
        // Ends the reader, whose next send now fails.
        drop(next_round);
        anyhow::Ok((n_rows, n_changes))
    };
    let (_, (_, changes)) = tokio::try_join!(read_rounds(config, &consumer, tables, following, rounds), applier)?;
    for sink in sinks {
        sink.close().await;
    }
    let _ = conn.disconnect().await;
    Ok(Outcome { changes, load_path })
}

/// One round: each partition's events, decoded and cut into segments, and the next offset of every
/// partition this member has read so far (for the group's advisory commit once the round is applied).
struct Round {
    /// The tables as the round was decoded: a table that changed since has another shape.
    tables: Arc<[SinkTable]>,
    groups: BTreeMap<PartitionId, Vec<Segment>>,
    next_offsets: HashMap<PartitionId, i64>,
}

/// Reads and decodes rounds until the applier stops taking them; `None` says Kafka had nothing.
async fn read_rounds(
    config: &ApplyConfig<'_>,
    consumer: &Consumer,
    tables: Vec<SinkTable>,
    following: &mut Following,
    rounds: mpsc::Sender<Option<Round>>,
) -> anyhow::Result<()> {
    let mut tables: Arc<[SinkTable]> = tables.into();
    let mut next_offsets: HashMap<PartitionId, i64> = HashMap::new();
    // A broker down or a leader moving: librdkafka reconnects by itself, the reader waits it out.
    // Its errors queue up, one per attempt: sleeping on each would read them long after the outage.
    let mut outage = Backoff::new("reading from Kafka");
    let mut reading = Reading::default();
    // Records read that the next round decodes, after a table changed: the first one already accepted.
    let mut held: Option<Record> = None;
    let mut unread: Vec<Record> = Vec::new();
    loop {
        // Room for the round before reading it: one round waits decoded while the applier applies
        // another, never a third.
        let Ok(room) = rounds.reserve().await else { return Ok(()) };
        let records = if held.is_some() || !unread.is_empty() {
            std::mem::take(&mut unread)
        } else {
            match consumer.next_batch(ROUND_RECORDS, ROUND_BYTES, Duration::from_millis(200)).await {
                Ok(records) => {
                    if !records.is_empty() {
                        outage.reset();
                    }
                    records
                }
                Err(error) => {
                    outage.endure(error)?;
                    continue;
                }
            }
        };
        reading.assigned(consumer.take_assigned());
        let round = if records.is_empty() && held.is_none() {
            None
        } else {
            let mut groups: BTreeMap<PartitionId, Vec<Segment>> = BTreeMap::new();
            let mut records =
                held.take().map(|record| (record, true)).into_iter().chain(records.into_iter().map(|r| (r, false)));
            while let Some((record, accepted)) = records.next() {
                if !accepted && !reading.accept(config, consumer, &record).await? {
                    continue;
                }
                let decode_error = |cause| KafkaError::Decode {
                    topic: consumer.topic(record.topic_idx).to_string(),
                    partition: record.partition,
                    offset: record.first,
                    cause,
                };
                if let Some(header) = &record.batch {
                    let n_rows = check_batch(header, &record.value).map_err(decode_error)?;
                    next_offsets.insert((record.topic_idx, record.partition), record.offset + 1);
                    let segments = groups.entry((record.topic_idx, record.partition)).or_default();
                    let batch = (record.offset, n_rows, record.value);
                    match segments.last_mut() {
                        Some(Segment::Batches(batches)) => batches.push(batch),
                        _ => segments.push(Segment::Batches(vec![batch])),
                    }
                    continue;
                }
                let decoded = match decode(&tables[record.topic_idx].layout, &record.value) {
                    Ok(decoded) => decoded,
                    // The table changed after events this round holds, which apply as they were
                    // decoded: this one starts the next round.
                    Err(_) if !groups.is_empty() => {
                        held = Some(record);
                        unread = records.map(|(record, _)| record).collect();
                        break;
                    }
                    // Perhaps a column the table gained on the source, announced on the control topic.
                    Err(cause) => {
                        let table = &tables[record.topic_idx];
                        let source = &table.target.source;
                        let Some((layout, target)) = following
                            .catch_up(config.kafka, config.migration, config.target, config.encoding, source)
                            .await?
                        else {
                            return Err(decode_error(cause).into());
                        };
                        let mut changed = tables.to_vec();
                        changed[record.topic_idx] = SinkTable { index: table.index, layout, target };
                        tables = changed.into();
                        decode(&tables[record.topic_idx].layout, &record.value).map_err(decode_error)?
                    }
                };
                let table = &tables[record.topic_idx];
                next_offsets.insert((record.topic_idx, record.partition), record.offset + 1);
                let segments = groups.entry((record.topic_idx, record.partition)).or_default();
                match (decoded.op, decoded.after) {
                    // A snapshot row written before its table gained columns is applied as a change
                    // that leaves them out, which the target's default fills.
                    (Op::Read, Some(row)) if decoded.unchanged.is_empty() => match segments.last_mut() {
                        Some(Segment::Rows(rows)) => rows.push((record.offset, row)),
                        _ => segments.push(Segment::Rows(vec![(record.offset, row)])),
                    },
                    (Op::Read, None) => anyhow::bail!(
                        "{}/{}@{}: a snapshot read without a row; the topic holds events Passerelle did not write",
                        table.layout.topic,
                        record.partition,
                        record.offset
                    ),
                    (op, after) => {
                        let change = ChangeEvent {
                            table: table.target.source.clone(),
                            op,
                            before: decoded.before,
                            after,
                            unchanged: decoded.unchanged,
                            commit_lsn: decoded.lsn,
                            lsn: decoded.change_lsn,
                            position: decoded.position,
                        };
                        match segments.last_mut() {
                            Some(Segment::Changes(changes)) => changes.push((record.offset, change)),
                            _ => segments.push(Segment::Changes(vec![(record.offset, change)])),
                        }
                    }
                }
            }
            Some(Round { tables: tables.clone(), groups, next_offsets: next_offsets.clone() })
        };
        room.send(round);
    }
}

/// Where each partition this member reads should go on, and whether a record fits there.
#[derive(Default)]
struct Reading {
    /// The offset the next record of each assigned partition should have.
    expected: HashMap<PartitionId, i64>,
    /// Partitions assigned whose first record has not arrived yet.
    fresh: HashSet<PartitionId>,
}

impl Reading {
    fn assigned(&mut self, assigned: Vec<(usize, i32, i64)>) {
        for (topic_idx, partition, next) in assigned {
            self.expected.insert((topic_idx, partition), next);
            self.fresh.insert((topic_idx, partition));
        }
    }

    /// Whether to apply `record`: not when it lies before where the partition goes on (applied
    /// already, or before the run's start). An error when it is another run's, or when it lies past
    /// a gap: the first record read from a position must be the one there, unless only transaction
    /// markers or aborted records (which take offsets) lie between, which Kafka still holding the
    /// position tells; further on, the partition is read without gaps.
    async fn accept(&mut self, config: &ApplyConfig<'_>, consumer: &Consumer, record: &Record) -> anyhow::Result<bool> {
        let run_id = config.run_id;
        let id = (record.topic_idx, record.partition);
        let topic = consumer.topic(record.topic_idx);
        let fresh = self.fresh.remove(&id);
        let expected = *self.expected.entry(id).or_insert(record.first);
        // A record read in chunks begins at its first chunk and ends at its last (`record.offset`).
        if record.first != expected && fresh {
            let (first, end) = retry::retry("reading where a partition begins", || async {
                consumer.watermarks(record.topic_idx, record.partition)
            })
            .await?;
            if first > expected || end < expected {
                // A source that started over recreated the topic: not a gap, a new run.
                unless_started_over(config, record).await?;
                anyhow::bail!(
                    "{topic}/{}: the next record to apply is at offset {expected}, but the first read is at {} and \
                     Kafka holds offsets {first} to {end} only (records lost to retention, or the topic was \
                     recreated), so nothing past the gap is applied; start the migration over with passerelle \
                     cleanup, then migrate",
                    record.partition,
                    record.first
                );
            }
        }
        if record.first < expected {
            return Ok(false);
        }
        if record.run.as_deref() != Some(run_id) {
            unless_started_over(config, record).await?;
            anyhow::bail!(
                "{topic}/{}@{}: a record of run {} in run {run_id}: a record of an abandoned run is never applied; \
                 start the migration over with passerelle cleanup, or use another --topic-prefix",
                record.partition,
                record.first,
                record.run.as_deref().unwrap_or("none (not written by Passerelle)")
            );
        }
        self.expected.insert(id, record.offset + 1);
        Ok(true)
    }
}

/// A [`StartedOver`] error when `record` belongs to another run, which the control topic now announces.
async fn unless_started_over(config: &ApplyConfig<'_>, record: &Record) -> anyhow::Result<()> {
    let Some(run) = record.run.as_ref().filter(|run| *run != config.run_id) else { return Ok(()) };
    let topic = control_topic(config.migration);
    let state = retry::retry("reading the control topic", || control::read(config.kafka, &topic)).await?;
    if state.run.is_some_and(|current| current.run_id == *run) {
        return Err(StartedOver { current: run.clone(), applied: config.run_id.to_string() }.into());
    }
    Ok(())
}

/// Knows when the run is applied: its snapshot, or for an online run its stream.
struct Completion<'a> {
    config: &'a ApplyConfig<'a>,
    topics: Vec<String>,
    starts: &'a HashMap<PartitionId, i64>,
    /// Where every partition ends, once the source has said.
    ends: Option<Vec<PartitionEnd>>,
    checked: Option<Instant>,
    /// A cutover was asked for: the stream's end is due.
    cutting_over: bool,
}

impl Completion<'_> {
    async fn reached(
        &mut self,
        conn: &mut passerelle_mysql::Conn,
        progress: &Progress,
        consumer: &Consumer,
    ) -> anyhow::Result<bool> {
        let every = if self.cutting_over { CUTOVER_CHECK } else { COMPLETION_CHECK };
        if self.checked.is_some_and(|checked| checked.elapsed() < every) {
            return Ok(false);
        }
        self.checked = Some(Instant::now());
        let config = self.config;
        if self.ends.is_none() {
            let topic = control_topic(config.migration);
            let state = retry::retry("reading the control topic", || control::read(config.kafka, &topic)).await?;
            let current = state.run.as_ref().map(|run| run.run_id.as_str());
            if current != Some(config.run_id) {
                let current = current.unwrap_or("none").to_string();
                return Err(StartedOver { current, applied: config.run_id.to_string() }.into());
            }
            // The source will not say where the partitions end: stop rather than wait for it.
            failure::refuse_failed(&state, config.migration)?;
            if let Some(done) = &state.snapshot_done {
                progress.expect_exactly(&done.rows);
            }
            self.cutting_over = state.cutover.is_some();
            self.ends = if config.online {
                state.stream_done.map(|done| done.ends)
            } else {
                state.snapshot_done.map(|done| done.ends)
            };
        }
        let Some(ends) = &self.ends else { return Ok(false) };
        let mut backoff = Backoff::new("reading the target's offsets");
        let applied = loop {
            match bookkeeping::offsets(conn, config.target, config.bookkeeping_db, &self.topics).await {
                Ok(applied) => break applied,
                Err(error) => {
                    let lost = error.connection_lost();
                    backoff.wait(error).await?;
                    if lost {
                        match passerelle_mysql::connect(config.target).await {
                            Ok(new) => *conn = new,
                            Err(error) => backoff.wait(error).await?,
                        }
                    }
                }
            }
        };
        // What other members applied: this member, given one of their partitions, goes on from there.
        for ((topic, partition), next) in &applied {
            if let Some(topic_idx) = self.topics.iter().position(|t| t == topic) {
                consumer.set_position(topic_idx, *partition, *next);
            }
        }
        Ok(ends.iter().all(|end| {
            let topic_idx = self.topics.iter().position(|topic| *topic == end.topic);
            let start = topic_idx.and_then(|i| self.starts.get(&(i, end.partition))).copied().unwrap_or(0);
            end.end <= start || applied.get(&(end.topic.clone(), end.partition)).is_some_and(|next| *next >= end.end)
        }))
    }
}

/// Spreads the round's partitions over the connections and applies them concurrently. Returns the
/// rows and the changes applied.
async fn apply_round(
    sinks: &mut [Sink],
    tables: &[SinkTable],
    groups: BTreeMap<PartitionId, Vec<Segment>>,
    starts: &HashMap<PartitionId, i64>,
    progress: &Progress,
    consumer: &Consumer,
    endpoint: &DbEndpoint,
) -> anyhow::Result<(u64, u64)> {
    let mut shares: Vec<Vec<(PartitionId, Vec<Segment>)>> = sinks.iter().map(|_| Vec::new()).collect();
    let n_sinks = shares.len();
    for (i, group) in groups.into_iter().enumerate() {
        shares[i % n_sinks].push(group);
    }
    let work = sinks.iter_mut().zip(shares).map(|(sink, share)| async move {
        let (mut n_rows, mut n_changes) = (0, 0);
        for ((topic_idx, partition), segments) in share {
            let start = starts.get(&(topic_idx, partition)).copied().unwrap_or(0);
            let origin = BatchOrigin { topic: consumer.topic(topic_idx), partition, start };
            let target = &tables[topic_idx].target;
            let context = || format!("applying {}/{partition}", origin.topic);
            for segment in &segments {
                let started = Instant::now();
                let n = apply_segment(sink, endpoint, target, origin, segment).await.with_context(context)?;
                let stage = if matches!(segment, Segment::Changes(_)) { "apply_changes" } else { "apply_rows" };
                crate::metrics::get().batch(stage, started.elapsed());
                match segment {
                    Segment::Rows(_) | Segment::Batches(_) => {
                        progress.applied(tables[topic_idx].index, n);
                        n_rows += n;
                    }
                    Segment::Changes(_) => {
                        progress.changed(n);
                        n_changes += n;
                    }
                }
            }
        }
        anyhow::Ok((n_rows, n_changes))
    });
    let (mut n_rows, mut n_changes) = (0, 0);
    for result in futures::future::join_all(work).await {
        let (rows, changes) = result?;
        n_rows += rows;
        n_changes += changes;
    }
    Ok((n_rows, n_changes))
}

/// Applies one segment, again after a transient failure (within `--retry-for`): sink connections
/// apply different partitions of one table at once, and InnoDB may pick one of them as a deadlock's
/// victim; a target that restarted, or a connection it killed, gets a new connection. The
/// transaction rolled back whole, offsets included, so trying again is safe, and a batch that did
/// commit before its connection broke is skipped by its offsets.
async fn apply_segment(
    sink: &mut Sink,
    endpoint: &DbEndpoint,
    target: &TargetTable,
    origin: BatchOrigin<'_>,
    segment: &Segment,
) -> anyhow::Result<u64> {
    let mut backoff = Backoff::new("applying to the target");
    let mut broken = false;
    loop {
        let result = async {
            if broken {
                sink.reopen(endpoint).await?;
            }
            match segment {
                Segment::Rows(rows) => sink.load_rows(target, origin, rows).await,
                Segment::Batches(batches) => sink.load_copy_text(target, origin, batches).await,
                Segment::Changes(changes) => sink.apply_changes(target, origin, changes).await,
            }
        }
        .await;
        match result {
            Ok(n) => return Ok(n),
            Err(error) => {
                broken = error.connection_lost();
                backoff.wait(error).await?;
            }
        }
    }
}
