//! Proof that a migration lost, duplicated and altered no row: exact row counts and a content
//! checksum of every table on both sides, computed inside each database; when they differ, the
//! keys (or, without a key, the rows) that differ; and a check that the target has every key,
//! constraint, index, AUTO_INCREMENT and comment the plan promised.
//!
//! Architecture: takes the source schema and the `ddl` plan the migration followed (where rows land,
//! how values convert, what was not migrated), connects through `pg` and `mysql`, and runs its own
//! read-only queries. It knows nothing of Kafka. `canonical` defines when two values are equal; `digest` how rows are hashed.

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

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use passerelle_ddl::Plan;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::schema::{QualifiedName, Schema, Table, TableKind};
use passerelle_model::target::TargetTable;
pub use passerelle_pg::changed_keys::{ChangedKeys, KeySet};
use tokio::sync::mpsc::UnboundedSender;

pub use error::VerifyError;
use report::{Listed, Report, SchemaOutcome, TableOutcome, TableReport};
use session::{Source, Target};
use sql::{KeyColumn, Keying, PlannedColumn, TablePlan};
use target::LiveTable;

/// Where the two sides are, validated by the caller.
#[derive(Clone, Debug)]
pub struct Config {
    pub source: DbEndpoint,
    pub target: DbEndpoint,
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

/// What changed on the source since a full comparison, for [`recheck`].
#[derive(Debug, Default)]
pub struct Recheck {
    /// Tables to compare whole all the same (they differed then beyond what [`differing_keys`]
    /// lists, or could not be compared).
    pub whole: BTreeSet<QualifiedName>,
    /// The keys the source changed, from its own WAL.
    pub changed: ChangedKeys,
    /// Tables that differed then, with the keys of their rows that did ([`differing_keys`]).
    pub listed: BTreeMap<QualifiedName, Vec<Vec<String>>>,
}

/// Compares every table of `schema` that `plan` migrated, and the objects `plan` promised; an `Err`
/// means verify could not finish, not that data differs.
pub async fn run(
    config: &Config,
    schema: &Schema,
    plan: &Plan,
    progress: UnboundedSender<Progress>,
) -> Result<Report, VerifyError> {
    compare_all(config, schema, plan, progress, None, None::<std::future::Ready<()>>).await
}

/// [`run`], begun while the target's post-data DDL is still applied: the rows are compared at once
/// (their tables and primary keys exist since the pre-data, and the post-data changes no row), the
/// objects `plan` promised once `objects_ready` resolves. Comparing is the databases' work, mostly
/// on other cores than one DDL statement at a time uses.
pub async fn run_during_post_data(
    config: &Config,
    schema: &Schema,
    plan: &Plan,
    progress: UnboundedSender<Progress>,
    objects_ready: impl std::future::Future<Output = ()>,
) -> Result<Report, VerifyError> {
    compare_all(config, schema, plan, progress, None, Some(objects_ready)).await
}

/// The second step of a verification in two: after a full comparison while the source still
/// changed, compares only the rows the source changed since (`recheck.changed`), and every table's
/// row count; a table in `recheck.whole`, truncated, without an ordered key or whose counts differ
/// is compared whole. The objects `plan` promised are checked as by [`run`].
pub async fn recheck(
    config: &Config,
    schema: &Schema,
    plan: &Plan,
    recheck: Recheck,
    progress: UnboundedSender<Progress>,
) -> Result<Report, VerifyError> {
    compare_all(config, schema, plan, progress, Some(Arc::new(recheck)), None::<std::future::Ready<()>>).await
}

/// The first step's follow-up, while the source still changes: the canonical keys of the rows
/// of each of `tables` that differ now, read row by row in key order. A table left out of the
/// answer (no ordered key, too many rows differing, not comparable) is to be compared whole.
pub async fn differing_keys(
    config: &Config,
    schema: &Schema,
    plan: &Plan,
    tables: &BTreeSet<QualifiedName>,
) -> Result<BTreeMap<QualifiedName, Vec<Vec<String>>>, VerifyError> {
    let source = Source::connect(&config.source).await?;
    let mut target = Target::connect(&config.target).await?;
    let targets = read_targets(&mut target, plan).await?;
    let mut listed = BTreeMap::new();
    for (report, table_plan) in planned(schema, plan, &targets) {
        let Some(table_plan) = table_plan else { continue };
        let Some(name) = tables.iter().find(|name| name.to_string() == report.table) else { continue };
        let mut comparison =
            compare::Comparison { plan: &table_plan, name: &report.table, source: &source, target: &mut target };
        if let Some(keys) = comparison.differing_keys().await? {
            listed.insert(name.clone(), keys);
        }
    }
    target.close().await;
    Ok(listed)
}

/// A pass between the two steps, while the source still changes: among the rows `recheck` names
/// (changed since a full comparison, and those that differed in it), the canonical keys of those
/// that differ now, per table; and the tables to compare whole at the cutover instead (`recheck.whole`,
/// and those truncated, without an ordered key, or with too many rows differing). The cutover then
/// re-checks these rows and the changes after the pass's position, instead of all since the first step.
pub async fn differing_among(
    config: &Config,
    schema: &Schema,
    plan: &Plan,
    recheck: &Recheck,
) -> Result<(BTreeMap<QualifiedName, Vec<Vec<String>>>, BTreeSet<QualifiedName>), VerifyError> {
    let source = Source::connect(&config.source).await?;
    let mut target = Target::connect(&config.target).await?;
    let targets = read_targets(&mut target, plan).await?;
    let (mut listed, mut whole) = (BTreeMap::new(), recheck.whole.clone());
    for (report, table_plan) in planned(schema, plan, &targets) {
        let Some(name) = schema.tables.iter().map(|table| &table.name).find(|name| name.to_string() == report.table)
        else {
            continue;
        };
        if whole.contains(name) {
            continue;
        }
        let keys = match (table_plan, changed_keys(recheck, &report.table)) {
            (Some(table_plan), Some((changed, listed))) => {
                let mut comparison = compare::Comparison {
                    plan: &table_plan,
                    name: &report.table,
                    source: &source,
                    target: &mut target,
                };
                comparison.differing_among(changed, listed).await?
            }
            _ => None,
        };
        match keys {
            Some(keys) => {
                listed.insert(name.clone(), keys);
            }
            None => {
                whole.insert(name.clone());
            }
        }
    }
    target.close().await;
    Ok((listed, whole))
}

/// The target's live tables in each database the plan lands in.
async fn read_targets(
    target: &mut Target,
    plan: &Plan,
) -> Result<HashMap<String, BTreeMap<String, LiveTable>>, VerifyError> {
    let mut targets = HashMap::new();
    for database in &plan.databases {
        targets.insert(database.clone(), target::read(target, database).await?);
    }
    Ok(targets)
}

/// Each table the plan landed, its report as planned, and how to compare it when it can be.
fn planned(
    schema: &Schema,
    plan: &Plan,
    targets: &HashMap<String, BTreeMap<String, LiveTable>>,
) -> Vec<(TableReport, Option<TablePlan>)> {
    // A partition's rows land in its parent's table and are read through the parent.
    let landing = plan
        .tables
        .iter()
        .filter(|t| schema.tables.iter().any(|s| s.name == t.source && !matches!(s.kind, TableKind::Partition { .. })));
    let mut planned = Vec::new();
    for landing in landing {
        let Some(table) = schema.tables.iter().find(|t| t.name == landing.source) else { continue };
        let live = targets.get(&landing.database).and_then(|tables| tables.get(&landing.name));
        let mut report = empty_report(landing);
        let table_plan = match live.map(|live| table_plan(schema, table, landing, live)) {
            None => {
                report.outcome = TableOutcome::Missing;
                None
            }
            Some(Err(detail)) => {
                report.outcome = TableOutcome::NotCompared;
                report.detail = detail;
                None
            }
            Some(Ok(table_plan)) => Some(table_plan),
        };
        planned.push((report, table_plan));
    }
    planned
}

async fn compare_all(
    config: &Config,
    schema: &Schema,
    plan: &Plan,
    progress: UnboundedSender<Progress>,
    recheck: Option<Arc<Recheck>>,
    objects_ready: Option<impl std::future::Future<Output = ()>>,
) -> Result<Report, VerifyError> {
    let source = Source::connect(&config.source).await?;
    check_encoding(&source).await?;
    let mut target = Target::connect(&config.target).await?;
    let targets = read_targets(&mut target, plan).await?;
    target.close().await;

    let mut tables = Vec::new();
    let mut jobs = VecDeque::new();
    for (report, table_plan) in planned(schema, plan, &targets) {
        if let Some(table_plan) = table_plan {
            jobs.push_back((tables.len(), table_plan));
        }
        tables.push(report);
    }
    let _ = progress.send(Progress::Planned { n_tables: jobs.len() });
    let n_workers = config.jobs.clamp(1, jobs.len().max(1));
    let queue = Arc::new(Mutex::new(jobs));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..n_workers {
        let worker = Worker {
            queue: queue.clone(),
            progress: progress.clone(),
            reports: tables.clone(),
            recheck: recheck.clone(),
        };
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
    let schema_findings = match objects_ready {
        None => schema_check::SchemaCheck { schema, plan, targets: &targets }.run(),
        Some(objects_ready) => {
            objects_ready.await;
            let mut target = Target::connect(&config.target).await?;
            let targets = read_targets(&mut target, plan).await?;
            target.close().await;
            schema_check::SchemaCheck { schema, plan, targets: &targets }.run()
        }
    };
    let matches = tables.iter().all(|t| t.outcome == TableOutcome::Match)
        && schema_findings.iter().all(|f| f.outcome != SchemaOutcome::Missing);
    Ok(Report { matches, tables, schema: schema_findings })
}

async fn check_encoding(source: &Source) -> Result<(), VerifyError> {
    let rows = source.rows("reading the server encoding", "SELECT current_setting('server_encoding')", &[]).await?;
    let encoding = rows.into_iter().next().and_then(|row| row.into_iter().next().flatten()).unwrap_or_default();
    if encoding != "UTF8" {
        return Err(VerifyError::SourceEncoding { endpoint: source.endpoint().to_string(), encoding });
    }
    Ok(())
}

fn empty_report(landing: &TargetTable) -> TableReport {
    TableReport {
        table: landing.source.to_string(),
        target: format!("{}.{}", landing.database, landing.name),
        outcome: TableOutcome::Match,
        source_rows: None,
        target_rows: None,
        source_checksum: None,
        target_checksum: None,
        detail: String::new(),
        missing: Listed::default(),
        extra: Listed::default(),
        changed: Listed::default(),
        rows: Listed::default(),
        complete: true,
        seconds: 0.0,
    }
}

/// How both engines read `table`, which lands in `landing` and is `live` on the target; `Err`
/// says why it cannot be compared.
fn table_plan(schema: &Schema, table: &Table, landing: &TargetTable, live: &LiveTable) -> Result<TablePlan, String> {
    let quote = passerelle_ddl::ident::quote;
    let mut columns = Vec::new();
    let mut lives = Vec::new();
    for (column, planned) in table.columns.iter().zip(&landing.columns) {
        let Some(live_column) = live.column(&planned.name) else {
            return Err(format!("column {} is not on the target", column.name));
        };
        let pg = canonical::pg_quote(&column.name);
        let my = quote(&planned.name);
        let rendering = canonical::render(&column.data_type, &planned.conversion, live_column, schema, &pg, &my);
        columns.push(PlannedColumn { name: column.name.clone(), rendering });
        lives.push((live_column, my));
    }
    let ordered = match landing.key.is_empty() {
        true => None,
        false => landing
            .key
            .iter()
            .map(|&idx| {
                let (live_column, my) = lives.get(idx)?;
                let column = &table.columns[idx];
                let order =
                    canonical::key_order(&column.data_type, live_column, schema, &canonical::pg_quote(&column.name))?;
                Some(KeyColumn { column: idx, order, my_column: my.clone() })
            })
            .collect::<Option<Vec<_>>>(),
    };
    Ok(TablePlan {
        pg_table: format!("{}.{}", canonical::pg_quote(&table.name.schema), canonical::pg_quote(&table.name.name)),
        my_table: format!("{}.{}", quote(&landing.database), quote(&landing.name)),
        columns,
        keying: ordered.map_or(Keying::Multiset, Keying::Ordered),
    })
}

/// The keys of `table` (`schema.table`) to re-check: those changed, with their columns' names,
/// and the canonical keys of the rows that differed in the first step; `None` when the table is
/// to be compared whole.
fn changed_keys<'a>(recheck: &'a Recheck, table: &str) -> Option<(compare::Changed<'a>, &'a [Vec<String>])> {
    let named = |name: &QualifiedName| name.to_string() == table;
    if recheck.whole.iter().any(named) || recheck.changed.truncated.iter().any(named) {
        return None;
    }
    static NONE: KeySet = BTreeSet::new();
    let changed = match recheck.changed.tables.iter().find(|(name, _)| named(name)) {
        Some((_, (key_names, keys))) => (key_names.as_slice(), keys),
        None => (&[][..], &NONE),
    };
    let listed = recheck.listed.iter().find(|(name, _)| named(name)).map_or(&[][..], |(_, keys)| keys.as_slice());
    Some((changed, listed))
}

/// Takes tables off the shared queue until it is empty, with one connection to each side.
struct Worker {
    queue: Arc<Mutex<VecDeque<(usize, TablePlan)>>>,
    progress: UnboundedSender<Progress>,
    /// The reports as planned, to fill in.
    reports: Vec<TableReport>,
    recheck: Option<Arc<Recheck>>,
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
            let changed = self.recheck.as_deref().and_then(|recheck| changed_keys(recheck, &name));
            let matches = match changed {
                Some((changed, listed)) => comparison.recheck(&mut report, changed, listed, pinpointing).await?,
                None => comparison.run(&mut report, pinpointing).await?,
            };
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
