//! `passerelle`: moves a live PostgreSQL database into MySQL or MariaDB through Apache Kafka.
//!
//! `main` stays thin: parse the flags, run one command, print an error chain once, map it to an exit
//! code. Exit codes: 0 success, 1 the command ran and found a blocking problem, 2 an error (bad
//! input, an unreachable system, a failed step), 130 and 143 stopped by SIGINT or SIGTERM (`shutdown`).

mod altered;
mod apply;
mod args;
mod check;
mod cleanup;
mod config;
mod config_file;
mod cutover;
mod effective;
mod estimate;
mod failure;
mod handover;
mod manual;
mod mapping;
mod metrics;
mod migrate;
mod pause;
mod plan;
mod progress;
mod report;
mod retry;
mod selection;
mod settings;
mod shutdown;
mod sink;
mod snapshot;
mod source;
mod status;
mod stream;
mod values;
mod verify;
mod watch;

use std::process::ExitCode;

use args::{Args, Command};

/// glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MB), so that
/// rows of 10 MB values end up in its heaps, which it keeps once they are freed, one heap per thread
/// that allocated: with large values the process then holds several times what it uses. A fixed
/// threshold maps every block past 1 MB on its own and gives it back when it is freed, and four
/// arenas bound the heaps. Measured on 24 rows of 10 MB `bytea` and 5 MB `jsonb`: 500 MB resident at
/// peak before, what ARCHITECTURE.md's Memory paragraph gives after.
fn bound_the_heap() {
    // SAFETY: mallopt only sets malloc's parameters, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn main() -> ExitCode {
    bound_the_heap();
    let (args, said, cli) = match args::parse() {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("passerelle: error: {error:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(args.verbose);
    retry::configure(args.retry_for);
    for line in said {
        eprintln!("passerelle: {line}");
    }
    match run(args, &cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("passerelle: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args, cli: &args::Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        if let Some(addr) = &args.metrics_addr {
            let bound = metrics::serve(addr).await?;
            eprintln!("passerelle: metrics on http://{bound}/metrics");
        }
        match args.command {
            Command::Check(check_args) => check::run(check_args).await,
            Command::Plan(plan_args) => plan::run(plan_args).await,
            Command::Migrate(migrate_args) => shutdown::graceful(migrate::run(migrate_args)).await,
            Command::Source(source_args) => shutdown::graceful(source::run(source_args)).await,
            Command::Sink(sink_args) => shutdown::graceful(sink::run(sink_args)).await,
            Command::Status(status_args) => status::run(status_args).await,
            Command::Cutover(cutover_args) => shutdown::graceful(cutover::run(cutover_args)).await,
            Command::Cleanup(cleanup_args) => cleanup::run(cleanup_args).await,
            Command::Verify(verify_args) => verify::run(verify_args).await,
            Command::Config(config_args) => effective::run(config_args, cli),
            Command::Completions(completions_args) => manual::completions(completions_args),
            Command::Man(man_args) => manual::man(man_args),
            Command::Estimate(estimate_args) => estimate::run(estimate_args).await,
        }
    })
}

/// Logs go to stderr, at `warn` unless `-v` or `RUST_LOG` say otherwise. They never hold row values
/// or secrets. librdkafka's log arrives under the target `librdkafka` (`kafka::client`): its errors
/// and notices at debug, the lines of its `debug` property's contexts at trace.
fn init_tracing(verbose: u8) {
    // rdkafka's own messages repeat what librdkafka's log says; Passerelle reports outages itself,
    // once per retry, and -vv shows librdkafka's view of them.
    let default = match verbose {
        0 => "warn,rdkafka=off",
        1 => "info,rdkafka=off",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
