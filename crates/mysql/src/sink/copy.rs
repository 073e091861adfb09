//! Snapshot rows that arrive as batches of PostgreSQL COPY text (`model::copy_text`), one batch a
//! Kafka record: loaded in one transaction per partition's share of a round, with its offsets, by one
//! `LOAD DATA` of every batch, or by the INSERT path once parsed into rows.
//!
//! COPY text is nearly `LOAD DATA`'s default input (tab-separated, `\N` for NULL, backslash escapes),
//! so a column whose value needs no conversion (`Conversion::Text`) passes as it is; only the escapes
//! the two read differently (`\f`, `\v`, octal, hex: never in PostgreSQL's own output) and the
//! columns that convert (`Conversion`) cost work per value. A batch whose every column passes and
//! whose escapes all read alike is copied whole.

use bytes::Bytes;
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use passerelle_model::copy_text;
use passerelle_model::event::Row;
use passerelle_model::target::{Conversion, TargetTable};

use super::{at_offset_of, data_error, load_statement, refused_value, BatchOrigin, LoadPath, Sink};
use crate::value::{convert, escape};
use crate::MysqlError;

/// A batch of rows as COPY text: its record's offset, how many rows, and the lines.
pub type CopyBatch = (i64, u64, Vec<u8>);

/// The stream goes to the server in pieces of this size.
const PIECE: usize = 1 << 20;
/// The INSERT path parses and converts this much COPY text at a time (past one batch each time):
/// enough for full statements, little beside the round in memory.
const INSERT_GROUP: usize = 1 << 20;

impl Sink {
    /// Loads batches of COPY text, in offset order, and advances the partition's offset, in one
    /// transaction. Batches below the stored offset were applied before and are skipped. Returns how
    /// many rows were loaded.
    pub async fn load_copy_text(
        &mut self,
        table: &TargetTable,
        origin: BatchOrigin<'_>,
        batches: &[CopyBatch],
    ) -> Result<u64, MysqlError> {
        if batches.is_empty() {
            return Ok(0);
        }
        self.run("starting a transaction", "START TRANSACTION").await?;
        let outcome = self.copy_in_transaction(table, origin, batches).await;
        self.finish(outcome).await
    }

    async fn copy_in_transaction(
        &mut self,
        table: &TargetTable,
        origin: BatchOrigin<'_>,
        batches: &[CopyBatch],
    ) -> Result<u64, MysqlError> {
        let next_offset = self.claim(origin).await?;
        let fresh: Vec<&CopyBatch> = batches.iter().filter(|(offset, _, _)| *offset >= next_offset).collect();
        let Some(&&(last_offset, _, _)) = fresh.last() else { return Ok(0) };
        let loaded = match self.load_path {
            LoadPath::LoadData => self.load_data_text(table, origin, &fresh).await?,
            // A few batches at a time: a round's rows parsed and converted at once held several
            // times its text (304 MB of peak RSS on the small airline, 92 MB with LOAD DATA).
            LoadPath::Insert => {
                let mut loaded = 0;
                for group in text_groups(&fresh, INSERT_GROUP) {
                    let rows = parse_rows(table, group).map_err(|cause| data_error(table, origin, cause))?;
                    let rows: Vec<(i64, &Row)> = rows.iter().map(|(offset, row)| (*offset, row)).collect();
                    loaded += self.insert_rows(table, origin, &rows).await?;
                }
                loaded
            }
        };
        self.advance(origin, last_offset + 1).await?;
        Ok(loaded)
    }

    async fn load_data_text(
        &mut self,
        table: &TargetTable,
        origin: BatchOrigin<'_>,
        batches: &[&CopyBatch],
    ) -> Result<u64, MysqlError> {
        let passes: Vec<bool> = table.columns.iter().map(passes_as_is).collect();
        let size = batches.iter().map(|(_, _, text)| text.len()).sum();
        let mut data = Vec::with_capacity(size);
        for &&(offset, _, ref text) in batches {
            load_input(table, &passes, offset, text, &mut data).map_err(|cause| data_error(table, origin, cause))?;
        }
        self.n_load_statements += 1;
        let data = Bytes::from(data);
        let pieces: Vec<Bytes> =
            (0..data.len()).step_by(PIECE).map(|start| data.slice(start..(start + PIECE).min(data.len()))).collect();
        let endpoint = &self.endpoint;
        let conn = &mut self.conn;
        conn.set_infile_handler(async move { Ok(futures::stream::iter(pieces.into_iter().map(Ok)).boxed()) });
        conn.query_drop(load_statement(table))
            .await
            .map_err(|error| MysqlError::query(endpoint, "loading rows", error))?;
        let n_rows: u64 = batches.iter().map(|(_, n_rows, _)| n_rows).sum();
        // The statement's row N (from 1) is in the batch whose rows reach N.
        let offset_of = |n: usize| {
            let mut before = 0;
            batches.iter().find_map(|&&(offset, n_rows, _)| {
                before += n_rows as usize;
                (n <= before).then_some(offset)
            })
        };
        self.check_counted(table, origin, n_rows, at_offset_of(offset_of)).await
    }
}

/// Whether a column's field goes to `LOAD DATA` as COPY wrote it: text needs no conversion, and a
/// generated column's field is read into a variable nothing uses.
fn passes_as_is(column: &passerelle_model::target::TargetColumn) -> bool {
    column.generated || column.conversion == Conversion::Text
}

/// Appends `text`'s lines as `LOAD DATA` input: whole when every column passes and every escape reads
/// alike, else field by field.
fn load_input(table: &TargetTable, passes: &[bool], offset: i64, text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    if passes.iter().all(|&pass| pass) && escapes_read_alike(text) {
        out.extend_from_slice(text);
        return Ok(());
    }
    for line in copy_text::lines(text) {
        let mut n_fields = 0;
        for (i, field) in copy_text::fields(line).enumerate() {
            let Some(column) = table.columns.get(i) else { break };
            if i > 0 {
                out.push(b'\t');
            }
            n_fields += 1;
            if copy_text::is_null(field) {
                out.extend_from_slice(b"\\N");
            } else if passes[i] && copy_text::same_under_load_data(field) {
                out.extend_from_slice(field);
            } else {
                let value = value_of(field)?;
                let converted =
                    if passes[i] { Ok(value.as_bytes().into()) } else { convert(&column.conversion, &value) };
                match converted {
                    Ok(bytes) => escape(&bytes, out),
                    Err(cause) => return Err(refused_line(table, offset, line, &column.name, &cause)),
                }
            }
        }
        if n_fields != table.columns.len() || copy_text::fields(line).count() != n_fields {
            let n = copy_text::fields(line).count();
            return Err(format!("offset {offset}: {n} values for {} columns", table.columns.len()));
        }
        out.push(b'\n');
    }
    Ok(())
}

/// A field's text, escapes undone: borrowed when it has none, or only a first `\\` (bytea's `\x…`,
/// whose megabytes of hex digits are then not copied).
fn value_of(field: &[u8]) -> Result<std::borrow::Cow<'_, str>, String> {
    let plain = match field {
        [b'\\', b'\\', rest @ ..] if memchr::memchr(b'\\', rest).is_none() => &field[1..],
        _ if memchr::memchr(b'\\', field).is_none() => field,
        _ => return copy_text::unescape(field).map(Into::into),
    };
    std::str::from_utf8(plain).map(Into::into).map_err(|_| "a value is not valid UTF-8".to_string())
}

/// Whether every escape in `text` reads the same under `LOAD DATA` (see
/// `copy_text::same_under_load_data`; `\N` stands alone in a field in COPY's output).
fn escapes_read_alike(text: &[u8]) -> bool {
    let mut rest = text;
    while let Some(at) = memchr::memchr(b'\\', rest) {
        match rest.get(at + 1) {
            Some(b'\\' | b'b' | b'n' | b'r' | b't' | b'N') => rest = &rest[at + 2..],
            _ => return false,
        }
    }
    true
}

/// [`refused_value`] for a line of COPY text, parsed to name its row's key.
fn refused_line(table: &TargetTable, offset: i64, line: &[u8], column: &str, cause: &str) -> String {
    let mut row: Row = Vec::with_capacity(table.columns.len());
    match copy_text::parse_line(line, table.columns.len(), |value| row.push(value.map(|v| v.into_owned()))) {
        Ok(()) => refused_value(table, offset, &row, column, cause),
        Err(_) => format!("offset {offset}, column {column}: {cause}"),
    }
}

/// `batches` in consecutive groups of at least one batch and, past the first, at most `size` bytes of text.
fn text_groups<'a>(batches: &'a [&'a CopyBatch], size: usize) -> impl Iterator<Item = &'a [&'a CopyBatch]> {
    let mut rest = batches;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = rest[0].2.len();
        let n = 1 + rest[1..]
            .iter()
            .take_while(|(_, _, text)| {
                bytes += text.len();
                bytes <= size
            })
            .count();
        let (group, after) = rest.split_at(n);
        rest = after;
        Some(group)
    })
}

/// The batches' rows, each with its batch's offset: for the INSERT path.
fn parse_rows(table: &TargetTable, batches: &[&CopyBatch]) -> Result<Vec<(i64, Row)>, String> {
    let n_columns = table.columns.len();
    let mut rows = Vec::new();
    for &&(offset, n_rows, ref text) in batches {
        rows.reserve(n_rows as usize);
        for line in copy_text::lines(text) {
            let mut row: Row = Vec::with_capacity(n_columns);
            copy_text::parse_line(line, n_columns, |value| row.push(value.map(|v| v.into_owned())))
                .map_err(|cause| format!("offset {offset}: {cause}"))?;
            rows.push((offset, row));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_model::schema::QualifiedName;
    use passerelle_model::target::TargetColumn;

    fn table(conversions: &[Conversion]) -> TargetTable {
        let columns = conversions
            .iter()
            .enumerate()
            .map(|(i, conversion)| TargetColumn {
                name: format!("c{i}"),
                conversion: conversion.clone(),
                generated: false,
            })
            .collect();
        TargetTable {
            source: QualifiedName { schema: "public".to_string(), name: "t".to_string() },
            database: "db".to_string(),
            name: "t".to_string(),
            columns,
            key: vec![0],
        }
    }

    fn input(table: &TargetTable, text: &[u8]) -> Result<Vec<u8>, String> {
        let passes: Vec<bool> = table.columns.iter().map(passes_as_is).collect();
        let mut out = Vec::new();
        load_input(table, &passes, 7, text, &mut out)?;
        Ok(out)
    }

    #[test]
    fn text_passes_whole_and_conversions_field_by_field() {
        let text_only = table(&[Conversion::Text, Conversion::Text]);
        let lines = b"1\ta\\tb\\\\c\n2\t\\N\n";
        assert_eq!(input(&text_only, lines).unwrap(), lines);
        // \f is a form feed to COPY and an `f` to LOAD DATA: it travels raw.
        assert_eq!(input(&text_only, b"1\ta\\fb\n").unwrap(), b"1\ta\x0cb\n");
        let mixed = table(&[Conversion::Text, Conversion::Boolean, Conversion::DateTime, Conversion::Text]);
        assert_eq!(
            input(&mixed, b"1\tt\t2026-01-02 03:04:05+00\tx\\ny\n2\t\\N\t\\N\t\n").unwrap(),
            b"1\t1\t2026-01-02 03:04:05\tx\\ny\n2\t\\N\t\\N\t\n"
        );
    }

    #[test]
    fn bytea_hex_is_read_without_its_escaped_backslash() {
        let bytes = table(&[Conversion::Text, Conversion::Bytes]);
        assert_eq!(input(&bytes, b"1\t\\\\x00ff\n2\t\\\\x\n").unwrap(), b"1\t00ff\n2\t\n");
        assert!(matches!(value_of(b"\\\\x00ff").unwrap(), std::borrow::Cow::Borrowed("\\x00ff")));
        // A backslash past the first is an escape like any other.
        assert_eq!(value_of(b"\\\\a\\tb").unwrap(), "\\a\tb");
        assert!(input(&bytes, b"1\t\\\\x0g\n").unwrap_err().contains("not hexadecimal"));
    }

    #[test]
    fn refusals_name_the_offset_and_key_never_the_value() {
        let numbers = table(&[Conversion::Text, Conversion::Number]);
        let error = input(&numbers, b"5\tNaN\n").unwrap_err();
        assert!(error.starts_with("offset 7, row (c0)=(5), column c1: NaN"), "{error}");
        let error = input(&numbers, b"5\t1\tsecret\n").unwrap_err();
        assert!(error.contains("offset 7: 3 values for 2 columns") && !error.contains("secret"), "{error}");
        assert!(input(&numbers, b"5\n").is_err());
    }

    #[test]
    fn the_insert_path_takes_batches_in_groups_bounded_in_bytes() {
        let batch = |offset: i64, size: usize| -> CopyBatch { (offset, 1, vec![b'x'; size]) };
        let batches = [batch(0, 3), batch(1, 3), batch(2, 5), batch(3, 9), batch(4, 1)];
        let refs: Vec<&CopyBatch> = batches.iter().collect();
        let offsets: Vec<Vec<i64>> =
            text_groups(&refs, 8).map(|group| group.iter().map(|(offset, _, _)| *offset).collect()).collect();
        assert_eq!(offsets, [vec![0, 1], vec![2], vec![3], vec![4]]);
    }

    #[test]
    fn rows_for_the_insert_path_keep_their_batch_offset() {
        let t = table(&[Conversion::Text, Conversion::Text]);
        let batch: CopyBatch = (3, 2, b"1\ta\\tb\n2\t\\N\n".to_vec());
        let rows = parse_rows(&t, &[&batch]).unwrap();
        let some = |s: &str| Some(s.to_string());
        assert_eq!(rows, vec![(3, vec![some("1"), some("a\tb")]), (3, vec![some("2"), None])]);
    }
}
