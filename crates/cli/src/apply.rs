//! Applying the snapshot, Kafka to target: a consumer-group member reads batches, groups them by
//! partition and applies each partition's rows in one target transaction with its offsets (see
//! `mysql::sink`), on `jobs` connections at once. Partitions are independent, so their order across
//! connections does not matter; within a partition the order is Kafka's.
//!
//! The snapshot is applied when the control topic says where every partition ended and the target's
//! offsets reach those ends: the target, not this process, knows what every member of the group did.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::Context;
use passerelle_kafka::consumer::Consumer;
use passerelle_kafka::control::{self, SnapshotDone};
use passerelle_kafka::envelope::{decode, TableLayout};
use passerelle_kafka::topic::control_topic;
use passerelle_kafka::KafkaError;
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::event::{Op, Row};
use passerelle_model::target::TargetTable;
use passerelle_mysql::bookkeeping;
use passerelle_mysql::sink::{BatchOrigin, Sink};

use crate::progress::Progress;

/// The most records one round takes from Kafka.
const ROUND_RECORDS: usize = 50_000;

/// A topic partition, by topic index.
type PartitionId = (usize, i32);
/// Rows of one partition, with their offsets, in offset order.
type PartitionRows = Vec<(i64, Row)>;

/// One topic: how to read its events and where its rows go.
pub struct SinkTable {
    pub layout: TableLayout,
    pub target: TargetTable,
}

/// How often an idle member asks whether the whole snapshot is applied.
const COMPLETION_CHECK: Duration = Duration::from_secs(1);

pub struct ApplyConfig<'a> {
    pub kafka: &'a KafkaEndpoint,
    pub target: &'a DbEndpoint,
    /// The database that holds the offsets table.
    pub bookkeeping_db: &'a str,
    /// The topic prefix.
    pub migration: &'a str,
    pub run_id: &'a str,
    pub jobs: usize,
}

/// Applies every event this member is given until every partition of the run is applied up to its
/// end, by this member or others. Returns the rows this member applied.
pub async fn run(config: &ApplyConfig<'_>, tables: &[SinkTable], progress: &Progress) -> anyhow::Result<u64> {
    let topics: Vec<String> = tables.iter().map(|table| table.layout.topic.clone()).collect();
    let group = format!("{}.{}", config.migration, config.run_id);
    let consumer = Consumer::subscribe(config.kafka, &group, topics.clone())?;
    let mut sinks = Vec::with_capacity(config.jobs);
    for _ in 0..config.jobs.max(1) {
        sinks.push(Sink::open(config.target, config.bookkeeping_db).await?);
    }
    let mut completion = Completion { config, topics, snapshot_done: None, checked: None };
    let mut conn = passerelle_mysql::connect(config.target).await?;
    // The next offset of each partition that this member has read.
    let mut next_offsets: HashMap<PartitionId, i64> = HashMap::new();
    let mut n_applied = 0;
    loop {
        let records = consumer.next_batch(ROUND_RECORDS, Duration::from_millis(200)).await?;
        if records.is_empty() {
            if completion.reached(&mut conn, progress).await? {
                break;
            }
            continue;
        }
        let mut groups: BTreeMap<PartitionId, PartitionRows> = BTreeMap::new();
        for record in records {
            let table = &tables[record.topic_idx];
            let decoded = decode(&table.layout, &record.value).map_err(|cause| KafkaError::Decode {
                topic: table.layout.topic.clone(),
                partition: record.partition,
                offset: record.offset,
                cause,
            })?;
            let row = match (decoded.op, decoded.after) {
                (Op::Read, Some(row)) => row,
                (op, _) => anyhow::bail!(
                    "{}/{}@{}: a {op:?} event, but this version of Passerelle applies snapshot reads only; \
                     streaming changes arrives with the online mode",
                    table.layout.topic,
                    record.partition,
                    record.offset
                ),
            };
            next_offsets.insert((record.topic_idx, record.partition), record.offset + 1);
            groups.entry((record.topic_idx, record.partition)).or_default().push((record.offset, row));
        }
        n_applied += apply_round(&mut sinks, tables, groups, progress, &consumer).await?;
        consumer.commit(&next_offsets)?;
    }
    for sink in sinks {
        sink.close().await;
    }
    let _ = conn.disconnect().await;
    Ok(n_applied)
}

/// Knows when the whole snapshot of the run is applied.
struct Completion<'a> {
    config: &'a ApplyConfig<'a>,
    topics: Vec<String>,
    snapshot_done: Option<SnapshotDone>,
    checked: Option<Instant>,
}

impl Completion<'_> {
    async fn reached(&mut self, conn: &mut passerelle_mysql::Conn, progress: &Progress) -> anyhow::Result<bool> {
        if self.checked.is_some_and(|checked| checked.elapsed() < COMPLETION_CHECK) {
            return Ok(false);
        }
        self.checked = Some(Instant::now());
        let config = self.config;
        if self.snapshot_done.is_none() {
            let state = control::read(config.kafka, &control_topic(config.migration)).await?;
            let current = state.run.as_ref().map(|run| run.run_id.as_str());
            if current != Some(config.run_id) {
                anyhow::bail!(
                    "the source started the migration over (run {}, this sink applies run {}); run the sink again",
                    current.unwrap_or("none"),
                    config.run_id
                );
            }
            self.snapshot_done = state.snapshot_done;
        }
        let Some(done) = &self.snapshot_done else { return Ok(false) };
        progress.expect_exactly(&done.rows);
        let applied = bookkeeping::offsets(conn, config.target, config.bookkeeping_db, &self.topics).await?;
        Ok(done.ends.iter().all(|end| {
            end.end == 0 || applied.get(&(end.topic.clone(), end.partition)).is_some_and(|next| *next >= end.end)
        }))
    }
}

/// Spreads the round's partitions over the connections and applies them concurrently.
async fn apply_round(
    sinks: &mut [Sink],
    tables: &[SinkTable],
    groups: BTreeMap<PartitionId, PartitionRows>,
    progress: &Progress,
    consumer: &Consumer,
) -> anyhow::Result<u64> {
    let mut shares: Vec<Vec<(PartitionId, PartitionRows)>> = sinks.iter().map(|_| Vec::new()).collect();
    let n_sinks = shares.len();
    for (i, group) in groups.into_iter().enumerate() {
        shares[i % n_sinks].push(group);
    }
    let work = sinks.iter_mut().zip(shares).map(|(sink, share)| async move {
        let mut n_applied = 0;
        for ((topic_idx, partition), rows) in share {
            let origin = BatchOrigin { topic: consumer.topic(topic_idx), partition };
            let n = sink
                .load_rows(&tables[topic_idx].target, origin, &rows)
                .await
                .with_context(|| format!("applying {}/{partition}", origin.topic))?;
            progress.applied(topic_idx, n);
            n_applied += n;
        }
        anyhow::Ok(n_applied)
    });
    let mut n_applied = 0;
    for result in futures::future::join_all(work).await {
        n_applied += result?;
    }
    Ok(n_applied)
}
