//! Tables that change during an online run. The stream carries the changes a target can follow in
//! stream order without stopping: columns added at a table's end, and new type modifiers
//! (`varchar(10)` to `varchar(100)`, `numeric(8,2)` to `numeric(12,2)`).
//!
//! The source, meeting such a table (`pg::stream::StreamItem::Altered`), reads its new definition
//! from the catalog, announces it on the control topic (`control::TableAltered`) and only then
//! produces the events that use it. A sink, meeting an event with a column it does not know, reads
//! the announcement and alters the target table before it decodes that event: `ADD COLUMN` with
//! the column's default, or `MODIFY COLUMN`, each safe to run again. Events from before the change
//! that a sink applies later leave the added column out, so the target's default fills it, as
//! PostgreSQL filled it for the rows that existed then; that is why a column is carried only when
//! PostgreSQL gave the existing rows its default (or NULL), not a volatile default's values, which
//! rewrote the table without a change in the stream.

use std::collections::{BTreeSet, HashMap};
use std::mem::discriminant;

use anyhow::Context;
use passerelle_ddl::Plan;
use passerelle_kafka::control::{self, TableAltered};
use passerelle_kafka::envelope::{Encoding, TableLayout};
use passerelle_kafka::topic::control_topic;
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::schema::{PgType, QualifiedName, Schema, Table, TableKind};
use passerelle_model::target::TargetTable;
use passerelle_mysql::MysqlError;

use crate::config::table_layouts;
use crate::failure::StartOver;
use crate::pause;
use crate::retry;
use crate::selection::Patterns;

/// Reads the new definition of `was`, which the stream now describes with `n_columns` columns, and
/// refuses what a target cannot follow, naming it. The catalog may be ahead of the stream (two
/// `ADD COLUMN`s in a row): the new version has the first `n_columns` columns, as the catalog has them
/// now; the rest comes with the next change the stream meets, or at its end ([`unseen_versions`]).
pub async fn read_new_version(
    endpoint: &DbEndpoint,
    was: &Table,
    n_columns: usize,
    patterns: &Patterns,
    encoding: Encoding,
) -> anyhow::Result<Table> {
    let name = &was.name;
    let mut client = passerelle_pg::connect(endpoint).await?;
    let mut schema = passerelle_pg::catalog::read(&mut client, endpoint, std::slice::from_ref(&name.schema)).await?;
    schema.tables.retain(|table| &table.name == name);
    patterns.apply(&mut schema).context("selecting the changed table's columns")?;
    let Some(mut now) = schema.tables.pop() else {
        return Err(refuse(name, "it is gone from the catalog (renamed or dropped)".into()));
    };
    now.columns.truncate(n_columns);
    check_new_version(endpoint, was, &now, encoding).await?;
    Ok(now)
}

/// The tables of `current` that the catalog, read at the stream's end (`now`, the run's selection
/// applied), has with other columns: changes no change of the stream followed, so the stream never
/// described them. Each is checked as [`read_new_version`] checks.
pub async fn unseen_versions(
    endpoint: &DbEndpoint,
    current: &Schema,
    now: &Schema,
    encoding: Encoding,
) -> anyhow::Result<Vec<Table>> {
    let mut unseen = Vec::new();
    for was in current.tables.iter().filter(|table| table.identifies_rows()) {
        let Some(table) = now.tables.iter().find(|table| table.name == was.name) else { continue };
        let columns = |table: &Table| -> Vec<(String, String)> {
            table.columns.iter().map(|column| (column.name.clone(), column.data_type.display.clone())).collect()
        };
        if columns(was) != columns(table) {
            check_new_version(endpoint, was, table, encoding).await?;
            unseen.push(table.clone());
        }
    }
    Ok(unseen)
}

fn refuse(table: &QualifiedName, why: String) -> anyhow::Error {
    StartOver(format!(
        "table {table} changed during the run and the target cannot follow: {why}; undo the change on the source, \
         or start the migration over"
    ))
    .into()
}

/// Refuses a new version `now` of `was` that a target cannot follow, naming what.
async fn check_new_version(endpoint: &DbEndpoint, was: &Table, now: &Table, encoding: Encoding) -> anyhow::Result<()> {
    let name = &was.name;
    if was.kind != TableKind::Ordinary {
        return Err(refuse(name, "a partitioned table's columns are carried only by a new run".into()));
    }
    if was.key_positions().is_empty() {
        return Err(refuse(name, "its rows have no key, so old rows could not be matched before and after".into()));
    }
    if encoding == Encoding::Json {
        return Err(refuse(name, "--encoding json declares each event's schema, which does not change mid-run".into()));
    }
    if now.columns.len() < was.columns.len() {
        return Err(refuse(name, format!("it has {} columns, {} before", now.columns.len(), was.columns.len())));
    }
    for (before, after) in was.columns.iter().zip(&now.columns) {
        let (from, to) = (&before.data_type, &after.data_type);
        let same_type = discriminant(&from.base) == discriminant(&to.base) && from.array_dims == to.array_dims;
        if before.name != after.name || !same_type || before.generated != after.generated {
            let why = format!("column {:?} is now {:?} of type {}", before.name, after.name, to.display);
            return Err(refuse(name, why));
        }
        if from.base != to.base && !widens(&from.base, &to.base) {
            return Err(refuse(
                name,
                format!(
                    "column {:?} changed type from {} to {}: only widening a type is carried",
                    before.name, from.display, to.display
                ),
            ));
        }
    }
    let added = &now.columns[was.columns.len()..];
    if added.is_empty() {
        return Ok(());
    }
    let client = passerelle_pg::connect(endpoint).await?;
    for added in added {
        let column = &added.name;
        if added.generated.is_some() || added.identity.is_some() {
            return Err(refuse(name, format!("column {column:?} was added generated or as an identity")));
        }
        if added.not_null && added.default.is_none() {
            return Err(refuse(name, format!("column {column:?} was added NOT NULL without a default")));
        }
        if !passerelle_pg::catalog::backfill_is_default(&client, endpoint, name, column).await? {
            return Err(refuse(
                name,
                format!(
                    "column {column:?} was added with a value for existing rows other than its default (a volatile \
                     default, or one set or dropped since), which the change stream does not carry"
                ),
            ));
        }
    }
    Ok(())
}

/// Whether every value of type `from` is a value of type `to`, with the same text: a longer
/// `varchar`, a `numeric` with as many digits on either side of the point, a finer time. The target's
/// column can then be widened while events from before the change still arrive.
fn widens(from: &PgType, to: &PgType) -> bool {
    let at_least = |from: &Option<u32>, to: &Option<u32>| match (from, to) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(from), Some(to)) => to >= from,
    };
    match (from, to) {
        (PgType::Varchar(from), PgType::Varchar(to)) | (PgType::VarBit(from), PgType::VarBit(to)) => at_least(from, to),
        (PgType::Numeric(_), PgType::Numeric(None)) => true,
        (PgType::Numeric(Some((p1, s1))), PgType::Numeric(Some((p2, s2)))) => {
            s2 >= s1 && i64::from(*p2) - i64::from(*s2) >= i64::from(*p1) - i64::from(*s1)
        }
        (PgType::Time(from), PgType::Time(to))
        | (PgType::TimeTz(from), PgType::TimeTz(to))
        | (PgType::Timestamp(from), PgType::Timestamp(to))
        | (PgType::TimestampTz(from), PgType::TimestampTz(to)) => at_least(from, to),
        _ => false,
    }
}

/// `schema` with `table` in place of the table of the same name.
pub fn with_table(schema: &Schema, table: &Table) -> Schema {
    let mut schema = schema.clone();
    if let Some(slot) = schema.tables.iter_mut().find(|t| t.name == table.name) {
        *slot = table.clone();
    }
    schema
}

/// The statements that bring the target's `table`, as planned `before`, to its new version `new`,
/// planned `after`: `ADD COLUMN` for each column added, `MODIFY COLUMN` for each column the new plan
/// defines otherwise.
pub fn alter_statements(before: &Plan, after: &Plan, new: &Table) -> Vec<AlterColumn> {
    let Some(target) = after.tables.iter().find(|table| table.source == new.name) else { return Vec::new() };
    let table = format!("`{}`.`{}`", target.database.replace('`', "``"), target.name.replace('`', "``"));
    let mut statements = Vec::new();
    for column in &new.columns {
        let Some(definition) = after.column_definition(&new.name, &column.name) else { continue };
        let (sql, add) = match before.column_definition(&new.name, &column.name) {
            None => (format!("ALTER TABLE {table} ADD COLUMN {definition}"), true),
            Some(was) if was != definition => (format!("ALTER TABLE {table} MODIFY COLUMN {definition}"), false),
            Some(_) => continue,
        };
        statements.push(AlterColumn {
            database: target.database.clone(),
            table: target.name.clone(),
            column: column.name.clone(),
            sql,
            add,
        });
    }
    statements
}

/// One column's change in the target.
#[derive(Debug)]
pub struct AlterColumn {
    pub database: String,
    pub table: String,
    pub column: String,
    pub sql: String,
    /// `ADD COLUMN`, which runs only where the column is missing; `MODIFY COLUMN` always can.
    pub add: bool,
}

/// What a sink knows of the run's tables that changed: the schema and plan it applies by, and the
/// version of each changed table that the target has.
pub struct Following {
    /// The run's tables as it began: the columns beyond theirs were added during the run.
    original: Schema,
    schema: Schema,
    plan: Plan,
    ddl: passerelle_ddl::Config,
    versions: HashMap<QualifiedName, u32>,
    /// Versions this process applied, for the fault tests' pause point.
    n_applied: u64,
}

impl Following {
    /// Starts from the run's schema as it began, planned into `plan` with `ddl`.
    pub fn new(schema: Schema, plan: Plan, ddl: passerelle_ddl::Config) -> Following {
        Following { original: schema.clone(), schema, plan, ddl, versions: HashMap::new(), n_applied: 0 }
    }

    /// Brings `table` to the last version the control topic announces: alters the target (what it
    /// already has is left alone) and returns where its events now go, or `None` when no version
    /// is newer than the one applied.
    pub async fn catch_up(
        &mut self,
        kafka: &KafkaEndpoint,
        prefix: &str,
        target: &DbEndpoint,
        encoding: Encoding,
        table: &QualifiedName,
    ) -> anyhow::Result<Option<(TableLayout, TargetTable)>> {
        let control_topic = control_topic(prefix);
        let state = retry::retry("reading the control topic", || control::read(kafka, &control_topic)).await?;
        if !self.apply(&state.altered, target, table).await? {
            return Ok(None);
        }
        let position = self.schema.tables.iter().position(|t| &t.name == table).expect("a table of the run");
        let n_original = self.original.tables[position].columns.len();
        let layout = table_layouts(prefix, &self.schema, encoding).swap_remove(position);
        Ok(Some((layout.with_columns_added_from(n_original), self.plan.tables[position].clone())))
    }

    /// Brings every table to the last version `altered` announces, once the stream is applied: a
    /// change that no later event used is applied all the same.
    pub async fn catch_up_all(&mut self, altered: &[TableAltered], target: &DbEndpoint) -> anyhow::Result<()> {
        let tables: BTreeSet<&QualifiedName> = altered.iter().map(|altered| &altered.table.name).collect();
        for table in tables {
            self.apply(altered, target, table).await?;
        }
        Ok(())
    }

    /// Applies the versions of `table` newer than the target has; false when there are none.
    async fn apply(
        &mut self,
        altered: &[TableAltered],
        target: &DbEndpoint,
        table: &QualifiedName,
    ) -> anyhow::Result<bool> {
        let applied = self.versions.get(table).copied().unwrap_or(0);
        let mut newer: Vec<&TableAltered> =
            altered.iter().filter(|altered| &altered.table.name == table && altered.version > applied).collect();
        if newer.is_empty() {
            return Ok(false);
        }
        newer.sort_by_key(|altered| altered.version);
        for altered in newer {
            let schema = with_table(&self.schema, &altered.table);
            let plan = passerelle_ddl::plan(&schema, &self.ddl);
            for statement in alter_statements(&self.plan, &plan, &altered.table) {
                retry::retry("altering a table in the target", || alter(target, &statement)).await?;
                tracing::info!("{}: {}", table, statement.sql);
            }
            (self.schema, self.plan) = (schema, plan);
            self.versions.insert(table.clone(), altered.version);
            self.n_applied += 1;
            pause::point(pause::TARGET_ALTERED, self.n_applied).await;
        }
        Ok(true)
    }
}

/// Runs one column's change unless the target has it: an `ADD COLUMN` another sink ran first is done.
async fn alter(target: &DbEndpoint, statement: &AlterColumn) -> Result<(), MysqlError> {
    use passerelle_mysql::schema_apply::{apply, has_column};
    let AlterColumn { database, table, column, sql, add } = statement;
    let mut conn = passerelle_mysql::connect(target).await?;
    if *add && has_column(&mut conn, target, database, table, column).await? {
        return Ok(());
    }
    if let Err(error) = apply(&mut conn, target, std::slice::from_ref(sql)).await {
        if !(*add && has_column(&mut conn, target, database, table, column).await?) {
            return Err(error.error);
        }
    }
    let _ = conn.disconnect().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_types_that_hold_every_earlier_value_with_its_text_are_widened() {
        use PgType::*;
        assert!(widens(&Varchar(Some(10)), &Varchar(Some(100))));
        assert!(widens(&Varchar(Some(10)), &Varchar(None)));
        assert!(!widens(&Varchar(Some(10)), &Varchar(Some(5))));
        assert!(!widens(&Varchar(None), &Varchar(Some(5))));
        assert!(widens(&Numeric(Some((8, 2))), &Numeric(Some((12, 2)))));
        assert!(widens(&Numeric(Some((8, 2))), &Numeric(Some((9, 3)))));
        assert!(!widens(&Numeric(Some((8, 2))), &Numeric(Some((8, 3)))));
        assert!(!widens(&Numeric(None), &Numeric(Some((30, 6)))));
        assert!(widens(&Timestamp(Some(3)), &Timestamp(Some(6))));
        assert!(!widens(&TimestampTz(Some(6)), &TimestampTz(Some(0))));
        assert!(!widens(&Char(Some(5)), &Char(Some(10))));
        assert!(!widens(&Bit(Some(5)), &Bit(Some(10))));
    }
}
