//! `passerelle estimate`'s sample of the target's load speed: rows of COPY text inserted into a
//! throwaway table in the bookkeeping database, in one transaction, as multi-row INSERTs of 1,000
//! rows, the way the INSERT load path sends them; the table is dropped afterwards. Its values are
//! text columns: what is timed is the server taking the bytes and writing them, not conversion.
//! The faster of two rounds counts: one round's time varied by a third from one sample to the next
//! with what the server was flushing at the time (BENCHMARKS.md, "Estimating").

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use crate::MysqlError;

const ROWS_PER_STATEMENT: usize = 1_000;
const ROUNDS: usize = 2;

/// Inserts `copy_text` (PostgreSQL COPY text, one row a line) into a throwaway table of `database`
/// and returns how long the inserts and their commit took, the faster of [`ROUNDS`].
pub async fn load_speed(
    conn: &mut Conn,
    endpoint: &impl std::fmt::Display,
    database: &str,
    copy_text: &[u8],
) -> Result<Duration, MysqlError> {
    let rows: Vec<Vec<Value>> = copy_text
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let fields = line.split(|&byte| byte == b'\t');
            fields.map(|field| if field == b"\\N" { Value::NULL } else { Value::Bytes(field.to_vec()) }).collect()
        })
        .collect();
    let n_columns = rows.first().map_or(1, Vec::len).max(1);
    let table = format!("`{}`.`passerelle_estimate_{}`", database.replace('`', "``"), std::process::id());
    let columns: Vec<String> = (0..n_columns).map(|i| format!("`c{i}` LONGBLOB NULL")).collect();
    let context = |context: &'static str| move |error| MysqlError::query(endpoint, context, error);
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{}`", database.replace('`', "``")))
        .await
        .map_err(context("creating the bookkeeping database"))?;
    let row = format!("({})", vec!["?"; n_columns].join(", "));
    let names: Vec<String> = (0..n_columns).map(|i| format!("`c{i}`")).collect();
    let mut fastest = Duration::MAX;
    for _ in 0..ROUNDS {
        conn.query_drop(format!("DROP TABLE IF EXISTS {table}")).await.map_err(context("dropping the sample table"))?;
        conn.query_drop(format!(
            "CREATE TABLE {table} (`id` BIGINT AUTO_INCREMENT PRIMARY KEY, {}) ENGINE=InnoDB",
            columns.join(", ")
        ))
        .await
        .map_err(context("creating the sample table"))?;
        let started = Instant::now();
        let loaded = async {
            let mut transaction = conn.start_transaction(mysql_async::TxOpts::default()).await?;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let statement = format!(
                    "INSERT INTO {table} ({}) VALUES {}",
                    names.join(", "),
                    vec![row.as_str(); chunk.len()].join(", ")
                );
                let params: Vec<Value> = chunk
                    .iter()
                    .flat_map(|row| row.iter().cloned().chain(std::iter::repeat(Value::NULL)).take(n_columns))
                    .collect();
                transaction.exec_drop(statement, params).await?;
            }
            transaction.commit().await
        }
        .await;
        fastest = fastest.min(started.elapsed());
        conn.query_drop(format!("DROP TABLE IF EXISTS {table}")).await.map_err(context("dropping the sample table"))?;
        loaded.map_err(context("loading the sample"))?;
    }
    Ok(fastest)
}
