//! A target database with tables a test creates by hand, a sink on it, and ways to build change
//! events and read rows back.

use mysql_async::prelude::Queryable;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::event::{ChangeEvent, Lsn, Op, Row};
use passerelle_model::schema::QualifiedName;
use passerelle_model::target::{Conversion, TargetColumn, TargetTable};
use passerelle_mysql::sink::{BatchOrigin, Sink};
use passerelle_testkit::{Stack, Target, TargetDb};

pub struct TestDb {
    pub db: TargetDb,
    pub sink: Sink,
    pub conn: mysql_async::Conn,
}

impl TestDb {
    /// A new database on `server` where `ddl` ran, and a sink that keeps its bookkeeping there too.
    pub async fn new(server: Target, ddl: &str) -> TestDb {
        let db = TargetDb::create(&Stack::for_target(server)).await;
        let mut conn = db.conn().await;
        conn.query_drop(format!("USE `{}`; {ddl}", db.name)).await.unwrap_or_else(|error| panic!("{ddl}: {error}"));
        let endpoint = DbEndpoint::parse_mysql(&db.url).unwrap();
        let sink = Sink::open(&endpoint, &db.name).await.unwrap();
        TestDb { db, sink, conn }
    }

    /// `(name, conversion, generated)` columns, `key` positions.
    pub fn table(&self, name: &str, columns: &[(&str, Conversion, bool)], key: &[usize]) -> TargetTable {
        TargetTable {
            source: QualifiedName { schema: "public".to_string(), name: name.to_string() },
            database: self.db.name.clone(),
            name: name.to_string(),
            columns: columns
                .iter()
                .map(|(name, conversion, generated)| TargetColumn {
                    name: name.to_string(),
                    conversion: conversion.clone(),
                    generated: *generated,
                })
                .collect(),
            key: key.to_vec(),
        }
    }

    pub async fn apply(&mut self, table: &TargetTable, changes: &[(i64, ChangeEvent)]) -> u64 {
        self.sink.apply_changes(table, ORIGIN, changes).await.unwrap_or_else(|error| panic!("{error}"))
    }

    /// Every row the query returns, each value as the server's text, `None` for NULL.
    pub async fn rows(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        // `new` left the test's database selected on this connection.
        let rows: Vec<mysql_async::Row> = self.conn.query(sql).await.unwrap_or_else(|error| panic!("{sql}: {error}"));
        rows.into_iter()
            .map(|row| {
                row.unwrap()
                    .into_iter()
                    .map(|value| match value {
                        mysql_async::Value::NULL => None,
                        mysql_async::Value::Bytes(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                        other => Some(other.as_sql(true)),
                    })
                    .collect()
            })
            .collect()
    }

    /// The partition's next offset to apply, if it has one.
    pub async fn next_offset(&mut self) -> Option<i64> {
        let sql = format!(
            "SELECT next_offset FROM `{}`.passerelle_offsets WHERE topic = '{}' AND kafka_partition = {}",
            self.db.name, ORIGIN.topic, ORIGIN.partition
        );
        self.conn.query_first(sql).await.unwrap()
    }
}

pub const ORIGIN: BatchOrigin<'static> = BatchOrigin { topic: "test.public.t", partition: 3, start: 0 };

pub fn row(values: &[Option<&str>]) -> Row {
    values.iter().map(|value| value.map(str::to_string)).collect()
}

fn event(op: Op, before: Option<Row>, after: Option<Row>, unchanged: &[usize]) -> ChangeEvent {
    ChangeEvent {
        table: QualifiedName { schema: "public".to_string(), name: "t".to_string() },
        op,
        before,
        after,
        unchanged: unchanged.to_vec(),
        commit_lsn: Lsn(1),
        lsn: Lsn(0),
        position: None,
    }
}

pub fn insert(after: &[Option<&str>]) -> ChangeEvent {
    event(Op::Create, None, Some(row(after)), &[])
}

/// An update; `before` is `None` when it kept its key under the default replica identity.
pub fn update(before: Option<&[Option<&str>]>, after: &[Option<&str>], unchanged: &[usize]) -> ChangeEvent {
    event(Op::Update, before.map(row), Some(row(after)), unchanged)
}

pub fn delete(before: &[Option<&str>]) -> ChangeEvent {
    event(Op::Delete, Some(row(before)), None, &[])
}

/// `changes` numbered from offset `first`.
pub fn at(first: i64, changes: Vec<ChangeEvent>) -> Vec<(i64, ChangeEvent)> {
    (first..).zip(changes).collect()
}
