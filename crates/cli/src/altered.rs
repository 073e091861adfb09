//! Tables that change during an online run. The stream carries the changes a target can follow in
//! stream order without stopping: columns added at a table's end, new type modifiers that widen
//! (`varchar(10)` to `varchar(100)`, `numeric(8,2)` to `numeric(12,2)`), and columns dropped.
//!
//! The source, meeting such a table (`pg::stream::StreamItem::Altered`), reads its new definition
//! from the catalog, announces it on the control topic (`control::TableAltered`) and only then
//! produces the events that use it. A sink, meeting an event it cannot decode, reads the announcement
//! and alters the target table before it decodes that event: `ADD COLUMN` with the column's default,
//! `MODIFY COLUMN` to a wider type or, for a dropped column, to nullable (it leaves the target once
//! the stream is applied), each safe to run again. Events from before an `ADD COLUMN` that a sink
//! applies later leave the column out, so the target's default fills it, as PostgreSQL filled it for
//! the rows that existed then; that is why a column is carried only when PostgreSQL gave the existing
//! rows its default (or NULL), not a volatile default's values, which rewrote the table without a
//! change in the stream.

use std::collections::{BTreeSet, HashMap};
use std::mem::discriminant;

use anyhow::Context;
use passerelle_ddl::Plan;
use passerelle_kafka::control::{self, TableAltered};
use passerelle_kafka::envelope::{Encoding, TableLayout};
use passerelle_kafka::topic::control_topic;
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::schema::{ColumnType, PgType, QualifiedName, Schema, Table, TableKind};
use passerelle_model::target::TargetTable;
use passerelle_mysql::MysqlError;

use crate::config::table_layouts;
use crate::failure::StartOver;
use crate::pause;
use crate::retry;
use crate::selection::{names_column, Patterns};

/// A table as the stream carries it from a change on: its columns, with those the source dropped
/// during the run still in place (nullable, so that rows written after them fit), and their names.
#[derive(Clone, Debug)]
pub struct Version {
    pub table: Table,
    pub dropped: Vec<String>,
}

impl Version {
    /// Whether `other` has the same columns, by name and type, and the same dropped: what the stream
    /// and the target follow (a comment or a default changed is not carried).
    pub fn same_columns(&self, other: &Version) -> bool {
        let shape = |version: &Version| -> Vec<(String, ColumnType)> {
            version.table.columns.iter().map(|column| (column.name.clone(), column.data_type.clone())).collect()
        };
        shape(self) == shape(other) && self.dropped == other.dropped
    }
}

/// Reads the definition of `was` that follows a change the stream met, whose changes now carry the
/// columns `sent`, and refuses what a target cannot follow, naming it. The catalog may be ahead of the
/// stream (two `ADD COLUMN`s in a row): the new version has the columns the stream sends, defined
/// as the catalog has them now; the rest comes with the next change the stream meets, or at its end
/// ([`unseen_versions`]).
pub async fn read_new_version(
    endpoint: &DbEndpoint,
    was: &Version,
    sent: &[String],
    patterns: &Patterns,
    encoding: Encoding,
) -> anyhow::Result<Version> {
    let name = &was.table.name;
    let mut client = passerelle_pg::connect(endpoint).await?;
    let mut schema = passerelle_pg::catalog::read(&mut client, endpoint, std::slice::from_ref(&name.schema)).await?;
    // The selection before the table is picked: its patterns name the run's other tables too.
    patterns.apply(&mut schema).context("selecting the changed table's columns")?;
    schema.tables.retain(|table| &table.name == name);
    let Some(now) = schema.tables.pop() else {
        return Err(refuse(name, "it is gone from the catalog (renamed or dropped)".into()));
    };
    next_version(endpoint, was, &now, sent, encoding).await
}

/// The tables of `current` whose columns the catalog, read at the stream's end (`now`, the run's
/// selection applied), has otherwise: changes no change of the stream followed, so the stream never
/// described them. Each is checked as [`read_new_version`] checks.
pub async fn unseen_versions(
    endpoint: &DbEndpoint,
    current: &[Version],
    now: &Schema,
    encoding: Encoding,
) -> anyhow::Result<Vec<Version>> {
    let mut unseen = Vec::new();
    for was in current.iter().filter(|was| was.table.identifies_rows()) {
        let Some(table) = now.tables.iter().find(|table| table.name == was.table.name) else { continue };
        let sent: Vec<String> = table.columns.iter().map(|column| column.name.clone()).collect();
        let next = next_version(endpoint, was, table, &sent, encoding).await?;
        if !next.same_columns(was) {
            unseen.push(next);
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

/// The version of `was` whose changes carry the columns `sent`: `was`'s columns in their order, as
/// the catalog's `now` defines them, those no longer sent kept nullable as dropped; then the columns
/// `sent` adds. Refuses what a target cannot follow, naming it.
async fn next_version(
    endpoint: &DbEndpoint,
    was: &Version,
    now: &Table,
    sent: &[String],
    encoding: Encoding,
) -> anyhow::Result<Version> {
    let name = &was.table.name;
    let key = was.table.key_positions();
    let defined = |column: &str| now.columns.iter().find(|c| c.name == column);
    let since = |column: &str| refuse(name, format!("column {column:?} changed again since, and the catalog lacks it"));
    let mut columns = Vec::with_capacity(now.columns.len());
    let mut dropped = was.dropped.clone();
    for (position, before) in was.table.columns.iter().enumerate() {
        // Generated columns are not sent before PostgreSQL 18: the catalog tells whether one is gone.
        let kept = sent.contains(&before.name) || (before.generated.is_some() && defined(&before.name).is_some());
        if !kept {
            if !dropped.contains(&before.name) {
                if key.contains(&position) {
                    return Err(refuse(name, format!("column {:?} of its key is gone", before.name)));
                }
                if was.table.checks.iter().any(|check| names_column(&check.expression, &before.name)) {
                    let why = format!("column {:?} is gone, and a check of the target uses it", before.name);
                    return Err(refuse(name, why));
                }
                dropped.push(before.name.clone());
            }
            let mut kept = before.clone();
            (kept.not_null, kept.default, kept.identity) = (false, None, None);
            columns.push(kept);
            continue;
        }
        // Dropped since, which the stream has not met yet: as it was until then.
        let after = defined(&before.name).unwrap_or(before);
        let (from, to) = (&before.data_type, &after.data_type);
        let same_type = discriminant(&from.base) == discriminant(&to.base) && from.array_dims == to.array_dims;
        if !same_type || before.generated != after.generated {
            return Err(refuse(name, format!("column {:?} is now of type {}", before.name, to.display)));
        }
        if from.base != to.base && !widens(&from.base, &to.base) {
            let why = format!(
                "column {:?} changed type from {} to {}: only widening a type is carried",
                before.name, from.display, to.display
            );
            return Err(refuse(name, why));
        }
        columns.push(after.clone());
    }
    let mut added = Vec::new();
    for column in sent.iter().filter(|column| !was.table.columns.iter().any(|c| &c.name == *column)) {
        added.push(defined(column).ok_or_else(|| since(column))?);
    }
    let gone: Vec<&String> = dropped.iter().filter(|column| !was.dropped.contains(column)).collect();
    if let (Some(gone), Some(new)) = (gone.first(), added.first()) {
        let why = format!(
            "column {gone:?} is gone and {:?} is new, which may be a rename, not carried (a column dropped and another \
             added are carried when a write to the table comes between them)",
            new.name
        );
        return Err(refuse(name, why));
    }
    let columns = [columns, added.iter().map(|&column| column.clone()).collect()].concat();
    let version = Version { table: Table { columns, ..now.clone() }, dropped };
    if version.same_columns(was) {
        return Ok(version);
    }
    if was.table.kind != TableKind::Ordinary {
        return Err(refuse(name, "a partitioned table's columns are carried only by a new run".into()));
    }
    if key.is_empty() {
        return Err(refuse(name, "its rows have no key, so old rows could not be matched before and after".into()));
    }
    if encoding == Encoding::Json {
        return Err(refuse(name, "--encoding json declares each event's schema, which does not change mid-run".into()));
    }
    if added.is_empty() {
        return Ok(version);
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
    Ok(version)
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
/// defines otherwise (a type widened, a dropped column made nullable).
pub fn alter_statements(before: &Plan, after: &Plan, new: &Table) -> Vec<AlterColumn> {
    let Some(target) = after.tables.iter().find(|table| table.source == new.name) else { return Vec::new() };
    let mut statements = Vec::new();
    for column in &new.columns {
        let Some(definition) = after.column_definition(&new.name, &column.name) else { continue };
        let change = match before.column_definition(&new.name, &column.name) {
            None => Change::Add(definition.to_string()),
            Some(was) if was != definition => Change::Modify(definition.to_string()),
            Some(_) => continue,
        };
        statements.push(AlterColumn::new(target, &column.name, change));
    }
    statements
}

/// One column's change in the target.
#[derive(Debug)]
pub struct AlterColumn {
    database: String,
    table: String,
    column: String,
    change: Change,
}

#[derive(Debug)]
enum Change {
    /// `ADD COLUMN` with this definition, where the column is missing.
    Add(String),
    /// `MODIFY COLUMN` to this definition, which running again changes nothing, where the column is there.
    Modify(String),
    /// `DROP COLUMN`, where the column is there.
    Drop,
}

impl AlterColumn {
    fn new(target: &TargetTable, column: &str, change: Change) -> AlterColumn {
        AlterColumn {
            database: target.database.clone(),
            table: target.name.clone(),
            column: column.to_string(),
            change,
        }
    }

    fn sql(&self) -> String {
        let quote = |name: &str| format!("`{}`", name.replace('`', "``"));
        let table = format!("ALTER TABLE {}.{}", quote(&self.database), quote(&self.table));
        match &self.change {
            Change::Add(definition) => format!("{table} ADD COLUMN {definition}"),
            Change::Modify(definition) => format!("{table} MODIFY COLUMN {definition}"),
            Change::Drop => format!("{table} DROP COLUMN {}", quote(&self.column)),
        }
    }
}

/// What a sink knows of the run's tables that changed: the schema and plan it applies by (the
/// stream's shape: dropped columns still in), and the version of each changed table that the target has.
pub struct Following {
    /// The run's tables as it began: the columns beyond theirs were added during the run.
    original: Schema,
    schema: Schema,
    plan: Plan,
    ddl: passerelle_ddl::Config,
    versions: HashMap<QualifiedName, u32>,
    dropped: HashMap<QualifiedName, Vec<String>>,
    /// Versions this process applied, for the fault tests' pause point.
    n_applied: u64,
}

impl Following {
    /// Starts from the run's schema as it began, planned into `plan` with `ddl`.
    pub fn new(schema: Schema, plan: Plan, ddl: passerelle_ddl::Config) -> Following {
        let (versions, dropped) = (HashMap::new(), HashMap::new());
        Following { original: schema.clone(), schema, plan, ddl, versions, dropped, n_applied: 0 }
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
        let columns = &self.schema.tables[position].columns;
        let n_original = self.original.tables[position].columns.len();
        let dropped = self.dropped.get(table).map_or(&[][..], Vec::as_slice);
        // Events written before a column was added lack it, and so do those written after one was dropped.
        let optional = (0..columns.len()).filter(|&i| i >= n_original || dropped.contains(&columns[i].name)).collect();
        let layout = table_layouts(prefix, &self.schema, encoding).swap_remove(position);
        Ok(Some((layout.with_optional_columns(optional), self.plan.tables[position].clone())))
    }

    /// Once the stream is applied: brings every table to the last version `altered` announces (a
    /// change that no later event used is applied all the same), then drops the columns the source
    /// dropped.
    pub async fn catch_up_all(&mut self, altered: &[TableAltered], target: &DbEndpoint) -> anyhow::Result<()> {
        let tables: BTreeSet<&QualifiedName> = altered.iter().map(|altered| &altered.table.name).collect();
        for table in tables {
            self.apply(altered, target, table).await?;
            let Some(planned) = self.plan.tables.iter().find(|planned| &planned.source == table) else { continue };
            for column in self.dropped.get(table).into_iter().flatten() {
                let statement = AlterColumn::new(planned, column, Change::Drop);
                retry::retry("altering a table in the target", || alter(target, &statement)).await?;
            }
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
                tracing::info!("{}", statement.sql());
            }
            (self.schema, self.plan) = (schema, plan);
            self.versions.insert(table.clone(), altered.version);
            self.dropped.insert(table.clone(), altered.dropped.clone());
            self.n_applied += 1;
            pause::point(pause::TARGET_ALTERED, self.n_applied).await;
        }
        Ok(true)
    }
}

/// Runs one column's change where the target needs it: an `ADD COLUMN` another sink ran first, or a
/// change of a column a rerun finds dropped, is left alone.
async fn alter(target: &DbEndpoint, statement: &AlterColumn) -> Result<(), MysqlError> {
    use passerelle_mysql::schema_apply::{apply, has_column};
    let AlterColumn { database, table, column, change } = statement;
    let mut conn = passerelle_mysql::connect(target).await?;
    // A column missing was dropped once the stream was applied, by an earlier run of this sink.
    let done = |has: bool| match change {
        Change::Add(_) => has,
        Change::Modify(_) | Change::Drop => !has,
    };
    if done(has_column(&mut conn, target, database, table, column).await?) {
        return Ok(());
    }
    if let Err(error) = apply(&mut conn, target, &[statement.sql()]).await {
        if !done(has_column(&mut conn, target, database, table, column).await?) {
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
