//! Applying the change stream exactly once, like the snapshot: each batch of one partition in one
//! transaction that also advances the partition's offset, changes below the stored offset skipped.
//!
//! A table with a primary key takes inserts and updates as upserts and deletes by key, so a change
//! that finds the row already there (or already gone) still leaves the row as the source has it.
//! A table without one (REPLICA IDENTITY FULL) takes inserts as appends and deletes exactly one row
//! equal to the old row; an update is that delete and an append.
//!
//! Consecutive changes of one kind go to the target as one statement, which keeps each key's changes
//! in order: a batch holds one kind only, and a key that comes back in it replaces its earlier row.
//!
//! Old rows and keys are matched through a temporary table shaped by `CREATE … SELECT` from the
//! target table: the old values land in columns of the target's own types, so FLOAT meets FLOAT and
//! (on MySQL) JSON meets JSON. Compared with a string parameter, a FLOAT column holding 0.1 never
//! equals '0.1', MySQL's JSON equals no string, and MySQL documents a string against a DECIMAL as
//! compared in doubles, where a neighbouring value could match.

use std::borrow::Cow;
use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::Value;
use passerelle_ddl::ident::quote;
use passerelle_model::event::{ChangeEvent, Op, Row};
use passerelle_model::target::TargetTable;

use super::{refused_value, BatchOrigin, Sink};
use crate::bookkeeping::POSITIONS_TABLE;
use crate::value::{convert, value_expression};
use crate::MysqlError;

/// Rows a multi-row statement carries at most, and parameter bytes after which it is sent early: far
/// from the 65,535 placeholders of a prepared statement and MariaDB's 16 MB default max_allowed_packet.
const MAX_BATCH_ROWS: usize = 2_000;
const MAX_BATCH_BYTES: usize = 4 << 20;
pub(super) const MAX_PLACEHOLDERS: usize = 65_535;

/// What one change does to the target.
enum Step<'a> {
    /// Inserts the row or, in a keyed table, overwrites the row with its key, leaving the `unchanged`
    /// columns as they are.
    Write { row: Cow<'a, Row>, unchanged: &'a [usize] },
    /// Deletes the row with this key, or in a keyless table one row equal to this one.
    Remove { row: &'a Row },
    /// An update that left unchanged TOASTed columns out: an UPDATE of the row with the old key keeps
    /// their values, where a delete and an insert would lose them and an upsert's INSERT would need
    /// them (a NOT NULL column without a default refuses the row, error 1364, even when the key exists).
    Rekey { before: &'a Row, after: &'a Row, unchanged: &'a [usize] },
}

/// Consecutive steps of one kind, sent as one statement (or one round of statements).
struct Batch<'a> {
    /// `(offset, step)`; a key that comes back replaces its earlier step.
    steps: Vec<(i64, Step<'a>)>,
    /// Keyed tables: where each key's step is in `steps`.
    positions: HashMap<Vec<Option<&'a str>>, usize>,
    n_bytes: usize,
}

impl Sink {
    /// Applies change events, `(offset, change)` in offset order, and advances the partition's offset,
    /// in one transaction. Changes below the stored offset were applied before and are skipped, and
    /// so are changes from before the table's last truncate; a truncate marker empties the table the
    /// first time one of its partitions reaches it (`truncate`). Returns how many changes were applied. A snapshot read (`Op::Read`) is taken as an insert, so
    /// a partition whose snapshot rows and changes interleave can go through here.
    pub async fn apply_changes(
        &mut self,
        table: &TargetTable,
        origin: BatchOrigin<'_>,
        changes: &[(i64, ChangeEvent)],
    ) -> Result<u64, MysqlError> {
        if changes.is_empty() {
            return Ok(0);
        }
        // Before the transaction: under GTID consistency, MySQL may refuse CREATE TEMPORARY TABLE inside one.
        let scratch = self.scratch_table(table).await?;
        self.run("starting a transaction", "START TRANSACTION").await?;
        let outcome = self.changes_in_transaction(table, &scratch, origin, changes).await;
        self.finish(outcome).await
    }

    /// How many statements [`Sink::apply_changes`] has sent on this connection: how well it batches.
    pub fn n_change_statements(&self) -> u64 {
        self.n_change_statements
    }

    async fn changes_in_transaction(
        &mut self,
        table: &TargetTable,
        scratch: &str,
        origin: BatchOrigin<'_>,
        changes: &[(i64, ChangeEvent)],
    ) -> Result<u64, MysqlError> {
        let next_offset = self.claim(origin).await?;
        let fresh: Vec<&(i64, ChangeEvent)> = changes.iter().filter(|(offset, _)| *offset >= next_offset).collect();
        let Some(&&(last_offset, _)) = fresh.last() else { return Ok(0) };
        let marker = fresh.iter().any(|(_, change)| change.op == Op::Truncate);
        let mut truncated = self.truncated_at(origin.topic, marker).await?;
        let placed = fresh.iter().any(|(_, change)| change.position.is_some());
        let applied_up_to = if placed { self.stream_position(origin).await? } else { None };
        let (mut up_to, mut n_replayed) = (applied_up_to, 0);
        let target = Target { table, scratch, origin };
        let mut batch = Batch { steps: Vec::new(), positions: HashMap::new(), n_bytes: 0 };
        let mut n_applied = 0;
        for (offset, change) in &fresh {
            // Along a partition the stream's positions increase; one at or before the last applied
            // is a change the slot sent again after a crash, which Kafka now holds twice.
            if let Some(at) = change.position.map(|position| (change.commit_lsn.0, position)) {
                if up_to.is_some_and(|up_to| at <= up_to) {
                    n_replayed += 1;
                    continue;
                }
                up_to = Some(at);
            }
            // From before the table's last truncate: dead at the source (see `truncate`).
            if truncated.is_some_and(|at| change.position() <= at) {
                continue;
            }
            n_applied += 1;
            if change.op == Op::Truncate {
                self.flush(&target, &mut batch).await?;
                self.truncate(table, origin.topic, change.position()).await?;
                truncated = Some(change.position());
                continue;
            }
            let steps = steps(table, change).map_err(|cause| target.unappliable(*offset, cause))?;
            for step in steps {
                if !batch.takes(table, &step) {
                    self.flush(&target, &mut batch).await?;
                }
                batch.push(table, *offset, step);
                if batch.n_bytes >= MAX_BATCH_BYTES || batch.steps.len() >= target.max_rows() {
                    self.flush(&target, &mut batch).await?;
                }
            }
        }
        self.flush(&target, &mut batch).await?;
        self.advance(origin, last_offset + 1).await?;
        if let Some(up_to) = up_to.filter(|_| up_to != applied_up_to) {
            self.record_stream_position(origin, up_to).await?;
        }
        if n_replayed > 0 {
            tracing::info!(
                topic = origin.topic,
                partition = origin.partition,
                n_replayed,
                "skipped changes applied before, which the source's slot sent again"
            );
        }
        Ok(n_applied)
    }

    /// In the batch's transaction: the place in the source's stream of the partition's last change
    /// applied, `(commit LSN, position)`.
    async fn stream_position(&mut self, origin: BatchOrigin<'_>) -> Result<Option<(u64, u64)>, MysqlError> {
        let endpoint = &self.endpoint;
        self.conn
            .exec_first(
                format!(
                    "SELECT commit_lsn, position FROM {}.{POSITIONS_TABLE} WHERE topic = ? AND kafka_partition = ?",
                    quote(&self.bookkeeping_db)
                ),
                (origin.topic, origin.partition),
            )
            .await
            .map_err(|error| MysqlError::query(endpoint, "reading the partition's stream position", error))
    }

    async fn record_stream_position(
        &mut self,
        origin: BatchOrigin<'_>,
        (lsn, position): (u64, u64),
    ) -> Result<(), MysqlError> {
        let endpoint = &self.endpoint;
        self.conn
            .exec_drop(
                format!(
                    "INSERT INTO {}.{POSITIONS_TABLE} (topic, kafka_partition, commit_lsn, position) VALUES (?, ?, ?, ?)
                     ON DUPLICATE KEY UPDATE commit_lsn = VALUES(commit_lsn), position = VALUES(position)",
                    quote(&self.bookkeeping_db)
                ),
                (origin.topic, origin.partition, lsn, position),
            )
            .await
            .map_err(|error| MysqlError::query(endpoint, "recording the partition's stream position", error))
    }

    /// The temporary table that old keys (keyed tables) or old rows (keyless ones) are written to,
    /// to be compared in the target's types; created once per connection and table.
    async fn scratch_table(&mut self, table: &TargetTable) -> Result<String, MysqlError> {
        let id = (table.database.clone(), table.name.clone());
        if let Some(name) = self.scratch_tables.get(&id) {
            return Ok(name.clone());
        }
        let name = format!("{}.`passerelle_old_row_{}`", quote(&self.bookkeeping_db), self.scratch_tables.len());
        let columns = column_list(table, &match_columns(table));
        let sql = format!(
            "CREATE TEMPORARY TABLE {name} ENGINE=InnoDB AS SELECT {columns} FROM {}.{} LIMIT 0",
            quote(&table.database),
            quote(&table.name)
        );
        let endpoint = &self.endpoint;
        self.conn
            .query_drop(sql)
            .await
            .map_err(|error| MysqlError::query(endpoint, "creating a scratch table", error))?;
        self.scratch_tables.insert(id, name.clone());
        Ok(name)
    }

    async fn flush(&mut self, target: &Target<'_>, batch: &mut Batch<'_>) -> Result<(), MysqlError> {
        let steps = std::mem::take(&mut batch.steps);
        batch.positions.clear();
        batch.n_bytes = 0;
        let Some((_, first)) = steps.first() else { return Ok(()) };
        match first {
            Step::Write { unchanged, .. } => {
                let rows: Vec<(i64, &Row)> = steps
                    .iter()
                    .filter_map(|(offset, step)| match step {
                        Step::Write { row, .. } => Some((*offset, row.as_ref())),
                        _ => None,
                    })
                    .collect();
                self.write(target, &rows, unchanged).await
            }
            Step::Remove { .. } if target.table.key.is_empty() => {
                for (offset, step) in &steps {
                    if let Step::Remove { row } = step {
                        self.remove_one(target, *offset, row).await?;
                    }
                }
                Ok(())
            }
            Step::Remove { .. } => {
                let keys: Vec<(i64, &Row)> = steps
                    .iter()
                    .filter_map(|(offset, step)| match step {
                        Step::Remove { row } => Some((*offset, *row)),
                        _ => None,
                    })
                    .collect();
                self.remove_keys(target, &keys).await
            }
            Step::Rekey { before, after, unchanged } => self.rekey(target, steps[0].0, before, after, unchanged).await,
        }
    }

    /// Upserts (keyed) or appends (keyless) `rows`. A value the target refuses is pinned down to its
    /// change by writing the rows one at a time: the failed statement left nothing behind, and the
    /// transaction rolls back anyway.
    async fn write(
        &mut self,
        target: &Target<'_>,
        rows: &[(i64, &Row)],
        unchanged: &[usize],
    ) -> Result<(), MysqlError> {
        let columns = write_columns(target.table, unchanged);
        // A value the conversion refuses names its change already.
        let params = target.params(rows, &columns)?;
        match self.write_statement(target, rows, &columns, params).await {
            Err(error) if error.is_refused_value() && rows.len() > 1 => {
                for row in rows {
                    let row = std::slice::from_ref(row);
                    self.write_statement(target, row, &columns, target.params(row, &columns)?).await?;
                }
                Err(error)
            }
            outcome => outcome,
        }
    }

    async fn write_statement(
        &mut self,
        target: &Target<'_>,
        rows: &[(i64, &Row)],
        columns: &[usize],
        params: Vec<Value>,
    ) -> Result<(), MysqlError> {
        let table = target.table;
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            target.name(),
            column_list(table, columns),
            values_list(table, columns, rows.len())
        );
        if !table.key.is_empty() {
            // VALUES(column) rather than MySQL 8.0.19's row alias, which MariaDB does not have; MySQL
            // deprecates it with a warning but runs it. A table whose every column is in the key, or
            // whose other columns are all unchanged, updates nothing: a key column set to itself.
            let mut updates: Vec<String> = columns
                .iter()
                .filter(|position| !table.key.contains(position))
                .map(|&position| {
                    let column = quote(&table.columns[position].name);
                    format!("{column} = VALUES({column})")
                })
                .collect();
            if updates.is_empty() {
                let column = quote(&table.columns[columns[0]].name);
                updates.push(format!("{column} = {column}"));
            }
            sql.push_str(" ON DUPLICATE KEY UPDATE ");
            sql.push_str(&updates.join(", "));
        }
        self.execute(target, offsets(rows), sql, params).await
    }

    /// Deletes the rows with these keys: the keys go to the scratch table, the rows go by a join on it.
    async fn remove_keys(&mut self, target: &Target<'_>, keys: &[(i64, &Row)]) -> Result<(), MysqlError> {
        let name = target.name();
        self.fill_scratch(target, keys).await?;
        // The target table unaliased: MariaDB resolves an alias in the delete list as a table of the
        // default database, and the sink has none.
        let sql = format!(
            "DELETE {name} FROM {name} JOIN {} AS old_row ON {}",
            target.scratch,
            old_row_condition(target.table, &name, "=")
        );
        self.execute(target, offsets(keys), sql, Vec::new()).await?;
        self.clear_scratch(target, offsets(keys)).await
    }

    /// Deletes one row equal to `row`, NULL equal to NULL. Several equal rows are one row each to the
    /// source, so exactly one goes; none found means the target no longer holds it, and the delete is
    /// done already.
    async fn remove_one(&mut self, target: &Target<'_>, offset: i64, row: &Row) -> Result<(), MysqlError> {
        let name = target.name();
        let at = offsets(&[(offset, row)]);
        self.fill_scratch(target, &[(offset, row)]).await?;
        // EXISTS names the temporary table once: a query may not open one twice ("Can't reopen table").
        let sql = format!(
            "DELETE FROM {name} WHERE EXISTS (SELECT 1 FROM {} AS old_row WHERE {}) LIMIT 1",
            target.scratch,
            old_row_condition(target.table, &name, "<=>")
        );
        self.execute(target, at.clone(), sql, Vec::new()).await?;
        if self.conn.affected_rows() == 0 {
            tracing::warn!(table = %name, topic = target.origin.topic, partition = target.origin.partition, offset,
                "no row equal to the old row of a delete or update: the target lacks it already");
        }
        self.clear_scratch(target, at).await
    }

    async fn rekey(
        &mut self,
        target: &Target<'_>,
        offset: i64,
        before: &Row,
        after: &Row,
        unchanged: &[usize],
    ) -> Result<(), MysqlError> {
        let table = target.table;
        let name = target.name();
        let columns = write_columns(table, unchanged);
        let sets: Vec<String> = columns
            .iter()
            .map(|&position| {
                let column = &table.columns[position];
                format!("{name}.{} = {}", quote(&column.name), value_expression(&column.conversion))
            })
            .collect();
        let at = offsets(&[(offset, after)]);
        self.fill_scratch(target, &[(offset, before)]).await?;
        let sql = format!(
            "UPDATE {name} JOIN {} AS old_row ON {} SET {}",
            target.scratch,
            old_row_condition(table, &name, "="),
            sets.join(", ")
        );
        let params = target.params(&[(offset, after)], &columns)?;
        self.execute(target, at.clone(), sql, params).await?;
        self.clear_scratch(target, at).await
    }

    async fn fill_scratch(&mut self, target: &Target<'_>, rows: &[(i64, &Row)]) -> Result<(), MysqlError> {
        let columns = match_columns(target.table);
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            target.scratch,
            column_list(target.table, &columns),
            values_list(target.table, &columns, rows.len())
        );
        let params = target.params(rows, &columns)?;
        self.execute(target, offsets(rows), sql, params).await
    }

    async fn clear_scratch(&mut self, target: &Target<'_>, offsets: String) -> Result<(), MysqlError> {
        self.execute(target, offsets, format!("DELETE FROM {}", target.scratch), Vec::new()).await
    }

    async fn execute(
        &mut self,
        target: &Target<'_>,
        offsets: String,
        sql: String,
        params: Vec<Value>,
    ) -> Result<(), MysqlError> {
        self.n_change_statements += 1;
        let outcome =
            if params.is_empty() { self.conn.query_drop(sql).await } else { self.conn.exec_drop(sql, params).await };
        outcome.map_err(|error| {
            let origin = (target.origin.topic, target.origin.partition);
            MysqlError::writing(&self.endpoint, "applying changes", &target.display_name(), origin, &offsets, error)
        })
    }
}

/// What a batch applies to.
struct Target<'a> {
    table: &'a TargetTable,
    scratch: &'a str,
    origin: BatchOrigin<'a>,
}

impl Target<'_> {
    fn name(&self) -> String {
        format!("{}.{}", quote(&self.table.database), quote(&self.table.name))
    }

    fn display_name(&self) -> String {
        format!("{}.{}", self.table.database, self.table.name)
    }

    /// Rows per statement: a row of a wide table takes many placeholders.
    fn max_rows(&self) -> usize {
        MAX_BATCH_ROWS.min(MAX_PLACEHOLDERS / self.table.columns.len().max(1))
    }

    fn params(&self, rows: &[(i64, &Row)], columns: &[usize]) -> Result<Vec<Value>, MysqlError> {
        params(self.table, self.origin, rows, columns)
    }

    fn unappliable(&self, offset: i64, cause: String) -> MysqlError {
        MysqlError::Unappliable {
            table: self.display_name(),
            topic: self.origin.topic.to_string(),
            partition: self.origin.partition,
            offset,
            cause,
        }
    }
}

impl<'a> Batch<'a> {
    /// Whether `step` can join the batch: same kind, and for writes the same columns left unchanged.
    /// Keyless deletes and key changes go one at a time.
    fn takes(&self, table: &TargetTable, step: &Step<'_>) -> bool {
        let Some((_, last)) = self.steps.last() else { return true };
        match (last, step) {
            (Step::Write { unchanged: pending, .. }, Step::Write { unchanged, .. }) => pending == unchanged,
            (Step::Remove { .. }, Step::Remove { .. }) => !table.key.is_empty(),
            _ => false,
        }
    }

    fn push(&mut self, table: &TargetTable, offset: i64, step: Step<'a>) {
        self.n_bytes += match &step {
            Step::Write { row, .. } => row_bytes(row),
            Step::Remove { row } => row_bytes(row),
            Step::Rekey { before, after, .. } => row_bytes(before) + row_bytes(after),
        };
        // Rows of keyed tables are borrowed from the changes (only keyless updates build a row).
        let key = match &step {
            _ if table.key.is_empty() => None,
            Step::Write { row: Cow::Borrowed(row), .. } | Step::Remove { row } => Some(key_of(table, row)),
            Step::Write { .. } | Step::Rekey { .. } => None,
        };
        match key {
            // The later change of a key wins: for a write its row holds every column the earlier
            // one set, for a delete the second finds nothing more to delete.
            Some(key) if self.positions.contains_key(&key) => self.steps[self.positions[&key]] = (offset, step),
            Some(key) => {
                self.positions.insert(key, self.steps.len());
                self.steps.push((offset, step));
            }
            None => self.steps.push((offset, step)),
        }
    }
}

/// What `change` does to the target, or why it cannot be applied.
fn steps<'a>(table: &TargetTable, change: &'a ChangeEvent) -> Result<Vec<Step<'a>>, String> {
    let checked = |row: Option<&'a Row>, missing: &str| -> Result<&'a Row, String> {
        let row = row.ok_or_else(|| missing.to_string())?;
        if row.len() != table.columns.len() {
            return Err(format!("{} values for {} columns", row.len(), table.columns.len()));
        }
        Ok(row)
    };
    if change.table != table.source {
        return Err(format!("a change of {}, not of {}", change.table, table.source));
    }
    let unchanged = change.unchanged.as_slice();
    if unchanged.iter().any(|position| *position >= table.columns.len() || table.key.contains(position)) {
        return Err("a key column or a column the table lacks is marked unchanged".to_string());
    }
    let keyed = !table.key.is_empty();
    Ok(match change.op {
        Op::Create | Op::Read => {
            vec![Step::Write {
                row: Cow::Borrowed(checked(change.after.as_ref(), "an insert without its row")?),
                unchanged,
            }]
        }
        Op::Delete => vec![Step::Remove { row: checked(change.before.as_ref(), "a delete without its old row")? }],
        // Applied by itself (`truncate`), never as a step.
        Op::Truncate => Vec::new(),
        Op::Update if keyed => {
            let after = checked(change.after.as_ref(), "an update without its new row")?;
            match change.before.as_ref() {
                Some(before)
                    if key_of(table, checked(Some(before), "an update without its old row")?)
                        != key_of(table, after) =>
                {
                    if unchanged.is_empty() {
                        vec![Step::Remove { row: before }, Step::Write { row: Cow::Borrowed(after), unchanged }]
                    } else {
                        vec![Step::Rekey { before, after, unchanged }]
                    }
                }
                _ if unchanged.is_empty() => vec![Step::Write { row: Cow::Borrowed(after), unchanged }],
                // The key stayed: the new row names the row to update.
                _ => vec![Step::Rekey { before: after, after, unchanged }],
            }
        }
        Op::Update => {
            let after = checked(change.after.as_ref(), "an update without its new row")?;
            let before = checked(change.before.as_ref(), "an update without its old row")?;
            // With REPLICA IDENTITY FULL the old row carries the unchanged values too.
            let row = if unchanged.is_empty() {
                Cow::Borrowed(after)
            } else {
                let mut row = after.clone();
                for &position in unchanged {
                    row[position].clone_from(&before[position]);
                }
                Cow::Owned(row)
            };
            vec![Step::Remove { row: before }, Step::Write { row, unchanged: &[] }]
        }
    })
}

fn key_of<'r>(table: &TargetTable, row: &'r Row) -> Vec<Option<&'r str>> {
    table.key.iter().map(|&position| row[position].as_deref()).collect()
}

fn row_bytes(row: &Row) -> usize {
    row.iter().map(|value| value.as_ref().map_or(1, String::len)).sum()
}

/// The columns a write sets: all but the generated ones and those the change left unchanged.
pub(super) fn write_columns(table: &TargetTable, unchanged: &[usize]) -> Vec<usize> {
    (0..table.columns.len())
        .filter(|position| !table.columns[*position].generated && !unchanged.contains(position))
        .collect()
}

/// The columns an old row is matched on: the key, or every column the target does not compute.
fn match_columns(table: &TargetTable) -> Vec<usize> {
    if table.key.is_empty() {
        write_columns(table, &[])
    } else {
        table.key.clone()
    }
}

/// `name` matches the scratch table's `old_row` on every match column, compared with `operator`.
fn old_row_condition(table: &TargetTable, name: &str, operator: &str) -> String {
    let conditions: Vec<String> = match_columns(table)
        .iter()
        .map(|&position| {
            let column = quote(&table.columns[position].name);
            format!("{name}.{column} {operator} old_row.{column}")
        })
        .collect();
    conditions.join(" AND ")
}

pub(super) fn column_list(table: &TargetTable, columns: &[usize]) -> String {
    let names: Vec<String> = columns.iter().map(|&position| quote(&table.columns[position].name)).collect();
    names.join(", ")
}

/// `(?, ST_GeomFromText(?), …), …` for `n_rows` rows of `columns`.
pub(super) fn values_list(table: &TargetTable, columns: &[usize], n_rows: usize) -> String {
    let expressions: Vec<String> =
        columns.iter().map(|&position| value_expression(&table.columns[position].conversion)).collect();
    let row = format!("({})", expressions.join(", "));
    vec![row; n_rows].join(", ")
}

/// The `columns` of `rows`, converted as the `LOAD DATA` path converts them.
pub(super) fn params(
    table: &TargetTable,
    origin: BatchOrigin<'_>,
    rows: &[(i64, &Row)],
    columns: &[usize],
) -> Result<Vec<Value>, MysqlError> {
    let mut params = Vec::with_capacity(rows.len() * columns.len());
    for (offset, row) in rows {
        for &position in columns {
            let column = &table.columns[position];
            let value = match row[position].as_deref() {
                None => Value::NULL,
                Some(text) => Value::Bytes(
                    convert(&column.conversion, text)
                        .map_err(|cause| {
                            super::data_error(table, origin, refused_value(table, *offset, row, &column.name, &cause))
                        })?
                        .into_owned(),
                ),
            };
            params.push(value);
        }
    }
    Ok(params)
}

/// The offsets a statement wrote, for its errors.
pub(super) fn offsets(rows: &[(i64, &Row)]) -> String {
    match rows {
        [] => "no change".to_string(),
        [(offset, _)] => format!("offset {offset}"),
        [(first, _), .., (last, _)] => format!("offsets {first} to {last}"),
    }
}
