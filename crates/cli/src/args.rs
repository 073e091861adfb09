//! The command line, first stage: raw flags as clap parses them. `config` turns them into validated
//! endpoints.
//!
//! URLs are taken as plain strings so that a malformed one is reported by `config` without echoing it
//! (it may hold a password), and `hide_env_values` keeps `--help` from printing the environment's URLs.

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use passerelle_kafka::preflight::Durability;
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint, Secret};
use passerelle_mysql::sink::LoadPath;

#[derive(Debug, Parser)]
#[command(
    name = "passerelle",
    version,
    about = "Move a live PostgreSQL database into MySQL or MariaDB through Apache Kafka"
)]
pub struct Args {
    /// More logs on stderr (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// How long to keep retrying a step that failed transiently (a broker or server restarting, a
    /// lost connection) before giving up: 90s, 5m, 1h
    #[arg(long, global = true, value_name = "DURATION", default_value = "5m", value_parser = crate::retry::parse_duration)]
    pub retry_for: std::time::Duration,

    /// Serve Prometheus metrics on http://HOST:PORT/metrics while the command runs (rows and bytes
    /// per table, events, batch latencies, replication lag, retained WAL, retries and errors)
    #[arg(long, global = true, env = "PASSERELLE_METRICS_ADDR", value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,

    /// A configuration file, TOML, whose keys are the long options (`jobs = 4`), at the top for
    /// every command or under [COMMAND] for one; flags and environment variables override it
    /// [default: ./passerelle.toml when there is one]
    #[arg(long, global = true, env = "PASSERELLE_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Preflight: can the source, Kafka and the target carry a migration?
    Check(CheckArgs),
    /// Translate the source schema into target DDL and a mapping report; optionally apply it
    Plan(crate::plan::PlanArgs),
    /// Copy the source into the target through Kafka: plan, pre-data, snapshot, post-data, verify
    Migrate(crate::migrate::MigrateArgs),
    /// The source side alone: copy the snapshot into Kafka and announce it on the control topic
    Source(crate::source::SourceArgs),
    /// The sink side alone: apply what Kafka holds to the target; several may share a migration
    Sink(crate::sink::SinkArgs),
    /// End an online migration once writes have stopped: drain the stream, finish the keys, verify
    Cutover(crate::cutover::CutoverArgs),
    /// Where a migration stands: its run, what Kafka holds, what the target applied, the slot
    Status(crate::status::StatusArgs),
    /// Drop a migration's replication slot, publication, topics and bookkeeping; the data stays
    Cleanup(crate::cleanup::CleanupArgs),
    /// Prove the target holds every source row unchanged: counts, checksums, differing keys, schema
    Verify(crate::verify::VerifyArgs),
    /// Print a command's effective configuration, each value with where it came from (a flag, the
    /// environment, the configuration file or the default), secrets masked
    Config(crate::effective::ConfigArgs),
    /// Print shell completions for bash, zsh, fish, elvish or powershell
    Completions(crate::manual::CompletionsArgs),
    /// Print the man page, or write every command's into a directory
    Man(crate::manual::ManArgs),
    /// Before anything moves: how long migrate will take, per phase, and the disk it needs
    Estimate(crate::estimate::EstimateArgs),
}

/// The PostgreSQL source. Every URL may come from the environment, which keeps passwords out of the
/// process list.
#[derive(Debug, clap::Args)]
pub struct SourceUrl {
    /// The PostgreSQL source: postgres://user:password@host:5432/database
    #[arg(id = "source", long = "source", env = "PASSERELLE_SOURCE", hide_env_values = true, value_name = "URL")]
    pub url: String,
}

impl SourceUrl {
    pub fn endpoint(&self) -> anyhow::Result<DbEndpoint> {
        Ok(DbEndpoint::parse_postgres(&self.url)?)
    }
}

#[derive(Debug, clap::Args)]
pub struct TargetUrl {
    /// The MySQL or MariaDB target: mysql://user:password@host:3306/database
    #[arg(id = "target", long = "target", env = "PASSERELLE_TARGET", hide_env_values = true, value_name = "URL")]
    pub url: String,
}

impl TargetUrl {
    pub fn endpoint(&self) -> anyhow::Result<DbEndpoint> {
        Ok(DbEndpoint::parse_mysql(&self.url)?)
    }
}

/// Where Passerelle keeps its own tables on the target server: never in the user's databases.
#[derive(Debug, clap::Args)]
pub struct BookkeepingDb {
    /// The target database that holds Passerelle's bookkeeping (runs, offsets, what it created)
    #[arg(
        long = "bookkeeping-db",
        env = "PASSERELLE_BOOKKEEPING_DB",
        default_value = "passerelle",
        value_name = "DATABASE"
    )]
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct KafkaBrokers {
    /// The Kafka bootstrap brokers: host:9092[,host:9092...]
    #[arg(id = "kafka", long = "kafka", env = "PASSERELLE_KAFKA", value_name = "BROKERS")]
    pub brokers: String,
    /// A librdkafka client properties file (key=value lines), like Kafka's --command-config:
    /// security.protocol, sasl.mechanism, sasl.username, ssl.ca.location, ...
    #[arg(long = "kafka-config", env = "PASSERELLE_KAFKA_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// A librdkafka client property, after those of --kafka-config; repeatable. Put secrets in
    /// the file or PASSERELLE_KAFKA_SASL_PASSWORD, not here
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
}

impl KafkaBrokers {
    /// The brokers with the properties of --kafka-config, then --kafka-option, then the SASL
    /// password from PASSERELLE_KAFKA_SASL_PASSWORD.
    pub fn endpoint(&self) -> anyhow::Result<KafkaEndpoint> {
        let mut endpoint = KafkaEndpoint::parse(&self.brokers)?;
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .map_err(|error| anyhow::anyhow!("cannot read --kafka-config {}: {error}", path.display()))?;
            endpoint.set_from_properties(&text)?;
        }
        for option in &self.options {
            let Some((key, value)) = option.split_once('=') else {
                anyhow::bail!("--kafka-option {:?} is not KEY=VALUE", option.split('=').next().unwrap_or_default());
            };
            endpoint.set(key.trim(), Secret::new(value.to_string()));
        }
        if let Ok(password) = std::env::var("PASSERELLE_KAFKA_SASL_PASSWORD") {
            endpoint.set("sasl.password", Secret::new(password));
        }
        Ok(endpoint)
    }
}

/// The two databases.
#[derive(Debug, clap::Args)]
pub struct DatabaseArgs {
    #[command(flatten)]
    pub source: SourceUrl,
    #[command(flatten)]
    pub target: TargetUrl,
}

/// Where the three systems are.
#[derive(Debug, clap::Args)]
pub struct EndpointArgs {
    #[command(flatten)]
    pub databases: DatabaseArgs,
    #[command(flatten)]
    pub kafka: KafkaBrokers,
}

/// How the sink loads snapshot rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadPathArg {
    /// LOAD DATA LOCAL where the server's local_infile allows it, else multi-row INSERT
    Auto,
    LoadData,
    Insert,
}

impl LoadPathArg {
    /// The path forced, if any.
    pub fn forced(self) -> Option<LoadPath> {
        match self {
            LoadPathArg::Auto => None,
            LoadPathArg::LoadData => Some(LoadPath::LoadData),
            LoadPathArg::Insert => Some(LoadPath::Insert),
        }
    }
}

/// How fast the snapshot may read the source.
#[derive(Debug, clap::Args)]
pub struct SourceRateArg {
    /// The most COPY bytes a second the snapshot reads from the source, all copy workers together
    /// (`20MB`, `500kB`; k, M and G are powers of 1000), so that it leaves the source's disks to its
    /// application [default: no limit]. The change stream is not limited
    #[arg(long, value_name = "BYTES", value_parser = parse_byte_rate)]
    pub max_source_rate: Option<u64>,
}

/// `20MB`, `20M`, `500kB`, `1G`, `1048576`: bytes, with an optional SI multiple.
fn parse_byte_rate(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches("/s").trim_end_matches('b');
    let (number, multiple) = match digits.chars().last() {
        Some('k') => (&digits[..digits.len() - 1], 1_000),
        Some('m') => (&digits[..digits.len() - 1], 1_000_000),
        Some('g') => (&digits[..digits.len() - 1], 1_000_000_000),
        _ => (digits, 1),
    };
    let bytes = number
        .trim()
        .parse::<f64>()
        .ok()
        .map(|n| n * multiple as f64)
        .filter(|bytes| bytes.is_finite() && *bytes >= 1.0)
        .map(|bytes| bytes as u64)
        .ok_or_else(|| format!("{text:?} is not a number of bytes a second, such as 20MB or 500kB"))?;
    Ok(bytes)
}

/// How the migration's topics are replicated and how long they keep records: what `check` checks
/// against the cluster, and what `migrate` and `source` create them with.
#[derive(Debug, clap::Args)]
pub struct DurabilityArgs {
    /// Replication factor of each topic (at least the brokers' min.insync.replicas: writes are acks=all)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=16))]
    pub replication_factor: i32,
    /// retention.ms of each topic, longer than the run may last [default: the broker's]
    #[arg(long, value_name = "MS")]
    pub retention_ms: Option<i64>,
}

impl DurabilityArgs {
    pub fn durability(&self) -> Durability {
        Durability { replication: self.replication_factor, retention_ms: self.retention_ms }
    }
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    #[command(flatten)]
    pub durability: DurabilityArgs,
    /// The topics are created beforehand (see migrate --existing-topics): check that the migration's
    /// control topic exists instead of creating and deleting one
    #[arg(long)]
    pub existing_topics: bool,
    #[command(flatten)]
    pub naming: crate::config::NamingArgs,
    /// Check only the tables of this PostgreSQL schema; repeat for several [default: every schema]
    #[arg(long = "schema", value_name = "SCHEMA")]
    pub schemas: Vec<String>,
    #[command(flatten)]
    pub bookkeeping: BookkeepingDb,
    /// Print the findings as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// The command line's definition with the configuration file's values as its defaults, and where
/// each of those came from: what `passerelle config` shows.
pub struct Cli {
    pub command: clap::Command,
    pub origins: crate::config_file::Origins,
}

/// Parses the command line over the configuration file; also returns warnings about how it was given.
pub fn parse() -> anyhow::Result<(Args, Vec<String>, Cli)> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (command, origins) = match crate::config_file::locate(&argv) {
        Some((path, _)) => crate::config_file::apply(Args::command(), &path)?,
        None => (Args::command(), crate::config_file::Origins::default()),
    };
    let matches = command.clone().get_matches_from(argv);
    let warnings = password_warnings(&matches).into_iter().chain(secret_option_warnings(&matches));
    let mut said: Vec<String> = warnings.map(|warning| format!("warning: {warning}")).collect();
    said.extend(chosen_parallelism(&matches, &origins));
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    Ok((args, said, Cli { command, origins }))
}

/// The default of every `--jobs` and `--partitions`: this machine's CPUs, at most 8. A copy worker
/// and an apply connection per core keep the machine busy, and each sink connection takes its own
/// partitions; past 8, connections mostly wait on the databases' own locks and disks.
pub fn machine_parallelism() -> u16 {
    std::thread::available_parallelism().map_or(2, |cpus| cpus.get().clamp(1, 8) as u16)
}

/// What `--jobs` and `--partitions` were set to when neither the command line, the environment nor
/// the configuration file chose them.
fn chosen_parallelism(matches: &ArgMatches, origins: &crate::config_file::Origins) -> Option<String> {
    let (command, sub) = matches.subcommand()?;
    // verify's and cutover's --jobs (tables compared at once) have a default of their own.
    if ["verify", "cutover"].contains(&command) {
        return None;
    }
    let chosen: Vec<String> = ["jobs", "partitions"]
        .into_iter()
        .filter(|id| sub.ids().any(|known| known == id))
        .filter(|id| sub.value_source(id) == Some(ValueSource::DefaultValue) && origins.of(command, id).is_none())
        .map(|id| format!("--{id} {}", machine_parallelism()))
        .collect();
    let cpus = std::thread::available_parallelism().map_or(0, |cpus| cpus.get());
    (!chosen.is_empty()).then(|| format!("{}, from this machine's {cpus} CPUs", chosen.join(" ")))
}

/// A password written in a URL on the command line is visible to every user of the machine
/// (`ps`, /proc): say so, and where to put it instead.
fn password_warnings(matches: &ArgMatches) -> Vec<String> {
    let Some((_, sub)) = matches.subcommand() else { return Vec::new() };
    [("source", "PASSERELLE_SOURCE"), ("target", "PASSERELLE_TARGET")]
        .into_iter()
        .filter(|(id, _)| sub.try_get_one::<String>(id).ok().flatten().is_some_and(|url| url_has_password(url)))
        .filter(|(id, _)| sub.value_source(id) == Some(ValueSource::CommandLine))
        .map(|(id, var)| {
            format!("the --{id} URL on the command line holds a password that other users can read; set {var} instead")
        })
        .collect()
}

/// The same for a secret Kafka property given with --kafka-option on the command line (in the
/// configuration file it is as safe as the file).
fn secret_option_warnings(matches: &ArgMatches) -> Vec<String> {
    let Some((_, sub)) = matches.subcommand() else { return Vec::new() };
    let Ok(Some(options)) = sub.try_get_many::<String>("options") else { return Vec::new() };
    if sub.value_source("options") != Some(ValueSource::CommandLine) {
        return Vec::new();
    }
    options
        .filter_map(|option| option.split_once('=').map(|(key, _)| key.trim()))
        .filter(|key| passerelle_model::endpoint::is_secret_property(key))
        .map(|key| {
            format!(
                "--kafka-option {key} puts a secret on the command line, which every user of this machine can read: \
                 use --kafka-config, the configuration file or PASSERELLE_KAFKA_SASL_PASSWORD"
            )
        })
        .collect()
}

fn url_has_password(url: &str) -> bool {
    url.split_once("://").and_then(|(_, rest)| rest.split_once('@')).is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::parse_byte_rate;

    #[test]
    fn byte_rates_read_with_si_multiples() {
        assert_eq!(parse_byte_rate("20MB"), Ok(20_000_000));
        assert_eq!(parse_byte_rate("500kB/s"), Ok(500_000));
        assert_eq!(parse_byte_rate("1.5G"), Ok(1_500_000_000));
        assert_eq!(parse_byte_rate("0.5M"), Ok(500_000));
        assert_eq!(parse_byte_rate("4096"), Ok(4096));
        for refused in ["", "0", "fast", "-3MB", "0.1"] {
            let error = parse_byte_rate(refused).unwrap_err();
            assert!(error.contains("such as 20MB"), "{refused}: {error}");
        }
    }
}
