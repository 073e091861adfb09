//! The snapshot's compact form: one record carries a batch of rows of one table as PostgreSQL COPY
//! text (`model::copy_text`), the lines as COPY sent them, instead of one Debezium envelope per row.
//! Values stay PostgreSQL's text output, so nothing is lost, and neither side encodes or decodes a
//! value on the way: the producer compresses the record (lz4), the sink hands the lines to the target
//! with the least per-value work.
//!
//! Such a record says what it is in headers: [`BATCH_HEADER`] names the format ([`COPY_TEXT`]) and
//! [`ROWS_HEADER`] how many rows it holds, so that progress, status and the sink count rows, not
//! records. A run announces which form its snapshot takes (`control::RunAnnouncement::snapshot_encoding`);
//! the change stream always travels as per-row envelopes.

use std::fmt;
use std::str::FromStr;

use passerelle_model::copy_text;

/// The header naming a batch record's format; a record without it is one event.
pub const BATCH_HEADER: &str = "passerelle-batch";
/// The header counting a batch record's rows, in decimal.
pub const ROWS_HEADER: &str = "passerelle-rows";
/// [`BATCH_HEADER`]'s value for rows as COPY text.
pub const COPY_TEXT: &str = "copy-text";

/// How a run's snapshot rows travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotEncoding {
    /// One event per row, in the run's [`super::Encoding`]: what Debezium's sinks read.
    Envelope,
    /// One record per batch of rows as COPY text: Passerelle's sinks only.
    CopyText,
}

impl fmt::Display for SnapshotEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SnapshotEncoding::Envelope => "envelope",
            SnapshotEncoding::CopyText => COPY_TEXT,
        })
    }
}

impl FromStr for SnapshotEncoding {
    type Err = String;

    fn from_str(text: &str) -> Result<SnapshotEncoding, String> {
        match text {
            "envelope" => Ok(SnapshotEncoding::Envelope),
            COPY_TEXT => Ok(SnapshotEncoding::CopyText),
            _ => Err(format!("unknown snapshot encoding {text:?}: expected copy-text or envelope")),
        }
    }
}

/// The headers of a batch record of `n_rows` rows, besides the run's.
pub fn batch_headers(n_rows: u64) -> [(&'static str, String); 2] {
    [(BATCH_HEADER, COPY_TEXT.to_string()), (ROWS_HEADER, n_rows.to_string())]
}

/// What a batch record's headers say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub format: String,
    pub n_rows: Option<u64>,
}

impl BatchHeader {
    /// From a record's headers, by `find` (a header's value by key); `None` for a record that is one event.
    pub fn read<'a>(find: impl Fn(&str) -> Option<&'a [u8]>) -> Option<BatchHeader> {
        let format = String::from_utf8_lossy(find(BATCH_HEADER)?).into_owned();
        let n_rows = find(ROWS_HEADER).and_then(|value| std::str::from_utf8(value).ok()?.parse().ok());
        Some(BatchHeader { format, n_rows })
    }
}

/// Checks a batch record: a format this Passerelle reads, and as many lines as its header counts.
/// Returns its rows.
pub fn check_batch(header: &BatchHeader, value: &[u8]) -> Result<u64, String> {
    if header.format != COPY_TEXT {
        return Err(format!(
            "a batch of rows in format {:?}, which this Passerelle cannot read; upgrade it",
            header.format
        ));
    }
    let n_lines = copy_text::count_lines(value) as u64;
    if header.n_rows != Some(n_lines) || value.last().is_some_and(|&byte| byte != b'\n') {
        return Err(format!("a batch of {n_lines} complete lines whose header counts {:?} rows", header.n_rows));
    }
    Ok(n_lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(format: &str, n_rows: &str) -> Option<BatchHeader> {
        let headers = [(BATCH_HEADER, format.as_bytes()), (ROWS_HEADER, n_rows.as_bytes())];
        BatchHeader::read(|key| headers.iter().find(|(k, _)| *k == key).map(|(_, value)| *value))
    }

    #[test]
    fn batches_are_read_by_their_headers() {
        let [(format_key, format), (rows_key, rows)] = batch_headers(2);
        assert_eq!((format_key, rows_key), (BATCH_HEADER, ROWS_HEADER));
        let read = header(&format, &rows).unwrap();
        assert_eq!(check_batch(&read, b"1\ta\n2\t\\N\n"), Ok(2));
        assert!(check_batch(&read, b"1\ta\n").is_err());
        assert!(check_batch(&read, b"1\ta\n2\tb\n3").is_err());
        assert!(check_batch(&header("parquet", "2").unwrap(), b"1\n2\n").unwrap_err().contains("upgrade"));
        assert_eq!(BatchHeader::read(|_| None), None);
        assert_eq!("copy-text".parse(), Ok(SnapshotEncoding::CopyText));
        assert_eq!(SnapshotEncoding::Envelope.to_string().parse(), Ok(SnapshotEncoding::Envelope));
    }
}
