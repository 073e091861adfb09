//! `passerelle migrate`: plan, pre-data DDL, the snapshot through Kafka into the target, post-data
//! DDL, verification, then a summary. Source and sink run in this one process; `jobs` copy workers feed Kafka
//! while `jobs` target connections apply what Kafka holds.
//!
//! Resumable by phase: the target's runs table says how far a migration got. An interrupted snapshot
//! starts over from a fresh slot, snapshot, topics and tables (the old snapshot died with its
//! connection, so nothing copied under it can be continued consistently); a finished one is not
//! copied again.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use passerelle_kafka::envelope::TableLayout;
use passerelle_kafka::producer::Producer;
use passerelle_kafka::topic::{create_topics, delete_topics, TopicLayout};
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::target::TargetTable;
use passerelle_mysql::bookkeeping::{self, Phase, RunState};
use serde::Serialize;
use tokio::sync::watch;

use crate::args::EndpointArgs;
use crate::config::{Endpoints, Names, NamingArgs};
use crate::mapping::{self, Mapping, MappingArgs};
use crate::progress::Progress;
use crate::sink::{SinkConfig, SinkTable};
use crate::snapshot::{self, SnapshotSource};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// Copy workers on the source, and connections applying on the target
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    #[command(flatten)]
    pub naming: NamingArgs,
    /// Partitions of each topic (a table without a primary key always uses one)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
    /// Replication factor of each topic
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=16))]
    pub replication_factor: i32,
    /// retention.ms of each topic [default: the broker's]
    #[arg(long, value_name = "MS")]
    pub retention_ms: Option<i64>,
    /// Migrate even if the target databases already hold tables that this migration did not create
    #[arg(long)]
    pub force: bool,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// What every step of one migration needs to know.
#[derive(Clone, Copy)]
struct Migration<'a> {
    args: &'a MigrateArgs,
    endpoints: &'a Endpoints,
    names: &'a Names,
    layout: &'a TopicLayout,
    bookkeeping_db: &'a str,
}

/// Wall time per phase, in the order the phases ran.
struct PhaseClock {
    phases: Vec<(String, f64)>,
    since: Instant,
}

impl PhaseClock {
    fn lap(&mut self, name: &str) {
        self.phases.push((name.to_string(), self.since.elapsed().as_secs_f64()));
        self.since = Instant::now();
    }
}

#[derive(Serialize)]
struct TableSummary {
    table: String,
    target: String,
    rows: u64,
}

#[derive(Serialize)]
struct Summary {
    migration: String,
    /// Wall time of each phase, in seconds, in the order they ran.
    phases: Vec<(String, f64)>,
    tables: Vec<TableSummary>,
    rows: u64,
    copy_bytes: u64,
    seconds: f64,
    rows_per_second: f64,
    peak_rss_mb: Option<f64>,
    /// CPU time of this process, user and system.
    cpu_seconds: Option<f64>,
    slot: String,
    /// Every table's count and checksum match, and every planned object is present.
    verified: bool,
    verification: passerelle_verify::report::Report,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let endpoints = Endpoints::from_args(&args.endpoints)?;
    let Some(bookkeeping_db) = endpoints.target.database.clone() else {
        anyhow::bail!("the target URL names no database; add it: mysql://user@host:3306/database");
    };
    let names = Names::new(&args.naming, &endpoints.source);
    let prefix = names.migration.clone();
    let mut clock = PhaseClock { phases: Vec::new(), since: Instant::now() };

    let Mapping { schema, plan, .. } = mapping::prepare(&args.mapping, &endpoints.source, &endpoints.target).await?;
    let layout = TopicLayout {
        prefix: prefix.clone(),
        partitions: args.partitions,
        replication: args.replication_factor,
        retention_ms: args.retention_ms,
    };
    let topics: Vec<String> =
        plan.tables.iter().map(|table| layout.topic_name(&table.source.schema, &table.source.name)).collect();
    clock.lap("plan");

    let target = &endpoints.target;
    let mut conn = passerelle_mysql::connect(target).await?;
    bookkeeping::ensure_tables(&mut conn, target, &bookkeeping_db).await?;
    let state = bookkeeping::run_state(&mut conn, target, &bookkeeping_db, &names.migration).await?;
    let resumed_phase = state.as_ref().map(|state| state.phase);
    let run = match state {
        Some(state) if state.phase != Phase::Snapshot => state,
        interrupted => {
            if interrupted.is_some() {
                eprintln!("passerelle: the last snapshot of {} was interrupted; starting it over", names.migration);
            } else {
                refuse_foreign_tables(&mut conn, target, &plan.databases, args.force).await?;
            }
            reset(&endpoints, &names, &topics, &plan.databases, &bookkeeping_db, &mut conn).await?;
            let run = RunState { run_id: snapshot::now_ms().to_string(), phase: Phase::Snapshot };
            bookkeeping::set_run_state(&mut conn, target, &bookkeeping_db, &names.migration, &run).await?;
            passerelle_mysql::schema_apply::apply(&mut conn, target, &plan.pre_data).await?;
            clock.lap("pre-data");
            run
        }
    };

    let progress = Progress::new(&plan.tables.iter().map(|t| t.source.to_string()).collect::<Vec<_>>());
    let mut copy_bytes = 0;
    if run.phase == Phase::Snapshot {
        let migration = Migration {
            args: &args,
            endpoints: &endpoints,
            names: &names,
            layout: &layout,
            bookkeeping_db: &bookkeeping_db,
        };
        copy_bytes = copy_through_kafka(&migration, &run, &schema, &plan.tables, &topics, &progress).await?;
        let applied = RunState { phase: Phase::SnapshotApplied, ..run.clone() };
        bookkeeping::set_run_state(&mut conn, target, &bookkeeping_db, &names.migration, &applied).await?;
        clock.lap("snapshot");
    }
    progress.finish();
    if resumed_phase != Some(Phase::PostData) {
        // The rows come from one consistent snapshot of a source where every foreign key holds, and
        // verify compares them all, so re-checking each key while adding it only costs time
        // (mysqldump restores the same way).
        passerelle_mysql::schema_apply::apply(&mut conn, target, &["SET SESSION foreign_key_checks = 0".into()])
            .await?;
        passerelle_mysql::schema_apply::apply(&mut conn, target, &plan.post_data).await?;
        let done = RunState { phase: Phase::PostData, ..run.clone() };
        bookkeeping::set_run_state(&mut conn, target, &bookkeeping_db, &names.migration, &done).await?;
        clock.lap("post-data");
    }
    let _ = conn.disconnect().await;

    let config = passerelle_verify::Config {
        source: endpoints.source.clone(),
        target: endpoints.target.clone(),
        jobs: usize::from(args.jobs),
    };
    let verification = crate::verify::compare(&config, &schema, &plan).await?;
    clock.lap("verify");

    let tables: Vec<TableSummary> = plan
        .tables
        .iter()
        .enumerate()
        .map(|(i, table)| TableSummary {
            table: table.source.to_string(),
            target: format!("{}.{}", table.database, table.name),
            rows: progress.n_applied(i),
        })
        .collect();
    let rows = tables.iter().map(|t| t.rows).sum();
    let seconds = started.elapsed().as_secs_f64();
    let summary = Summary {
        migration: names.migration.clone(),
        phases: clock.phases,
        tables,
        rows,
        copy_bytes,
        seconds,
        rows_per_second: rows as f64 / seconds.max(f64::EPSILON),
        peak_rss_mb: peak_rss_mb(),
        cpu_seconds: cpu_seconds(),
        slot: names.slot.clone(),
        verified: verification.matches,
        verification,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", render(&summary));
    }
    Ok(if summary.verified { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// A first run goes only into databases that hold nothing but Passerelle's bookkeeping.
async fn refuse_foreign_tables(
    conn: &mut passerelle_mysql::Conn,
    target: &DbEndpoint,
    databases: &[String],
    force: bool,
) -> anyhow::Result<()> {
    let existing = passerelle_mysql::schema_apply::existing_objects(conn, target, databases).await?;
    if existing.is_empty() || force {
        return Ok(());
    }
    anyhow::bail!(
        "the target already holds {} table(s) or view(s) ({}); migrate into empty databases, or pass --force",
        existing.len(),
        existing.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
    )
}

/// Removes what an interrupted run left: its slot and publication, topics, target objects and
/// offsets. Everything removed here is recreated by the fresh start that follows.
async fn reset(
    endpoints: &Endpoints,
    names: &Names,
    topics: &[String],
    databases: &[String],
    bookkeeping_db: &str,
    conn: &mut passerelle_mysql::Conn,
) -> anyhow::Result<()> {
    let source = &endpoints.source;
    let client = passerelle_pg::connect(source).await?;
    passerelle_pg::slot::drop_slot(&client, source, &names.slot).await?;
    passerelle_pg::slot::drop_publication(&client, source, &names.slot).await?;
    delete_topics(&endpoints.kafka, topics).await?;
    let target = &endpoints.target;
    passerelle_mysql::schema_apply::drop_objects(conn, target, databases).await?;
    bookkeeping::forget(conn, target, bookkeeping_db, &names.migration, topics).await?;
    Ok(())
}

/// Creates the publication, the slot with its exported snapshot and the topics, then copies every
/// table through Kafka into the target. Returns the bytes of COPY text read.
async fn copy_through_kafka(
    migration: &Migration<'_>,
    run: &RunState,
    schema: &passerelle_model::schema::Schema,
    targets: &[TargetTable],
    topics: &[String],
    progress: &Progress,
) -> anyhow::Result<u64> {
    let Migration { args, endpoints, names, layout, bookkeeping_db } = *migration;
    let source = &endpoints.source;
    // The plan lists the tables that hold rows, in the schema's order; copy exactly those.
    let tables: Vec<_> = targets
        .iter()
        .map(|target| schema.tables.iter().find(|table| table.name == target.source).cloned())
        .collect::<Option<Vec<_>>>()
        .context("the plan names a table the catalog does not have")?;
    let layouts: Vec<TableLayout> = tables
        .iter()
        .zip(topics)
        .zip(targets)
        .map(|((table, topic), target)| {
            let columns = table.columns.iter().map(|column| column.name.clone()).collect();
            TableLayout::new(
                table.name.schema.clone(),
                table.name.name.clone(),
                topic.clone(),
                columns,
                target.key.clone(),
            )
        })
        .collect();

    create_topics(&endpoints.kafka, layout, topics).await?;
    let client = passerelle_pg::connect(source).await?;
    // Publishing a table without a key would make its updates and deletes fail on the live source;
    // such tables are copied by the snapshot but not streamed.
    let published: Vec<_> =
        tables.iter().filter(|table| table.primary_key.is_some()).map(|table| table.name.clone()).collect();
    passerelle_pg::slot::create_publication(&client, source, &names.slot, &published).await?;
    let exported = passerelle_pg::slot::create_slot(source, &names.slot).await?;
    let units = passerelle_pg::snapshot::plan_units(&client, source, &tables, 64 << 20).await?;

    let producer = Producer::new(&endpoints.kafka)?;
    let jobs = usize::from(args.jobs);
    let (produced_tx, produced_rx) = watch::channel(false);
    let database = source.database.clone().unwrap_or_default();
    let snapshot_source = SnapshotSource {
        endpoint: source,
        snapshot_name: exported.snapshot_name(),
        consistent_point: exported.consistent_point(),
        server: &layout.prefix,
        database: &database,
    };
    let source_side = async {
        let stats = snapshot::run(&snapshot_source, &tables, &layouts, units, &producer, jobs, progress).await?;
        producer.flush().await?;
        let _ = produced_tx.send(true);
        anyhow::Ok(stats)
    };
    let sink_tables: Vec<SinkTable> = layouts
        .iter()
        .zip(targets)
        .map(|(layout, target)| SinkTable { layout: layout.clone(), target: target.clone() })
        .collect();
    let group = format!("{}.{}", names.migration, run.run_id);
    let sink_config =
        SinkConfig { kafka: &endpoints.kafka, target: &endpoints.target, bookkeeping_db, group: &group, jobs };
    let sink_side = crate::sink::run(&sink_config, &sink_tables, produced_rx, progress);
    let (stats, n_applied) = tokio::try_join!(source_side, sink_side)?;
    exported.close().await;
    if n_applied != stats.n_rows {
        anyhow::bail!(
            "the snapshot copied {} rows but the target applied {n_applied}; run migrate again to start over",
            stats.n_rows
        );
    }
    Ok(stats.n_bytes)
}

/// CPU seconds this process used, user and system, from /proc (Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux platform Passerelle runs on.
    Some(ticks / 100.0)
}

/// The process's peak resident memory, from /proc (Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let width = summary.tables.iter().map(|t| t.table.len()).max().unwrap_or(5).max(5);
    for table in &summary.tables {
        out.push_str(&format!("{:width$}  {:>12} rows  -> {}\n", table.table, table.rows, table.target));
    }
    let phases: Vec<String> = summary
        .phases
        .iter()
        .map(|(name, seconds)| format!("{name} {}", human(Duration::from_secs_f64(*seconds))))
        .collect();
    out.push_str(&format!("phases: {}\n", phases.join(", ")));
    out.push_str(&format!(
        "migrated {} rows ({:.1} MB of COPY text) in {}: {:.0} rows/s",
        summary.rows,
        summary.copy_bytes as f64 / 1e6,
        human(Duration::from_secs_f64(summary.seconds)),
        summary.rows_per_second
    ));
    if let Some(mb) = summary.peak_rss_mb {
        out.push_str(&format!(", peak memory {mb:.0} MB"));
    }
    if let Some(seconds) = summary.cpu_seconds {
        out.push_str(&format!(", {seconds:.1} CPU seconds"));
    }
    out.push('\n');
    if summary.verified {
        out.push_str("verified: every table's row count and content checksum match the source\n");
    } else {
        out.push_str(&summary.verification.render());
        out.push_str("NOT VERIFIED: the target differs from the source, see above\n");
    }
    out.push_str(&format!(
        "the replication slot {} stays for the online mode and retains WAL on the source: drop it with passerelle cleanup\n",
        summary.slot
    ));
    out
}

fn human(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        format!("{}m{:02}s", (seconds / 60.0) as u64, (seconds % 60.0) as u64)
    }
}
