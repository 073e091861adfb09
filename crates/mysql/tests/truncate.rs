//! A source `TRUNCATE` applied once, in stream order, across the partitions of its table's topic:
//! the first partition to reach its marker empties the table; whatever comes from before the
//! truncate (a partition behind, the snapshot still loading, a replay) is skipped after it.

use passerelle_model::event::{ChangeEvent, Lsn, Op};
use passerelle_model::target::Conversion;
use passerelle_mysql::sink::BatchOrigin;
use passerelle_testkit::{on_both_targets, Target};

use crate::support::{insert, row, TestDb, ORIGIN};

/// `change` at `commit_lsn`, its own position `lsn` in the transaction.
fn at(commit_lsn: u64, lsn: u64, mut change: ChangeEvent) -> ChangeEvent {
    (change.commit_lsn, change.lsn) = (Lsn(commit_lsn), Lsn(lsn));
    change
}

fn truncate(commit_lsn: u64, lsn: u64) -> ChangeEvent {
    let mut marker = insert(&[]);
    (marker.op, marker.after) = (Op::Truncate, None);
    at(commit_lsn, lsn, marker)
}

fn put(id: &str) -> ChangeEvent {
    insert(&[Some(id), Some("v")])
}

async fn a_truncate_empties_the_table_once_whichever_partition_reaches_it_first(server: Target) {
    let mut target = TestDb::new(server, "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v TEXT)").await;
    let table = target.table("t", &[("id", Conversion::Text, false), ("v", Conversion::Text, false)], &[0]);
    let (a, b, c) = (ORIGIN, BatchOrigin { partition: 4, ..ORIGIN }, BatchOrigin { partition: 5, ..ORIGIN });
    let ids =
        |rows: Vec<Vec<Option<String>>>| -> Vec<String> { rows.into_iter().map(|r| r[0].clone().unwrap()).collect() };
    let snapshot = [(0, row(&[Some("1"), Some("s")])), (1, row(&[Some("2"), Some("s")]))];
    assert_eq!(target.sink.load_rows(&table, b, &snapshot).await.unwrap(), 2);

    // Partition a reaches the truncate first: the table is emptied there, at the truncate's place.
    let first = [(0, at(10, 1, put("10"))), (1, truncate(20, 5)), (2, at(30, 1, put("11")))];
    // Applied: both writes and the truncate.
    assert_eq!(target.sink.apply_changes(&table, a, &first).await.unwrap(), 3);
    assert_eq!(ids(target.rows("SELECT id FROM t ORDER BY id").await), ["11"]);

    // Partition b, behind: its change from before the truncate and its marker are skipped, its
    // later change applies; the snapshot rows of partition c, still loading, came before it all.
    let behind = [(2, at(15, 1, put("12"))), (3, truncate(20, 5)), (4, at(25, 1, put("13")))];
    assert_eq!(target.sink.apply_changes(&table, b, &behind).await.unwrap(), 1);
    assert_eq!(target.sink.load_rows(&table, c, &[(0, row(&[Some("3"), Some("s")]))]).await.unwrap(), 0);
    assert_eq!(ids(target.rows("SELECT id FROM t ORDER BY id").await), ["11", "13"]);

    // The source sent partition a's events again after a crash, as new records: the same end.
    let replayed = [(3, at(10, 1, put("10"))), (4, truncate(20, 5)), (5, at(30, 1, put("11")))];
    assert_eq!(target.sink.apply_changes(&table, a, &replayed).await.unwrap(), 1);
    assert_eq!(ids(target.rows("SELECT id FROM t ORDER BY id").await), ["11", "13"]);

    // One transaction that writes, truncates and writes again: only the write after stays.
    let within = [(6, at(50, 1, put("14"))), (7, truncate(50, 3)), (8, at(50, 4, put("15")))];
    assert_eq!(target.sink.apply_changes(&table, a, &within).await.unwrap(), 3);
    assert_eq!(ids(target.rows("SELECT id FROM t ORDER BY id").await), ["15"]);
    let late = [(5, at(40, 1, put("16"))), (6, truncate(50, 3)), (7, at(60, 1, put("17")))];
    assert_eq!(target.sink.apply_changes(&table, b, &late).await.unwrap(), 1);
    assert_eq!(ids(target.rows("SELECT id FROM t ORDER BY id").await), ["15", "17"]);
    assert_eq!(target.next_offset().await, Some(9));
}
on_both_targets!(a_truncate_empties_the_table_once_whichever_partition_reaches_it_first);
