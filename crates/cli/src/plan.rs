//! `passerelle plan`: reads the source schema, writes the target DDL (pre-data and post-data) and the
//! mapping report, and applies the DDL when asked.
//!
//! Exit codes follow `main`: 0 planned (and applied), 1 refused to apply into a non-empty target,
//! 2 an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use passerelle_ddl::report::Report;
use passerelle_ddl::{Config, Dialect, IntervalAs, TypeOptions, UuidAs};
use passerelle_model::endpoint::DbEndpoint;
use passerelle_mysql::preflight::Flavour;
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The PostgreSQL source: postgres://user:password@host:5432/database
    #[arg(long, env = "PASSERELLE_SOURCE", hide_env_values = true, value_name = "URL")]
    pub source: String,
    /// The MySQL or MariaDB target: mysql://user:password@host:3306/database
    #[arg(long, env = "PASSERELLE_TARGET", hide_env_values = true, value_name = "URL")]
    pub target: String,
    /// A PostgreSQL schema to migrate; repeat for several [default: public]
    #[arg(long = "schema", value_name = "SCHEMA")]
    pub schemas: Vec<String>,
    /// Put a schema into a target database other than the target URL's
    #[arg(long = "map", value_name = "SCHEMA=DATABASE")]
    pub maps: Vec<String>,
    /// The target's dialect; auto asks the target server
    #[arg(long, value_enum, default_value = "auto")]
    pub dialect: DialectArg,
    /// How uuid columns are held (native is MariaDB's UUID type; on MySQL it means char36)
    #[arg(long, value_enum, default_value = "native")]
    pub uuid: UuidArg,
    /// How interval columns are held: ISO 8601 text or a count of microseconds
    #[arg(long, value_enum, default_value = "text")]
    pub interval: IntervalArg,
    /// The collation of text columns [default: the dialect's binary NO PAD collation, as PostgreSQL compares]
    #[arg(long, value_name = "COLLATION")]
    pub collation: Option<String>,
    /// Where to write pre-data.sql, post-data.sql, report.txt and report.json
    #[arg(long, value_name = "DIR", default_value = "passerelle-plan")]
    pub out: PathBuf,
    /// Apply the DDL to the target: the pre-data phase, the post-data phase, or both
    #[arg(long, value_enum, value_name = "PHASE")]
    pub apply: Option<Phase>,
    /// Apply even when the target databases already hold tables
    #[arg(long)]
    pub force: bool,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DialectArg {
    Auto,
    Mysql8,
    Mariadb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UuidArg {
    Native,
    Char36,
    Binary16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IntervalArg {
    Text,
    Microseconds,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Pre,
    Post,
    All,
}

#[derive(Serialize)]
struct Output<'a> {
    out: &'a Path,
    applied: Option<Phase>,
    report: &'a Report,
}

/// Each schema's target database: from `--map`, else the target URL's database.
fn databases(args: &PlanArgs, target: &DbEndpoint) -> anyhow::Result<BTreeMap<String, String>> {
    let mut maps = BTreeMap::new();
    for map in &args.maps {
        let Some((schema, database)) = map.split_once('=').filter(|(s, d)| !s.is_empty() && !d.is_empty()) else {
            anyhow::bail!("--map {map:?} is not SCHEMA=DATABASE; write it like --map bookings=demo");
        };
        maps.insert(schema.to_string(), database.to_string());
    }
    let schemas = if args.schemas.is_empty() { vec!["public".to_string()] } else { args.schemas.clone() };
    let mut databases = BTreeMap::new();
    for schema in schemas {
        let database = match (maps.remove(&schema), target.database.clone()) {
            (Some(database), _) | (None, Some(database)) => database,
            (None, None) => anyhow::bail!(
                "no target database for schema {schema:?}; name one in the target URL or pass --map {schema}=DATABASE"
            ),
        };
        databases.insert(schema, database);
    }
    if let Some(schema) = maps.keys().next() {
        anyhow::bail!("--map names schema {schema:?}, which is not migrated; add --schema {schema}");
    }
    Ok(databases)
}

pub async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let source = DbEndpoint::parse_postgres(&args.source)?;
    let target = DbEndpoint::parse_mysql(&args.target)?;
    let databases = databases(&args, &target)?;
    let schemas: Vec<String> = databases.keys().cloned().collect();

    let mut client = passerelle_pg::connect(&source).await?;
    let schema = passerelle_pg::catalog::read(&mut client, &source, &schemas).await?;

    // The target is asked only when its dialect is needed or the DDL is to be applied.
    let mut conn = match (args.dialect, args.apply) {
        (DialectArg::Auto, _) | (_, Some(_)) => Some(passerelle_mysql::connect(&target).await?),
        _ => None,
    };
    let dialect = match (args.dialect, conn.as_mut()) {
        (DialectArg::Mysql8, _) => Dialect::Mysql8,
        (DialectArg::Mariadb, _) => Dialect::Mariadb,
        (DialectArg::Auto, Some(conn)) => {
            match passerelle_mysql::schema_apply::server_version(conn, &target).await?.flavour {
                Flavour::Mysql => Dialect::Mysql8,
                Flavour::Mariadb => Dialect::Mariadb,
            }
        }
        (DialectArg::Auto, None) => anyhow::bail!("cannot detect the dialect without a target; pass --dialect"),
    };
    let config = Config {
        dialect,
        databases,
        types: TypeOptions {
            uuid: match args.uuid {
                UuidArg::Native => UuidAs::Native,
                UuidArg::Char36 => UuidAs::Char36,
                UuidArg::Binary16 => UuidAs::Binary16,
            },
            interval: match args.interval {
                IntervalArg::Text => IntervalAs::Text,
                IntervalArg::Microseconds => IntervalAs::Microseconds,
            },
            text_collation: args.collation.clone(),
        },
    };
    let plan = passerelle_ddl::plan(&schema, &config);
    write_files(&args.out, &plan, dialect)?;

    if let (Some(phase), Some(conn)) = (args.apply, conn.as_mut()) {
        if phase != Phase::Post && !args.force {
            let existing = passerelle_mysql::schema_apply::existing_objects(conn, &target, &plan.databases).await?;
            if !existing.is_empty() {
                eprintln!(
                    "passerelle: not applied: the target already holds {} table(s) or view(s) ({}); apply into empty \
                     databases, or pass --force to apply anyway",
                    existing.len(),
                    existing.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                );
                return Ok(ExitCode::from(1));
            }
        }
        if phase != Phase::Post {
            passerelle_mysql::schema_apply::apply(conn, &target, &plan.pre_data).await?;
        }
        if phase != Phase::Pre {
            passerelle_mysql::schema_apply::apply(conn, &target, &plan.post_data).await?;
        }
    }

    if args.json {
        let output = Output { out: &args.out, applied: args.apply, report: &plan.report };
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        let rendered = plan.report.render();
        print!("{}", rendered.lines().take(3).map(|line| format!("{line}\n")).collect::<String>());
        println!("wrote {} (pre-data.sql, post-data.sql, report.txt, report.json)", args.out.display());
        if let Some(phase) = args.apply {
            let phases = match phase {
                Phase::Pre => "pre-data",
                Phase::Post => "post-data",
                Phase::All => "pre-data and post-data",
            };
            println!("applied {phases} to {target}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_files(out: &Path, plan: &passerelle_ddl::Plan, dialect: Dialect) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create the output directory {}", out.display()))?;
    let script = |phase: &str, statements: &[String]| {
        let mut text = format!("-- passerelle plan: {phase} DDL for {dialect}\n\n");
        for statement in statements {
            text.push_str(statement);
            text.push_str(";\n\n");
        }
        text
    };
    let files = [
        ("pre-data.sql", script("pre-data", &plan.pre_data)),
        ("post-data.sql", script("post-data", &plan.post_data)),
        ("report.txt", plan.report.render()),
        ("report.json", serde_json::to_string_pretty(&plan.report)? + "\n"),
    ];
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
