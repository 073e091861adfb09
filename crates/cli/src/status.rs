//! `passerelle status`: where a migration stands, from what its processes leave behind: the control
//! topic (the run, whether its snapshot is complete in Kafka), the target's bookkeeping (the phase,
//! each partition's applied offset) and, given the source URL, the replication slot and the WAL it
//! retains. Safe to run at any time, from any machine: it reads and changes nothing. `--watch`
//! (`watch`) reads the same every second. A read that fails transiently is retried under the retry
//! policy, as every command's are.

use std::collections::HashMap;
use std::process::ExitCode;

use passerelle_kafka::control;
use passerelle_kafka::topic::{control_topic, end_offsets, group_members};
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::event::Lsn;
use passerelle_mysql::bookkeeping;
use serde::Serialize;

use crate::args::{BookkeepingDb, KafkaBrokers, TargetUrl};
use crate::config::{has_topic, run_topics, topic_root, Names, NamingArgs};
use crate::failure;
use crate::retry;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetUrl,
    #[command(flatten)]
    pub kafka: KafkaBrokers,
    /// The PostgreSQL source, to report the replication slot: postgres://user:password@host:5432/database
    #[arg(long, env = "PASSERELLE_SOURCE", hide_env_values = true, value_name = "URL")]
    pub source: Option<String>,
    #[command(flatten)]
    pub naming: NamingArgs,
    #[command(flatten)]
    pub bookkeeping: BookkeepingDb,
    /// Warn when the slot retains more WAL than this many MB
    #[arg(long, value_name = "MB", default_value_t = 1024)]
    pub warn_wal_mb: u64,
    /// Print the status as JSON on stdout (with --watch, one object a line per refresh)
    #[arg(long)]
    pub json: bool,
    /// Refresh every second until interrupted: one screen, or with --json one line per refresh
    #[arg(long)]
    pub watch: bool,
}

#[derive(Serialize)]
pub struct Status {
    migration: String,
    /// The current run, as the control topic announces it; `None` before the first.
    run_id: Option<String>,
    /// Where the run stands, in a word: `no run`, `failed`, `snapshot`, `snapshot-applied`,
    /// `streaming`, `post-data`, ...
    phase: String,
    /// Every snapshot row of the run is in Kafka.
    snapshot_in_kafka: bool,
    /// The run streams changes after its snapshot until a cutover.
    online: bool,
    /// The LSN `passerelle cutover` asked the stream to reach.
    cutover_lsn: Option<String>,
    /// Every change up to the cutover is in Kafka.
    stream_in_kafka: bool,
    /// The run's source ended with an error that nothing retries by itself: the cause and the way out.
    failed: Option<passerelle_kafka::control::Failed>,
    /// The target server the run applies into, once fixed: its identity and address.
    target_server: Option<String>,
    /// The phase the target reached for that run: snapshot, snapshot-applied or post-data.
    target_phase: Option<String>,
    /// Consumers in the run's consumer group: the sinks (`migrate` or `sink` processes) reading it.
    sinks_connected: Option<usize>,
    pub(crate) tables: Vec<TableStatus>,
    slot: Option<SlotStatus>,
    /// `--watch`: the last error a refresh met (the numbers are then the last read); it clears
    /// when a refresh succeeds again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
}

#[derive(Serialize)]
pub struct TableStatus {
    pub(crate) table: String,
    /// Messages in the table's topic.
    pub(crate) in_kafka: i64,
    /// Messages the target applied.
    pub(crate) applied: i64,
    /// Snapshot rows: exact once the snapshot is in Kafka, else the source's estimate.
    pub(crate) expected_rows: Option<u64>,
    /// `--watch`: messages reaching Kafka, and applied, per second over the last refreshes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) in_kafka_per_second: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) applied_per_second: Option<f64>,
    /// `--watch`: seconds until the target holds every snapshot row and what Kafka holds, at the
    /// current apply rate; `None` while nothing is applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) eta_seconds: Option<f64>,
}

#[derive(Serialize)]
struct SlotStatus {
    name: String,
    exists: bool,
    active: bool,
    retained_wal_bytes: Option<u64>,
    /// WAL written on the source that the slot has not confirmed yet.
    lag_bytes: Option<u64>,
    /// The walsender's flush lag; `None` while nothing streams or once caught up.
    lag_seconds: Option<f64>,
    /// The slot retains more WAL than `--warn-wal-mb`.
    retains_too_much: bool,
    /// The server removed WAL the slot needed (`max_slot_wal_keep_size`): it streams no more.
    lost: bool,
}

/// What `status` reads, and from where.
pub struct Reader {
    target: DbEndpoint,
    kafka: KafkaEndpoint,
    source: Option<DbEndpoint>,
    names: Names,
    bookkeeping_db: String,
    warn_wal_mb: u64,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let source = args.source.as_deref().map(DbEndpoint::parse_postgres).transpose()?;
    let prefix = match &source {
        Some(source) => args.naming.prefix_or_default(source),
        None => args.naming.required_prefix()?,
    };
    let reader = Reader {
        target: args.target.endpoint()?,
        kafka: args.kafka.endpoint()?,
        source,
        names: Names::new(prefix),
        bookkeeping_db: args.bookkeeping.name.clone(),
        warn_wal_mb: args.warn_wal_mb,
    };
    if args.watch {
        return crate::watch::run(&reader, args.json).await;
    }
    let status = reader.read(Retrying::Yes).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    if let Some(failed) = &status.failed {
        eprintln!("passerelle: error: {}", failure::describe(failed, &status.migration));
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a read that failed transiently is tried again under the retry policy (`retry`), or
/// handed back at once: `--watch` shows it and reads again at the next refresh.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Retrying {
    Yes,
    No,
}

impl Retrying {
    async fn step<T, E, F, Fut>(self, what: &'static str, step: F) -> anyhow::Result<T>
    where
        E: Into<anyhow::Error>,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut step = step;
        match self {
            Retrying::Yes => retry::retry(what, step).await,
            Retrying::No => step().await.map_err(Into::into),
        }
    }
}

impl Reader {
    /// One look at the migration: the control topic, the target's bookkeeping, Kafka's ends, the
    /// run's consumer group and, given the source, the slot.
    pub async fn read(&self, retrying: Retrying) -> anyhow::Result<Status> {
        let names = &self.names;
        let (kafka, target, database) = (&self.kafka, &self.target, self.bookkeeping_db.as_str());
        let topic = control_topic(&names.migration);
        let state = retrying.step("reading the control topic", || control::read(kafka, &topic)).await?;

        let mut conn = retrying.step("connecting to the target", || passerelle_mysql::connect(target)).await?;
        bookkeeping::ensure_tables(&mut conn, target, database).await?;
        let run_state = bookkeeping::run_state(&mut conn, target, database, &names.migration).await?;
        let mut tables = Vec::new();
        let mut sinks_connected = None;
        if let Some(run) = &state.run {
            // A partition's events are on its root's topic, counted with the root's.
            let topics = run_topics(&names.migration, &run.schema);
            let applied = bookkeeping::offsets(&mut conn, target, database, &topics).await?;
            let mut in_kafka: HashMap<String, i64> = HashMap::new();
            for end in retrying.step("reading where the topics end", || end_offsets(kafka, &topics)).await? {
                *in_kafka.entry(end.topic).or_default() += end.end;
            }
            let exact = state.snapshot_done.as_ref().map(|done| &done.rows);
            let roots = run.schema.tables.iter().filter(|table| has_topic(&run.schema, table));
            for (root, topic) in roots.zip(&topics) {
                // The root's rows and its partitions'.
                let expected = |i: usize| {
                    exact.and_then(|rows| rows.get(i).copied()).or_else(|| run.estimated_rows.get(i).copied().flatten())
                };
                let expected_rows = run
                    .schema
                    .tables
                    .iter()
                    .enumerate()
                    .filter(|(_, table)| topic_root(&run.schema, table).name == root.name)
                    .map(|(i, _)| expected(i))
                    .sum();
                tables.push(TableStatus {
                    table: root.name.to_string(),
                    in_kafka: in_kafka.get(topic).copied().unwrap_or(0),
                    applied: applied.iter().filter(|((t, _), _)| t == topic).map(|(_, next)| next).sum(),
                    expected_rows,
                    in_kafka_per_second: None,
                    applied_per_second: None,
                    eta_seconds: None,
                });
            }
            let group = format!("{}.{}", names.migration, run.run_id);
            sinks_connected = Some(retrying.step("reading the sinks' group", || group_members(kafka, &group)).await?);
        }
        let _ = conn.disconnect().await;

        let slot = match &self.source {
            Some(source) => {
                let client = retrying.step("connecting to the source", || passerelle_pg::connect(source)).await?;
                let info = passerelle_pg::slot::slot_info(&client, source, &names.slot).await?;
                let retained_wal_bytes = info.as_ref().and_then(|info| info.retained_wal_bytes);
                Some(SlotStatus {
                    name: names.slot.clone(),
                    exists: info.is_some(),
                    active: info.as_ref().is_some_and(|info| info.active),
                    retained_wal_bytes,
                    lag_bytes: info.as_ref().and_then(|info| info.lag_bytes),
                    lag_seconds: info.as_ref().and_then(|info| info.lag_seconds),
                    retains_too_much: retained_wal_bytes.is_some_and(|bytes| bytes > self.warn_wal_mb * 1_000_000),
                    lost: info.as_ref().is_some_and(|info| info.lost),
                })
            }
            None => None,
        };
        let run_id = state.run.as_ref().map(|run| run.run_id.clone());
        let target_phase =
            run_state.filter(|s| Some(&s.run_id) == run_id.as_ref()).map(|s| s.phase.as_str().to_string());
        let online = state.run.as_ref().is_some_and(|run| run.online);
        let phase = match (&run_id, &state.failed, target_phase.as_deref()) {
            (None, ..) => "no run",
            (_, Some(_), _) => "failed",
            (_, _, Some("post-data")) => "post-data",
            (_, _, Some("snapshot-applied")) if online && state.stream_done.is_none() => "streaming",
            (_, _, Some(phase)) => phase,
            (_, _, None) => "snapshot",
        }
        .to_string();
        Ok(Status {
            migration: names.migration.clone(),
            target_phase,
            phase,
            run_id,
            snapshot_in_kafka: state.snapshot_done.is_some(),
            online,
            cutover_lsn: state.cutover.as_ref().map(|cutover| Lsn(cutover.lsn).to_string()),
            stream_in_kafka: state.stream_done.is_some(),
            failed: state.failed.clone(),
            target_server: state.target_server().map(ToString::to_string),
            sinks_connected,
            tables,
            slot,
            last_error: None,
        })
    }
}

/// The status for people; with `--watch`'s rates, a rate and ETA column per table.
pub fn render(status: &Status) -> String {
    let mut out = format!("migration {}\n", status.migration);
    let Some(run_id) = &status.run_id else {
        out.push_str("no run announced yet: start passerelle migrate or passerelle source\n");
        return out;
    };
    out.push_str(&format!("run {run_id}\n"));
    if let Some(failed) = &status.failed {
        out.push_str(&format!("source: FAILED: {}\n  way out: {}\n", failed.cause, failed.way_out));
    }
    out.push_str(&match (status.snapshot_in_kafka, status.online, &status.cutover_lsn, status.stream_in_kafka) {
        (false, ..) => "source: copying the snapshot (or interrupted: run the source again)\n".to_string(),
        (true, false, ..) => "source: the snapshot is complete in Kafka\n".to_string(),
        (true, true, None, _) => {
            "source: the snapshot is in Kafka; streaming changes until passerelle cutover\n".to_string()
        }
        (true, true, Some(lsn), false) => format!("source: cutover requested at {lsn}; streaming up to it\n"),
        (true, true, Some(lsn), true) => format!("source: every change up to the cutover at {lsn} is in Kafka\n"),
    });
    if let Some(server) = &status.target_server {
        out.push_str(&format!("target server: {server}, fixed for this run\n"));
    }
    out.push_str(&format!(
        "target: {}\n",
        status.target_phase.as_deref().unwrap_or("nothing applied for this run yet")
    ));
    if let Some(n_sinks) = status.sinks_connected {
        out.push_str(&format!("sinks connected: {n_sinks}\n"));
    }
    let width = status.tables.iter().map(|t| t.table.len()).max().unwrap_or(5).max(5);
    let rated = status.tables.iter().any(|table| table.applied_per_second.is_some());
    out.push_str(&format!("{:width$}  {:>12}  {:>12}  {:>12}", "table", "in Kafka", "applied", "behind"));
    out.push_str(if rated { "  Kafka rows/s  applied/s       ETA\n" } else { "\n" });
    for table in &status.tables {
        out.push_str(&format!(
            "{:width$}  {:>12}  {:>12}  {:>12}",
            table.table,
            table.in_kafka,
            table.applied,
            table.in_kafka - table.applied
        ));
        if rated {
            let rate = |rate: Option<f64>| rate.map_or("-".to_string(), |rate| format!("{rate:.0}"));
            let eta = table.eta_seconds.map_or("-".to_string(), human_seconds);
            out.push_str(&format!(
                "  {:>12}  {:>9}  {eta:>8}",
                rate(table.in_kafka_per_second),
                rate(table.applied_per_second)
            ));
        }
        out.push('\n');
    }
    if let Some(slot) = &status.slot {
        if slot.exists {
            let wal = slot.retained_wal_bytes.map_or("?".to_string(), |bytes| format!("{:.1} MB", bytes as f64 / 1e6));
            out.push_str(&format!(
                "slot {}: {}, retains {wal} of WAL on the source\n",
                slot.name,
                if slot.active { "streaming" } else { "idle" }
            ));
            if let Some(bytes) = slot.lag_bytes {
                let seconds = slot.lag_seconds.map_or(String::new(), |seconds| format!(", {seconds:.1} s behind"));
                out.push_str(&format!("replication lag: {:.1} MB not yet confirmed{seconds}\n", bytes as f64 / 1e6));
            }
            if slot.lost {
                out.push_str(&format!(
                    "slot {} is LOST: the source removed WAL it needed (max_slot_wal_keep_size); start the migration \
                     over: passerelle cleanup, then passerelle migrate\n",
                    slot.name
                ));
            }
            if slot.retains_too_much {
                out.push_str(&format!(
                    "warning: slot {} retains {wal} of WAL, past --warn-wal-mb: the source cannot recycle it until the \
                     stream confirms it; a stopped or slow source lets it grow until the disk fills (passerelle cleanup \
                     drops an abandoned migration's slot)\n",
                    slot.name
                ));
            }
        } else {
            out.push_str(&format!("slot {}: does not exist\n", slot.name));
        }
    }
    if let Some(error) = &status.last_error {
        out.push_str(&format!("last error (the numbers above are the last read): {error}\n"));
    }
    out
}

/// `90s`, `4m05s`, `2h03m`.
fn human_seconds(seconds: f64) -> String {
    let seconds = seconds.max(0.0).round() as u64;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}
