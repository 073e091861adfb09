//! The sink side of a migration, Kafka to target, and `passerelle sink`, which runs it alone on any
//! machine that reaches Kafka and the target: wait for the run the control topic announces, plan the
//! target from the schema it carries, apply the pre-data DDL, apply the snapshot (see `apply`), then
//! the post-data DDL.
//!
//! Several sink processes may share a migration: they split the partitions as one consumer group,
//! and a lock on the target serialises the phase changes, so each DDL runs once. The target's runs
//! table says how far the migration got, so a restarted sink resumes where the last one stopped.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use passerelle_ddl::Plan;
use passerelle_kafka::control::{self, RunAnnouncement};
use passerelle_kafka::topic::control_topic;
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::schema::Schema;
use passerelle_mysql::bookkeeping::{self, Phase, RunState, TargetObject};
use passerelle_mysql::sink::LoadPath;
use tokio::sync::oneshot;

use crate::altered::Following;
use crate::apply::{self, ApplyConfig, SinkTable};
use crate::args::{BookkeepingDb, KafkaBrokers, LoadPathArg, TargetUrl};
use crate::check::refuse_failures;
use crate::config::{has_topic, run_encoding, run_topics, table_layouts, NamingArgs};
use crate::failure;
use crate::mapping::{self, TargetMappingArgs};
use crate::pause;
use crate::progress::{Progress, Track};
use crate::report::{DdlSummary, PhaseClock, RunSummary, TableSummary};
use crate::retry;
use crate::settings;

/// How long a sink waits between looks at the control topic for a run to be announced.
const ANNOUNCEMENT_POLL: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct SinkArgs {
    #[command(flatten)]
    pub target: TargetUrl,
    #[command(flatten)]
    pub kafka: KafkaBrokers,
    #[command(flatten)]
    pub mapping: TargetMappingArgs,
    #[command(flatten)]
    pub naming: NamingArgs,
    /// Connections applying on the target
    #[arg(long, default_value_t = crate::args::machine_parallelism(), value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// How snapshot rows enter the target
    #[arg(long, value_enum, default_value = "auto")]
    pub load_path: LoadPathArg,
    #[command(flatten)]
    pub bookkeeping: BookkeepingDb,
    #[command(flatten)]
    pub guard: TargetGuard,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// What a migration may do to target databases that already hold objects.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct TargetGuard {
    /// Migrate into target databases that hold other tables too; they stay untouched
    #[arg(long)]
    pub force: bool,
    /// Drop and recreate a table or view of the plan that exists already but was not created by this
    /// migration (its rows are lost)
    #[arg(long)]
    pub replace: bool,
}

/// What the sink side needs to know.
pub struct SinkSide<'a> {
    pub kafka: &'a KafkaEndpoint,
    pub target: &'a DbEndpoint,
    /// The database that holds the bookkeeping tables.
    pub bookkeeping_db: &'a str,
    /// The topic prefix.
    pub migration: &'a str,
    pub mapping: &'a TargetMappingArgs,
    pub jobs: usize,
    /// Forces a load path; `None` takes the server's.
    pub load_path: Option<LoadPath>,
    pub guard: TargetGuard,
}

/// The run a sink follows.
pub enum WantedRun {
    /// Whichever the control topic announces last (a sink on its own).
    Newest,
    /// The one the source in this process announces.
    Announced(oneshot::Receiver<String>),
}

/// A run whose snapshot and post-data are in the target.
pub struct Applied {
    pub run_id: String,
    pub plan: Plan,
    /// Changes this process applied after the snapshot (online runs).
    pub changes: u64,
    /// How this process loaded the snapshot, if it applied it.
    pub load_path: Option<LoadPath>,
}

pub async fn run(args: SinkArgs) -> anyhow::Result<ExitCode> {
    let target = args.target.endpoint()?;
    let kafka = args.kafka.endpoint()?;
    let migration = args.naming.required_prefix()?;
    let side = SinkSide {
        kafka: &kafka,
        target: &target,
        bookkeeping_db: &args.bookkeeping.name,
        migration: &migration,
        mapping: &args.mapping,
        jobs: usize::from(args.jobs),
        load_path: args.load_path.forced(),
        guard: args.guard,
    };
    // The run's databases are known once it is announced; the URL's and the bookkeeping's now.
    refuse_failures(&passerelle_mysql::preflight::run(&target, &[], &args.bookkeeping.name).await)?;
    let clock = PhaseClock::new();
    let progress = Progress::new(Track::Applied);
    // A source that starts the snapshot over (its COPY session ended) announces a new run: follow it.
    let applied = loop {
        match apply_run(&side, WantedRun::Newest, &progress, &clock).await {
            Ok(applied) => break applied,
            Err(error) if error.downcast_ref::<apply::StartedOver>().is_some() => {
                eprintln!("passerelle: {error:#}; following the new run");
                progress.restart();
            }
            Err(error) => return Err(error),
        }
    };
    let tables = table_summaries(&applied.plan, &progress);
    let mut summary = RunSummary::new(migration, applied.run_id, clock, tables);
    summary.changes = applied.changes;
    summary.load_path = applied.load_path.map(LoadPath::name);
    summary.ddl = Some(DdlSummary::new(&applied.plan.report));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.render("applied"));
        println!("the snapshot is in the target with its keys, indexes and views; check it with passerelle verify");
    }
    Ok(ExitCode::SUCCESS)
}

/// Each table's rows as this process applied them.
pub fn table_summaries(plan: &Plan, progress: &Progress) -> Vec<TableSummary> {
    plan.tables
        .iter()
        .enumerate()
        .map(|(i, table)| TableSummary {
            table: table.source.to_string(),
            target: Some(format!("{}.{}", table.database, table.name)),
            rows: progress.n_applied(i),
            copy_bytes: progress.n_copied_bytes(i),
        })
        .collect()
}

/// Brings the target to the end of the wanted run's snapshot, post-data included, from wherever an
/// earlier sink left it.
pub async fn apply_run(
    side: &SinkSide<'_>,
    wanted: WantedRun,
    progress: &Progress,
    clock: &PhaseClock,
) -> anyhow::Result<Applied> {
    load_run(side, wanted, progress, clock).await?.post_data(side, clock).await
}

/// A run whose rows are in the target (for an online run, up to its cutover): its post-data is
/// what is left.
pub struct Loaded {
    run: RunAnnouncement,
    /// The run's type mapping, fixed by its first sink.
    settled: TargetMappingArgs,
    pub plan: Plan,
    changes: u64,
    load_path: Option<LoadPath>,
}

/// Brings the target to the end of the wanted run's snapshot (and stream), from wherever an earlier
/// sink left it; [`Loaded::post_data`] finishes it.
pub async fn load_run(
    side: &SinkSide<'_>,
    wanted: WantedRun,
    progress: &Progress,
    clock: &PhaseClock,
) -> anyhow::Result<Loaded> {
    let mut run = announced_run(side, wanted).await?;
    let databases = mapping::databases(&run.schemas, side.mapping, side.target)?;
    let server = settings::target_server(side.target, side.bookkeeping_db).await?;
    let settled = settings::fix_target(side.kafka, side.migration, &run, &server, &databases, side.mapping).await?;
    // The run's type mapping, not this process's flags: every sink plans the same target.
    let side = &SinkSide { mapping: &settled, ..*side };
    let mut changes = 0;
    let mut load_path = None;
    let mapping = mapping::plan_for(run.schema.clone(), &run.schemas, side.mapping, side.target, None).await?;
    let mut plan = mapping.plan.clone();
    let tables: Vec<String> = run.schema.tables.iter().map(|table| table.name.to_string()).collect();
    progress.tables(&tables, &run.estimated_rows);
    clock.lap("plan");

    let target = side.target;
    let db = side.bookkeeping_db;
    let mut conn = retry::retry("connecting to the target", || passerelle_mysql::connect(target)).await?;
    bookkeeping::ensure_tables(&mut conn, target, db).await?;
    bookkeeping::lock(&mut conn, target, side.migration).await?;
    let state = bookkeeping::run_state(&mut conn, target, db, side.migration).await?;
    let missing = match &state {
        Some(state) if state.run_id == run.run_id => missing_tables(&mut conn, target, &plan).await?,
        _ => Vec::new(),
    };
    let phase = match state {
        Some(state) if state.run_id == run.run_id && missing.is_empty() => state.phase,
        earlier => {
            if !missing.is_empty() {
                // Offsets that claim rows the target no longer has are not to be trusted.
                eprintln!(
                    "passerelle: the target lost {} table(s) of run {} ({}); rebuilding the run's tables and \
                     reloading them from the run's first records",
                    missing.len(),
                    run.run_id,
                    missing.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                );
            } else if earlier.is_some() {
                eprintln!("passerelle: the source started {} over; clearing what the last run applied", side.migration);
            }
            start_afresh(&mut conn, side, &run, &plan).await?;
            let state = RunState { run_id: run.run_id.clone(), phase: Phase::Snapshot };
            bookkeeping::set_run_state(&mut conn, target, db, side.migration, &state).await?;
            clock.lap("pre-data");
            Phase::Snapshot
        }
    };
    bookkeeping::unlock(&mut conn, target, side.migration).await?;

    // The tables that change during an online run, as the target has them.
    let mut following = Following::new(run.schema.clone(), plan.clone(), mapping.config.clone());
    if phase == Phase::Snapshot {
        // A partition's rows and changes arrive on its root's topic, and land in the root's table.
        let sink_tables: Vec<SinkTable> = table_layouts(side.migration, &run.schema, run_encoding(&run)?)
            .into_iter()
            .zip(&plan.tables)
            .enumerate()
            .filter(|(i, _)| has_topic(&run.schema, &run.schema.tables[*i]))
            .map(|(index, (layout, target))| SinkTable { index, layout, target: target.clone() })
            .collect();
        let config = ApplyConfig {
            kafka: side.kafka,
            target,
            bookkeeping_db: db,
            migration: side.migration,
            run_id: &run.run_id,
            starts: &run.starts,
            online: run.online,
            jobs: side.jobs,
            load_path: side.load_path,
            encoding: run_encoding(&run)?,
        };
        if run.online {
            eprintln!(
                "passerelle: {} is online: changes stream until `passerelle cutover --topic-prefix {}`",
                side.migration, side.migration
            );
        }
        let outcome = apply::run(&config, sink_tables, &mut following, progress).await?;
        changes = outcome.changes;
        load_path = Some(outcome.load_path);
        // The connection idled through the apply, which may have ridden through a target restart.
        conn = retry::retry("connecting to the target", || passerelle_mysql::connect(target)).await?;
        bookkeeping::advance_phase(
            &mut conn,
            target,
            db,
            side.migration,
            &run.run_id,
            Phase::Snapshot,
            Phase::SnapshotApplied,
        )
        .await?;
        clock.lap(if run.online { "snapshot+stream" } else { "snapshot" });
    }
    progress.finish();
    let _ = conn.disconnect().await;
    if run.online {
        // The post-data and the verification take the tables that changed during the run as they are now.
        let topic = control_topic(side.migration);
        let state = retry::retry("reading the control topic", || control::read(side.kafka, &topic)).await?;
        if let Some(schema) = state.current_schema().filter(|_| !state.altered.is_empty()) {
            following.catch_up_all(&state.altered, target).await?;
            plan = passerelle_ddl::plan(&schema, &mapping.config);
            run.schema = schema;
        }
    }
    Ok(Loaded { run, settled, plan, changes, load_path })
}

impl Loaded {
    pub fn schema(&self) -> &Schema {
        &self.run.schema
    }

    /// Adds the post-data DDL (keys, indexes, foreign keys, AUTO_INCREMENT, views, triggers) unless
    /// the target has it already, and analyzes the tables.
    pub async fn post_data(self, side: &SinkSide<'_>, clock: &PhaseClock) -> anyhow::Result<Applied> {
        let Loaded { run, settled, plan, changes, load_path } = self;
        let side = &SinkSide { mapping: &settled, ..*side };
        pause::point(pause::BEFORE_POST_DATA, 0).await;
        let target = side.target;
        let mut conn = retry::retry("connecting to the target", || passerelle_mysql::connect(target)).await?;
        post_data(side, &run, &plan, &mut conn, clock).await?;
        let _ = conn.disconnect().await;
        Ok(Applied { run_id: run.run_id, plan, changes, load_path })
    }
}

async fn post_data(
    side: &SinkSide<'_>,
    run: &RunAnnouncement,
    plan: &Plan,
    conn: &mut passerelle_mysql::Conn,
    clock: &PhaseClock,
) -> anyhow::Result<()> {
    let (target, db) = (side.target, side.bookkeeping_db);
    bookkeeping::lock(conn, target, side.migration).await?;
    let state = bookkeeping::run_state(conn, target, db, side.migration).await?;
    if state.as_ref().is_some_and(|state| state.run_id == run.run_id && state.phase == Phase::SnapshotApplied) {
        // The rows come from one consistent snapshot of a source where every foreign key holds, and
        // verify compares them all, so re-checking each key while adding it only costs time
        // (mysqldump restores the same way).
        let mut statements = vec!["SET SESSION foreign_key_checks = 0".to_string()];
        statements.extend(plan.post_data.iter().cloned());
        if run.online {
            // The sequences moved while changes streamed: AUTO_INCREMENT goes past where they stood at
            // the cutover.
            statements.extend(auto_increments_at_cutover(side, run).await?);
        }
        let created =
            passerelle_mysql::schema_apply::apply_creating(conn, target, &plan.databases, &statements).await?;
        bookkeeping::record_objects(conn, target, db, side.migration, &created).await?;
        // Partitions land in their root's table: each table once.
        let mut loaded: Vec<(&str, &str)> =
            plan.tables.iter().map(|table| (table.database.as_str(), table.name.as_str())).collect();
        loaded.sort_unstable();
        loaded.dedup();
        passerelle_mysql::schema_apply::analyze(conn, target, &loaded).await?;
        bookkeeping::advance_phase(
            conn,
            target,
            db,
            side.migration,
            &run.run_id,
            Phase::SnapshotApplied,
            Phase::PostData,
        )
        .await?;
        clock.lap("post-data");
    }
    bookkeeping::unlock(conn, target, side.migration).await?;
    Ok(())
}

/// The AUTO_INCREMENT positions planned from the sequences' values the stream announced at its end.
async fn auto_increments_at_cutover(side: &SinkSide<'_>, run: &RunAnnouncement) -> anyhow::Result<Vec<String>> {
    let topic = control_topic(side.migration);
    let state = retry::retry("reading the control topic", || control::read(side.kafka, &topic)).await?;
    let done = state.stream_done.context("the stream's end is not on the control topic")?;
    let mut schema = run.schema.clone();
    for sequence in &mut schema.sequences {
        if let Some((_, last_value)) = done.sequences.iter().find(|(name, _)| *name == sequence.name) {
            sequence.last_value = *last_value;
        }
    }
    Ok(mapping::plan_for(schema, &run.schemas, side.mapping, side.target, None).await?.plan.auto_increments)
}

/// The run to follow, once the control topic announces it.
async fn announced_run(side: &SinkSide<'_>, wanted: WantedRun) -> anyhow::Result<RunAnnouncement> {
    let run_id = match wanted {
        WantedRun::Newest => None,
        WantedRun::Announced(receiver) => {
            Some(receiver.await.map_err(|_| anyhow::anyhow!("the source side stopped before announcing its run"))?)
        }
    };
    let topic = control_topic(side.migration);
    let mut waiting_said = false;
    loop {
        let state = retry::retry("reading the control topic", || control::read(side.kafka, &topic)).await?;
        // A sink of its own stops at once on a run that failed, before it touches the target (the
        // failed run may have stopped before its target was ready). `migrate`'s own sink follows the
        // run its source is taking up, whose failure that source withdraws.
        if run_id.is_none() && state.run.is_some() {
            failure::refuse_failed(&state, side.migration)?;
        }
        match state.run {
            Some(run) if run_id.as_ref().is_none_or(|wanted| wanted == &run.run_id) => return Ok(run),
            _ if !waiting_said => {
                eprintln!("passerelle: waiting for the source to announce a run of {} on {topic}", side.migration);
                waiting_said = true;
            }
            _ => {}
        }
        tokio::time::sleep(ANNOUNCEMENT_POLL).await;
    }
}

fn topics(side: &SinkSide<'_>, run: &RunAnnouncement) -> Vec<String> {
    run_topics(side.migration, &run.schema)
}

/// The plan's tables the target does not hold (its database was dropped, say), as `database.name`.
async fn missing_tables(
    conn: &mut passerelle_mysql::Conn,
    target: &DbEndpoint,
    plan: &Plan,
) -> anyhow::Result<Vec<String>> {
    let existing = passerelle_mysql::schema_apply::objects(conn, target, &plan.databases).await?;
    Ok(plan
        .tables
        .iter()
        .filter(|table| !existing.iter().any(|object| object.database == table.database && object.name == table.name))
        .map(|table| format!("{}.{}", table.database, table.name))
        .collect())
}

/// Clears what an earlier run of this migration created and applied, then creates the plan's
/// databases and tables. Objects this migration did not create stay untouched: beside the plan's
/// they need `--force`, and one the plan would create needs `--replace` to be dropped.
async fn start_afresh(
    conn: &mut passerelle_mysql::Conn,
    side: &SinkSide<'_>,
    run: &RunAnnouncement,
    plan: &Plan,
) -> anyhow::Result<()> {
    let (target, db) = (side.target, side.bookkeeping_db);
    let mut drop = bookkeeping::created_objects(conn, target, db, side.migration).await?;
    let existing = passerelle_mysql::schema_apply::objects(conn, target, &plan.databases).await?;
    let (clashing, beside): (Vec<TargetObject>, Vec<TargetObject>) = existing
        .into_iter()
        .filter(|object| !drop.contains(object))
        .partition(|object| plan.tables.iter().any(|t| t.database == object.database && t.name == object.name));
    let names =
        |objects: &[TargetObject]| objects.iter().take(5).map(ToString::to_string).collect::<Vec<_>>().join(", ");
    if !clashing.is_empty() && !side.guard.replace {
        anyhow::bail!(
            "the target already holds {} table(s) the plan creates, which this migration did not create ({}); \
             migrate into other databases (--map), or pass --replace to drop and recreate them",
            clashing.len(),
            names(&clashing)
        );
    }
    if !beside.is_empty() && !side.guard.force {
        anyhow::bail!(
            "the target databases already hold {} other table(s) or view(s) ({}); migrate into empty databases, or \
             pass --force to migrate beside them (they stay untouched)",
            beside.len(),
            names(&beside)
        );
    }
    drop.extend(clashing);
    passerelle_mysql::schema_apply::drop_objects(conn, target, &drop).await?;
    bookkeeping::forget(conn, target, db, side.migration, &topics(side, run)).await?;
    // The tables are recorded before they are created (none of them exists now): a process killed
    // between a CREATE and its record would leave a table that its rerun takes for someone else's.
    // A record of a table never created costs nothing: the objects are dropped with IF EXISTS.
    let planned: Vec<TargetObject> = plan
        .tables
        .iter()
        .map(|table| TargetObject { database: table.database.clone(), name: table.name.clone(), kind: "TABLE".into() })
        .collect();
    bookkeeping::record_objects(conn, target, db, side.migration, &planned).await?;
    let created = passerelle_mysql::schema_apply::apply_creating(conn, target, &plan.databases, &plan.pre_data).await?;
    bookkeeping::record_objects(conn, target, db, side.migration, &created).await?;
    Ok(())
}
