//! `passerelle cutover`: ends an online migration once the application has stopped writing to the
//! source. It takes the source's current WAL position as the cutover LSN and puts it on the control
//! topic; the source streams up to it and says where every partition ended; the sinks apply up to
//! there, then the post-data DDL and AUTO_INCREMENT from the sequences at the cutover; then the target
//! is verified against the source, which no longer changes.
//!
//! The verification is in two steps, so the cutover's window holds little of it: before the cutover,
//! while the source still changes, every table is compared whole once the target holds everything
//! committed before a known WAL position, from which the source's changes are watched; after the
//! drain, only the rows the source changed since (their keys read from its WAL) and the counts.
//!
//! With `--freeze` the cutover stops the application's writes itself: it makes the source database
//! read-only and ends its other sessions (`pg::freeze`) before it takes the cutover LSN, and prints
//! the downtime, from the freeze to the verified target. If the target does not verify, or the
//! cutover fails or is interrupted, it makes the source read-write again, so the application goes on
//! with the source where it was.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use passerelle_kafka::control::{self, Cutover, RunAnnouncement};
use passerelle_kafka::producer::Producer;
use passerelle_kafka::topic::{control_topic, end_offsets};
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::event::Lsn;
use passerelle_model::schema::QualifiedName;
use passerelle_mysql::bookkeeping::{self, Phase};
use passerelle_pg::changed_keys::KeyWatch;
use passerelle_verify::report::TableOutcome;
use serde::Serialize;

use crate::args::{BookkeepingDb, KafkaBrokers, SourceUrl, TargetUrl};
use crate::config::{run_topics, Names, NamingArgs};
use crate::failure;
use crate::handover::{Handover, ReportDirArg, Systems};
use crate::mapping::{self, Mapping, TargetMappingArgs};
use crate::pause;
use crate::retry;
use crate::settings;
use crate::shutdown;

/// How often the cutover looks at the control topic and the target while it waits: the window waits too.
const POLL: Duration = Duration::from_millis(250);
/// How often the first step of the verification looks whether the target has caught up.
const CATCH_UP_POLL: Duration = Duration::from_millis(250);
/// How often a long wait says whom it waits for.
const NOTE_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct CutoverArgs {
    #[command(flatten)]
    pub source: SourceUrl,
    #[command(flatten)]
    pub kafka: KafkaBrokers,
    #[command(flatten)]
    pub target: TargetUrl,
    #[command(flatten)]
    pub mapping: TargetMappingArgs,
    #[command(flatten)]
    pub naming: NamingArgs,
    #[command(flatten)]
    pub bookkeeping: BookkeepingDb,
    /// Tables verified at once, each with a connection to each database (verify's default: the
    /// work is the databases', and the window waits on it)
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    #[command(flatten)]
    pub report: ReportDirArg,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Stop the application's writes first: make the source database read-only (ALTER DATABASE ...
    /// SET default_transaction_read_only = on) and end its other sessions; made read-write again if
    /// the target does not verify or the cutover fails
    #[arg(long)]
    pub freeze: bool,
}

#[derive(Serialize)]
struct CutoverReport {
    migration: String,
    run_id: String,
    lsn: String,
    /// From the cutover request until the source had streamed everything before it.
    stream_drained_seconds: f64,
    /// From the cutover request until the target held everything, with its post-data DDL.
    target_ready_seconds: f64,
    verified: bool,
    /// The first step of the verification, while the source still changed: every table, whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_verification: Option<FirstReport>,
    /// With `--freeze`: what the freeze did and how long the source took no writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    freeze: Option<FreezeReport>,
    verification: passerelle_verify::report::Report,
}

#[derive(Serialize)]
struct FirstReport {
    /// The source's WAL position from which its changes were watched.
    from_lsn: String,
    seconds: f64,
    /// Tables that differed then (the source changed under the comparison) or could not be
    /// compared, and whose differing rows could not be listed: compared whole again at the cutover.
    compared_again_whole: Vec<String>,
    /// Per table that differed then, how many of its rows did, read row by row while the source
    /// still changed: the cutover re-checks them.
    rows_that_differed: BTreeMap<String, usize>,
    /// A second pass, still while the source changed: the rows of the changes committed from
    /// `from_lsn` to `pass_lsn`, and those that differed, compared again; `rows_that_differed` and
    /// `compared_again_whole` are what it left for the cutover.
    pass_lsn: String,
    changes_rechecked_while_streaming: u64,
    /// Changes the source committed from `pass_lsn` to the cutover, whose rows the cutover re-checked.
    changes_since: u64,
}

#[derive(Serialize)]
struct FreezeReport {
    database: String,
    /// The source's client sessions the freeze ended.
    sessions_ended: u64,
    /// From the freeze until the target was verified (or found different).
    downtime_seconds: f64,
    /// Whether the source stays read-only: only once the target is verified.
    source_read_only: bool,
}

pub async fn run(args: CutoverArgs) -> anyhow::Result<ExitCode> {
    let source = args.source.endpoint()?;
    let kafka = args.kafka.endpoint()?;
    let target = args.target.endpoint()?;
    let names = Names::new(args.naming.prefix_or_default(&source));
    crate::metrics::watch_slot(&source, &names.slot);
    let topic = control_topic(&names.migration);
    let state = retry::retry("reading the control topic", || control::read(&kafka, &topic)).await?;
    // A run whose source failed will not stream up to any LSN: say so rather than wait for it.
    failure::refuse_failed(&state, &names.migration)?;
    // The run's type mapping, not this process's flags: the cutover verifies what the sinks planned.
    let mapping = settings::settle_types(&names.migration, &state, &args.mapping)?;
    let Some(run) = state.run else {
        anyhow::bail!(
            "no run of {} is announced on {topic}; start one with passerelle migrate --online",
            names.migration
        )
    };
    if !run.online {
        anyhow::bail!(
            "run {} of {} is offline: it ends by itself, there is nothing to cut over",
            run.run_id,
            names.migration
        );
    }
    let requested = state.cutover.map(|cutover| Lsn(cutover.lsn));
    let ends = Ends { source: &source, kafka: &kafka, target: &target, names: &names, topic: &topic, run: &run };
    let planned = mapping::plan_for(run.schema.clone(), &run.schemas, &mapping, &target, None).await?;
    // A cutover requested already has stopped the stream: nothing to verify while it streams.
    let first = match requested {
        None => Some(ends.verify_while_streaming(&args, &planned).await?),
        Some(_) => None,
    };
    pause::point(pause::FIRST_VERIFIED, 0).await;
    if !args.freeze {
        let outcome = ends.cut_over(&args, &planned, requested, first).await?;
        return report(&args, outcome, None);
    }

    let client = passerelle_pg::connect(&source).await?;
    if let Some(lsn) = requested {
        eprintln!(
            "passerelle: warning: the cutover was requested at {lsn} before this freeze: writes the source took \
             since are not in the target, and the verification will say so"
        );
    }
    let frozen_at = Instant::now();
    let frozen = passerelle_pg::freeze::freeze(&client, &source).await?;
    eprintln!(
        "passerelle: the source database {} is read-only; {} other session(s) ended",
        frozen.database, frozen.n_ended
    );
    // Asked to stop, the cutover ends here, so that the source is made read-write again in time.
    let outcome = tokio::select! {
        outcome = ends.cut_over(&args, &planned, requested, first) => outcome,
        () = shutdown::requested_wait() => Err(shutdown::Stopped.into()),
    };
    let downtime_seconds = frozen_at.elapsed().as_secs_f64();
    let verified = outcome.as_ref().is_ok_and(|outcome| outcome.verified);
    if !verified {
        let thawed = passerelle_pg::freeze::thaw(&client, &source, &frozen.database).await;
        let why = if outcome.is_ok() { "the target does not match it" } else { "the cutover did not finish" };
        match thawed {
            Ok(()) => eprintln!(
                "passerelle: {why}: the source database {} is read-write again, the application can go on with it",
                frozen.database
            ),
            Err(error) => eprintln!(
                "passerelle: {why}, and the source database {} could not be made read-write again ({error}); run \
                 ALTER DATABASE {} RESET default_transaction_read_only",
                frozen.database, frozen.database
            ),
        }
    }
    let freeze = FreezeReport {
        database: frozen.database,
        sessions_ended: frozen.n_ended,
        downtime_seconds,
        source_read_only: verified,
    };
    report(&args, outcome?, Some(freeze))
}

/// What the run that is cut over needs: where everything is.
struct Ends<'a> {
    source: &'a DbEndpoint,
    kafka: &'a KafkaEndpoint,
    target: &'a DbEndpoint,
    names: &'a Names,
    topic: &'a str,
    run: &'a RunAnnouncement,
}

/// The first step of the verification, done: the source's changes since are watched.
struct FirstStep {
    watch: KeyWatch,
    seconds: f64,
    /// Where the second pass read the changes up to, and how many it read.
    pass_lsn: Lsn,
    changes_in_pass: u64,
    /// The tables to compare whole again at the cutover.
    whole: BTreeSet<QualifiedName>,
    /// The tables that differed, with the canonical keys of their rows that did.
    listed: BTreeMap<QualifiedName, Vec<Vec<String>>>,
}

impl Ends<'_> {
    /// The first step of the verification, while the source still changes: from a known position
    /// on, the source's changes are watched (`pg::changed_keys`); once the target holds everything
    /// committed before it, every table is compared whole. A row that differs then was changed
    /// since (the cutover re-checks it), or is wrong: a table that differs is read again row by
    /// row, and the cutover re-checks the rows that differ (or, past what is listed, the whole table).
    async fn verify_while_streaming(&self, args: &CutoverArgs, mapping: &Mapping) -> anyhow::Result<FirstStep> {
        let started = Instant::now();
        let (source, names) = (self.source, self.names);
        let watcher: String = format!("{}_keys", names.slot).chars().take(63).collect();
        let watch = KeyWatch::start(source, &watcher, &names.slot).await?;
        eprintln!(
            "passerelle: watching the source's changes from {}; waiting for the target to hold everything before",
            watch.from
        );
        self.wait_for_the_target(args, watch.from, started).await?;
        // The target holds what the source wrote before: the tables that changed by then are announced.
        let (replanned, _) = self.as_they_stand(mapping).await?;
        let mapping = replanned.as_ref().unwrap_or(mapping);
        self.build_fk_indexes(mapping).await?;
        eprintln!("passerelle: the target has caught up; verifying every table while the source still changes");
        let (n_tables, listed, whole) = self.compare_every_table(args, mapping).await?;
        // A second pass, still while the source changes: the rows changed since the watch began, and
        // those that differed, compared again; only what differs now is left for the cutover, with
        // the changes from here on, so that its window re-checks seconds of changes, not minutes.
        let client = passerelle_pg::connect(source).await?;
        let pass_lsn = passerelle_pg::slot::current_wal_lsn(&client, source).await?;
        let changed = watch.take_keys_until(pass_lsn).await?;
        let changes_in_pass = changed.n_changes;
        eprintln!(
            "passerelle: comparing again the rows of the {changes_in_pass} change(s) since {} and those that differed",
            watch.from
        );
        let recheck = passerelle_verify::Recheck { whole, changed, listed };
        let (listed, whole) =
            passerelle_verify::differing_among(&self.config(args), &mapping.schema, &mapping.plan, &recheck).await?;
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "passerelle: first verification in {seconds:.1}s: {} of {n_tables} table(s) match; the cutover re-checks \
             the rows the source changes from now on{}{}",
            n_tables - whole.len() - listed.len(),
            match listed.values().map(Vec::len).sum::<usize>() {
                0 => String::new(),
                n => format!(", the {n} row(s) that differed"),
            },
            match whole.len() {
                0 => String::new(),
                n => format!(", and compares {n} table(s) whole again"),
            }
        );
        Ok(FirstStep { watch, seconds, pass_lsn, changes_in_pass, whole, listed })
    }

    /// Waits until every change committed before `from` is in Kafka (the slot confirmed past it)
    /// and the target applied everything Kafka holds then; stops if the run's source failed.
    async fn wait_for_the_target(&self, args: &CutoverArgs, from: Lsn, started: Instant) -> anyhow::Result<()> {
        let (source, names) = (self.source, self.names);
        let client = passerelle_pg::connect(source).await?;
        let mut said = started;
        loop {
            let slot = passerelle_pg::slot::slot_info(&client, source, &names.slot).await?;
            if slot.and_then(|slot| slot.confirmed_flush).is_some_and(|confirmed| confirmed >= from) {
                break;
            }
            let state = retry::retry("reading the control topic", || control::read(self.kafka, self.topic)).await?;
            failure::refuse_failed(&state, &names.migration)?;
            still_waiting_for_the_source(&mut said, started, source, &names.slot).await;
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
        // A partition's changes travel in its root's topic.
        let topics = run_topics(&names.migration, &self.run.schema);
        let ends = retry::retry("reading the topics' ends", || end_offsets(self.kafka, &topics)).await?;
        let mut conn = passerelle_mysql::connect(self.target).await?;
        loop {
            let applied = bookkeeping::offsets(&mut conn, self.target, &args.bookkeeping.name, &topics).await?;
            let behind = ends.iter().any(|end| {
                let start = self.run.starts.iter().find(|s| s.topic == end.topic && s.partition == end.partition);
                let next = applied.get(&(end.topic.clone(), end.partition)).copied();
                end.end > next.or(start.map(|start| start.end)).unwrap_or(0)
            });
            if !behind {
                break;
            }
            let state = retry::retry("reading the control topic", || control::read(self.kafka, self.topic)).await?;
            failure::refuse_failed(&state, &names.migration)?;
            still_waiting(&mut said, started, "the sinks (passerelle migrate --online or passerelle sink)");
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
        let _ = conn.disconnect().await;
        Ok(())
    }

    /// `mapping` planned again for the tables as they stand now, when some changed during the run, and
    /// which changed.
    async fn as_they_stand(&self, mapping: &Mapping) -> anyhow::Result<(Option<Mapping>, BTreeSet<QualifiedName>)> {
        let state = retry::retry("reading the control topic", || control::read(self.kafka, self.topic)).await?;
        let altered: BTreeSet<QualifiedName> = state.altered.iter().map(|altered| altered.table.name.clone()).collect();
        let replanned = state.current_schema().filter(|_| !altered.is_empty()).map(|schema| {
            let plan = passerelle_ddl::plan(&schema, &mapping.config);
            Mapping { schema, config: mapping.config.clone(), plan }
        });
        Ok((replanned, altered))
    }

    /// Builds the indexes foreign keys need. No change can violate them: built now, they leave the
    /// cutover's window only the keys themselves (InnoDB would build them with the keys there). The
    /// cutover does without them if they cannot be built now.
    async fn build_fk_indexes(&self, mapping: &Mapping) -> anyhow::Result<()> {
        let mut conn = passerelle_mysql::connect(self.target).await?;
        match passerelle_mysql::schema_apply::build_fk_indexes(&mut conn, self.target, &mapping.plan.fk_indexes).await {
            Ok(0) => {}
            Ok(n) => {
                eprintln!("passerelle: built {n} index(es) that foreign keys need, while the source still changes")
            }
            Err(error) => eprintln!(
                "passerelle: warning: {}; the cutover builds them with the foreign keys instead",
                error.cause()
            ),
        }
        let _ = conn.disconnect().await;
        Ok(())
    }

    /// Compares every table whole while the source changes; a table that differs is read again row
    /// by row. Returns how many tables were compared, the rows that differed per table that did,
    /// and the tables to compare whole again (past what is listed, or not comparable by rows).
    async fn compare_every_table(
        &self,
        args: &CutoverArgs,
        mapping: &Mapping,
    ) -> anyhow::Result<(usize, BTreeMap<QualifiedName, Vec<Vec<String>>>, BTreeSet<QualifiedName>)> {
        let config = self.config(args);
        let verification = crate::verify::compare(&config, &mapping.schema, &mapping.plan).await?;
        let differing: BTreeSet<QualifiedName> = verification
            .tables
            .iter()
            .filter(|table| table.outcome != TableOutcome::Match)
            .filter_map(|table| self.run.schema.tables.iter().find(|t| t.name.to_string() == table.table))
            .map(|table| table.name.clone())
            .collect();
        if !differing.is_empty() {
            eprintln!(
                "passerelle: {} table(s) differed while the source changed; listing the rows that differ",
                differing.len()
            );
        }
        let listed = passerelle_verify::differing_keys(&config, &mapping.schema, &mapping.plan, &differing).await?;
        let whole = differing.into_iter().filter(|name| !listed.contains_key(name)).collect();
        Ok((verification.tables.len(), listed, whole))
    }

    fn config(&self, args: &CutoverArgs) -> passerelle_verify::Config {
        passerelle_verify::Config {
            source: self.source.clone(),
            target: self.target.clone(),
            jobs: usize::from(args.jobs),
        }
    }

    /// Waits for the stream to drain up to the cutover and for the target to be ready (its keys
    /// built); returns the seconds from `started` to each.
    async fn wait_until_ready(&self, args: &CutoverArgs, started: Instant) -> anyhow::Result<(f64, f64)> {
        let (source, kafka, target, names, topic, run) =
            (self.source, self.kafka, self.target, self.names, self.topic, self.run);
        let mut said = started;
        loop {
            let state = retry::retry("reading the control topic", || control::read(kafka, topic)).await?;
            failure::refuse_failed(&state, &names.migration)?;
            if state.stream_done.is_some() {
                break;
            }
            still_waiting_for_the_source(&mut said, started, source, &names.slot).await;
            tokio::time::sleep(POLL).await;
        }
        let stream_drained_seconds = started.elapsed().as_secs_f64();
        eprintln!("passerelle: every change is in Kafka; waiting for the target to apply it and finish its keys");
        let database = &args.bookkeeping.name;
        let mut conn = passerelle_mysql::connect(target).await?;
        loop {
            let state = bookkeeping::run_state(&mut conn, target, database, &names.migration).await?;
            if state.is_some_and(|state| state.run_id == run.run_id && state.phase == Phase::PostData) {
                break;
            }
            // `migrate` applies the run in the process that streams it, and records any failure of its own.
            let control = retry::retry("reading the control topic", || control::read(kafka, topic)).await?;
            failure::refuse_failed(&control, &names.migration)?;
            still_waiting(&mut said, started, "the sinks (passerelle migrate --online or passerelle sink)");
            tokio::time::sleep(POLL).await;
        }
        let _ = conn.disconnect().await;
        let target_ready_seconds = started.elapsed().as_secs_f64();
        Ok((stream_drained_seconds, target_ready_seconds))
    }

    /// Requests the cutover (unless `requested` was), waits for the stream to drain and the target to
    /// be ready, verifies it (only what changed since `first`, when the first step was done) and
    /// writes the report to hand over.
    async fn cut_over(
        &self,
        args: &CutoverArgs,
        mapping: &Mapping,
        requested: Option<Lsn>,
        first: Option<FirstStep>,
    ) -> anyhow::Result<CutoverReport> {
        let (source, kafka, target, names, topic, run) =
            (self.source, self.kafka, self.target, self.names, self.topic, self.run);
        let started = Instant::now();
        let lsn = match requested {
            Some(lsn) => lsn,
            None => {
                let client = passerelle_pg::connect(source).await?;
                let marker = crate::stream::cutover_marker(&run.run_id);
                let lsn = passerelle_pg::stream::emit_marker(&client, source, &marker).await?;
                let producer = Producer::for_control(kafka, retry::bound())?.for_run(&run.run_id);
                control::request_cutover(&producer, topic, &Cutover { run_id: run.run_id.clone(), lsn: lsn.0 }).await?;
                lsn
            }
        };
        eprintln!("passerelle: cutover of {} at {lsn}: waiting for the source to stream up to it", names.migration);
        // The keys the source changed are read from its WAL while the stream drains and the target
        // finishes its keys: both wait on other processes.
        let changed_keys = async {
            match &first {
                Some(first) => Ok(Some(first.watch.keys_until(lsn).await?)),
                None => anyhow::Ok(None),
            }
        };
        let ((stream_drained_seconds, target_ready_seconds), changed) =
            tokio::try_join!(self.wait_until_ready(args, started), changed_keys)?;
        // Tables whose columns changed during the run are verified as they stand now, and whole: an
        // added column's value in every existing row came with no change to re-check.
        let (replanned, altered) = self.as_they_stand(mapping).await?;
        let mapping = replanned.as_ref().unwrap_or(mapping);

        let systems =
            Systems { source: source.to_string(), kafka: Some(kafka.to_string()), target: target.to_string() };
        let mut first_verification = None;
        let recheck = match (first, changed) {
            (Some(first), Some(changed)) => {
                first_verification = Some(FirstReport {
                    from_lsn: first.watch.from.to_string(),
                    seconds: first.seconds,
                    compared_again_whole: first.whole.iter().map(ToString::to_string).collect(),
                    rows_that_differed: first
                        .listed
                        .iter()
                        .filter(|(_, keys)| !keys.is_empty())
                        .map(|(name, keys)| (name.to_string(), keys.len()))
                        .collect(),
                    pass_lsn: first.pass_lsn.to_string(),
                    changes_rechecked_while_streaming: first.changes_in_pass,
                    changes_since: changed.n_changes,
                });
                eprintln!(
                    "passerelle: re-checking the rows of the {} change(s) the source committed since the first \
                     verification, and every table's count",
                    changed.n_changes
                );
                let whole = first.whole.into_iter().chain(altered).collect();
                Some(passerelle_verify::Recheck { whole, changed, listed: first.listed })
            }
            _ => None,
        };
        let verification =
            crate::verify::compare_or_recheck(&self.config(args), &mapping.schema, &mapping.plan, recheck).await?;
        let handover = Handover::new(
            "cutover",
            &names.migration,
            Some(&run.run_id),
            systems,
            &mapping.plan.report,
            &verification,
            None,
        );
        handover.write(args.report.report_dir.as_deref());
        Ok(CutoverReport {
            migration: names.migration.clone(),
            run_id: run.run_id.clone(),
            lsn: lsn.to_string(),
            stream_drained_seconds,
            target_ready_seconds,
            verified: verification.matches,
            first_verification,
            freeze: None,
            verification,
        })
    }
}

/// Prints the cutover's report, as text or JSON; exit 1 when the target does not match.
fn report(args: &CutoverArgs, mut report: CutoverReport, freeze: Option<FreezeReport>) -> anyhow::Result<ExitCode> {
    report.freeze = freeze;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "cutover at {}: the stream drained in {:.1}s, the target was ready in {:.1}s",
            report.lsn, report.stream_drained_seconds, report.target_ready_seconds
        );
        if report.verified {
            println!(
                "verified: every table's row count and content checksum match the source; switch the application over"
            );
        } else {
            print!("{}", report.verification.render());
            println!("NOT VERIFIED: the target differs from the source, see above");
        }
        if let Some(freeze) = &report.freeze {
            let state = match freeze.source_read_only {
                true => "stays read-only",
                false => "is read-write again",
            };
            println!(
                "downtime: {:.1}s from the freeze to the {} target; the source database {} {state}",
                freeze.downtime_seconds,
                if report.verified { "verified" } else { "compared" },
                freeze.database
            );
        }
    }
    Ok(if report.verified { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Whether a walsender streams from `slot` (true when that cannot be read: no false alarm).
async fn slot_streams(source: &DbEndpoint, slot: &str) -> bool {
    let Ok(client) = passerelle_pg::connect(source).await else { return true };
    let info = passerelle_pg::slot::slot_info(&client, source, slot).await;
    info.map_or(true, |info| info.is_none_or(|info| info.active))
}

/// [`still_waiting`] for the source, and whether any process streams from its slot: a source killed
/// outright records no failure, its slot says nobody streams.
async fn still_waiting_for_the_source(said: &mut Instant, started: Instant, source: &DbEndpoint, slot: &str) {
    if said.elapsed() < NOTE_EVERY {
        return;
    }
    let whom = "the source (passerelle migrate --online or passerelle source --online)";
    if slot_streams(source, slot).await {
        still_waiting(said, started, whom);
    } else {
        let whom = format!("{whom}: no process streams from the slot {slot}; start it again and the cutover goes on");
        still_waiting(said, started, &whom);
    }
}

/// Every half minute of waiting, says who is being waited for: a process that is not running never
/// finishes the cutover.
fn still_waiting(said: &mut Instant, started: Instant, whom: &str) {
    if said.elapsed() >= NOTE_EVERY {
        let seconds = started.elapsed().as_secs();
        eprintln!("passerelle: still waiting after {seconds} s for {whom}; is it running? passerelle status shows how far it got");
        *said = Instant::now();
    }
}
