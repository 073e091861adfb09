//! `passerelle plan`: reads the source schema, writes the target DDL (pre-data and post-data) and the
//! mapping report, and applies the DDL when asked.
//!
//! Exit codes follow `main`: 0 planned (and applied), 1 refused to apply into a non-empty target or
//! found source values the target would refuse (`--check-values`), 2 an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use passerelle_ddl::report::Report;
use passerelle_ddl::Server;
use passerelle_kafka::topic::TopicLayout;
use serde::Serialize;

use crate::args::DatabaseArgs;
use crate::config::{has_topic, NamingArgs};
use crate::mapping::{self, Mapping, MappingArgs};
use crate::source::TopicShape;
use crate::values;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub databases: DatabaseArgs,
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// Where to write pre-data.sql, post-data.sql, report.txt and report.json
    #[arg(long, value_name = "DIR", default_value = "passerelle-plan")]
    pub out: PathBuf,
    /// Apply the DDL to the target: the pre-data phase, the post-data phase, or both
    #[arg(long, value_enum, value_name = "PHASE")]
    pub apply: Option<Phase>,
    /// Apply even when the target databases already hold tables
    #[arg(long)]
    pub force: bool,
    /// Write the DDL for this server instead of the target's own version, without asking the target:
    /// mysql-8.0, mysql-8.4, mysql-9.7, mariadb-10.11, ... (a line without its patch level stands
    /// for its newest release). Not with --apply, which writes for the server it applies to
    #[arg(long, value_name = "SERVER", conflicts_with = "apply")]
    pub target_version: Option<Server>,
    /// Also read every source value whose conversion can fail (NaN, BC dates, infinities) and name
    /// the rows the target would refuse; exits 1 when there are any
    #[arg(long)]
    pub check_values: bool,
    #[command(flatten)]
    pub naming: NamingArgs,
    #[command(flatten)]
    pub topics: TopicShape,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
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
    /// With `--check-values`: the columns holding values the target would refuse.
    #[serde(skip_serializing_if = "Option::is_none")]
    refused_values: Option<&'a [values::RefusedColumn]>,
}

pub async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let source = args.databases.source.endpoint()?;
    let target = args.databases.target.endpoint()?;
    let Mapping { config, plan, schema } =
        mapping::prepare(&args.mapping, &source, &target, args.target_version).await?;
    let written_for = match args.target_version {
        Some(_) => format!("{} (--target-version)", config.server),
        None => format!("{} (the target's version)", config.server),
    };
    let mut conn = match args.apply {
        Some(_) => Some(passerelle_mysql::connect(&target).await?),
        None => None,
    };
    write_files(&args.out, &plan, &written_for)?;
    let layout = args.topics.layout(&args.naming.prefix_or_default(&source));
    let path = args.out.join("kafka-topics.sh");
    std::fs::write(&path, topics_script(&layout, &schema))
        .with_context(|| format!("cannot write {}", path.display()))?;
    let refused = match args.check_values {
        true => Some(values::check(&source, &schema, &plan).await?),
        false => None,
    };
    if refused.as_ref().is_some_and(|refused| !refused.is_empty()) && args.apply.is_some() {
        eprintln!("passerelle: not applied: the target would refuse some source values (see below)");
        conn = None;
    }

    if let (Some(phase), Some(conn)) = (args.apply, conn.as_mut()) {
        if phase != Phase::Post && !args.force {
            let existing = passerelle_mysql::schema_apply::objects(conn, &target, &plan.databases).await?;
            if !existing.is_empty() {
                eprintln!(
                    "passerelle: not applied: the target already holds {} table(s) or view(s) ({}); apply into empty \
                     databases, or pass --force to apply anyway",
                    existing.len(),
                    existing.iter().take(5).map(ToString::to_string).collect::<Vec<_>>().join(", ")
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
        let applied = args.apply.filter(|_| conn.is_some());
        let output = Output { out: &args.out, applied, report: &plan.report, refused_values: refused.as_deref() };
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        let rendered = plan.report.render();
        println!("DDL written for {written_for}");
        print!("{}", rendered.lines().skip(1).take(2).map(|line| format!("{line}\n")).collect::<String>());
        println!(
            "wrote {} (pre-data.sql, post-data.sql, report.txt, report.json, and kafka-topics.sh: the topics to \
             create beforehand for --existing-topics)",
            args.out.display()
        );
        if let Some(refused) = &refused {
            print!("{}", values::render(refused));
        }
        if let Some(phase) = args.apply.filter(|_| conn.is_some()) {
            let phases = match phase {
                Phase::Pre => "pre-data",
                Phase::Post => "post-data",
                Phase::All => "pre-data and post-data",
            };
            println!("applied {phases} to {target}");
        }
    }
    Ok(match refused {
        Some(refused) if !refused.is_empty() => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

/// The `kafka-topics.sh --create` commands of the migration's topics, as `migrate` and `source`
/// would create them: for a principal that may not create topics, run by one that may, before
/// `migrate --existing-topics`.
fn topics_script(layout: &TopicLayout, schema: &passerelle_model::schema::Schema) -> String {
    let create = |topic: &str, partitions: i32, configs: &[String]| {
        let configs: String = configs.iter().map(|config| format!(" --config {config}")).collect();
        format!(
            "kafka-topics.sh --bootstrap-server \"$BOOTSTRAP\" --command-config \"$CONFIG\" --create --topic '{topic}' \
             --partitions {partitions} --replication-factor {}{configs}\n",
            layout.replication
        )
    };
    let mut text = format!(
        "#!/bin/sh\n# passerelle plan: the topics of migration {}, to create beforehand for a principal that may not\n\
         # (then run migrate or source with --existing-topics and the same --topic-prefix).\n\
         # BOOTSTRAP: the brokers; CONFIG: a client properties file of a principal that may create topics.\nset -e\n",
        layout.prefix
    );
    let control = ["cleanup.policy=compact".to_string(), "retention.ms=-1".to_string()];
    text.push_str(&create(&layout.control_topic(), 1, &control));
    let retention: Vec<String> = layout.retention_ms.iter().map(|ms| format!("retention.ms={ms}")).collect();
    // A partition's events go to its root's topic.
    for table in schema.tables.iter().filter(|table| has_topic(schema, table)) {
        text.push_str(&create(&layout.topic_name(&table.name.schema, &table.name.name), layout.partitions, &retention));
    }
    text
}

fn write_files(out: &Path, plan: &passerelle_ddl::Plan, written_for: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create the output directory {}", out.display()))?;
    let script = |phase: &str, statements: &[String]| {
        let mut text = format!("-- passerelle plan: {phase} DDL written for {written_for}\n\n");
        for statement in statements {
            // A trigger's body holds semicolons: the mysql client needs another delimiter around it.
            if statement.starts_with("CREATE TRIGGER ") {
                text.push_str(&format!("DELIMITER //\n{statement} //\nDELIMITER ;\n\n"));
                continue;
            }
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
