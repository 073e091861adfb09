//! The snapshot's load path for servers that refuse `LOAD DATA LOCAL` (MySQL's default since 8.0,
//! and many managed services' rule): multi-row prepared INSERTs of the values the `LOAD DATA` path
//! would send, converted by the same code.
//!
//! A statement carries a power-of-two number of rows, so a table needs a dozen statements at most
//! whatever its batches' sizes, and the driver's statement cache prepares each once per connection.
//! It holds at most 65,535 placeholders and fits one packet: within the server's
//! `max_allowed_packet`, and within 16 MB, past which the driver would send every value on its own.

use mysql_async::prelude::Queryable;
use mysql_async::Value;
use passerelle_ddl::ident::quote;
use passerelle_model::event::Row;
use passerelle_model::target::TargetTable;

use super::changes::{column_list, offsets, params, values_list, write_columns, MAX_PLACEHOLDERS};
use super::{BatchOrigin, Sink};
use crate::MysqlError;

/// Rows a statement carries at most: beyond this, bigger statements hardly save time.
const MAX_ROWS: usize = 4_096;
/// The largest packet the protocol carries in one piece.
const MAX_PACKET: usize = (1 << 24) - 1;
/// What an execute packet holds besides its values: a header, and per value a type, a length prefix
/// and a NULL bit. Generous on purpose.
const PACKET_HEADER: usize = 1_024;
const PER_VALUE: usize = 12;

/// What the statements of one batch insert into.
struct Destination<'a> {
    table: &'a TargetTable,
    origin: BatchOrigin<'a>,
    /// The columns given, every one the target does not compute.
    columns: Vec<usize>,
}

impl Sink {
    /// Inserts `rows` in as few statements as fit, in the batch's transaction. Returns how many rows
    /// went in.
    pub(super) async fn insert_rows(
        &mut self,
        table: &TargetTable,
        origin: BatchOrigin<'_>,
        rows: &[(i64, &Row)],
    ) -> Result<u64, MysqlError> {
        let into = Destination { table, origin, columns: write_columns(table, &[]) };
        let n_columns = into.columns.len();
        let values = params(table, origin, rows, &into.columns)?;
        // cost[i]: the packet bytes of the rows before row i.
        let mut cost = vec![0; rows.len() + 1];
        for i in 0..rows.len() {
            let row = &values[i * n_columns..(i + 1) * n_columns];
            cost[i + 1] = cost[i] + row.iter().map(|value| value_bytes(value) + PER_VALUE).sum::<usize>();
        }
        let mut values = values.into_iter();
        let budget = self.max_packet.clamp(PACKET_HEADER * 2, MAX_PACKET) - PACKET_HEADER;
        let statement_cap = statement_rows(table, &into.columns, budget);
        let mut loaded = 0;
        let mut start = 0;
        while start < rows.len() {
            let mut n = prev_power_of_two(statement_cap.min(rows.len() - start));
            while n > 1 && cost[start + n] - cost[start] > budget {
                n /= 2;
            }
            let chunk = &rows[start..start + n];
            let chunk_values: Vec<Value> = values.by_ref().take(n * n_columns).collect();
            match self.insert(&into, chunk, chunk_values).await {
                // Pinned down to its row by inserting the rows one at a time: the failed statement
                // left nothing behind, and the transaction rolls back anyway.
                Err(error) if error.is_refused_value() && n > 1 => {
                    for row in chunk {
                        let row = std::slice::from_ref(row);
                        self.insert(&into, row, params(table, origin, row, &into.columns)?).await?;
                    }
                    return Err(error);
                }
                outcome => loaded += outcome?,
            }
            start += n;
        }
        Ok(loaded)
    }

    async fn insert(
        &mut self,
        into: &Destination<'_>,
        rows: &[(i64, &Row)],
        values: Vec<Value>,
    ) -> Result<u64, MysqlError> {
        let Destination { table, origin, columns } = into;
        let sql = format!(
            "INSERT INTO {}.{} ({}) VALUES {}",
            quote(&table.database),
            quote(&table.name),
            column_list(table, columns),
            values_list(table, columns, rows.len())
        );
        self.n_load_statements += 1;
        let outcome =
            if values.is_empty() { self.conn.query_drop(sql).await } else { self.conn.exec_drop(sql, values).await };
        outcome.map_err(|error| {
            let name = format!("{}.{}", table.database, table.name);
            let origin = (origin.topic, origin.partition);
            MysqlError::writing(&self.endpoint, "inserting rows", &name, origin, &offsets(rows), error)
        })?;
        self.check_loaded(table, *origin, rows).await
    }
}

/// Rows per statement at most: the placeholder cap, [`MAX_ROWS`], and the statement's text within
/// the packet budget too (it is sent once, to prepare it).
fn statement_rows(table: &TargetTable, columns: &[usize], budget: usize) -> usize {
    let row_text = values_list(table, columns, 1).len() + 2;
    (MAX_PLACEHOLDERS / columns.len().max(1)).min(MAX_ROWS).min(budget / row_text).max(1)
}

/// The largest power of two not above `n` (n ≥ 1).
fn prev_power_of_two(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.leading_zeros())
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Bytes(bytes) => bytes.len(),
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_two() {
        assert_eq!([1, 2, 3, 4, 4095, 4096].map(prev_power_of_two), [1, 2, 2, 4, 2048, 4096]);
    }
}
