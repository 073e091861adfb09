//! The snapshot copy: every row of the selected tables as of the slot's exported snapshot, read by
//! parallel COPY workers, in bounded batches.
//!
//! A table is cut into ranges of heap blocks (`ctid` ranges, which PostgreSQL 14+ scans with a TID
//! range scan), so one big table keeps every worker busy and any table splits, with a primary key
//! or without. Each [`CopyUnit`] is one range of one table; [`plan_units`] lists them and
//! [`CopyWorker::copy`] copies one into a bounded channel, so memory holds a few batches, never a
//! table.
//!
//! COPY runs in text format: its values are the types' text output, exactly what pgoutput sends for
//! a change under the same [`crate::session`] settings (`model::event`'s contract).
//! <https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2>

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use passerelle_model::copy_text;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::event::Row;
use passerelle_model::schema::Table;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;

use crate::slot::{quote_ident, quote_qualified};
use crate::{session, PgError};

/// A batch holds at most this many rows...
pub const BATCH_ROWS: usize = 4096;
/// ...and about this many bytes of COPY text, whichever comes first.
pub const BATCH_BYTES: usize = 4 << 20;

/// A copy worker's channel to its encoder holds at most this many batches.
pub const CHANNEL_BATCHES: usize = 4;
/// All copy workers' batches together, those waiting in a channel and being encoded or produced
/// (and, as rows, those being filled), hold at most this many bytes of COPY text (a row larger than
/// that alone): rows of 10 MB values go one or two at a time, not four per worker.
pub const COPY_SPACE_BYTES: usize = 32 << 20;

/// A cap on the COPY bytes a second that all copy workers together read from the source
/// (`--max-source-rate`), so that a snapshot leaves the source's disks and CPU to its application.
/// A worker waits after each chunk until the bytes read so far are due; an idle moment lets
/// through at most one second's worth at once.
#[derive(Clone, Debug)]
pub struct SourceRate {
    bytes_per_second: u64,
    /// When the bytes read so far are due.
    due: Arc<Mutex<tokio::time::Instant>>,
}

impl SourceRate {
    pub fn new(bytes_per_second: u64) -> SourceRate {
        let due = Arc::new(Mutex::new(tokio::time::Instant::now()));
        SourceRate { bytes_per_second: bytes_per_second.max(1), due }
    }

    /// Waits until `n_bytes` more are within the rate.
    async fn take(&self, n_bytes: usize) {
        let cost = Duration::from_secs_f64(n_bytes as f64 / self.bytes_per_second as f64);
        let wake = {
            let mut due = self.due.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = tokio::time::Instant::now();
            *due = (*due).max(now) + cost;
            due.checked_sub(Duration::from_secs(1)).unwrap_or(now)
        };
        tokio::time::sleep_until(wake).await;
    }
}

/// The room every copy worker's batches share ([`COPY_SPACE_BYTES`]), one permit a byte.
#[derive(Clone)]
pub struct CopySpace(Arc<Semaphore>);

impl Default for CopySpace {
    fn default() -> CopySpace {
        CopySpace(Arc::new(Semaphore::new(COPY_SPACE_BYTES)))
    }
}

/// The sending end of a copy worker's channel: [`CHANNEL_BATCHES`] batches ([`RowBatch`]es or
/// [`TextBatch`]es), within the [`CopySpace`].
pub struct BatchSender<B> {
    sender: mpsc::Sender<(B, BatchSpace)>,
    space: CopySpace,
}

impl<B> Clone for BatchSender<B> {
    fn clone(&self) -> Self {
        BatchSender { sender: self.sender.clone(), space: self.space.clone() }
    }
}

/// The room a batch takes in the [`CopySpace`], given back when the receiver drops it (once the
/// batch is consumed, not when it is received).
pub struct BatchSpace {
    _held: Option<OwnedSemaphorePermit>,
}

/// A copy worker's channel, its batches' bytes counted in `space`, which the workers share.
pub fn batch_channel<B>(space: &CopySpace) -> (BatchSender<B>, mpsc::Receiver<(B, BatchSpace)>) {
    let (sender, receiver) = mpsc::channel(CHANNEL_BATCHES);
    (BatchSender { sender, space: space.clone() }, receiver)
}

/// Rows of one table, in the order COPY read them.
///
/// Stored compactly: every value's text in one buffer, so that a batch costs a few allocations
/// rather than one per value, which made parsing three times faster. Read a row with
/// [`RowBatch::row`] or [`RowBatch::rows`]; [`RowRef::to_row`] gives `model`'s [`Row`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowBatch {
    /// The table's index in the slice given to [`plan_units`] and [`CopyWorker::copy`].
    pub table_idx: usize,
    /// The COPY text these rows came from, newlines included: for throughput figures.
    pub n_bytes: u64,
    n_columns: usize,
    n_rows: usize,
    text: String,
    /// One entry per value: its end offset in `text` shifted left by one, the low bit set for NULL.
    /// A value starts where the previous one ends.
    ends: Vec<usize>,
}

impl RowBatch {
    fn new(table_idx: usize, n_columns: usize) -> RowBatch {
        RowBatch {
            table_idx,
            n_bytes: 0,
            n_columns,
            n_rows: 0,
            text: String::new(),
            ends: Vec::with_capacity(BATCH_ROWS * n_columns),
        }
    }

    /// A batch of `rows`, for tests of what consumes batches. Panics if a row has not `n_columns` values.
    pub fn from_rows(table_idx: usize, n_columns: usize, rows: &[Row]) -> RowBatch {
        let mut batch = RowBatch::new(table_idx, n_columns);
        for row in rows {
            assert_eq!(row.len(), n_columns, "every row of a batch has the same number of values");
            for value in row {
                match value {
                    Some(text) => batch.push_text(text),
                    None => batch.push_null(),
                }
            }
            batch.n_rows += 1;
        }
        batch
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.n_rows
    }

    pub fn is_empty(&self) -> bool {
        self.n_rows == 0
    }

    pub fn n_columns(&self) -> usize {
        self.n_columns
    }

    /// Row `row_idx`, which must be less than [`RowBatch::len`].
    pub fn row(&self, row_idx: usize) -> RowRef<'_> {
        assert!(row_idx < self.n_rows, "row {row_idx} of a batch of {}", self.n_rows);
        RowRef { batch: self, row_idx }
    }

    pub fn rows(&self) -> impl ExactSizeIterator<Item = RowRef<'_>> + '_ {
        (0..self.n_rows).map(|row_idx| RowRef { batch: self, row_idx })
    }

    fn push_text(&mut self, value: &str) {
        self.text.push_str(value);
        self.ends.push(self.text.len() << 1);
    }

    fn push_null(&mut self) {
        self.ends.push((self.text.len() << 1) | 1);
    }

    fn value(&self, idx: usize) -> Option<&str> {
        let end = self.ends[idx];
        if end & 1 == 1 {
            return None;
        }
        let start = if idx == 0 { 0 } else { self.ends[idx - 1] >> 1 };
        Some(&self.text[start..end >> 1])
    }
}

/// One row of a [`RowBatch`]: each column's text output in table column order, `None` for NULL.
#[derive(Clone, Copy, Debug)]
pub struct RowRef<'a> {
    batch: &'a RowBatch,
    row_idx: usize,
}

impl<'a> RowRef<'a> {
    /// The number of columns.
    pub fn len(&self) -> usize {
        self.batch.n_columns
    }

    pub fn is_empty(&self) -> bool {
        self.batch.n_columns == 0
    }

    /// Column `column_idx`'s value, `None` for NULL. Panics past the last column.
    pub fn get(&self, column_idx: usize) -> Option<&'a str> {
        assert!(column_idx < self.batch.n_columns, "column {column_idx} of {}", self.batch.n_columns);
        self.batch.value(self.row_idx * self.batch.n_columns + column_idx)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&'a str>> + 'a {
        let (batch, first) = (self.batch, self.row_idx * self.batch.n_columns);
        (first..first + batch.n_columns).map(move |idx| batch.value(idx))
    }

    /// The row as `model` defines it, one `String` per value.
    pub fn to_row(&self) -> Row {
        self.iter().map(|value| value.map(str::to_string)).collect()
    }
}

/// A [`TextBatch`] closes once it holds this many bytes of COPY text...
pub const TEXT_BATCH_BYTES: usize = 512 << 10;
/// ...and before a row would take it past this many: one batch travels as one Kafka record, which
/// librdkafka's default `message.max.bytes` (1,000,000) bounds, headers and framing included.
pub const TEXT_BATCH_MAX: usize = 960_000;

/// Whole rows of one range of one table as COPY sent them (`model::copy_text`), newlines included:
/// what the snapshot carries, unparsed, when it travels as COPY text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextBatch {
    pub table_idx: usize,
    /// The range's [`CopyUnit::ordinal`].
    pub ordinal: u32,
    pub n_rows: u64,
    pub text: Vec<u8>,
}

impl TextBatch {
    fn new(unit: &CopyUnit) -> TextBatch {
        TextBatch { table_idx: unit.table_idx, ordinal: unit.ordinal, n_rows: 0, text: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.n_rows == 0
    }
}

/// Heap blocks `start..end` of a table; no `end` means to the end of the table, however far it
/// has grown since it was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRange {
    pub start: u32,
    pub end: Option<u32>,
}

impl BlockRange {
    /// The `WHERE` condition, empty for the whole table.
    fn condition(&self) -> Option<String> {
        match (self.start, self.end) {
            (0, None) => None,
            (start, None) => Some(format!("ctid >= '({start},0)'")),
            (start, Some(end)) => Some(format!("ctid >= '({start},0)' and ctid < '({end},0)'")),
        }
    }
}

impl fmt::Display for BlockRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(end) => write!(f, "blocks {}..{end}", self.start),
            None => write!(f, "blocks {}..", self.start),
        }
    }
}

/// One range of one table: what a worker copies in one go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyUnit {
    pub table_idx: usize,
    /// The range's place in its table, 0 for the first: which partition its records go to when the
    /// snapshot is partitioned by range.
    pub ordinal: u32,
    pub blocks: BlockRange,
    /// The range's size on disk when it was planned, for ordering and progress estimates.
    pub estimated_bytes: u64,
}

/// What one [`CopyWorker::copy`] sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    pub n_rows: u64,
    pub n_bytes: u64,
}

/// Cuts every table into ranges of about `unit_bytes` of heap, the largest first so that the big
/// tables start early and the run ends with small units.
///
/// The last range of each table is open-ended, so it does not matter when the tables are measured:
/// rows the snapshot sees cannot lie beyond a table's end, and a range that holds nothing the
/// snapshot sees copies nothing. Partitioned parents hold no rows themselves (their partitions
/// do), so they get one unit that copies nothing.
pub async fn plan_units(
    client: &Client,
    endpoint: &impl fmt::Display,
    tables: &[Table],
    unit_bytes: u64,
) -> Result<Vec<CopyUnit>, PgError> {
    let mut units = Vec::new();
    for (table_idx, size) in measure(client, endpoint, tables).await?.into_iter().enumerate() {
        units.extend(split(table_idx, size.heap_bytes, size.block_size, unit_bytes));
    }
    units.sort_by_key(|unit| std::cmp::Reverse(unit.estimated_bytes));
    Ok(units)
}

/// PostgreSQL's estimate of each table's rows (`reltuples`), for progress; `None` for a table never
/// vacuumed or analyzed, and for partitioned parents, whose rows their partitions hold.
pub async fn estimate_rows(
    client: &Client,
    endpoint: &impl fmt::Display,
    tables: &[Table],
) -> Result<Vec<Option<u64>>, PgError> {
    Ok(measure(client, endpoint, tables).await?.into_iter().map(|size| size.estimated_rows).collect())
}

/// What one table takes on the source's disk, and its rows, for `passerelle estimate`.
#[derive(Clone, Debug)]
pub struct Footprint {
    /// The table's heap (`pg_relation_size`).
    pub heap_bytes: u64,
    /// Its indexes (`pg_indexes_size`), the primary key's included.
    pub index_bytes: u64,
    /// Everything: heap, TOAST and indexes (`pg_total_relation_size`).
    pub total_bytes: u64,
    /// `reltuples`: `None` before the first VACUUM or ANALYZE.
    pub estimated_rows: Option<u64>,
}

/// Each table's footprint, in the order given.
pub async fn footprints(
    client: &Client,
    endpoint: &impl fmt::Display,
    tables: &[Table],
) -> Result<Vec<Footprint>, PgError> {
    Ok(measure(client, endpoint, tables)
        .await?
        .into_iter()
        .map(|size| Footprint {
            heap_bytes: size.heap_bytes,
            index_bytes: size.index_bytes,
            total_bytes: size.total_bytes,
            estimated_rows: size.estimated_rows,
        })
        .collect())
}

/// COPY text of `table`'s first `n_rows` rows, read as the snapshot reads (`COPY ... TO STDOUT`),
/// and how long reading it took: `passerelle estimate`'s sample of this source's copy speed.
pub async fn sample_copy(
    client: &Client,
    endpoint: &impl fmt::Display,
    table: &Table,
    n_rows: u64,
) -> Result<(Vec<u8>, std::time::Duration), PgError> {
    use futures::StreamExt;
    let columns: Vec<String> = table
        .columns
        .iter()
        .filter(|column| column.generated.is_none())
        .map(|column| crate::slot::quote_ident(&column.name))
        .collect();
    let query = format!(
        "copy (select {} from only {} limit {n_rows}) to stdout",
        columns.join(", "),
        crate::slot::quote_qualified(&table.name)
    );
    let context = |error| PgError::query(endpoint, "copying a sample", error);
    let started = std::time::Instant::now();
    let stream = client.copy_out(&query).await.map_err(context)?;
    let mut stream = std::pin::pin!(stream);
    let mut text = Vec::new();
    while let Some(chunk) = stream.next().await {
        text.extend_from_slice(&chunk.map_err(context)?);
    }
    Ok((text, started.elapsed()))
}

/// What the catalog says of one table's size.
struct TableSize {
    heap_bytes: u64,
    index_bytes: u64,
    total_bytes: u64,
    block_size: u64,
    /// `reltuples`: `None` before the first VACUUM or ANALYZE, and for partitioned parents.
    estimated_rows: Option<u64>,
}

/// Each table's size, in the order given.
async fn measure(client: &Client, endpoint: &impl fmt::Display, tables: &[Table]) -> Result<Vec<TableSize>, PgError> {
    let schemas: Vec<&str> = tables.iter().map(|table| table.name.schema.as_str()).collect();
    let names: Vec<&str> = tables.iter().map(|table| table.name.name.as_str()).collect();
    // pg_relation_size rather than relpages, which is 0 until the first VACUUM or ANALYZE.
    let rows = client
        .query(
            "select coalesce(pg_relation_size(c.oid), 0)::bigint, current_setting('block_size')::bigint,
                    case when c.relkind = 'p' then null else c.reltuples::float8 end,
                    coalesce(pg_indexes_size(c.oid), 0)::bigint, coalesce(pg_total_relation_size(c.oid), 0)::bigint
             from unnest($1::text[], $2::text[]) with ordinality as t(schema_name, table_name, idx)
             left join pg_namespace n on n.nspname = t.schema_name
             left join pg_class c on c.relnamespace = n.oid and c.relname = t.table_name
             order by t.idx",
            &[&schemas, &names],
        )
        .await
        .map_err(|error| PgError::query(endpoint, "measuring the tables", error))?;
    Ok(rows
        .iter()
        .map(|row| TableSize {
            heap_bytes: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
            index_bytes: u64::try_from(row.get::<_, i64>(3)).unwrap_or(0),
            total_bytes: u64::try_from(row.get::<_, i64>(4)).unwrap_or(0),
            block_size: u64::try_from(row.get::<_, i64>(1)).unwrap_or(8192),
            estimated_rows: row.get::<_, Option<f64>>(2).filter(|rows| *rows >= 0.0).map(|rows| rows as u64),
        })
        .collect())
}

/// Ranges of `unit_bytes` (at least one block) covering a table of `table_bytes`, the last open-ended.
fn split(table_idx: usize, table_bytes: u64, block_size: u64, unit_bytes: u64) -> Vec<CopyUnit> {
    let n_blocks = table_bytes.div_ceil(block_size);
    let unit_blocks = (unit_bytes / block_size).max(1);
    let n_units = n_blocks.div_ceil(unit_blocks).max(1);
    (0..n_units)
        .map(|i| {
            let start = i * unit_blocks;
            let last = i + 1 == n_units;
            let end = (!last).then(|| block_number(start + unit_blocks));
            let blocks_in_unit = if last { n_blocks - start.min(n_blocks) } else { unit_blocks };
            CopyUnit {
                table_idx,
                ordinal: u32::try_from(i).unwrap_or(u32::MAX),
                blocks: BlockRange { start: block_number(start), end },
                estimated_bytes: blocks_in_unit * block_size,
            }
        })
        .collect()
}

/// Block numbers are 32 bits in PostgreSQL: a table has at most 2^32 blocks (32 TB at 8 kB).
fn block_number(block: u64) -> u32 {
    u32::try_from(block).unwrap_or(u32::MAX)
}

/// A connection that has imported the exported snapshot and copies units under it.
///
/// It stays in one read-only repeatable-read transaction, so every unit it copies sees the same
/// snapshot. After an error the transaction is gone: drop the worker and open another, which is
/// possible only while the [`crate::slot::ExportedSnapshot`] is still held.
pub struct CopyWorker {
    client: Client,
    endpoint: String,
    rate: Option<SourceRate>,
}

impl CopyWorker {
    /// Connects with the [`session`] settings and imports `snapshot_name`; reads within `rate`, shared
    /// by the workers, if one is given.
    pub async fn open(
        endpoint: &DbEndpoint,
        snapshot_name: &str,
        rate: Option<SourceRate>,
    ) -> Result<CopyWorker, PgError> {
        let client = session::connect(endpoint).await?;
        let endpoint = endpoint.to_string();
        let endpoint_ref = &endpoint;
        let error = |context: &'static str| move |source| PgError::query(endpoint_ref, context, source);
        // A role's statement_timeout must not cut a long COPY short, nor its
        // idle_in_transaction_session_timeout a worker waiting for its next unit.
        client
            .batch_execute("set statement_timeout = 0; set idle_in_transaction_session_timeout = 0")
            .await
            .map_err(error("disabling timeouts"))?;
        client
            .batch_execute("begin isolation level repeatable read read only")
            .await
            .map_err(error("starting the snapshot transaction"))?;
        // Must be the transaction's first statement, sent on its own.
        client
            .batch_execute(&format!("set transaction snapshot '{}'", snapshot_name.replace('\'', "''")))
            .await
            .map_err(error("importing the exported snapshot"))?;
        Ok(CopyWorker { client, endpoint, rate })
    }

    /// Copies `unit` of `tables[unit.table_idx]` into `sender`, in batches of at most
    /// [`BATCH_ROWS`] rows. Waits when the channel is full, so the receiver sets the pace.
    ///
    /// Every column is copied, in table order: each row is a [`Row`] as `model::event` defines it.
    /// `FROM ONLY`: rows of inheritance children and partitions are copied with their own table.
    pub async fn copy(
        &self,
        tables: &[Table],
        unit: &CopyUnit,
        sender: &BatchSender<RowBatch>,
    ) -> Result<CopyStats, PgError> {
        let table = &tables[unit.table_idx];
        let stream = self.start(table, unit).await?;
        let mut stream = std::pin::pin!(stream);
        let n_columns = table.columns.len();
        let mut parser = LineParser::default();
        let mut n_bytes = 0;
        let mut filling = Filling::new(sender, table, RowBatch::new(unit.table_idx, n_columns));
        while let Some(chunk) = stream.next().await {
            let chunk = self.paced(chunk).await?;
            filling.make_room(chunk.len()).await?;
            n_bytes += chunk.len() as u64;
            filling.batch.n_bytes += chunk.len() as u64;
            let format_error = |detail: String| PgError::CopyFormat {
                endpoint: self.endpoint.clone(),
                table: table.name.to_string(),
                detail,
            };
            parser.feed(&chunk, &mut filling.batch).map_err(format_error)?;
            if filling.batch.n_rows >= BATCH_ROWS || filling.batch.text.len() >= BATCH_BYTES {
                filling.send().await?;
            }
        }
        if !parser.is_empty() {
            let detail = "the last row has no newline".to_string();
            return Err(PgError::CopyFormat { endpoint: self.endpoint.clone(), table: table.name.to_string(), detail });
        }
        filling.send().await?;
        Ok(CopyStats { n_rows: filling.n_rows_sent, n_bytes })
    }

    /// Copies `unit` of `tables[unit.table_idx]` into `sender` as COPY text, in [`TextBatch`]es of
    /// whole rows: each closes once it holds [`TEXT_BATCH_BYTES`], and before a row would take it past
    /// [`TEXT_BATCH_MAX`] (a row longer than that alone makes a batch of its own, which the producer sends
    /// in chunks). The rows are not
    /// parsed: the sink reads them (`model::copy_text`). Waits when the channel is full.
    pub async fn copy_text(
        &self,
        tables: &[Table],
        unit: &CopyUnit,
        sender: &BatchSender<TextBatch>,
    ) -> Result<CopyStats, PgError> {
        let table = &tables[unit.table_idx];
        let stream = self.start(table, unit).await?;
        let mut stream = std::pin::pin!(stream);
        let mut n_bytes = 0;
        let mut filling = Filling::new(sender, table, TextBatch::new(unit));
        let mut carry: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = self.paced(chunk).await?;
            n_bytes += chunk.len() as u64;
            // Batches are sent once the chunk is dropped: one held while waiting for room would pin
            // tokio-postgres' read buffer, which grows meanwhile for the rows read behind it.
            let mut closed = Vec::new();
            let mut rest = &chunk[..];
            while let Some(newline) = memchr::memchr(b'\n', rest) {
                let line = &rest[..=newline];
                rest = &rest[newline + 1..];
                let row_bytes = carry.len() + line.len();
                if !filling.batch.is_empty() && filling.batch.text.len() + row_bytes > TEXT_BATCH_MAX {
                    closed.push(filling.close());
                }
                let batch = &mut filling.batch;
                if !carry.is_empty() {
                    batch.text.append(&mut carry);
                }
                batch.text.extend_from_slice(line);
                batch.n_rows += 1;
                if batch.text.len() >= TEXT_BATCH_BYTES {
                    closed.push(filling.close());
                }
            }
            carry.extend_from_slice(rest);
            drop(chunk);
            for batch in closed {
                filling.send_whole(batch).await?;
            }
        }
        if !carry.is_empty() {
            let detail = "the last row has no newline".to_string();
            return Err(PgError::CopyFormat { endpoint: self.endpoint.clone(), table: table.name.to_string(), detail });
        }
        let last = filling.close();
        filling.send_whole(last).await?;
        Ok(CopyStats { n_rows: filling.n_rows_sent, n_bytes })
    }

    /// A chunk COPY sent, once the rate lets it through.
    async fn paced(&self, chunk: Result<bytes::Bytes, tokio_postgres::Error>) -> Result<bytes::Bytes, PgError> {
        let chunk = chunk.map_err(|error| PgError::query(&self.endpoint, "reading COPY", error))?;
        if let Some(rate) = &self.rate {
            rate.take(chunk.len()).await;
        }
        Ok(chunk)
    }

    /// Starts the COPY of `unit`: every column, in table order. `FROM ONLY`: rows of inheritance
    /// children and partitions are copied with their own table.
    async fn start(&self, table: &Table, unit: &CopyUnit) -> Result<tokio_postgres::CopyOutStream, PgError> {
        let columns: Vec<String> = table.columns.iter().map(|column| quote_ident(&column.name)).collect();
        let mut sql = format!("copy (select {} from only {}", columns.join(", "), quote_qualified(&table.name));
        if let Some(condition) = unit.blocks.condition() {
            sql.push_str(" where ");
            sql.push_str(&condition);
        }
        sql.push_str(") to stdout");
        tracing::debug!(table = %table.name, blocks = %unit.blocks, "copying");
        self.client.copy_out(sql.as_str()).await.map_err(|error| PgError::query(&self.endpoint, "starting COPY", error))
    }

    /// Ends the snapshot transaction and the connection.
    pub async fn finish(self) -> Result<(), PgError> {
        self.client
            .batch_execute("commit")
            .await
            .map_err(|error| PgError::query(&self.endpoint, "ending the snapshot transaction", error))
    }
}

fn cancelled(table: &Table) -> PgError {
    PgError::CopyCancelled { table: table.name.to_string() }
}

/// A batch a copy worker fills: how many rows and bytes it holds, and the empty one that follows it.
trait Batch {
    fn n_rows(&self) -> u64;
    fn n_bytes(&self) -> usize;
    fn next(&self) -> Self;
}

impl Batch for RowBatch {
    fn n_rows(&self) -> u64 {
        self.n_rows as u64
    }

    fn n_bytes(&self) -> usize {
        self.n_bytes as usize
    }

    fn next(&self) -> RowBatch {
        RowBatch::new(self.table_idx, self.n_columns)
    }
}

impl Batch for TextBatch {
    fn n_rows(&self) -> u64 {
        self.n_rows
    }

    fn n_bytes(&self) -> usize {
        self.text.len()
    }

    fn next(&self) -> TextBatch {
        TextBatch { table_idx: self.table_idx, ordinal: self.ordinal, n_rows: 0, text: Vec::new() }
    }
}

/// A copy worker's batch being filled, with the room its rows hold in the [`CopySpace`], which
/// travels with it.
///
/// Rows parsed into a [`RowBatch`] take room chunk by chunk before they are parsed
/// ([`Filling::make_room`]). A [`TextBatch`] takes room once it is whole and the chunk its rows were
/// copied from is dropped ([`Filling::send_whole`]): a chunk held while waiting would pin
/// tokio-postgres' read buffer, which grows meanwhile for the rows read behind it (137 MB of heap
/// instead of 74 with rows of 25 MB).
struct Filling<'a, B> {
    sender: &'a BatchSender<B>,
    table: &'a Table,
    batch: B,
    /// The room of the rows in `batch` (and of a row carried over to the next chunk).
    held: Option<OwnedSemaphorePermit>,
    n_rows_sent: u64,
}

impl<'a, B: Batch> Filling<'a, B> {
    fn new(sender: &'a BatchSender<B>, table: &'a Table, batch: B) -> Filling<'a, B> {
        Filling { sender, table, batch, held: None, n_rows_sent: 0 }
    }

    /// Room for `n_bytes` just read, before they join the batch. When there is none, the batch goes
    /// first, and the room of a row carried over is given back, so that a worker never waits for
    /// room while it holds some.
    async fn make_room(&mut self, n_bytes: usize) -> Result<(), PgError> {
        let wanted = n_bytes.clamp(1, COPY_SPACE_BYTES) as u32;
        let space = &self.sender.space.0;
        let room = match space.clone().try_acquire_many_owned(wanted) {
            Ok(room) => room,
            Err(_) => {
                self.send().await?;
                self.held = None;
                space.clone().acquire_many_owned(wanted).await.map_err(|_| cancelled(self.table))?
            }
        };
        match &mut self.held {
            Some(held) => held.merge(room),
            None => self.held = Some(room),
        }
        Ok(())
    }

    /// Takes the batch, to be sent with [`Filling::send_whole`], and starts the next.
    fn close(&mut self) -> B {
        let next = self.batch.next();
        std::mem::replace(&mut self.batch, next)
    }

    /// Sends a closed batch, if it holds rows, once it has room for all of it; the worker holds no
    /// other room.
    async fn send_whole(&mut self, batch: B) -> Result<(), PgError> {
        if batch.n_rows() == 0 {
            return Ok(());
        }
        let wanted = batch.n_bytes().clamp(1, COPY_SPACE_BYTES) as u32;
        let room = self.sender.space.0.clone().acquire_many_owned(wanted).await;
        self.deliver(batch, Some(room.map_err(|_| cancelled(self.table))?)).await
    }

    /// Sends the batch, if it holds rows, with its room, and starts the next.
    async fn send(&mut self) -> Result<(), PgError> {
        let held = self.held.take();
        let full = self.close();
        self.deliver(full, held).await
    }

    async fn deliver(&mut self, batch: B, held: Option<OwnedSemaphorePermit>) -> Result<(), PgError> {
        if batch.n_rows() == 0 {
            return Ok(());
        }
        self.n_rows_sent += batch.n_rows();
        self.sender.sender.send((batch, BatchSpace { _held: held })).await.map_err(|_| cancelled(self.table))
    }
}

/// Turns COPY text into rows. PostgreSQL sends one row per CopyData message, but the protocol
/// does not promise it, so a row split across chunks is carried over.
#[derive(Default)]
struct LineParser {
    carry: Vec<u8>,
}

impl LineParser {
    fn is_empty(&self) -> bool {
        self.carry.is_empty()
    }

    /// Parses every complete line of `chunk` (after what was carried over) into `batch`.
    fn feed(&mut self, chunk: &[u8], batch: &mut RowBatch) -> Result<(), String> {
        // Values are at most as long as their COPY text: a row of 10 MB values is not copied over
        // and over as its buffer doubles.
        batch.text.reserve(chunk.len());
        let mut rest = chunk;
        if !self.carry.is_empty() {
            let Some(newline) = memchr::memchr(b'\n', rest) else {
                self.carry.extend_from_slice(rest);
                return Ok(());
            };
            self.carry.extend_from_slice(&rest[..newline]);
            parse_line(&self.carry, batch)?;
            self.carry.clear();
            rest = &rest[newline + 1..];
        }
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            parse_line(&rest[..newline], batch)?;
            rest = &rest[newline + 1..];
        }
        self.carry.extend_from_slice(rest);
        Ok(())
    }
}

/// Parses one line of COPY text, without its newline, into a row of `batch` (`model::copy_text`).
fn parse_line(line: &[u8], batch: &mut RowBatch) -> Result<(), String> {
    let n_columns = batch.n_columns;
    copy_text::parse_line(line, n_columns, |value| match value {
        Some(text) => batch.push_text(&text),
        None => batch.push_null(),
    })?;
    batch.n_rows += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    #[test]
    fn lines_split_across_chunks() {
        let mut parser = LineParser::default();
        let mut batch = RowBatch::new(7, 2);
        parser.feed(b"1\ta\n2\t", &mut batch).unwrap();
        parser.feed(b"b", &mut batch).unwrap();
        assert!(!parser.is_empty());
        parser.feed(b"c\n3\t\\N\n", &mut batch).unwrap();
        assert!(parser.is_empty());
        let rows = vec![vec![some("1"), some("a")], vec![some("2"), some("bc")], vec![some("3"), None]];
        assert_eq!(batch.rows().map(|row| row.to_row()).collect::<Vec<_>>(), rows);
        assert_eq!(batch.row(2).get(1), None);
        assert_eq!(batch.row(1).get(1), Some("bc"));
        assert_eq!(batch, RowBatch::from_rows(7, 2, &rows));
    }

    #[test]
    fn ranges_cover_the_table_and_end_open() {
        let units = split(3, 10 * 8192, 8192, 4 * 8192);
        let blocks: Vec<BlockRange> = units.iter().map(|unit| unit.blocks).collect();
        assert_eq!(
            blocks,
            vec![
                BlockRange { start: 0, end: Some(4) },
                BlockRange { start: 4, end: Some(8) },
                BlockRange { start: 8, end: None },
            ]
        );
        assert_eq!(units.iter().map(|unit| unit.estimated_bytes).sum::<u64>(), 10 * 8192);
        assert_eq!(split(0, 0, 8192, 1 << 20)[0].blocks, BlockRange { start: 0, end: None });
        assert_eq!(BlockRange { start: 0, end: None }.condition(), None);
        assert_eq!(BlockRange { start: 4, end: Some(8) }.condition().unwrap(), "ctid >= '(4,0)' and ctid < '(8,0)'");
    }
}
