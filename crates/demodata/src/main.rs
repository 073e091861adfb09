//! `passerelle-demodata`: fills the database named by PASSERELLE_SOURCE with the airline demo
//! dataset at one of the published scales.
//!
//! `main` stays thin: parse the flags, run, print the error chain once on one line with what to do.
//! Exit codes: 0 loaded, 2 an error (bad input, an unreachable database, a failed step).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use passerelle_demodata::{Scale, Step};

#[derive(Debug, Parser)]
#[command(
    name = "passerelle-demodata",
    version,
    about = "Drop and recreate schema bookings with the airline demo dataset, generated inside PostgreSQL"
)]
struct Args {
    /// The published size to reproduce: small (2.3 M rows), medium (5.8 M) or big (21.6 M); or tiny
    /// (260 k rows, a tenth of small's bookings) for quick tests
    #[arg(long, value_parser = scale_parser())]
    scale: Scale,
    /// The seed: the same seed gives the same content
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The PostgreSQL database to fill: postgres://user:password@host:5432/database; the role needs
    /// CREATE on it. Set it in the environment, never on the command line, where other users can read it
    #[arg(long, env = "PASSERELLE_SOURCE", hide_env_values = true, value_name = "URL")]
    source: Option<String>,
}

/// The scale names, listed by `--help` and checked by clap.
fn scale_parser() -> impl clap::builder::TypedValueParser<Value = Scale> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Scale::ALL.map(|scale| scale.name()))
        .try_map(|name| name.parse::<Scale>().map_err(|error| error.to_string()))
}

fn main() -> ExitCode {
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    // A URL on the command line is visible to every user of the machine (ps, /proc): refuse it
    // rather than use it.
    if matches.value_source("source") == Some(ValueSource::CommandLine) {
        eprintln!("passerelle-demodata: error: the database URL is not taken on the command line; set PASSERELLE_SOURCE instead");
        return ExitCode::from(2);
    }
    let Some(source) = args.source.clone() else {
        eprintln!(
            "passerelle-demodata: error: PASSERELLE_SOURCE is not set; set it to the database URL (for the local stack: eval \"$(stack/stack.sh env)\")"
        );
        return ExitCode::from(2);
    };
    match run(args, &source) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("passerelle-demodata: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args, source: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(load(args, source))
}

async fn load(args: Args, source: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let (client, connection) = tokio_postgres::connect(source, tokio_postgres::NoTls).await.context(
        "cannot connect to the database of PASSERELLE_SOURCE; check the URL, or start the local stack with stack/stack.sh up",
    )?;
    let connection = tokio::spawn(connection);
    let database: String = client.query_one("select current_database()", &[]).await?.get(0);
    println!("loading the demo dataset, scale {} seed {}, into database {database}", args.scale, args.seed);

    let expected = args.scale.expected_rows();
    passerelle_demodata::load_with_progress(&client, args.scale, args.seed, |step: &Step| {
        let rows = match expected.iter().find(|(table, _)| *table == step.name) {
            Some((_, n_rows)) => format!("{} rows", thousands(*n_rows)),
            None => String::new(),
        };
        println!("  {:<16} {:>16} {:>8.1} s", step.name, rows, step.elapsed.as_secs_f64());
    })
    .await
    .context("the load failed and was rolled back; fix the cause and run again")?;
    drop(client);
    // The connection task ends once the client is gone; its error, if any, was already reported
    // by the failing query.
    let _ = connection.await;

    let elapsed = started.elapsed().as_secs_f64();
    let total = args.scale.total_rows();
    println!(
        "loaded {} rows (scale {}, seed {}) into {database}.bookings in {elapsed:.1} s ({:.0} rows/s)",
        thousands(total),
        args.scale,
        args.seed,
        total as f64 / elapsed
    );
    Ok(())
}

/// 1339 → "1,339": row counts are read by people.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let (head, tail) = digits.split_at(digits.len() % 3);
    let mut groups: Vec<&str> = if head.is_empty() { Vec::new() } else { vec![head] };
    groups.extend(tail.as_bytes().chunks(3).map(|group| std::str::from_utf8(group).unwrap_or_default()));
    groups.join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands() {
        assert_eq!(super::thousands(9), "9");
        assert_eq!(super::thousands(1_339), "1,339");
        assert_eq!(super::thousands(262_788), "262,788");
        assert_eq!(super::thousands(21_594_950), "21,594,950");
    }
}
