//! A source `TRUNCATE` applied exactly once, in stream order, inside a partition's batch transaction.
//!
//! MySQL's `TRUNCATE TABLE` commits implicitly, so it cannot share a transaction with the offsets:
//! the table is emptied by `DELETE` instead. A table's rows come from several partitions, so the
//! source writes a truncate marker into every partition of the table's topic; the first partition to
//! reach it empties the table and records the truncate's position in the source's order (commit LSN,
//! then its own LSN) in `passerelle_truncates`, with its offset. Any event of the table from before
//! that position (a partition behind, a snapshot row still loading, a change the source sent again
//! after a crash, the marker reached in the other partitions) is dead at the source and is skipped.
//! No partition can have applied anything from after the truncate before its marker was reached, for
//! each partition holds its own marker before its later events: so the `DELETE` removes exactly the
//! rows from before. ARCHITECTURE.md states it as an invariant.
//!
//! Every batch reads the position under a lock, before it writes rows: shared for a batch without a
//! marker, exclusive for one with. A batch that writes rows from before the truncate either commits
//! before the `DELETE` (which then removes them) or reads the new position and skips them.

use mysql_async::prelude::Queryable;
use passerelle_ddl::ident::quote;
use passerelle_model::event::{Lsn, Position};
use passerelle_model::target::TargetTable;

use super::Sink;
use crate::bookkeeping::TRUNCATES_TABLE;
use crate::MysqlError;

impl Sink {
    /// In the batch's transaction, before any row is written: where the topic's table was last
    /// truncated (`None` when never), locked against a truncate (`exclusive: false`) or for one.
    pub(super) async fn truncated_at(&mut self, topic: &str, exclusive: bool) -> Result<Option<Position>, MysqlError> {
        let endpoint = &self.endpoint;
        let context = |context: &'static str| move |error| MysqlError::query(endpoint, context, error);
        let truncates = format!("{}.{TRUNCATES_TABLE}", quote(&self.bookkeeping_db));
        // The row exists before it is locked, so the lock is on it and not on a gap beside it (which
        // other topics' truncates would share). INSERT IGNORE of an existing row takes a shared
        // lock; a batch with a marker takes the exclusive one at once rather than upgrading it,
        // which would deadlock with the partitions reaching their markers beside it.
        let register = if exclusive {
            format!("INSERT INTO {truncates} (topic, commit_lsn, lsn) VALUES (?, 0, 0) ON DUPLICATE KEY UPDATE topic = topic")
        } else {
            format!("INSERT IGNORE INTO {truncates} (topic, commit_lsn, lsn) VALUES (?, 0, 0)")
        };
        self.conn.exec_drop(register, (topic,)).await.map_err(context("registering the topic's truncates"))?;
        let lock = if exclusive { "FOR UPDATE" } else { "LOCK IN SHARE MODE" };
        let position: Option<(u64, u64)> = self
            .conn
            .exec_first(format!("SELECT commit_lsn, lsn FROM {truncates} WHERE topic = ? {lock}"), (topic,))
            .await
            .map_err(context("reading where the table was truncated"))?;
        Ok(position
            .filter(|&(commit_lsn, _)| commit_lsn > 0)
            .map(|(commit_lsn, lsn)| Position { commit_lsn: Lsn(commit_lsn), lsn: Lsn(lsn) }))
    }

    /// In the batch's transaction, holding [`Sink::truncated_at`]'s exclusive lock: empties the table
    /// and records that it was truncated at `position`.
    pub(super) async fn truncate(
        &mut self,
        table: &TargetTable,
        topic: &str,
        position: Position,
    ) -> Result<(), MysqlError> {
        let endpoint = &self.endpoint;
        let context = |context: &'static str| move |error| MysqlError::query(endpoint, context, error);
        self.conn
            .query_drop(format!("DELETE FROM {}.{}", quote(&table.database), quote(&table.name)))
            .await
            .map_err(context("emptying a truncated table"))?;
        self.conn
            .exec_drop(
                format!(
                    "UPDATE {}.{TRUNCATES_TABLE} SET commit_lsn = ?, lsn = ? WHERE topic = ?",
                    quote(&self.bookkeeping_db)
                ),
                (position.commit_lsn.0, position.lsn.0, topic),
            )
            .await
            .map_err(context("recording where the table was truncated"))?;
        tracing::info!(table = %format!("{}.{}", table.database, table.name), topic, "applied a truncate");
        Ok(())
    }
}
