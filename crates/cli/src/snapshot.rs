//! The snapshot, source to Kafka: copy workers read ranges of tables under the exported snapshot and
//! each feeds its own encoder, which turns rows into Debezium `r` events on the table's topic, or,
//! for a snapshot that travels as COPY text, produces each batch as it came as one record.
//!
//! COPY-text batches are partitioned by range, not by key: every batch of a range goes to one
//! partition (the range's ordinal in its table, modulo the partitions), so a partition holds runs of
//! contiguous rows that its sink loads in order, and concurrent loads do not split each other's pages.
//!
//! Memory stays bounded: a worker waits when its encoder's channel is full (4 batches) or when the
//! workers' batches hold 32 MB of COPY text together (`passerelle_pg::snapshot::CopySpace`, for
//! either encoding), and an encoder waits when the producer's queue is full.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::Context;
use passerelle_kafka::envelope::copy_batch::SnapshotEncoding;
use passerelle_kafka::envelope::{try_encode, Origin, TableLayout};
use passerelle_kafka::producer::Producer;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::event::{Lsn, Op};
use passerelle_model::schema::Table;
use passerelle_pg::snapshot::{
    batch_channel, BatchSender, BatchSpace, CopySpace, CopyUnit, CopyWorker, RowBatch, SourceRate, TextBatch,
};
use tokio::sync::mpsc;

use crate::pause;
use crate::progress::Progress;
use crate::shutdown;

/// What the snapshot needs to know besides the tables.
pub struct SnapshotSource<'a> {
    pub endpoint: &'a DbEndpoint,
    pub snapshot_name: &'a str,
    pub consistent_point: Lsn,
    /// Debezium's logical server name, the topic prefix.
    pub server: &'a str,
    pub database: &'a str,
    pub encoding: SnapshotEncoding,
    /// The pace all copy workers share, if `--max-source-rate` set one.
    pub rate: Option<SourceRate>,
    /// Partitions of each table topic, in table order.
    pub partitions: Vec<i32>,
}

/// Rows and bytes of COPY text per table, in table order.
pub struct SnapshotStats {
    pub rows: Vec<u64>,
    pub bytes: Vec<u64>,
}

/// Copies every unit with `jobs` workers and produces every row; returns when all are queued
/// (the caller flushes the producer).
pub async fn run(
    source: &SnapshotSource<'_>,
    tables: &[Table],
    layouts: &[TableLayout],
    units: Vec<CopyUnit>,
    producer: &Producer,
    jobs: usize,
    progress: &Progress,
) -> anyhow::Result<SnapshotStats> {
    let queue = Mutex::new(units);
    let counters = || tables.iter().map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
    let (n_rows, n_bytes) = (counters(), counters());
    let ts_ms = now_ms();
    let origin = Origin {
        server: source.server,
        database: source.database,
        lsn: source.consistent_point,
        change_lsn: Lsn(0),
        position: None,
        snapshot: true,
        ts_ms,
    };
    let counters = Counters { rows: &n_rows, bytes: &n_bytes };
    let space = CopySpace::default();
    let workers =
        (0..jobs.max(1)).map(|_| async {
            let opened = CopyWorker::open(source.endpoint, source.snapshot_name, source.rate.clone()).await?;
            let worker = &opened;
            match source.encoding {
                SnapshotEncoding::Envelope => {
                    let (sender, receiver) = batch_channel(&space);
                    let encoder = produce(receiver, layouts, &origin, producer, progress, counters);
                    let copier = async {
                        // The sender drops when the copier ends, which ends the encoder.
                        let sender = sender;
                        loop {
                            shutdown::check()?;
                            let unit = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
                            let Some(unit) = unit else { break };
                            worker.copy(tables, &unit, &sender).await?;
                        }
                        anyhow::Ok(())
                    };
                    let (copied, produced) = tokio::join!(copier, encoder);
                    copied.and(produced)?;
                }
                SnapshotEncoding::CopyText => {
                    let (sender, receiver) = batch_channel::<TextBatch>(&space);
                    let producing = produce_text(receiver, &source.partitions, layouts, producer, progress, counters);
                    let copier = copy_units(&queue, sender, |unit, sender| async move {
                        worker.copy_text(tables, &unit, &sender).await
                    });
                    let (copied, produced) = tokio::join!(copier, producing);
                    copied.and(produced)?;
                }
            }
            opened.finish().await?;
            anyhow::Ok(())
        });
    // The first failure ends the other workers too.
    futures::future::try_join_all(workers).await.context("the snapshot failed")?;
    let totals = |counters: Vec<AtomicU64>| counters.into_iter().map(AtomicU64::into_inner).collect();
    Ok(SnapshotStats { rows: totals(n_rows), bytes: totals(n_bytes) })
}

/// Rows and COPY bytes produced per table, shared by the workers.
#[derive(Clone, Copy)]
struct Counters<'a> {
    rows: &'a [AtomicU64],
    bytes: &'a [AtomicU64],
}

impl Counters<'_> {
    /// Counts a batch produced, and says so to the progress bars and the pause point.
    async fn produced(&self, progress: &Progress, table_idx: usize, n_rows: u64, n_bytes: u64) {
        self.rows[table_idx].fetch_add(n_rows, Ordering::Relaxed);
        self.bytes[table_idx].fetch_add(n_bytes, Ordering::Relaxed);
        progress.copied(table_idx, n_rows, n_bytes);
        let produced = self.rows.iter().map(|n| n.load(Ordering::Relaxed)).sum();
        pause::point(pause::SNAPSHOT_ROWS_PRODUCED, produced).await;
    }
}

/// Takes units from the queue and copies each into `sender` until none is left; the sender drops
/// when it ends, which ends the worker's producing side.
async fn copy_units<B, F, Fut>(queue: &Mutex<Vec<CopyUnit>>, sender: BatchSender<B>, copy: F) -> anyhow::Result<()>
where
    F: Fn(CopyUnit, BatchSender<B>) -> Fut,
    Fut: std::future::Future<Output = Result<passerelle_pg::snapshot::CopyStats, passerelle_pg::PgError>>,
{
    loop {
        shutdown::check()?;
        let unit = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let Some(unit) = unit else { return Ok(()) };
        copy(unit, sender.clone()).await?;
    }
}

/// Produces every COPY-text batch it receives as one record, to its range's partition.
async fn produce_text(
    mut receiver: mpsc::Receiver<(TextBatch, BatchSpace)>,
    partitions: &[i32],
    layouts: &[TableLayout],
    producer: &Producer,
    progress: &Progress,
    counters: Counters<'_>,
) -> anyhow::Result<()> {
    // A batch's space is given back once it is queued in the producer (`_space` dropped).
    while let Some((batch, _space)) = receiver.recv().await {
        shutdown::check()?;
        let started = std::time::Instant::now();
        let layout = &layouts[batch.table_idx];
        let n_partitions = partitions.get(batch.table_idx).copied().unwrap_or(1).max(1);
        let partition = i32::try_from(batch.ordinal % n_partitions as u32).unwrap_or(0);
        producer.send_copy_batch(&layout.topic, partition, &batch.text, batch.n_rows).await?;
        crate::metrics::get().batch("produce", started.elapsed());
        counters.produced(progress, batch.table_idx, batch.n_rows, batch.text.len() as u64).await;
    }
    Ok(())
}

/// Encodes and produces every batch it receives.
async fn produce(
    mut receiver: mpsc::Receiver<(RowBatch, BatchSpace)>,
    layouts: &[TableLayout],
    origin: &Origin<'_>,
    producer: &Producer,
    progress: &Progress,
    counters: Counters<'_>,
) -> anyhow::Result<()> {
    // A batch's space in the channel is given back once it is produced (`_space` dropped).
    while let Some((batch, _space)) = receiver.recv().await {
        shutdown::check()?;
        let started = std::time::Instant::now();
        let layout = &layouts[batch.table_idx];
        let partition = layout.fixed_partition();
        let mut values = Vec::with_capacity(batch.n_columns());
        for row in batch.rows() {
            values.clear();
            values.extend(row.iter());
            let event = try_encode(layout, Op::Read, None, Some(&values), origin).map_err(|cause| {
                anyhow::anyhow!("{cause}; choose --encoding json-compact, which carries every value exactly")
            })?;
            producer.send(&layout.topic, partition, event.key.as_deref(), &event.value).await?;
        }
        crate::metrics::get().batch("produce", started.elapsed());
        counters.produced(progress, batch.table_idx, batch.len() as u64, batch.n_bytes).await;
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
