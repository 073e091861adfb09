//! Applying rows to the target exactly once: each batch of one Kafka partition is loaded in one
//! transaction that also advances that partition's offset in the bookkeeping table. A batch seen
//! again (a restart, a rebalance, a replayed fetch) finds its offsets already consumed and is skipped,
//! which holds for tables without a primary key too. The change stream is applied the same way
//! (`changes`).
//!
//! Snapshot rows go in by `LOAD DATA LOCAL INFILE` where the server allows it, else by multi-row
//! INSERTs (`insert`); both convert values alike and treat every warning as an error.

mod changes;
mod copy;
mod insert;
mod truncate;

pub use copy::CopyBatch;

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
use crate::preflight::local_infile_allowed;
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
    n_load_statements: u64,
    load_path: LoadPath,
    /// The server's `max_allowed_packet`, which bounds an INSERT statement.
    max_packet: usize,
}

/// How snapshot rows enter the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadPath {
    /// `LOAD DATA LOCAL INFILE`: the fastest, where the server has `local_infile` ON.
    LoadData,
    /// Multi-row prepared INSERTs, which every server takes.
    Insert,
}

impl LoadPath {
    /// Its name on the command line and in `--json`.
    pub fn name(self) -> &'static str {
        match self {
            LoadPath::LoadData => "load-data",
            LoadPath::Insert => "insert",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            LoadPath::LoadData => "LOAD DATA LOCAL INFILE",
            LoadPath::Insert => "multi-row INSERT",
        }
    }
}

/// Where one batch comes from.
#[derive(Clone, Copy, Debug)]
pub struct BatchOrigin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    /// Where the run's records begin in this partition: its first claim starts there, so whatever
    /// lies before (an abandoned run's records) is never applied.
    pub start: i64,
}

impl Sink {
    /// Connects, sets the session up and creates the bookkeeping tables in `bookkeeping_db` if needed.
    pub async fn open(endpoint: &DbEndpoint, bookkeeping_db: &str) -> Result<Sink, MysqlError> {
        let mut conn = connect(endpoint).await?;
        let name = endpoint.to_string();
        conn.query_drop(SESSION).await.map_err(|error| MysqlError::query(&name, "setting up the session", error))?;
        // The driver always offers to send local files, so the server's setting decides; Passerelle
        // never changes it (SET GLOBAL needs a privilege managed services do not give).
        let settings: Option<(String, usize)> = conn
            .query_first("SELECT @@GLOBAL.local_infile, @@max_allowed_packet")
            .await
            .map_err(|error| MysqlError::query(&name, "reading server settings", error))?;
        let (local_infile, max_packet) = settings.unwrap_or_default();
        crate::bookkeeping::ensure_tables(&mut conn, &name, bookkeeping_db).await?;
        Ok(Sink {
            conn,
            endpoint: name,
            bookkeeping_db: bookkeeping_db.to_string(),
            scratch_tables: HashMap::new(),
            n_change_statements: 0,
            n_load_statements: 0,
            load_path: if local_infile_allowed(&local_infile) { LoadPath::LoadData } else { LoadPath::Insert },
            max_packet,
        })
    }

    /// Replaces a connection that broke (the server restarted, the connection was killed) with a
    /// new one set up the same way, on the same load path. The transaction under way when it broke
    /// rolled back whole, offsets included, so its batch can be applied again.
    pub async fn reopen(&mut self, endpoint: &DbEndpoint) -> Result<(), MysqlError> {
        let old = std::mem::replace(self, Sink::open(endpoint, &self.bookkeeping_db).await?);
        (self.n_change_statements, self.n_load_statements, self.load_path) =
            (old.n_change_statements, old.n_load_statements, old.load_path);
        drop(old);
        Ok(())
    }

    /// The load path this connection takes: the server's choice, unless [`Sink::set_load_path`] forced one.
    pub fn load_path(&self) -> LoadPath {
        self.load_path
    }

    /// How many statements [`Sink::load_rows`] has sent on this connection: how well it batches.
    pub fn n_load_statements(&self) -> u64 {
        self.n_load_statements
    }

    /// Forces a load path; `LoadData` fails on a server with `local_infile` OFF.
    pub fn set_load_path(&mut self, load_path: LoadPath) {
        self.load_path = load_path;
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
                format!("INSERT IGNORE INTO {offsets} (topic, kafka_partition, next_offset) VALUES (?, ?, ?)"),
                (origin.topic, origin.partition, origin.start),
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
        Ok(next_offset.unwrap_or(origin.start))
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
        let fresh: Vec<(i64, &Row)> =
            rows.iter().filter(|(offset, _)| *offset >= next_offset).map(|(offset, row)| (*offset, row)).collect();
        let Some(&(last_offset, _)) = fresh.last() else { return Ok(0) };
        // An online run's table truncated while its snapshot still loads: the snapshot's rows come
        // before any change, so the truncate removed them all at the source.
        if self.truncated_at(origin.topic, false).await?.is_some() {
            self.advance(origin, last_offset + 1).await?;
            return Ok(0);
        }
        if let Some((offset, row)) = fresh.iter().find(|(_, row)| row.len() != table.columns.len()) {
            let cause = format!("offset {offset}: {} values for {} columns", row.len(), table.columns.len());
            return Err(data_error(table, origin, cause));
        }
        let loaded = match self.load_path {
            LoadPath::LoadData => self.load_data(table, origin, &fresh).await?,
            LoadPath::Insert => self.insert_rows(table, origin, &fresh).await?,
        };
        self.advance(origin, last_offset + 1).await?;
        Ok(loaded)
    }

    async fn load_data(
        &mut self,
        table: &TargetTable,
        origin: BatchOrigin<'_>,
        rows: &[(i64, &Row)],
    ) -> Result<u64, MysqlError> {
        let data = tsv(table, rows).map_err(|cause| data_error(table, origin, cause))?;
        self.n_load_statements += 1;
        let endpoint = &self.endpoint;
        let conn = &mut self.conn;
        conn.set_infile_handler(async move { Ok(futures::stream::iter([Ok(Bytes::from(data))]).boxed()) });
        conn.query_drop(load_statement(table))
            .await
            .map_err(|error| MysqlError::query(endpoint, "loading rows", error))?;
        self.check_loaded(table, origin, rows).await
    }

    /// After a statement that loaded `rows`: every row taken, and no warning. LOAD DATA LOCAL turns
    /// bad values and duplicate keys into warnings; for us they are errors, named by offset.
    async fn check_loaded(
        &mut self,
        table: &TargetTable,
        origin: BatchOrigin<'_>,
        rows: &[(i64, &Row)],
    ) -> Result<u64, MysqlError> {
        let offset_of = |n: usize| rows.get(n.checked_sub(1)?).map(|(offset, _)| *offset);
        self.check_counted(table, origin, rows.len() as u64, at_offset_of(offset_of)).await
    }

    /// [`Sink::check_loaded`] of a statement that loaded `n_rows`, `at_offset` rewriting a warning's row.
    async fn check_counted(
        &mut self,
        table: &TargetTable,
        origin: BatchOrigin<'_>,
        n_rows: u64,
        at_offset: impl Fn(&str) -> String,
    ) -> Result<u64, MysqlError> {
        let (affected, warnings) = (self.conn.affected_rows(), self.conn.get_warnings());
        if warnings == 0 && affected == n_rows {
            return Ok(affected);
        }
        let endpoint = &self.endpoint;
        let shown: Vec<(String, u32, String)> = self
            .conn
            .query("SHOW WARNINGS LIMIT 3")
            .await
            .map_err(|error| MysqlError::query(endpoint, "reading the load's warnings", error))?;
        let first: Vec<String> = shown
            .into_iter()
            .map(|(_, code, message)| format!("{code} {}", at_offset(&without_value(&message))))
            .collect();
        Err(MysqlError::Rejected {
            table: format!("{}.{}", table.database, table.name),
            topic: origin.topic.to_string(),
            partition: origin.partition,
            detail: format!("{affected} of {n_rows} rows loaded, {warnings} warning(s): {}", first.join("; ")),
        })
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

fn data_error(table: &TargetTable, origin: BatchOrigin<'_>, cause: String) -> MysqlError {
    MysqlError::Data {
        table: format!("{}.{}", table.database, table.name),
        topic: origin.topic.to_string(),
        partition: origin.partition,
        cause,
    }
}

/// Rewrites a warning's `at row N` (the statement's Nth row, from 1) as the offset of the record
/// that row came from, which `offset_of(N)` tells.
fn at_offset_of(offset_of: impl Fn(usize) -> Option<i64>) -> impl Fn(&str) -> String {
    move |message| {
        let Some((before, number)) = message.rsplit_once(" at row ") else { return message.to_string() };
        match number.parse::<usize>().ok().and_then(&offset_of) {
            Some(offset) => format!("{before} at offset {offset}"),
            None => message.to_string(),
        }
    }
}

/// The rows as one LOAD DATA stream: tab-separated fields, one line a row.
fn tsv(table: &TargetTable, rows: &[(i64, &Row)]) -> Result<Vec<u8>, String> {
    // Sized for the values' text up front (a field is rarely longer than its text, a bytea's half
    // as long; pages never written are never resident): rows of 10 MB values are not copied over
    // and over as the buffer doubles.
    let text: usize =
        rows.iter().flat_map(|(_, row)| row.iter()).map(|value| value.as_ref().map_or(2, String::len) + 1).sum();
    let mut out = Vec::with_capacity(text + text / 64);
    for (offset, row) in rows {
        for (i, (column, value)) in table.columns.iter().zip(row.iter()).enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            write_field(&column.conversion, value.as_deref(), &mut out)
                .map_err(|cause| refused_value(table, *offset, row, &column.name, &cause))?;
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// Where a value the target cannot hold is: its offset, its row's primary key and its column.
pub(crate) fn refused_value(table: &TargetTable, offset: i64, row: &Row, column: &str, cause: &str) -> String {
    let key = table.key_text(|i| row[i].as_deref());
    format!("offset {offset}, row {key}, column {column}: {cause}")
}
