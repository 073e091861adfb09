//! What the source's schema does during an online run: partitions attached and created under a
//! partitioned table that streams through its root, while a writer keeps changing the table.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use passerelle_testkit::{on_both_targets, Target};

use crate::migrate::{s, Setup};
use crate::online::{cut_over, wait_for_the_snapshot_in_kafka};
use crate::support::passerelle_spawn;

/// Keeps inserting into and updating `table` (columns `id`, `at`, `note`) with ids from `first`
/// until stopped, each statement its own transaction; returns how many rows it inserted.
fn writer(setup: &Setup, table: &'static str, first: i64) -> (Arc<AtomicBool>, tokio::task::JoinHandle<i64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let source = setup.source.url.clone();
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        let client = passerelle_testkit::pg_client(&source).await;
        let mut id = first;
        // A few rows at least, however soon it is stopped.
        while id - first < 20 || !stopped.load(Ordering::Relaxed) {
            let insert =
                format!("insert into {table} (id, at, note) values ($1::bigint, date '2024-01-01' + ($1::bigint % 360)::int, 'w')");
            client.execute(&insert, &[&id]).await.unwrap_or_else(|e| panic!("{insert}: {e}"));
            let update = format!("update {table} set note = note || '+' where id = $1");
            client.execute(&update, &[&(id / 2)]).await.unwrap_or_else(|e| panic!("{update}: {e}"));
            id += 1;
        }
        id - first
    });
    (stop, task)
}

/// `migrate --online` on three partitions per topic, once its snapshot is in Kafka.
async fn streaming(setup: &Setup) -> std::process::Child {
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json", "--partitions", "3"]);
    let migrate = passerelle_spawn(&args, &setup.env());
    wait_for_the_snapshot_in_kafka(setup, &setup.env()).await;
    migrate
}

const READINGS: &str = "
create table readings (id bigint not null, at date not null, note text, primary key (id, at)) partition by range (at);
create table readings_2024 partition of readings for values from ('2024-01-01') to ('2025-01-01');
insert into readings select i, date '2024-01-01' + (i % 300), 'r' || i from generate_series(1, 300) i;
";

async fn a_partition_attached_or_created_during_an_online_run_streams_through_its_root(target: Target) {
    let setup = Setup::new(target, READINGS).await;
    let migrate = streaming(&setup).await;

    let source = setup.source.client().await;
    // The writer writes the table before, during and after the partitions' arrival.
    let (stop, writes) = writer(&setup, "readings", 1000);
    source.batch_execute("update readings set note = 'before' where id <= 10").await.unwrap();
    source
        .batch_execute(
            "create table readings_2025 partition of readings for values from ('2025-01-01') to ('2026-01-01');
             insert into readings values (100001, '2025-03-01', 'created'), (100002, '2025-04-01', 'created');
             create table readings_2026 (id bigint not null, at date not null, note text, primary key (id, at));
             alter table readings attach partition readings_2026 for values from ('2026-01-01') to ('2027-01-01');
             insert into readings values (100003, '2026-02-01', 'attached');",
        )
        .await
        .unwrap();
    source
        .batch_execute(
            "update readings set note = 'after' where id in (100001, 100003, 11);
             delete from readings where id = 100002;
             insert into readings_2026 values (100004, '2026-05-01', 'into the partition');",
        )
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let n_written = writes.await.unwrap();
    assert!(n_written > 0);

    cut_over(&setup, migrate, &setup.env());
    let rows = setup
        .target_rows("SELECT id, note FROM readings WHERE id IN (11, 100001, 100002, 100003, 100004) ORDER BY id")
        .await;
    assert_eq!(
        rows,
        vec![
            vec![s("11"), s("after")],
            vec![s("100001"), s("after")],
            vec![s("100003"), s("after")],
            vec![s("100004"), s("into the partition")]
        ]
    );
    setup.cleanup();
}
on_both_targets!(
    a_partition_attached_or_created_during_an_online_run_streams_through_its_root,
    flavor = "multi_thread"
);

/// A column narrowed on the source (`varchar(10)` to `varchar(5)`), which the target's column would
/// have to follow and Passerelle does not carry: the stream stops with one line naming the table,
/// the column, both types and the way out, instead of failing later in the target.
async fn a_narrowed_column_stops_the_stream_naming_it(target: Target) {
    let setup = Setup::new(
        target,
        "create table readings (id bigint not null, at date not null, note varchar(10), primary key (id, at));
         insert into readings select i, date '2024-01-01' + (i % 300), 'r' || i from generate_series(1, 300) i;",
    )
    .await;
    let migrate = streaming(&setup).await;
    let (stop, writes) = writer(&setup, "readings", 1000);
    let source = setup.source.client().await;
    source.batch_execute("update readings set note = 'before' where id = 1").await.unwrap();
    // The writer's notes grow past 5 characters: it stops before the change.
    stop.store(true, Ordering::Relaxed);
    assert!(writes.await.unwrap() > 0);
    source
        .batch_execute(
            "update readings set note = left(note, 5);
             alter table readings alter column note type varchar(5);
             update readings set note = 'after' where id = 2;",
        )
        .await
        .unwrap();
    let migrate = crate::support::finished(migrate);
    assert_eq!(migrate.code, 2, "{}\n{}", migrate.stdout, migrate.stderr);
    let stderr = migrate.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    for part in [
        "table public.readings at ",
        " changed during the migration: column \"note\" changed type from character varying(10) to character \
         varying(5)",
        "undo the change on the source, or start the migration over",
    ] {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
    setup.cleanup();
}
on_both_targets!(a_narrowed_column_stops_the_stream_naming_it, flavor = "multi_thread");

/// A table created in a migrated schema during an online run is neither copied nor streamed: the
/// cutover refuses to call the run done, naming the table and the way out.
async fn a_table_created_during_an_online_run_is_refused_at_the_cutover_by_name(target: Target) {
    let setup = Setup::new(target, READINGS).await;
    let migrate = streaming(&setup).await;
    let (stop, writes) = writer(&setup, "readings", 1000);
    let source = setup.source.client().await;
    source
        .batch_execute(
            "create table extra (id integer primary key, note text); insert into extra values (1, 'new');
             create table readings_2025 partition of readings for values from ('2025-01-01') to ('2026-01-01');",
        )
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(writes.await.unwrap() > 0);

    let mut cutover = setup.args("cutover");
    cutover.push("--json");
    let cutover = crate::support::passerelle(&cutover, &setup.env());
    let migrate = crate::support::finished(migrate);
    assert_eq!((cutover.code, migrate.code), (2, 2), "{}\n{}", cutover.stderr, migrate.stderr);
    // The partition streams through its root; only the new table is named.
    let message = "table public.extra was created in a migrated schema during the run, which copies only the \
                   tables it began with; start the migration over to include it";
    for (run, way_out) in [(&migrate, ""), (&cutover, "; start the migration over: passerelle cleanup")] {
        let stderr = run.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(stderr.contains(&format!("{message}{way_out}")), "{stderr}");
    }
    setup.cleanup();
}
on_both_targets!(a_table_created_during_an_online_run_is_refused_at_the_cutover_by_name, flavor = "multi_thread");
