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
use tokio::sync::mpsc::UnboundedReceiver;

use crate::args::DatabaseArgs;
use crate::mapping::{self, Mapping, MappingArgs};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub databases: DatabaseArgs,
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// Tables compared at once; each opens one connection to the source and one to the target
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
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
    let Mapping { schema, plan, .. } = mapping::prepare(&args.mapping, &source, &target, None).await?;
    let config = passerelle_verify::Config { source, target, jobs: args.jobs };
    let report = compare(&config, &schema, &plan).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.matches { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Runs verify with its progress display.
pub async fn compare(
    config: &passerelle_verify::Config,
    schema: &passerelle_model::schema::Schema,
    plan: &passerelle_ddl::Plan,
) -> anyhow::Result<passerelle_verify::report::Report> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let display = tokio::spawn(show_progress(receiver));
    let report = passerelle_verify::run(config, schema, plan, sender).await;
    // The display ends when `run` drops the last sender.
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
