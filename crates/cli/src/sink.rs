//! The sink, Kafka to target: a consumer-group member reads batches, groups them by partition and
//! applies each partition's rows in one target transaction with its offsets (see `mysql::sink`), on
//! `jobs` connections at once. Partitions are independent, so their order across connections does
//! not matter; within a partition the order is Kafka's.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context;
use passerelle_kafka::consumer::Consumer;
use passerelle_kafka::envelope::{decode, TableLayout};
use passerelle_kafka::KafkaError;
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::event::{Op, Row};
use passerelle_model::target::TargetTable;
use passerelle_mysql::sink::{BatchOrigin, Sink};
use tokio::sync::watch;

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

pub struct SinkConfig<'a> {
    pub kafka: &'a KafkaEndpoint,
    pub target: &'a DbEndpoint,
    /// The database that holds the offsets table.
    pub bookkeeping_db: &'a str,
    pub group: &'a str,
    pub jobs: usize,
}

/// Applies every event until the producers are done (`produced` turns true) and every partition
/// has been applied up to its end at that moment. Returns the rows applied.
pub async fn run(
    config: &SinkConfig<'_>,
    tables: &[SinkTable],
    mut produced: watch::Receiver<bool>,
    progress: &Progress,
) -> anyhow::Result<u64> {
    let topics = tables.iter().map(|table| table.layout.topic.clone()).collect();
    let consumer = Consumer::subscribe(config.kafka, config.group, topics)?;
    let mut sinks = Vec::with_capacity(config.jobs);
    for _ in 0..config.jobs.max(1) {
        sinks.push(Sink::open(config.target, config.bookkeeping_db).await?);
    }
    // The next offset of each partition that this member has read; ends are known once producing ended.
    let mut next_offsets: HashMap<PartitionId, i64> = HashMap::new();
    let mut ends: Option<HashMap<PartitionId, i64>> = None;
    let mut n_applied = 0;
    loop {
        if ends.is_none() && *produced.borrow_and_update() {
            ends = Some(consumer.end_offsets()?);
        }
        if let Some(ends) = &ends {
            if ends.iter().all(|(partition, end)| next_offsets.get(partition).copied().unwrap_or(0) >= *end) {
                break;
            }
        }
        let records = consumer.next_batch(ROUND_RECORDS, Duration::from_millis(200)).await?;
        if records.is_empty() {
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
    Ok(n_applied)
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
