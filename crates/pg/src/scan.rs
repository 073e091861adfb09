//! Reading chosen columns of every row of a table as text, under the snapshot's pinned session
//! settings (`session`), so a value reads exactly as the snapshot and the stream would carry it:
//! for `plan --check-values`, which converts each value the way the target would before anything
//! moves.
//!
//! A cursor in a read-only transaction, fetched in rounds: memory stays bounded whatever the table.

use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::schema::QualifiedName;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::slot::{quote_ident, quote_qualified};
use crate::PgError;

/// Rows fetched per round.
const ROUND_ROWS: usize = 10_000;

/// Calls `each` with the text of `columns` of every row of `table` (`FROM ONLY`: partitions and
/// inheritance children are tables of their own), in the order given, `None` for NULL.
pub async fn each_row(
    client: &mut Client,
    endpoint: &DbEndpoint,
    table: &QualifiedName,
    columns: &[String],
    mut each: impl FnMut(&[Option<&str>]),
) -> Result<(), PgError> {
    if columns.is_empty() {
        return Ok(());
    }
    let context = |context: &'static str| move |error| PgError::query(endpoint, context, error);
    let list: Vec<String> = columns.iter().map(|column| quote_ident(column)).collect();
    let transaction = client.transaction().await.map_err(context("starting the scan"))?;
    transaction
        .batch_execute(&format!(
            "set transaction isolation level repeatable read, read only;
             declare passerelle_scan no scroll cursor for select {} from only {}",
            list.join(", "),
            quote_qualified(table)
        ))
        .await
        .map_err(context("opening the scan's cursor"))?;
    loop {
        let messages = transaction
            .simple_query(&format!("fetch {ROUND_ROWS} from passerelle_scan"))
            .await
            .map_err(context("scanning the table"))?;
        let mut n_rows = 0;
        let mut values: Vec<Option<&str>> = Vec::with_capacity(columns.len());
        for message in &messages {
            let SimpleQueryMessage::Row(row) = message else { continue };
            values.clear();
            values.extend((0..columns.len()).map(|i| row.get(i)));
            each(&values);
            n_rows += 1;
        }
        if n_rows < ROUND_ROWS {
            break;
        }
    }
    transaction.commit().await.map_err(context("ending the scan"))
}
