//! What the source's schema does during an online run: partitions attached and created under a
//! partitioned table that streams through its root, columns added and widened, while a writer keeps
//! changing the table; and what is refused, by name.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use passerelle_testkit::{on_both_targets, Target};

use crate::migrate::{s, Setup};
use crate::online::{cut_over, wait_for_the_snapshot_in_kafka};
use crate::support::{passerelle_child, passerelle_spawn, Pause};

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

const READINGS_WITH_NOTES: &str = "
create table readings (id bigint not null, at date not null, note varchar(10), legacy text not null default 'old',
                       primary key (id, at));
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
/// have to follow while longer values from before still arrive: the stream stops with one line
/// naming the table, the column, both types and the way out, instead of failing later in the target.
async fn a_narrowed_column_stops_the_stream_naming_it(target: Target) {
    let setup = Setup::new(target, READINGS_WITH_NOTES).await;
    let migrate = streaming(&setup).await;
    let (stop, writes) = writer(&setup, "readings", 1000);
    let source = setup.source.client().await;
    source.batch_execute("update readings set note = 'before' where id = 1").await.unwrap();
    // The writer's notes grow past 5 characters: it stops before the change.
    stop.store(true, Ordering::Relaxed);
    assert!(writes.await.unwrap() > 0);
    let ddl = "update readings set note = left(note, 5); alter table readings alter column note type varchar(5)";
    let refused = "column \"note\" changed type from character varying(10) to character varying(5): only widening a \
                   type is carried";
    stops_the_stream(&setup, migrate, ddl, refused).await;
    setup.cleanup();
}
on_both_targets!(a_narrowed_column_stops_the_stream_naming_it, flavor = "multi_thread");

/// Runs `ddl` on the source, then writes the table: `migrate` stops, saying the target cannot follow
/// because of `refused`, and the way out.
async fn stops_the_stream(setup: &Setup, migrate: std::process::Child, ddl: &str, refused: &str) {
    let source = setup.source.client().await;
    source.batch_execute(ddl).await.unwrap();
    source.batch_execute("update readings set note = 'after' where id = 2").await.unwrap();
    let migrate = crate::support::finished(migrate);
    assert_eq!(migrate.code, 2, "{}\n{}", migrate.stdout, migrate.stderr);
    let stderr = migrate.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    let expected = format!(
        "table public.readings changed during the run and the target cannot follow: {refused}; undo the change on \
         the source, or start the migration over"
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

/// Adds columns, widens one and drops one while a writer inserts and updates the table, writing it just
/// before and just after; a last column is added after the table's last write, so no change describes it.
async fn add_and_widen_columns(setup: &Setup) {
    let (stop, writes) = writer(setup, "readings", 1000);
    let source = setup.source.client().await;
    source.batch_execute("update readings set note = 'before' where id <= 10").await.unwrap();
    source
        .batch_execute(
            "alter table readings add column region text not null default 'north';
             update readings set region = 'south' where id = 1;
             alter table readings add column score integer;
             alter table readings alter column note type varchar(100);
             update readings set note = repeat('long', 20), score = 7 where id = 2;
             alter table readings drop column legacy;
             insert into readings values (100001, '2024-06-01', 'new', 'east', 3);
             update readings set id = 200005 where id = 5;",
        )
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(writes.await.unwrap() > 0);
    source
        .batch_execute(
            "update readings set score = 9 where id = 3;
             alter table readings add column quiet numeric(6,2) default 1.50;",
        )
        .await
        .unwrap();
}

/// What [`add_and_widen_columns`] leaves in the target, once verified by the cutover.
async fn assert_added_and_widened(setup: &Setup) {
    let rows = setup
        .target_rows(
            "SELECT id, note, region, score, quiet FROM readings WHERE id IN (1, 2, 3, 4, 5, 100001, 200005) ORDER BY id",
        )
        .await;
    let long = "long".repeat(20);
    assert_eq!(
        rows,
        vec![
            vec![s("1"), s("before"), s("south"), None, s("1.50")],
            vec![s("2"), Some(long), s("north"), s("7"), s("1.50")],
            vec![s("3"), s("before"), s("north"), s("9"), s("1.50")],
            vec![s("4"), s("before"), s("north"), None, s("1.50")],
            vec![s("100001"), s("new"), s("east"), s("3"), s("1.50")],
            vec![s("200005"), s("before"), s("north"), None, s("1.50")],
        ]
    );
    let columns = setup
        .target_rows(
            "SELECT column_name, data_type, character_maximum_length, is_nullable FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = 'readings' \
             AND column_name IN ('note', 'legacy', 'region', 'score') ORDER BY ordinal_position",
        )
        .await;
    assert_eq!(columns[0], [s("note"), s("varchar"), s("100"), s("YES")]);
    assert_eq!(columns[1][..2], [s("region"), s("longtext")]);
    assert_eq!(columns[1][3], s("NO"));
    assert_eq!(columns[2], [s("score"), s("int"), None, s("YES")]);
    assert_eq!(columns.len(), 3, "the dropped column stays: {columns:?}");
}

/// Columns added (with a constant default, and without one), a column widened and one dropped while a
/// writer inserts and updates the table: each applied to the target in stream order, the rows written
/// before the change that arrive after it filled by the default as PostgreSQL filled them, the dropped
/// column kept nullable until the stream is applied, and the cutover verifies the whole table as it
/// is now.
async fn columns_added_and_widened_during_an_online_run_are_carried(target: Target) {
    let setup = Setup::new(target, READINGS_WITH_NOTES).await;
    let migrate = streaming(&setup).await;
    add_and_widen_columns(&setup).await;
    cut_over(&setup, migrate, &setup.env());
    assert_added_and_widened(&setup).await;
    setup.cleanup();
}
on_both_targets!(columns_added_and_widened_during_an_online_run_are_carried, flavor = "multi_thread");

/// Killed once the target has a column added and before any event that uses it is applied, the
/// rerun streams again what the slot had not confirmed: the source knows the version it announced,
/// the sink finds the column there and applies the events once.
async fn a_run_killed_between_altering_the_target_and_applying_the_change_ends_identical(target: Target) {
    let setup = Setup::new(target, READINGS_WITH_NOTES).await;
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json", "--partitions", "3"]);
    let pause = Pause::at("target-altered:1");
    let mut first = passerelle_child(&args, &pause.env(&setup.env()));
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    add_and_widen_columns(&setup).await;
    pause.reached(&mut first).await;
    first.kill().unwrap();
    first.wait().unwrap();
    pause.release();
    let second = passerelle_spawn(&args, &setup.env());
    cut_over(&setup, second, &setup.env());
    assert_added_and_widened(&setup).await;
    setup.cleanup();
}
on_both_targets!(
    a_run_killed_between_altering_the_target_and_applying_the_change_ends_identical,
    flavor = "multi_thread"
);

/// Killed once the stream is applied and the dropped column is gone from the target, before the
/// post-data: the rerun finds the column gone and leaves it so, and the cutover, which waited for the
/// target, verifies.
async fn a_run_killed_after_the_target_dropped_a_column_ends_identical(target: Target) {
    let setup = Setup::new(target, READINGS_WITH_NOTES).await;
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json", "--partitions", "3"]);
    let pause = Pause::at("before-post-data");
    let mut first = passerelle_child(&args, &pause.env(&setup.env()));
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    add_and_widen_columns(&setup).await;
    let mut cutover = setup.args("cutover");
    cutover.push("--json");
    let cutover = passerelle_spawn(&cutover, &setup.env());
    pause.reached(&mut first).await;
    let legacy = "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() \
                  AND table_name = 'readings' AND column_name = 'legacy'";
    assert_eq!(setup.target_rows(legacy).await, [[s("0")]], "the column is dropped before the post-data");
    first.kill().unwrap();
    first.wait().unwrap();
    pause.release();
    let second = crate::support::finished(passerelle_spawn(&args, &setup.env()));
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    let cutover = crate::support::finished(cutover);
    assert_eq!(cutover.code, 0, "{}\n{}", cutover.stdout, cutover.stderr);
    let report: serde_json::Value = serde_json::from_str(&cutover.stdout).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    assert_added_and_widened(&setup).await;
    setup.cleanup();
}
on_both_targets!(a_run_killed_after_the_target_dropped_a_column_ends_identical, flavor = "multi_thread");

/// A column added with a volatile default: PostgreSQL rewrote the table with a value per row, which
/// no change carries. The stream stops naming the column and the way out.
async fn a_column_added_with_a_volatile_default_stops_the_stream_naming_it(target: Target) {
    let setup = Setup::new(target, READINGS_WITH_NOTES).await;
    let migrate = streaming(&setup).await;
    let ddl = "alter table readings add column drawn double precision default random()";
    let refused = "column \"drawn\" was added with a value for existing rows other than its default (a volatile \
                   default, or one set or dropped since), which the change stream does not carry";
    stops_the_stream(&setup, migrate, ddl, refused).await;
    setup.cleanup();
}
on_both_targets!(a_column_added_with_a_volatile_default_stops_the_stream_naming_it, flavor = "multi_thread");

/// A column renamed: the stream sees one column gone and one new, which a target could not tell from
/// a column dropped and another added with a default: it stops, naming both.
async fn a_renamed_column_stops_the_stream_naming_it(target: Target) {
    let setup = Setup::new(target, READINGS_WITH_NOTES).await;
    let migrate = streaming(&setup).await;
    let ddl = "alter table readings rename column legacy to heritage";
    let refused = "column \"legacy\" is gone and \"heritage\" is new, which may be a rename, not carried (a column \
                   dropped and another added are carried when a write to the table comes between them)";
    stops_the_stream(&setup, migrate, ddl, refused).await;
    setup.cleanup();
}
on_both_targets!(a_renamed_column_stops_the_stream_naming_it, flavor = "multi_thread");

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
