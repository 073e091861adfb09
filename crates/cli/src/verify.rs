//! `passerelle verify`: proves that the target holds the source's rows, no fewer, no more, none
//! altered, and the keys, constraints, indexes and comments the plan promised. The plan is built
//! as `plan` and `migrate` build it, from the same mapping flags, so all three agree on the target.
//!
//! Exit codes follow `main`: 0 everything matches, 1 something differs (the report says what),
//! 2 an error (verify could not finish).

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use passerelle_verify::report::TableOutcome;
use passerelle_verify::Progress;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use passerelle_kafka::control::{self, TargetServer};
use passerelle_kafka::topic::control_topic;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_mysql::bookkeeping;

use crate::args::{BookkeepingDb, DatabaseArgs, KafkaBrokers};
use crate::config::NamingArgs;
use crate::handover::{Handover, ReportDirArg, Systems};
use crate::mapping::{self, Mapping, MappingArgs, SelectionArgs, TargetMappingArgs};
use crate::settings;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub databases: DatabaseArgs,
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// Kafka's bootstrap brokers: where the migration's run, when there is one, fixes the schemas,
    /// target databases and target server verified [default: the flags']
    #[arg(long = "kafka", env = "PASSERELLE_KAFKA", value_name = "BROKERS")]
    pub kafka: Option<String>,
    /// A librdkafka client properties file, as for the other commands
    #[arg(long = "kafka-config", env = "PASSERELLE_KAFKA_CONFIG", value_name = "FILE")]
    pub kafka_config: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub naming: NamingArgs,
    #[command(flatten)]
    pub bookkeeping: BookkeepingDb,
    /// Tables compared at once; each opens one connection to the source and one to the target
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
    #[command(flatten)]
    pub report: ReportDirArg,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if args.jobs == 0 {
        anyhow::bail!("--jobs 0 would compare nothing; pass --jobs 1 or more");
    }
    let source = args.databases.source.endpoint()?;
    let target = args.databases.target.endpoint()?;
    let mapping = announced_mapping(&args, &source, &target).await?;
    let Mapping { schema, plan, .. } =
        mapping::prepare(mapping.as_ref().unwrap_or(&args.mapping), &source, &target, None).await?;
    let migration = args.naming.prefix_or_default(&source);
    let systems = Systems { source: source.to_string(), kafka: args.kafka.clone(), target: target.to_string() };
    let config = passerelle_verify::Config { source, target, jobs: args.jobs };
    let report = compare(&config, &schema, &plan).await?;
    Handover::new("verify", &migration, None, systems, &plan.report, &report, None)
        .write(args.report.report_dir.as_deref());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.matches { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The mapping of the migration's run, when Kafka is reached and its control topic announces one:
/// its schemas and target databases, a `--schema` or `--map` that differs refused, and its target
/// server, another refused. `None` (the flags' own mapping) without Kafka or without a run.
async fn announced_mapping(
    args: &VerifyArgs,
    source: &DbEndpoint,
    target: &DbEndpoint,
) -> anyhow::Result<Option<MappingArgs>> {
    let Some(brokers) = &args.kafka else { return Ok(None) };
    let kafka = KafkaBrokers { brokers: brokers.clone(), config: args.kafka_config.clone(), options: Vec::new() };
    let migration = args.naming.prefix_or_default(source);
    let topic = control_topic(&migration);
    // One look, not a wait: verify needs only the databases, and a run is a hint, not a requirement.
    let state = match control::read_within(&kafka.endpoint()?, &topic, ANNOUNCEMENT_LOOK).await {
        Ok(state) if state.run.is_some() => state,
        Ok(_) => return Ok(None),
        Err(error) => {
            eprintln!(
                "passerelle: no run of {migration} read from Kafka ({}); verifying with the flags' settings",
                error.cause()
            );
            return Ok(None);
        }
    };
    // The schemas first, then the databases: without --map, the run's.
    let settled = settings::settle_with(state, &migration, &args.mapping.selection, None)?;
    let mut maps = args.mapping.target.maps.clone();
    if maps.is_empty() {
        maps =
            settled.state.target_databases().iter().map(|(schema, database)| format!("{schema}={database}")).collect();
    }
    let target_args =
        settings::settle_types(&migration, &settled.state, &TargetMappingArgs { maps, ..args.mapping.target.clone() })?;
    let databases = mapping::databases(&settled.schemas, &target_args, target)?;
    settings::check_target_databases(&migration, &settled.state, &databases)?;
    if let Some(fixed) = settled.state.target_server() {
        let mut conn = passerelle_mysql::connect(target).await?;
        let installation = bookkeeping::installation(&mut conn, target, &args.bookkeeping.name).await?;
        let identity = bookkeeping::server_identity(&mut conn, target, installation.as_ref()).await?;
        let _ = conn.disconnect().await;
        let server = TargetServer {
            identity: identity.unwrap_or_else(|| format!("no Passerelle bookkeeping in {}", args.bookkeeping.name)),
            address: target.to_string(),
        };
        settings::check_target_server(&migration, &settled.state, &server)?;
        tracing::info!("the target is {fixed}, the run's server");
    }
    if let Some(run) = &settled.state.run {
        eprintln!("passerelle: verifying with the settings of run {} of {migration}", run.run_id);
    }
    let selection = SelectionArgs {
        schemas: settled.schemas,
        include: settled.patterns.include,
        exclude: settled.patterns.exclude,
        exclude_columns: settled.patterns.columns,
    };
    Ok(Some(MappingArgs { selection, target: target_args }))
}

/// How long verify looks for the migration's run on Kafka.
const ANNOUNCEMENT_LOOK: Duration = Duration::from_secs(10);

/// Runs verify with its progress display.
pub async fn compare(
    config: &passerelle_verify::Config,
    schema: &passerelle_model::schema::Schema,
    plan: &passerelle_ddl::Plan,
) -> anyhow::Result<passerelle_verify::report::Report> {
    compare_or_recheck(config, schema, plan, None).await
}

/// Runs verify with its progress display; with `recheck`, its second step (see
/// `passerelle_verify::recheck`).
pub async fn compare_or_recheck(
    config: &passerelle_verify::Config,
    schema: &passerelle_model::schema::Schema,
    plan: &passerelle_ddl::Plan,
    recheck: Option<passerelle_verify::Recheck>,
) -> anyhow::Result<passerelle_verify::report::Report> {
    shown(|sender| async move {
        match recheck {
            None => passerelle_verify::run(config, schema, plan, sender).await,
            Some(recheck) => passerelle_verify::recheck(config, schema, plan, recheck, sender).await,
        }
    })
    .await
}

/// Runs verify with its progress display while the post-data DDL is applied (see
/// `passerelle_verify::run_during_post_data`).
pub async fn compare_during_post_data(
    config: &passerelle_verify::Config,
    schema: &passerelle_model::schema::Schema,
    plan: &passerelle_ddl::Plan,
    objects_ready: impl std::future::Future<Output = ()>,
) -> anyhow::Result<passerelle_verify::report::Report> {
    shown(|sender| passerelle_verify::run_during_post_data(config, schema, plan, sender, objects_ready)).await
}

/// A verification given the sending end of the progress display.
async fn shown<Verification>(
    verification: impl FnOnce(UnboundedSender<Progress>) -> Verification,
) -> anyhow::Result<passerelle_verify::report::Report>
where
    Verification:
        std::future::Future<Output = Result<passerelle_verify::report::Report, passerelle_verify::VerifyError>>,
{
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let display = tokio::spawn(show_progress(receiver));
    let report = verification(sender).await;
    // The display ends when the verification drops the last sender.
    let _ = display.await;
    Ok(report?)
}

/// One line per table while it is compared, left with its outcome; drawn only on a terminal.
async fn show_progress(mut receiver: UnboundedReceiver<Progress>) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    let style = ProgressStyle::with_template("{spinner} {prefix} {msg} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let mut total = ProgressBar::hidden();
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    while let Some(event) = receiver.recv().await {
        match event {
            Progress::Planned { n_tables } => {
                total = multi.add(ProgressBar::new(n_tables as u64));
                total.set_style(
                    ProgressStyle::with_template("{prefix} {pos}/{len} tables {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                total.set_prefix("verify");
            }
            Progress::Started { table } => {
                let bar = multi.insert_before(&total, ProgressBar::new_spinner().with_style(style.clone()));
                bar.set_prefix(table.clone());
                bar.set_message("counting and checksumming both sides");
                bar.enable_steady_tick(Duration::from_millis(250));
                bars.insert(table, bar);
            }
            Progress::Pinpointing { table } => {
                if let Some(bar) = bars.get(&table) {
                    bar.set_message("differs: bisecting key ranges");
                }
            }
            Progress::Finished { table, outcome, source_rows } => {
                total.inc(1);
                if let Some(bar) = bars.remove(&table) {
                    let outcome = match outcome {
                        TableOutcome::Match => "ok",
                        _ => "DIFFERS",
                    };
                    bar.finish_with_message(format!("{outcome}, {} rows", source_rows.unwrap_or(0)));
                }
            }
        }
    }
    total.finish_and_clear();
}
