//! Proof that a migration lost, duplicated and altered no row: exact row counts and a content
//! checksum of every table on both sides, computed inside each database; when they differ, the
//! keys (or, without a key, the rows) that differ; and a check that the target has every key,
//! constraint, index, AUTO_INCREMENT and comment the plan promised.
//!
//! Architecture: reads the source through `pg` (connect, catalog) and the target through `mysql`
//! (connect), asks `ddl` what the migration planned, and runs its own read-only queries. It knows
//! nothing of Kafka. `canonical` defines when two values are equal; `digest` how rows are hashed.

mod canonical;
mod client;
mod compare;
mod digest;
mod error;
mod json;
pub mod report;
mod schema_check;
mod session;
mod sql;
mod target;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use passerelle_ddl::Dialect;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::schema::{QualifiedName, Schema, Table, TableKind};
use passerelle_mysql::preflight::{Flavour, ServerVersion};
use tokio::sync::mpsc::UnboundedSender;

pub use error::VerifyError;
use report::{Listed, Report, SchemaOutcome, TableOutcome, TableReport};
use session::{Source, Target};
use sql::{KeyColumn, Keying, PlannedColumn, TablePlan};
use target::TargetTable;

/// What to verify, validated by the caller.
#[derive(Clone, Debug)]
pub struct Config {
    pub source: DbEndpoint,
    pub target: DbEndpoint,
    /// The source schemas that were migrated; at least one.
    pub schemas: Vec<String>,
    /// `--map SCHEMA=DATABASE`; a schema not in it goes to the target URL's database.
    pub map: BTreeMap<String, String>,
    /// Tables compared at once, each with a connection to each side.
    pub jobs: usize,
}

/// What verify is doing, for a progress display.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    Planned {
        n_tables: usize,
    },
    Started {
        table: String,
    },
    /// The checksums differ: bisecting to find the rows.
    Pinpointing {
        table: String,
    },
    Finished {
        table: String,
        outcome: TableOutcome,
        source_rows: Option<u64>,
    },
}

/// Compares everything and reports; an `Err` means verify could not finish, not that data differs.
pub async fn run(config: &Config, progress: UnboundedSender<Progress>) -> Result<Report, VerifyError> {
    let databases = databases(config)?;
    let mut source = Source::connect(&config.source).await?;
    check_encoding(&source).await?;
    let schema = passerelle_pg::catalog::read(source.client_mut(), &config.source, &config.schemas)
        .await
        .map_err(VerifyError::Source)?;
    let mut target = Target::connect(&config.target).await?;
    let dialect = dialect(&mut target).await?;
    let plan = passerelle_ddl::plan(&schema, &target::plan_config(dialect, databases.clone()));
    let mut targets: HashMap<String, BTreeMap<String, TargetTable>> = HashMap::new();
    for database in databases.values() {
        if !targets.contains_key(database) {
            let tables = target::read(&mut target, database).await?;
            targets.insert(database.clone(), tables);
        }
    }
    target.close().await;

    let check =
        schema_check::SchemaCheck { schema: &schema, plan: &plan.report, databases: &databases, targets: &targets };
    let schema_findings = check.run();

    let mut tables = Vec::new();
    let mut jobs = VecDeque::new();
    for table in schema.tables.iter().filter(|t| !matches!(t.kind, TableKind::Partition { .. })) {
        let database = databases.get(&table.name.schema).cloned().unwrap_or_default();
        let target_table = targets.get(&database).and_then(|tables| tables.get(&target::name(&table.name.name)));
        let mut report = empty_report(table, &database);
        match target_table.map(|target_table| table_plan(&schema, table, &database, target_table)) {
            None => report.outcome = TableOutcome::Missing,
            Some(Err(detail)) => {
                report.outcome = TableOutcome::NotCompared;
                report.detail = detail;
            }
            Some(Ok(plan)) => jobs.push_back((tables.len(), plan)),
        }
        tables.push(report);
    }
    let _ = progress.send(Progress::Planned { n_tables: jobs.len() });
    let n_workers = config.jobs.clamp(1, jobs.len().max(1));
    let queue = Arc::new(Mutex::new(jobs));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..n_workers {
        let worker = Worker { queue: queue.clone(), progress: progress.clone(), reports: tables.clone() };
        let (source, target) = (config.source.clone(), config.target.clone());
        workers.spawn(async move { worker.run(&source, &target).await });
    }
    while let Some(done) = workers.join_next().await {
        // A panic in a worker is a bug: let it surface as one.
        let done = done.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))?;
        for (idx, report) in done {
            tables[idx] = report;
        }
    }
    let matches = tables.iter().all(|t| t.outcome == TableOutcome::Match)
        && schema_findings.iter().all(|f| f.outcome != SchemaOutcome::Missing);
    Ok(Report { matches, tables, schema: schema_findings })
}

/// Each schema's target database: `--map`, else the target URL's.
fn databases(config: &Config) -> Result<BTreeMap<String, String>, VerifyError> {
    config
        .schemas
        .iter()
        .map(|schema| {
            let database = config.map.get(schema).or(config.target.database.as_ref());
            match database {
                Some(database) => Ok((schema.clone(), database.clone())),
                None => Err(VerifyError::NoTargetDatabase { schema: schema.clone() }),
            }
        })
        .collect()
}

async fn check_encoding(source: &Source) -> Result<(), VerifyError> {
    let rows = source.rows("reading the server encoding", "SELECT current_setting('server_encoding')", &[]).await?;
    let encoding = rows.into_iter().next().and_then(|row| row.into_iter().next().flatten()).unwrap_or_default();
    if encoding != "UTF8" {
        return Err(VerifyError::SourceEncoding { endpoint: source.endpoint().to_string(), encoding });
    }
    Ok(())
}

async fn dialect(target: &mut Target) -> Result<Dialect, VerifyError> {
    let rows = target.rows("reading the server version", "SELECT VERSION()", &[]).await?;
    let version = rows.into_iter().next().and_then(|row| row.into_iter().next().flatten()).unwrap_or_default();
    Ok(match ServerVersion::parse(&version).map(|v| v.flavour) {
        Some(Flavour::Mariadb) => Dialect::Mariadb,
        _ => Dialect::Mysql8,
    })
}

fn empty_report(table: &Table, database: &str) -> TableReport {
    TableReport {
        table: table.name.to_string(),
        target: format!("{database}.{}", target::name(&table.name.name)),
        outcome: TableOutcome::Match,
        source_rows: None,
        target_rows: None,
        detail: String::new(),
        missing: Listed::default(),
        extra: Listed::default(),
        changed: Listed::default(),
        rows: Listed::default(),
        complete: true,
        seconds: 0.0,
    }
}

/// How both engines read `table`; `Err` says why it cannot be compared.
fn table_plan(schema: &Schema, table: &Table, database: &str, target: &TargetTable) -> Result<TablePlan, String> {
    let mut columns = Vec::new();
    let mut targets = Vec::new();
    for column in &table.columns {
        let Some(target_column) = target.column(&target::name(&column.name)) else {
            return Err(format!("column {} is not on the target", column.name));
        };
        let my = passerelle_ddl::ident::quote(&column.name);
        let rendering =
            canonical::render(&column.data_type, target_column, schema, &canonical::pg_quote(&column.name), &my);
        columns.push(PlannedColumn { name: column.name.clone(), rendering });
        targets.push((target_column, my));
    }
    let ordered = table.primary_key.as_ref().and_then(|key| {
        key.columns
            .iter()
            .map(|key_column| {
                let idx = table.columns.iter().position(|c| &c.name == key_column)?;
                let (target_column, my) = &targets[idx];
                let pg = canonical::pg_quote(key_column);
                let order = canonical::key_order(&table.columns[idx].data_type, target_column, schema, &pg)?;
                Some(KeyColumn { column: idx, order, my_column: my.clone() })
            })
            .collect::<Option<Vec<_>>>()
    });
    Ok(TablePlan {
        pg_table: format!("{}.{}", canonical::pg_quote(&table.name.schema), canonical::pg_quote(&table.name.name)),
        my_table: target::quoted_table(
            database,
            &QualifiedName { schema: database.into(), name: table.name.name.clone() },
        ),
        columns,
        keying: ordered.map_or(Keying::Multiset, Keying::Ordered),
    })
}

/// Takes tables off the shared queue until it is empty, with one connection to each side.
struct Worker {
    queue: Arc<Mutex<VecDeque<(usize, TablePlan)>>>,
    progress: UnboundedSender<Progress>,
    /// The reports as planned, to fill in.
    reports: Vec<TableReport>,
}

impl Worker {
    fn next(&self) -> Option<(usize, TablePlan)> {
        // A poisoned queue means another worker panicked, which surfaces on its own.
        self.queue.lock().ok()?.pop_front()
    }

    async fn run(self, source: &DbEndpoint, target: &DbEndpoint) -> Result<Vec<(usize, TableReport)>, VerifyError> {
        let mut done = Vec::new();
        let Some(mut job) = self.next() else { return Ok(done) };
        let source = Source::connect(source).await?;
        let mut target = Target::connect(target).await?;
        loop {
            let (idx, plan) = job;
            let mut report = self.reports[idx].clone();
            let started = Instant::now();
            let _ = self.progress.send(Progress::Started { table: report.table.clone() });
            let name = report.table.clone();
            let mut comparison = compare::Comparison { plan: &plan, name: &name, source: &source, target: &mut target };
            let pinpointing = || {
                let _ = self.progress.send(Progress::Pinpointing { table: name.clone() });
            };
            let matches = comparison.run(&mut report, pinpointing).await?;
            report.outcome = if matches { TableOutcome::Match } else { TableOutcome::Differs };
            report.seconds = started.elapsed().as_secs_f64();
            let _ = self.progress.send(Progress::Finished {
                table: report.table.clone(),
                outcome: report.outcome,
                source_rows: report.source_rows,
            });
            done.push((idx, report));
            match self.next() {
                Some(next) => job = next,
                None => break,
            }
        }
        target.close().await;
        Ok(done)
    }
}
