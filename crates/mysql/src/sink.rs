//! Applying rows to the target exactly once: each batch of one Kafka partition is loaded in one
//! transaction that also advances that partition's offset in the bookkeeping table. A batch seen
//! again (a restart, a rebalance, a replayed fetch) finds its offsets already consumed and is skipped,
//! which holds for tables without a primary key too. The change stream is applied the same way
//! (`changes`).

mod changes;

use std::collections::HashMap;

use bytes::Bytes;
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use passerelle_ddl::ident::quote;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::event::Row;
use passerelle_model::target::TargetTable;

use crate::bookkeeping::OFFSETS_TABLE;
use crate::error::without_value;
use crate::value::{load_expression, write_field};
use crate::{connect, MysqlError};

/// Session settings of every sink connection: strict, UTC, and no foreign-key checks while rows of
/// related tables arrive in any order (the post-data phase adds the keys and checks them then).
const SESSION: &str = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', \
                       time_zone = '+00:00', foreign_key_checks = 0, character_set_client = utf8mb4";

/// A connection ready to apply batches into the tables of one migration.
pub struct Sink {
    conn: Conn,
    endpoint: String,
    /// Where the offsets table lives.
    bookkeeping_db: String,
    /// The temporary tables that changes compare old rows through, by target database and table.
    scratch_tables: HashMap<(String, String), String>,
    n_change_statements: u64,
}

/// Where one batch comes from.
#[derive(Clone, Copy, Debug)]
pub struct BatchOrigin<'a> {
    pub topic: &'a str,
    pub partition: i32,
}

impl Sink {
    /// Connects, sets the session up and creates the bookkeeping tables in `bookkeeping_db` if needed.
    pub async fn open(endpoint: &DbEndpoint, bookkeeping_db: &str) -> Result<Sink, MysqlError> {
        let mut conn = connect(endpoint).await?;
        let name = endpoint.to_string();
        conn.query_drop(SESSION).await.map_err(|error| MysqlError::query(&name, "setting up the session", error))?;
        crate::bookkeeping::ensure_tables(&mut conn, &name, bookkeeping_db).await?;
        Ok(Sink {
            conn,
            endpoint: name,
            bookkeeping_db: bookkeeping_db.to_string(),
            scratch_tables: HashMap::new(),
            n_change_statements: 0,
        })
    }

    /// Replaces a connection that broke (the server restarted, the connection was killed) with a
    /// new one set up the same way. The transaction under way when it broke rolled back whole,
    /// offsets included, so its batch can be applied again.
    pub async fn reopen(&mut self, endpoint: &DbEndpoint) -> Result<(), MysqlError> {
        let n_change_statements = self.n_change_statements;
        let old = std::mem::replace(self, Sink::open(endpoint, &self.bookkeeping_db).await?);
        self.n_change_statements = n_change_statements;
        drop(old);
        Ok(())
    }

    /// Loads snapshot rows, `(offset, row)` in offset order, and advances the partition's offset, in
    /// one transaction. Rows below the stored offset were applied before and are skipped. Returns
    /// how many rows were loaded.
    pub async fn load_rows(
        &mut self,
        table: &TargetTable,
        origin: BatchOrigin<'_>,
        rows: &[(i64, Row)],
    ) -> Result<u64, MysqlError> {
        if rows.is_empty() {
            return Ok(0);
        }
        self.run("starting a transaction", "START TRANSACTION").await?;
        let outcome = self.load_in_transaction(table, origin, rows).await;
        self.finish(outcome).await
    }

    /// Commits after a batch applied, rolls back after one that failed.
    async fn finish(&mut self, outcome: Result<u64, MysqlError>) -> Result<u64, MysqlError> {
        match outcome {
            Ok(n_applied) => {
                self.run("committing", "COMMIT").await?;
                Ok(n_applied)
            }
            Err(error) => {
                // The connection may be gone; then the server rolls back on its own.
                let _ = self.conn.query_drop("ROLLBACK").await;
                Err(error)
            }
        }
    }

    /// In the batch's transaction: the partition's next offset to apply, its row locked until the
    /// transaction ends.
    async fn claim(&mut self, origin: BatchOrigin<'_>) -> Result<i64, MysqlError> {
        let endpoint = &self.endpoint;
        let context = |context: &'static str| move |error| MysqlError::query(endpoint, context, error);
        let offsets = format!("{}.{OFFSETS_TABLE}", quote(&self.bookkeeping_db));
        self.conn
            .exec_drop(
                format!("INSERT IGNORE INTO {offsets} (topic, kafka_partition, next_offset) VALUES (?, ?, 0)"),
                (origin.topic, origin.partition),
            )
            .await
            .map_err(context("registering the partition"))?;
        // FOR UPDATE: two sinks given the same partition (a rebalance in flight) apply it one at a time.
        let next_offset: Option<i64> = self
            .conn
            .exec_first(
                format!("SELECT next_offset FROM {offsets} WHERE topic = ? AND kafka_partition = ? FOR UPDATE"),
                (origin.topic, origin.partition),
            )
            .await
            .map_err(context("reading the partition's offset"))?;
        Ok(next_offset.unwrap_or(0))
    }

    /// In the batch's transaction: records that everything below `next_offset` is applied.
    async fn advance(&mut self, origin: BatchOrigin<'_>, next_offset: i64) -> Result<(), MysqlError> {
        let endpoint = &self.endpoint;
        self.conn
            .exec_drop(
                format!(
                    "UPDATE {}.{OFFSETS_TABLE} SET next_offset = ? WHERE topic = ? AND kafka_partition = ?",
                    quote(&self.bookkeeping_db)
                ),
                (next_offset, origin.topic, origin.partition),
            )
            .await
            .map_err(|error| MysqlError::query(endpoint, "advancing the partition's offset", error))
    }

    async fn load_in_transaction(
        &mut self,
        table: &TargetTable,
        origin: BatchOrigin<'_>,
        rows: &[(i64, Row)],
    ) -> Result<u64, MysqlError> {
        let next_offset = self.claim(origin).await?;
        let endpoint = &self.endpoint;
        let context = |context: &'static str| move |error| MysqlError::query(endpoint, context, error);
        let conn = &mut self.conn;
        let fresh: Vec<&(i64, Row)> = rows.iter().filter(|(offset, _)| *offset >= next_offset).collect();
        let Some(&&(last_offset, _)) = fresh.last() else { return Ok(0) };
        let table_name = || format!("{}.{}", table.database, table.name);

        let data = tsv(table, &fresh).map_err(|cause| MysqlError::Data {
            table: table_name(),
            topic: origin.topic.to_string(),
            partition: origin.partition,
            cause,
        })?;
        conn.set_infile_handler(async move { Ok(futures::stream::iter([Ok(Bytes::from(data))]).boxed()) });
        conn.query_drop(load_statement(table)).await.map_err(context("loading rows"))?;
        let (affected, warnings) = (conn.affected_rows(), conn.get_warnings());
        if warnings > 0 || affected != fresh.len() as u64 {
            // LOAD DATA LOCAL turns bad values and duplicate keys into warnings; for us they are errors.
            let shown: Vec<(String, u32, String)> =
                conn.query("SHOW WARNINGS LIMIT 3").await.map_err(context("reading the load's warnings"))?;
            let first: Vec<String> =
                shown.into_iter().map(|(_, code, message)| format!("{code} {}", without_value(&message))).collect();
            return Err(MysqlError::Rejected {
                table: table_name(),
                topic: origin.topic.to_string(),
                partition: origin.partition,
                detail: format!(
                    "{affected} of {} rows loaded, {warnings} warning(s): {}",
                    fresh.len(),
                    first.join("; ")
                ),
            });
        }
        self.advance(origin, last_offset + 1).await?;
        Ok(affected)
    }

    async fn run(&mut self, context: &'static str, statement: &str) -> Result<(), MysqlError> {
        let endpoint = &self.endpoint;
        self.conn.query_drop(statement).await.map_err(|error| MysqlError::query(endpoint, context, error))
    }

    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}

fn load_statement(table: &TargetTable) -> String {
    let mut fields = Vec::with_capacity(table.columns.len());
    let mut sets = Vec::new();
    for (i, column) in table.columns.iter().enumerate() {
        let variable = format!("@c{i}");
        if column.generated {
            // Read into a variable that nothing uses: the target computes the column.
            fields.push(variable);
            continue;
        }
        match load_expression(&column.conversion, &variable) {
            Some(expression) => {
                sets.push(format!("{} = {expression}", quote(&column.name)));
                fields.push(variable);
            }
            None => fields.push(quote(&column.name)),
        }
    }
    let mut statement = format!(
        "LOAD DATA LOCAL INFILE 'passerelle' INTO TABLE {}.{} CHARACTER SET utf8mb4 ({})",
        quote(&table.database),
        quote(&table.name),
        fields.join(", ")
    );
    if !sets.is_empty() {
        statement.push_str(" SET ");
        statement.push_str(&sets.join(", "));
    }
    statement
}

/// The rows as one LOAD DATA stream: tab-separated fields, one line a row.
fn tsv(table: &TargetTable, rows: &[&(i64, Row)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(rows.len() * 128);
    for (offset, row) in rows {
        if row.len() != table.columns.len() {
            return Err(format!("offset {offset}: {} values for {} columns", row.len(), table.columns.len()));
        }
        for (i, (column, value)) in table.columns.iter().zip(row).enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            write_field(&column.conversion, value.as_deref(), &mut out)
                .map_err(|cause| format!("offset {offset}, column {}: {cause}", column.name))?;
        }
        out.push(b'\n');
    }
    Ok(out)
}
