//! `passerelle status`: where a migration stands, from what its processes leave behind: the control
//! topic (the run, whether its snapshot is complete in Kafka), the target's bookkeeping (the phase,
//! each partition's applied offset) and, given the source URL, the replication slot and the WAL it
//! retains. Safe to run at any time, from any machine: it reads and changes nothing.

use std::collections::HashMap;
use std::process::ExitCode;

use passerelle_kafka::control;
use passerelle_kafka::topic::{control_topic, end_offsets, table_topic};
use passerelle_model::event::Lsn;
use passerelle_mysql::bookkeeping;
use serde::Serialize;

use crate::args::{BookkeepingDb, KafkaBrokers, TargetUrl};
use crate::config::{Names, NamingArgs};
use crate::failure;

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
    /// Print the status as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Status {
    migration: String,
    /// The current run, as the control topic announces it; `None` before the first.
    run_id: Option<String>,
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
    tables: Vec<TableStatus>,
    slot: Option<SlotStatus>,
}

#[derive(Serialize)]
struct TableStatus {
    table: String,
    /// Messages in the table's topic.
    in_kafka: i64,
    /// Messages the target applied.
    applied: i64,
}

#[derive(Serialize)]
struct SlotStatus {
    name: String,
    exists: bool,
    active: bool,
    retained_wal_bytes: Option<u64>,
    /// The slot retains more WAL than `--warn-wal-mb`.
    retains_too_much: bool,
    /// The server removed WAL the slot needed (`max_slot_wal_keep_size`): it streams no more.
    lost: bool,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let target = args.target.endpoint()?;
    let kafka = args.kafka.endpoint()?;
    let source = args.source.as_deref().map(passerelle_model::endpoint::DbEndpoint::parse_postgres).transpose()?;
    let prefix = match &source {
        Some(source) => args.naming.prefix_or_default(source),
        None => args.naming.required_prefix()?,
    };
    let names = Names::new(prefix);
    let state = control::read(&kafka, &control_topic(&names.migration)).await?;

    let database = &args.bookkeeping.name;
    let mut conn = passerelle_mysql::connect(&target).await?;
    bookkeeping::ensure_tables(&mut conn, &target, database).await?;
    let run_state = bookkeeping::run_state(&mut conn, &target, database, &names.migration).await?;
    let mut tables = Vec::new();
    if let Some(run) = &state.run {
        let topics: Vec<String> = run
            .schema
            .tables
            .iter()
            .map(|table| table_topic(&names.migration, &table.name.schema, &table.name.name))
            .collect();
        let applied = bookkeeping::offsets(&mut conn, &target, database, &topics).await?;
        let mut in_kafka: HashMap<String, i64> = HashMap::new();
        for end in end_offsets(&kafka, &topics).await? {
            *in_kafka.entry(end.topic).or_default() += end.end;
        }
        for (table, topic) in run.schema.tables.iter().zip(&topics) {
            tables.push(TableStatus {
                table: table.name.to_string(),
                in_kafka: in_kafka.get(topic).copied().unwrap_or(0),
                applied: applied.iter().filter(|((t, _), _)| t == topic).map(|(_, next)| next).sum(),
            });
        }
    }
    let _ = conn.disconnect().await;

    let slot = match &source {
        Some(source) => {
            let client = passerelle_pg::connect(source).await?;
            let info = passerelle_pg::slot::slot_info(&client, source, &names.slot).await?;
            let retained_wal_bytes = info.as_ref().and_then(|info| info.retained_wal_bytes);
            Some(SlotStatus {
                name: names.slot.clone(),
                exists: info.is_some(),
                active: info.as_ref().is_some_and(|info| info.active),
                retained_wal_bytes,
                retains_too_much: retained_wal_bytes.is_some_and(|bytes| bytes > args.warn_wal_mb * 1_000_000),
                lost: info.as_ref().is_some_and(|info| info.lost),
            })
        }
        None => None,
    };
    let run_id = state.run.as_ref().map(|run| run.run_id.clone());
    let status = Status {
        migration: names.migration,
        target_phase: run_state.filter(|s| Some(&s.run_id) == run_id.as_ref()).map(|s| s.phase.as_str().to_string()),
        run_id,
        snapshot_in_kafka: state.snapshot_done.is_some(),
        online: state.run.as_ref().is_some_and(|run| run.online),
        cutover_lsn: state.cutover.as_ref().map(|cutover| Lsn(cutover.lsn).to_string()),
        stream_in_kafka: state.stream_done.is_some(),
        failed: state.failed.clone(),
        target_server: state.target_server().map(ToString::to_string),
        tables,
        slot,
    };
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

fn render(status: &Status) -> String {
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
    let width = status.tables.iter().map(|t| t.table.len()).max().unwrap_or(5).max(5);
    out.push_str(&format!("{:width$}  {:>12}  {:>12}  {:>12}\n", "table", "in Kafka", "applied", "behind"));
    for table in &status.tables {
        out.push_str(&format!(
            "{:width$}  {:>12}  {:>12}  {:>12}\n",
            table.table,
            table.in_kafka,
            table.applied,
            table.in_kafka - table.applied
        ));
    }
    if let Some(slot) = &status.slot {
        if slot.exists {
            let wal = slot.retained_wal_bytes.map_or("?".to_string(), |bytes| format!("{:.1} MB", bytes as f64 / 1e6));
            out.push_str(&format!(
                "slot {}: {}, retains {wal} of WAL on the source\n",
                slot.name,
                if slot.active { "streaming" } else { "idle" }
            ));
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
    out
}
