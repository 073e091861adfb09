//! A migrated target to verify: the source tables a test creates, planned by `ddl`, the DDL applied
//! and the rows loaded by the real sink (`mysql::sink`) from the source's text output, without Kafka
//! in between. When a test should go through `passerelle migrate` itself, [`Migrated::new`] is the
//! one place to change.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use passerelle_ddl::{Config, IntervalAs, Plan, Server, TypeOptions, UuidAs};
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::schema::Schema;
use passerelle_model::target::TargetTable;
use passerelle_mysql::sink::{BatchOrigin, Sink};
use passerelle_testkit::{SourceDb, Stack, Target, TargetDb};
use passerelle_verify::report::Report;

pub struct Migrated {
    /// Held for its `Drop`: the source database goes when the test passes, stays when it fails.
    _source: SourceDb,
    pub target: TargetDb,
    pub schema: Schema,
    pub plan: Plan,
    source_endpoint: DbEndpoint,
    target_endpoint: DbEndpoint,
}

impl Migrated {
    /// Runs `setup` (DDL and rows, in schema `public`) on a new source database and migrates it
    /// into a new database on `target`.
    pub async fn new(target: Target, setup: &str) -> Migrated {
        let stack = Stack::for_target(target);
        let server = Server::from_version(&target.assert_version().await).expect("the target's version parses");
        let source = SourceDb::create(&stack).await;
        source.client().await.batch_execute(setup).await.expect("the test's source setup runs");
        let target = TargetDb::reserve(&stack);
        let source_endpoint = DbEndpoint::parse_postgres(&source.url).unwrap();
        let target_endpoint = DbEndpoint::parse_mysql(&target.url).unwrap();

        let mut client = passerelle_pg::connect(&source_endpoint).await.unwrap();
        let schema =
            passerelle_pg::catalog::read(&mut client, &source_endpoint, &["public".to_string()]).await.unwrap();
        let config = Config {
            server,
            databases: BTreeMap::from([("public".to_string(), target.name.clone())]),
            types: TypeOptions { uuid: UuidAs::Native, interval: IntervalAs::Text, text_collation: None },
            require_primary_key: false,
            trigger_refusal: None,
        };
        let plan = passerelle_ddl::plan(&schema, &config);
        let mut conn = passerelle_mysql::connect(&target_endpoint).await.unwrap();
        passerelle_mysql::schema_apply::apply(&mut conn, &target_endpoint, &plan.pre_data).await.unwrap();
        let mut sink = Sink::open(&target_endpoint, &target.name).await.unwrap();
        for table in &plan.tables {
            copy(&source_endpoint, &mut sink, table).await;
        }
        sink.close().await;
        passerelle_mysql::schema_apply::apply(&mut conn, &target_endpoint, &plan.post_data).await.unwrap();
        let _ = conn.disconnect().await;
        Migrated { _source: source, target, schema, plan, source_endpoint, target_endpoint }
    }

    /// Runs statements on the target, as its admin.
    pub async fn on_target(&self, sql: &str) {
        let mut conn = passerelle_mysql::connect(&self.target_endpoint).await.unwrap();
        mysql_async::prelude::Queryable::query_drop(&mut conn, format!("USE `{}`; {sql}", self.target.name))
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
        let _ = conn.disconnect().await;
    }

    pub fn config(&self, jobs: usize) -> passerelle_verify::Config {
        passerelle_verify::Config { source: self.source_endpoint.clone(), target: self.target_endpoint.clone(), jobs }
    }

    pub async fn verify(&self, jobs: usize) -> Report {
        let (sender, _receiver) = tokio::sync::mpsc::unbounded_channel();
        passerelle_verify::run(&self.config(jobs), &self.schema, &self.plan, sender).await.unwrap()
    }
}

/// Every row of `table` as the snapshot reads it: each column's text output under `pg::session`'s
/// settings, streamed and loaded in batches.
async fn copy(source: &DbEndpoint, sink: &mut Sink, table: &TargetTable) {
    let client = passerelle_pg::session::connect(source).await.unwrap();
    let schema_table = table.source.clone();
    let columns: Vec<String> = (0..table.columns.len()).map(|idx| format!("c{idx}")).collect();
    let sql = format!(
        "SELECT {} FROM (SELECT * FROM \"{}\".\"{}\") t({})",
        // format() prints through each type's output function, as COPY does (`t`, not `true`).
        columns
            .iter()
            .map(|c| format!("CASE WHEN {c} IS NULL THEN NULL ELSE format('%s', {c}) END"))
            .collect::<Vec<_>>()
            .join(", "),
        schema_table.schema,
        schema_table.name,
        columns.join(", ")
    );
    let topic = format!("test.{}", schema_table.name);
    let origin = BatchOrigin { topic: &topic, partition: 0, start: 0 };
    let rows = client.query_raw(&sql, std::iter::empty::<&str>()).await.unwrap();
    futures::pin_mut!(rows);
    let mut batch = Vec::new();
    let mut offset = 0;
    while let Some(row) = rows.try_next().await.unwrap() {
        batch.push((offset, (0..row.len()).map(|col| row.get::<_, Option<String>>(col)).collect()));
        offset += 1;
        if batch.len() == 10_000 {
            sink.load_rows(table, origin, &batch).await.unwrap();
            batch.clear();
        }
    }
    sink.load_rows(table, origin, &batch).await.unwrap();
}
