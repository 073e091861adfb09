//! A run's settings are fixed when it begins: its schemas, each schema's target database and the
//! target server, announced on the control topic. Every later command of the migration (a rerun of
//! `migrate`, `source`, any `sink`, `verify`) uses them, and one that asks for others is refused up
//! front, naming the difference and the way out.
//!
//! `migrate` knows the target when it begins a run, so its announcement names the target server and
//! databases. `passerelle source` does not: the run's first sink fixes them with a `target:` record
//! on the control topic, and the first such record of the run decides (see `control`).

use std::collections::BTreeMap;

use passerelle_kafka::control::{self, ControlState, RunAnnouncement, TargetFixed, TargetServer};
use passerelle_kafka::producer::Producer;
use passerelle_kafka::topic::control_topic;
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_mysql::bookkeeping;

use crate::mapping::{SelectionArgs, TargetMappingArgs};
use crate::retry;
use crate::selection::Patterns;

/// The settings a command runs with: the run's, or for a new run the command's own.
pub struct Settled {
    pub schemas: Vec<String>,
    /// The tables and views selected within the schemas.
    pub patterns: Patterns,
    /// Each schema's target database (empty when the command does not know the target).
    pub databases: BTreeMap<String, String>,
    /// The target mapping flags with the run's type mapping where it is fixed (`None` when the
    /// command does not know the target).
    pub mapping: Option<TargetMappingArgs>,
    /// What the control topic said.
    pub state: ControlState,
}

/// Reads the control topic and settles the settings: a command that asks for others than the run's
/// is refused; one that names no schema takes the run's.
pub async fn settle(
    kafka: &KafkaEndpoint,
    migration: &str,
    selection: &SelectionArgs,
    target: Option<(&TargetMappingArgs, &DbEndpoint)>,
) -> anyhow::Result<Settled> {
    let topic = control_topic(migration);
    let state = retry::retry("reading the control topic", || control::read(kafka, &topic)).await?;
    settle_with(state, migration, selection, target)
}

/// [`settle`] on a control state already read.
pub fn settle_with(
    state: ControlState,
    migration: &str,
    selection: &SelectionArgs,
    target: Option<(&TargetMappingArgs, &DbEndpoint)>,
) -> anyhow::Result<Settled> {
    let schemas = match &state.run {
        Some(run) if selection.schemas.is_empty() => run.schemas.clone(),
        _ => selection.schemas(),
    };
    let asked = selection.patterns();
    let patterns = match &state.run {
        Some(run) if asked.is_empty() => Patterns::from_run(&run.include, &run.exclude, &run.exclude_columns),
        _ => asked,
    };
    if let Some(run) = &state.run {
        let fixed = Patterns::from_run(&run.include, &run.exclude, &run.exclude_columns);
        if fixed != patterns {
            let show = |p: &Patterns| {
                let mut words: Vec<String> = p.include.iter().map(|i| format!("--include {i}")).collect();
                words.extend(p.exclude.iter().map(|e| format!("--exclude {e}")));
                words.extend(p.columns.iter().map(|c| format!("--exclude-column {c}")));
                if words.is_empty() {
                    "every table".to_string()
                } else {
                    words.join(" ")
                }
            };
            anyhow::bail!("{}", differ(migration, run, "the tables", &show(&fixed), &show(&patterns)));
        }
    }
    let databases = match target {
        Some((mapping, endpoint)) => crate::mapping::databases(&schemas, mapping, endpoint)?,
        None => BTreeMap::new(),
    };
    if let Some(run) = &state.run {
        if run.schemas != schemas {
            let (fixed, asked) = (run.schemas.join(","), schemas.join(","));
            anyhow::bail!("{}", differ(migration, run, "--schema", &fixed, &asked));
        }
    }
    check_target_databases(migration, &state, &databases)?;
    let mapping = match target {
        Some((mapping, _)) => Some(settle_types(migration, &state, mapping)?),
        None => None,
    };
    Ok(Settled { schemas, patterns, databases, mapping, state })
}

/// Refuses target databases other than those fixed for the run, once they are.
pub fn check_target_databases(
    migration: &str,
    state: &ControlState,
    databases: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let (Some(run), fixed) = (&state.run, state.target_databases()) else { return Ok(()) };
    if fixed.is_empty() || databases.is_empty() || fixed == *databases {
        return Ok(());
    }
    let show = |databases: &BTreeMap<String, String>| {
        databases.iter().map(|(schema, database)| format!("{schema}={database}")).collect::<Vec<_>>().join(",")
    };
    anyhow::bail!("{}", differ(migration, run, "target databases", &show(&fixed), &show(databases)))
}

/// The target mapping flags with the run's type mapping (`--uuid`, `--interval`, `--collation`) once
/// it is fixed: a flag that asks for another is refused, one not given takes the run's.
pub fn settle_types(
    migration: &str,
    state: &ControlState,
    args: &TargetMappingArgs,
) -> anyhow::Result<TargetMappingArgs> {
    let (Some(run), Some(fixed)) = (&state.run, state.type_mapping()) else { return Ok(args.clone()) };
    if let Some((flag, fixed, asked)) = args.differs(fixed) {
        anyhow::bail!("{}", differ(migration, run, flag, &fixed, &asked));
    }
    args.with_run(fixed)
}

/// Refuses a target server other than the one fixed for the run, once it is.
pub fn check_target_server(migration: &str, state: &ControlState, server: &TargetServer) -> anyhow::Result<()> {
    let (Some(run), Some(fixed)) = (&state.run, state.target_server()) else { return Ok(()) };
    if fixed.identity == server.identity {
        return Ok(());
    }
    anyhow::bail!("{}", differ(migration, run, "the target server", &fixed.to_string(), &server.to_string()))
}

fn differ(migration: &str, run: &RunAnnouncement, what: &str, fixed: &str, asked: &str) -> String {
    format!(
        "migration {migration} (run {}) began with {what} {fixed}, this command asks for {asked}: a run's settings are \
         fixed when it begins; run it as it began, start it over with passerelle cleanup --topic-prefix {migration}, \
         or use another --topic-prefix",
        run.run_id
    )
}

/// The target server as this command reaches it, by its identity. Creates the bookkeeping if it is
/// missing: on a server without `@@server_uuid` (MariaDB) its installation id is the identity.
pub async fn target_server(endpoint: &DbEndpoint, bookkeeping_db: &str) -> anyhow::Result<TargetServer> {
    let identity = retry::retry("reading the target server's identity", || async {
        let mut conn = passerelle_mysql::connect(endpoint).await?;
        let installation = bookkeeping::ensure_tables(&mut conn, endpoint, bookkeeping_db).await?;
        let identity = bookkeeping::server_identity(&mut conn, endpoint, Some(&installation)).await?;
        let _ = conn.disconnect().await;
        Ok::<_, passerelle_mysql::MysqlError>(identity)
    })
    .await?;
    let identity = identity.ok_or_else(|| anyhow::anyhow!("the target at {endpoint} has no identity"))?;
    Ok(TargetServer { identity, address: endpoint.to_string() })
}

/// For a sink about to apply `run`: fixes the run's target server, databases and type mapping if
/// nobody has yet (a run `passerelle source` began), then refuses others than the fixed ones.
/// Returns the mapping flags with the run's type mapping.
pub async fn fix_target(
    kafka: &KafkaEndpoint,
    migration: &str,
    run: &RunAnnouncement,
    server: &TargetServer,
    databases: &BTreeMap<String, String>,
    mapping: &TargetMappingArgs,
) -> anyhow::Result<TargetMappingArgs> {
    let topic = control_topic(migration);
    let read = || retry::retry("reading the control topic", || control::read(kafka, &topic));
    let mut state = read().await?;
    if state.run.as_ref().is_some_and(|current| current.run_id == run.run_id) && state.target_server().is_none() {
        let fixed = TargetFixed {
            run_id: run.run_id.clone(),
            server: server.clone(),
            target_databases: databases.clone(),
            type_mapping: Some(mapping.type_mapping()),
        };
        let producer = Producer::for_control(kafka, retry::bound())?.for_run(&run.run_id);
        control::fix_target(&producer, &topic, &fixed).await?;
        // Another sink may have fixed another target a moment before: the first record decides.
        state = read().await?;
    }
    check_target_server(migration, &state, server)?;
    check_target_databases(migration, &state, databases)?;
    settle_types(migration, &state, mapping)
}
