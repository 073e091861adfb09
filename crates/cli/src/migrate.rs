//! `passerelle migrate`: the source side and the sink side of a migration in one process (see
//! `source` and `sink`), then verification and a summary. `jobs` copy workers feed Kafka while
//! `jobs` target connections apply what Kafka holds.
//!
//! The two sides talk only through Kafka's control topic and the target's bookkeeping, exactly as
//! separate `passerelle source` and `passerelle sink` processes would, so a rerun resumes each side
//! where it stopped: a snapshot complete in Kafka is not copied again, and a sink goes on from the
//! offsets the target holds.

use std::process::ExitCode;

use serde::Serialize;
use tokio::sync::oneshot;

use crate::args::{BookkeepingDb, EndpointArgs, LoadPathArg};
use crate::check::refuse_failures;
use crate::config::{Endpoints, Names, NamingArgs};
use crate::failure::{self, Holder};
use crate::handover::{Handover, ReportDirArg, Systems};
use crate::mapping::MappingArgs;
use crate::progress::{Progress, Track};
use crate::report::{PhaseClock, RunSummary};
use crate::retry::{self, Backoff};
use crate::settings;
use crate::sink::{self, SinkSide, TargetGuard, WantedRun};
use crate::source::{self, SourceSide, TopicArgs};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// Copy workers on the source, and connections applying on the target
    #[arg(long, default_value_t = crate::args::machine_parallelism(), value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    #[command(flatten)]
    pub rate: crate::args::SourceRateArg,
    /// How snapshot rows enter the target
    #[arg(long, value_enum, default_value = "auto")]
    pub load_path: LoadPathArg,
    #[command(flatten)]
    pub naming: NamingArgs,
    #[command(flatten)]
    pub topics: TopicArgs,
    /// After the snapshot, stream every change until `passerelle cutover`, then verify
    #[arg(long)]
    pub online: bool,
    #[command(flatten)]
    pub bookkeeping: BookkeepingDb,
    #[command(flatten)]
    pub guard: TargetGuard,
    /// Keep the replication slot and its publication once the target is verified (they retain WAL
    /// on the source until passerelle cleanup)
    #[arg(long)]
    pub keep_slot: bool,
    #[command(flatten)]
    pub report: ReportDirArg,
    /// Print the summary as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    run: RunSummary,
    slot: String,
    /// The slot and its publication were dropped at the end: the source retains no WAL for the migration.
    slot_dropped: bool,
    /// Every table's count and checksum match, and every planned object is present.
    verified: bool,
    verification: passerelle_verify::report::Report,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let clock = PhaseClock::new();
    let endpoints = Endpoints::from_args(&args.endpoints)?;
    let names = Names::new(args.naming.prefix_or_default(&endpoints.source));
    crate::metrics::watch_slot(&endpoints.source, &names.slot);
    let jobs = usize::from(args.jobs);
    let target = Some((&args.mapping.target, &endpoints.target));
    let settled = settings::settle(&endpoints.kafka, &names.migration, &args.mapping.selection, target).await?;
    let databases: Vec<String> = settled.databases.values().cloned().collect();
    // The run's type mapping when it resumes one, else the flags': announced with a new run.
    let mapping = settled.mapping.clone().unwrap_or_else(|| args.mapping.target.clone());
    let durability = args.topics.shape.durability.durability();
    let (source_findings, target_findings, kafka_findings) = tokio::join!(
        passerelle_pg::preflight::run(&endpoints.source, &settled.schemas),
        passerelle_mysql::preflight::run(&endpoints.target, &databases, &args.bookkeeping.name),
        retry::retry("checking the topics' replication", || passerelle_kafka::preflight::topics(
            &endpoints.kafka,
            durability
        )),
    );
    refuse_failures(&[source_findings, target_findings, kafka_findings?].concat())?;
    let target_server = settings::target_server(&endpoints.target, &args.bookkeeping.name).await?;
    settings::check_target_server(&names.migration, &settled.state, &target_server)?;
    let holder = Holder::default();
    let source_side = SourceSide {
        holder: &holder,
        endpoint: &endpoints.source,
        kafka: &endpoints.kafka,
        schemas: settled.schemas,
        names: &names,
        layout: args.topics.layout(&names.migration),
        existing_topics: args.topics.existing_topics,
        encoding: args.topics.encoding,
        snapshot_encoding: crate::config::snapshot_encoding(
            args.topics.encoding,
            args.online,
            args.topics.snapshot_encoding,
        )?,
        jobs,
        online: args.online,
        max_source_rate: args.rate.max_source_rate,
        target_databases: settled.databases,
        target_server: Some(target_server),
        type_mapping: Some(mapping.type_mapping()),
        patterns: settled.patterns,
    };
    let sink_side = SinkSide {
        kafka: &endpoints.kafka,
        target: &endpoints.target,
        bookkeeping_db: &args.bookkeeping.name,
        migration: &names.migration,
        mapping: &mapping,
        jobs,
        load_path: args.load_path.forced(),
        guard: args.guard,
    };
    let progress = Progress::new(Track::Applied);
    // A snapshot whose PostgreSQL session ended (a COPY session terminated, the server restarted)
    // cannot go on under its exported snapshot: the source starts it over as a new run, which the
    // sink follows, within --retry-for.
    let mut restarts = Backoff::new("copying the snapshot");
    let both_sides = async {
        loop {
            let (announced, announcement) = oneshot::channel();
            let source = async {
                source::copy_snapshot(&source_side, &progress, Some(announced)).await?;
                source::stream_changes(&source_side).await
            };
            let sink = sink::load_run(&sink_side, WantedRun::Announced(announcement), &progress, &clock);
            match tokio::try_join!(source, sink) {
                Ok((_, loaded)) => break Ok(loaded),
                Err(error) if retry::waits_for(&error) == Some("PostgreSQL") => {
                    restarts.wait(error).await?;
                    progress.restart();
                }
                Err(error) => return Err(error),
            }
        }
    };
    // The source stops with this process: whatever ends it, the run's waiters are told.
    let loaded = failure::recorded(&endpoints.kafka, &names.migration, &holder, both_sides.await).await?;

    // The rows are compared while the post-data DDL is applied, which changes none of them: one
    // statement at a time leaves the other cores to the comparison. The objects are checked after.
    let config = passerelle_verify::Config { source: endpoints.source.clone(), target: endpoints.target.clone(), jobs };
    let (schema, plan) = (loaded.schema().clone(), loaded.plan.clone());
    let (post_data_done, objects_ready) = oneshot::channel::<()>();
    let post_data = async {
        let applied = loaded.post_data(&sink_side, &clock).await;
        let _ = post_data_done.send(());
        failure::recorded(&endpoints.kafka, &names.migration, &holder, applied).await
    };
    let objects_ready = async {
        let _ = objects_ready.await;
    };
    let verification = crate::verify::compare_during_post_data(&config, &schema, &plan, objects_ready);
    let (applied, verification) = tokio::try_join!(post_data, verification)?;
    clock.lap("verify");

    // Verified, the run needs its slot no more: an offline run never streams, an online one streamed
    // up to its cutover. Left, it would retain the source's WAL until passerelle cleanup.
    let slot_dropped = verification.matches && !args.keep_slot && {
        let client = retry::retry("connecting to the source", || passerelle_pg::connect(&endpoints.source)).await?;
        let dropped = passerelle_pg::slot::drop_slot(&client, &endpoints.source, &names.slot).await?;
        passerelle_pg::slot::drop_publication(&client, &endpoints.source, &names.slot).await?;
        dropped
    };

    let tables = sink::table_summaries(&applied.plan, &progress);
    let mut run = RunSummary::new(names.migration.clone(), applied.run_id, clock, tables);
    run.changes = applied.changes;
    run.load_path = applied.load_path.map(passerelle_mysql::sink::LoadPath::name);
    run.ddl = Some(crate::report::DdlSummary::new(&applied.plan.report));
    let summary = Summary { run, slot: names.slot.clone(), slot_dropped, verified: verification.matches, verification };
    let systems = Systems {
        source: endpoints.source.to_string(),
        kafka: Some(endpoints.kafka.to_string()),
        target: endpoints.target.to_string(),
    };
    let mut handover = Handover::new(
        "migrate",
        &names.migration,
        Some(&summary.run.run_id),
        systems,
        &applied.plan.report,
        &summary.verification,
        Some(&summary.run),
    );
    if !slot_dropped {
        handover.warnings.push(format!(
            "the replication slot {} stays and retains WAL on the source until passerelle cleanup",
            names.slot
        ));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", render(&summary));
    }
    handover.write(args.report.report_dir.as_deref());
    Ok(if summary.verified { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn render(summary: &Summary) -> String {
    let mut out = summary.run.render("migrated");
    if summary.verified {
        out.push_str("verified: every table's row count and content checksum match the source\n");
    } else {
        out.push_str(&summary.verification.render());
        out.push_str("NOT VERIFIED: the target differs from the source, see above\n");
    }
    if summary.slot_dropped {
        out.push_str(&format!(
            "the replication slot {} and its publication are dropped: the source retains no WAL for this migration\n",
            summary.slot
        ));
    } else {
        out.push_str(&format!(
            "the replication slot {} stays and retains WAL on the source: drop it with passerelle cleanup\n",
            summary.slot
        ));
    }
    out
}
