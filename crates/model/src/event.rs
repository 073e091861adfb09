//! What flows from the source to the sink: one [`Row`] per row read by the snapshot, one [`ChangeEvent`]
//! per row changed afterwards, positioned by the [`Lsn`] of the source's write-ahead log.
//!
//! Values travel as PostgreSQL's own text output, produced under the fixed session settings that
//! `pg::session` applies to every snapshot and replication connection (UTC, ISO dates, ISO 8601
//! intervals, hex bytea, shortest exact floats). Text is exact for every type, the snapshot and the change stream render a
//! value identically, and the sink converts each one to its target type in one place.

use std::fmt;
use std::str::FromStr;

use crate::schema::QualifiedName;

/// A write-ahead log position, `XXX/YYY` in PostgreSQL's notation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid LSN {0:?}: expected two hexadecimal numbers such as 0/16B3748")]
pub struct LsnError(String);

impl FromStr for Lsn {
    type Err = LsnError;

    fn from_str(text: &str) -> Result<Lsn, LsnError> {
        let error = || LsnError(text.to_string());
        let (high, low) = text.split_once('/').ok_or_else(error)?;
        let high = u32::from_str_radix(high, 16).map_err(|_| error())?;
        let low = u32::from_str_radix(low, 16).map_err(|_| error())?;
        Ok(Lsn((u64::from(high) << 32) | u64::from(low)))
    }
}

/// Debezium's operation codes: `r` snapshot read, `c` create, `u` update, `d` delete, `t` truncate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Create,
    Update,
    Delete,
    /// The table was emptied (`TRUNCATE`): no rows, only where in the stream it happened.
    Truncate,
}

/// Where a change stands in the source's order: its transaction's commit LSN, then the change's own
/// WAL position, which orders the changes of one transaction. Snapshot rows stand before every change
/// (their commit LSN is the snapshot's, their own position 0); a decoded event that does not carry its
/// own position has 0 there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub commit_lsn: Lsn,
    pub lsn: Lsn,
}

/// One row: each column's PostgreSQL text output in table column order, `None` for NULL.
pub type Row = Vec<Option<String>>;

/// One row changed after the snapshot, as the change stream decodes it from the slot; or, as
/// `Op::Truncate` (no rows), the table emptied at that point.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeEvent {
    pub table: QualifiedName,
    /// `Create`, `Update` or `Delete`.
    pub op: Op,
    /// Updates and deletes: the old row as the table's replica identity gives it. With the default
    /// identity only the primary-key columns are set (the others `None`); with `REPLICA IDENTITY FULL`
    /// every column. An update that kept its key has no old row: `None`.
    pub before: Option<Row>,
    /// Inserts and updates: the new row.
    pub after: Option<Row>,
    /// Positions in `after` that the stream left out: an unchanged TOASTed value, or a generated
    /// column (pgoutput before PostgreSQL 18 does not send them). The target keeps or computes what it
    /// has there (their `after` entry is `None`, which means nothing).
    pub unchanged: Vec<usize>,
    /// The commit LSN of the transaction that made the change: every change of a transaction shares it,
    /// and a cutover drains the stream up to one.
    pub commit_lsn: Lsn,
    /// The change's own WAL position, which orders the changes of one transaction (a `TRUNCATE`
    /// between two writes of the table in one transaction). 0 where the event did not carry it.
    pub lsn: Lsn,
    /// Where the change stands in its transaction: the stream numbers its changes 0, 1, 2, ... and
    /// the sink reads back the number its Kafka event carries (Debezium's `source.sequence`). With
    /// `commit_lsn` it identifies the change, so that one the slot sends again after a crash is
    /// applied once. `None` for events that carry none (written by another producer).
    pub position: Option<u64>,
}

impl ChangeEvent {
    /// Where the change stands in the source's order.
    pub fn position(&self) -> Position {
        Position { commit_lsn: self.commit_lsn, lsn: self.lsn }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_round_trips_through_postgres_notation() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn, Lsn(0x16_B374_D848));
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!(Lsn(0).to_string(), "0/0");
        assert!("16B374D848".parse::<Lsn>().is_err());
        assert!("x/1".parse::<Lsn>().is_err());
    }
}
