//! What the test modules share: throwaway sources, their tables, the copy, and slot clean-up.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::event::Row;
use passerelle_model::schema::{QualifiedName, Table};
use passerelle_pg::snapshot::{
    batch_channel, plan_units, CopySpace, CopyStats, CopyUnit, CopyWorker, RowBatch, SourceRate,
};
use passerelle_pg::{catalog, PgError};
use passerelle_testkit::{pg_client, unique_name, SourceDb, Stack};

/// A database of its own with `setup` run in it, and its endpoint as Passerelle sees it.
pub async fn source(setup: &str) -> (SourceDb, DbEndpoint) {
    let db = SourceDb::create(&Stack::from_env()).await;
    db.client().await.batch_execute(setup).await.unwrap();
    let endpoint = DbEndpoint::parse_postgres(&db.url).unwrap();
    (db, endpoint)
}

pub async fn tables(endpoint: &DbEndpoint) -> Vec<Table> {
    let mut client = passerelle_pg::connect(endpoint).await.unwrap();
    catalog::read(&mut client, endpoint, &["public".to_string()]).await.unwrap().tables
}

/// Sets the database's defaults to settings that would print every value differently from the pinned
/// session (they take effect in new sessions): what Passerelle reads must not change.
pub async fn set_hostile_defaults(db: &SourceDb) {
    let settings = [
        "timezone = 'America/New_York'",
        "datestyle = 'SQL, DMY'",
        "intervalstyle = 'sql_standard'",
        "extra_float_digits = 0",
        "bytea_output = 'escape'",
    ];
    let alter: String = settings.iter().map(|setting| format!("alter database {} set {setting};", db.name)).collect();
    db.client().await.batch_execute(&alter).await.unwrap();
}

pub fn names(tables: &[Table]) -> Vec<QualifiedName> {
    tables.iter().map(|table| table.name.clone()).collect()
}

/// Runs `n_workers` copy workers over `units`, as `migrate` will, within `rate` if given, handing
/// every batch to `each`.
pub async fn copy_all(
    endpoint: &DbEndpoint,
    snapshot_name: &str,
    tables: &[Table],
    units: Vec<CopyUnit>,
    rate: Option<SourceRate>,
    n_workers: usize,
    mut each: impl FnMut(RowBatch),
) -> CopyStats {
    let tables = Arc::new(tables.to_vec());
    let queue = Arc::new(Mutex::new(VecDeque::from(units)));
    let (sender, mut receiver) = batch_channel(&CopySpace::default());
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..n_workers {
        let worker = CopyWorker::open(endpoint, snapshot_name, rate.clone()).await.unwrap();
        let (tables, queue, sender) = (tables.clone(), queue.clone(), sender.clone());
        workers.spawn(async move {
            let mut stats = CopyStats::default();
            loop {
                let Some(unit) = queue.lock().unwrap().pop_front() else { break };
                let unit_stats = worker.copy(&tables, &unit, &sender).await?;
                stats.n_rows += unit_stats.n_rows;
                stats.n_bytes += unit_stats.n_bytes;
            }
            worker.finish().await?;
            Ok::<_, PgError>(stats)
        });
    }
    drop(sender);
    while let Some((batch, _space)) = receiver.recv().await {
        each(batch);
    }
    let mut total = CopyStats::default();
    while let Some(stats) = workers.join_next().await {
        let stats = stats.unwrap().unwrap_or_else(|error| panic!("{error}"));
        total.n_rows += stats.n_rows;
        total.n_bytes += stats.n_bytes;
    }
    total
}

/// Every row of every table, per table index.
pub async fn copy_rows(
    endpoint: &DbEndpoint,
    snapshot_name: &str,
    tables: &[Table],
    n_workers: usize,
) -> Vec<Vec<Row>> {
    let client = passerelle_pg::connect(endpoint).await.unwrap();
    let units = plan_units(&client, endpoint, tables, 1 << 20).await.unwrap();
    let mut rows = vec![Vec::new(); tables.len()];
    let stats = copy_all(endpoint, snapshot_name, tables, units, None, n_workers, |batch| {
        rows[batch.table_idx].extend(batch.rows().map(|row| row.to_row()));
    })
    .await;
    assert_eq!(stats.n_rows as usize, rows.iter().map(Vec::len).sum::<usize>());
    rows
}

pub fn text(value: &str) -> Option<String> {
    Some(value.to_string())
}

/// A replication slot name that is dropped when the test ends, however it ends: the cluster has
/// few slots, and a database with a logical slot cannot be dropped. Declare it after the
/// [`SourceDb`] and before the streams, so that it is dropped after them and before the database.
pub struct SlotGuard {
    pub name: String,
    admin_url: String,
}

impl SlotGuard {
    pub fn new(db: &SourceDb) -> SlotGuard {
        SlotGuard { name: unique_name("slot"), admin_url: db.admin_url.clone() }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let (url, slot) = (self.admin_url.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let client = pg_client(&url).await;
                // A stream dropped just now holds the slot until its walsender notices.
                for _ in 0..100 {
                    client
                        .execute(
                            "select pg_terminate_backend(active_pid) from pg_replication_slots
                             where slot_name = $1 and active_pid is not null",
                            &[&slot],
                        )
                        .await?;
                    let dropped = client
                        .execute(
                            "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1",
                            &[&slot],
                        )
                        .await;
                    match dropped {
                        Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) => {
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                        other => return other.map(drop),
                    }
                }
                Ok(())
            })
        })
        .join();
        if let Ok(Err(error)) = outcome {
            eprintln!("could not drop replication slot {}: {error}", self.name);
        }
    }
}
