//! `passerelle estimate`: before anything moves, how long `migrate` will take and how much disk it
//! needs, from the source's catalog and a short sample of this machine's speeds.
//!
//! The method (README, "Estimating a migration"): the catalog gives each table's heap, index and
//! total bytes; a sample of the biggest table (`--sample-mb`, 8 MB by default) is read with COPY
//! from the source and inserted into a throwaway table on the target, each timed, and the source's
//! WAL position is read before and after to learn how fast it writes WAL. Every phase is then the
//! bytes it handles times the seconds per MB measured, times a constant calibrated on measured runs
//! of `migrate` (the airline at the small scale, BENCHMARKS.md): the constants carry what the sample
//! does not see (Kafka, encoding, two connections per side, index builds).

use std::process::ExitCode;
use std::time::Instant;

use passerelle_model::schema::Table;
use serde::Serialize;

use crate::args::{BookkeepingDb, DatabaseArgs, DurabilityArgs};
use crate::mapping::SelectionArgs;
use crate::retry;

// The constants below were fitted on one `passerelle migrate` each of the small (2,289,506 rows)
// and the big airline (21,594,950) into MariaDB 10.11, the snapshot as COPY text, each right after
// this estimate's sample on the same quiet machine (BENCHMARKS.md, "Estimating"): the factors on
// the small run, the exponents on how the seconds per MB grew to the big one (a buffer pool and
// caches outgrown).

/// Snapshot seconds per MB of COPY text, as multiples of the sample's (read + insert) seconds per
/// MB, at 105 MB of COPY text (the small airline's).
const SNAPSHOT_FACTOR: f64 = 1.163;
/// Snapshot seconds per MB, against the sample's, grow as (COPY MB / 105)^this (big's snapshot 7.2
/// MB/s against small's 9.5 MB/s, with the big sample's insert about as fast as the small one's).
const SNAPSHOT_EXPONENT: f64 = 0.112;
/// Post-data seconds per MB of the source's indexes, as multiples of the sample's insert seconds
/// per MB, at 111.5 MB of indexes (the small airline's).
const POST_DATA_FACTOR: f64 = 0.281;
/// Post-data seconds per MB grow as (index MB / 111.5)^this: big's 38.8 s against small's 2.5 s.
const POST_DATA_EXPONENT: f64 = 0.163;
/// Verify seconds per MB of the source's tables, as multiples of the sample's (read + insert)
/// seconds per MB; linear: small's and big's differ by 7 %, split.
const VERIFY_FACTOR: f64 = 0.243;
/// Plan and pre-data (the catalog, the slot, the topics, the control topic, the tables created), in
/// seconds: 3.0 to 3.25 s for all three calibration runs, whatever their size or sample's speed.
const FIXED_SECONDS: f64 = 3.1;
/// The snapshot's COPY text per byte the sample's ratio predicts: the biggest table's rows are
/// narrower in COPY text than the others' (the small airline: 104.8 MB moved, 93.6 predicted).
const COPY_TEXT_FACTOR: f64 = 1.12;
/// The target's InnoDB bytes (data and indexes) per byte of the source's tables (heap and
/// indexes): the small airline took 391.6 MB in MariaDB for 286.6 MB in PostgreSQL.
const TARGET_DISK_FACTOR: f64 = 1.37;
/// Kafka's log bytes (lz4-compressed json-compact events with keys and headers) per byte of COPY
/// text: 106.5 MB of segments for the small airline's 104.8 MB.
const KAFKA_DISK_FACTOR: f64 = 1.02;

#[derive(Debug, clap::Args)]
pub struct EstimateArgs {
    #[command(flatten)]
    pub databases: DatabaseArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub durability: DurabilityArgs,
    #[command(flatten)]
    pub bookkeeping: BookkeepingDb,
    /// MB of the biggest table to copy from the source and insert into a throwaway target table
    #[arg(long, value_name = "MB", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub sample_mb: u64,
    /// Print the estimate as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Estimate {
    tables: usize,
    /// The source's rows (reltuples, an estimate itself until the tables are analyzed).
    rows: u64,
    /// Heap, TOAST and indexes of the tables on the source.
    source_bytes: u64,
    /// COPY text the snapshot will read, from the sample's ratio of COPY text to heap.
    copy_bytes: u64,
    sample: Sample,
    /// Seconds of each phase, in the order `migrate` runs them.
    phases: Vec<(String, f64)>,
    seconds: f64,
    target_disk_bytes: u64,
    /// Kafka's log at the topics' retention and replication factor.
    kafka_disk_bytes: u64,
    /// WAL the slot retains by the end of the run, at the rate the source wrote WAL during the sample.
    slot_wal_bytes: u64,
}

#[derive(Serialize)]
struct Sample {
    table: String,
    rows: u64,
    bytes: u64,
    copy_seconds: f64,
    insert_seconds: f64,
    /// The source's WAL written per second while the sample ran (every client's writes).
    wal_bytes_per_second: f64,
}

pub async fn run(args: EstimateArgs) -> anyhow::Result<ExitCode> {
    let source = args.databases.source.endpoint()?;
    let target = args.databases.target.endpoint()?;
    let schemas = args.selection.schemas();
    let mut client = retry::retry("connecting to the source", || passerelle_pg::connect(&source)).await?;
    let schema = passerelle_pg::catalog::read(&mut client, &source, &schemas).await?;
    let footprints = passerelle_pg::snapshot::footprints(&client, &source, &schema.tables).await?;
    let Some(biggest) = (0..schema.tables.len()).max_by_key(|&i| footprints[i].heap_bytes) else {
        anyhow::bail!("the source has no table in schema {}: nothing to estimate", schemas.join(", "));
    };
    let big = &footprints[biggest];
    let heap_per_row = big.heap_bytes as f64 / big.estimated_rows.unwrap_or(0).max(1) as f64;
    // COPY text takes about half the heap's bytes (tuple headers, alignment, free space).
    let sample_rows = ((args.sample_mb * 2_000_000) as f64 / heap_per_row.max(1.0)).ceil() as u64;

    let (wal_before, wal_started) = (passerelle_pg::slot::current_wal_lsn(&client, &source).await?, Instant::now());
    let (text, copy_took) =
        passerelle_pg::snapshot::sample_copy(&client, &source, &schema.tables[biggest], sample_rows.max(1)).await?;
    let mut conn = retry::retry("connecting to the target", || passerelle_mysql::connect(&target)).await?;
    let insert_took = passerelle_mysql::sample::load_speed(&mut conn, &target, &args.bookkeeping.name, &text).await?;
    let _ = conn.disconnect().await;
    let wal_after = passerelle_pg::slot::current_wal_lsn(&client, &source).await?;
    let wal_rate = wal_after.0.saturating_sub(wal_before.0) as f64 / wal_started.elapsed().as_secs_f64().max(0.001);

    let n_sample_rows = text.iter().filter(|&&byte| byte == b'\n').count() as u64;
    let sample_mb = (text.len() as f64 / 1e6).max(1e-6);
    // COPY text per byte of heap, from the sample: the other tables' are taken to be alike.
    let copy_per_heap = text.len() as f64 / (n_sample_rows.max(1) as f64 * heap_per_row).max(1.0);
    let mb = |bytes: u64| bytes as f64 / 1e6;
    let heap: u64 = footprints.iter().map(|f| f.heap_bytes).sum();
    let index: u64 = footprints.iter().map(|f| f.index_bytes).sum();
    let total: u64 = footprints.iter().map(|f| f.total_bytes).sum();
    let copy_bytes = (heap as f64 * copy_per_heap * COPY_TEXT_FACTOR) as u64;
    let (read_s_per_mb, insert_s_per_mb) = (copy_took.as_secs_f64() / sample_mb, insert_took.as_secs_f64() / sample_mb);
    let grown = |mb: f64, reference: f64, exponent: f64| mb * (mb / reference).max(1e-3).powf(exponent);
    let snapshot =
        grown(mb(copy_bytes), 105.0, SNAPSHOT_EXPONENT) * (read_s_per_mb + insert_s_per_mb) * SNAPSHOT_FACTOR;
    let post_data = grown(mb(index), 111.5, POST_DATA_EXPONENT) * insert_s_per_mb * POST_DATA_FACTOR;
    let verify = mb(total) * (read_s_per_mb + insert_s_per_mb) * VERIFY_FACTOR;
    let phases = vec![
        ("plan and pre-data".to_string(), FIXED_SECONDS),
        ("snapshot".to_string(), snapshot),
        ("post-data".to_string(), post_data),
        ("verify".to_string(), verify),
    ];
    let seconds: f64 = phases.iter().map(|(_, seconds)| seconds).sum();
    let kafka_full = copy_bytes as f64 * KAFKA_DISK_FACTOR * f64::from(args.durability.replication_factor);
    // Records older than the retention are deleted while the run goes on.
    let kept = args.durability.retention_ms.map_or(1.0, |ms| (ms as f64 / 1000.0 / seconds.max(1.0)).clamp(0.0, 1.0));
    let estimate = Estimate {
        tables: schema.tables.len(),
        rows: footprints.iter().filter_map(|f| f.estimated_rows).sum(),
        source_bytes: total,
        copy_bytes,
        sample: Sample {
            table: schema.tables[biggest].name.to_string(),
            rows: n_sample_rows,
            bytes: text.len() as u64,
            copy_seconds: copy_took.as_secs_f64(),
            insert_seconds: insert_took.as_secs_f64(),
            wal_bytes_per_second: wal_rate,
        },
        phases,
        seconds,
        target_disk_bytes: ((heap + index) as f64 * TARGET_DISK_FACTOR) as u64,
        kafka_disk_bytes: (kafka_full * kept) as u64,
        slot_wal_bytes: (wal_rate * seconds) as u64,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&estimate)?);
    } else {
        print!("{}", render(&estimate, &schema.tables));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(estimate: &Estimate, tables: &[Table]) -> String {
    let mb = |bytes: u64| bytes as f64 / 1e6;
    let sample = &estimate.sample;
    let mut out = format!(
        "{} tables ({}), {} rows, {:.1} MB on the source, {:.1} MB of COPY text to move\n",
        estimate.tables,
        tables.iter().map(|table| table.name.to_string()).collect::<Vec<_>>().join(", "),
        estimate.rows,
        mb(estimate.source_bytes),
        mb(estimate.copy_bytes)
    );
    out.push_str(&format!(
        "sample: {} rows ({:.1} MB) of {}: COPY {:.2} s ({:.1} MB/s), insert into the target {:.2} s ({:.1} MB/s)\n",
        sample.rows,
        mb(sample.bytes),
        sample.table,
        sample.copy_seconds,
        mb(sample.bytes) / sample.copy_seconds.max(1e-6),
        sample.insert_seconds,
        mb(sample.bytes) / sample.insert_seconds.max(1e-6),
    ));
    out.push_str("expected duration of passerelle migrate:\n");
    for (phase, seconds) in &estimate.phases {
        out.push_str(&format!("  {phase:18} {seconds:>8.1} s\n"));
    }
    out.push_str(&format!("  {:18} {:>8.1} s\n", "total", estimate.seconds));
    out.push_str(&format!(
        "disk: target {:.1} MB, Kafka {:.1} MB (at the topics' retention and replication), WAL the slot retains \
         by the end {:.1} MB (the source wrote {:.2} MB/s of WAL during the sample)\n",
        mb(estimate.target_disk_bytes),
        mb(estimate.kafka_disk_bytes),
        mb(estimate.slot_wal_bytes),
        sample.wal_bytes_per_second / 1e6
    ));
    out
}
