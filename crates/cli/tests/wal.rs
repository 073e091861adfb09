//! The WAL a migration makes the source retain stays bounded: a quiet table's slot follows the
//! database's WAL, and `migrate` drops its slot once the target is verified.

use std::time::{Duration, Instant};

use passerelle_model::event::Lsn;
use passerelle_testkit::{on_both_targets, Target};

use crate::migrate::Setup;
use crate::online::wait_for_the_snapshot_in_kafka;
use crate::support::{finished, passerelle, passerelle_spawn};

const QUIET_AND_BUSY: &str = "
create table quiet (id integer primary key, label text not null);
insert into quiet select i, 'q' || i from generate_series(1, 100) i;
create schema other;
create table other.busy (id serial primary key, pad text not null);
";

async fn a_quiet_tables_slot_advances_past_the_writes_of_tables_not_migrated(target: Target) {
    let setup = Setup::new(target, QUIET_AND_BUSY).await;
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json"]);
    let migrate = passerelle_spawn(&args, &setup.env());
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;

    let source = setup.source.client().await;
    for _ in 0..4 {
        source
            .batch_execute("insert into other.busy (pad) select repeat('x', 500) from generate_series(1, 5000)")
            .await
            .unwrap();
    }
    let written: String = source.query_one("select pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
    let written: Lsn = written.parse().unwrap();
    let slot = setup.slot_name();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let confirmed: Option<String> = source
            .query_one("select confirmed_flush_lsn::text from pg_replication_slots where slot_name = $1", &[&slot])
            .await
            .unwrap()
            .get(0);
        let confirmed: Lsn = confirmed.unwrap().parse().unwrap();
        if confirmed >= written {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot stays at {confirmed}, behind the other table's writes at {written}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let cutover = passerelle(&setup.args("cutover"), &setup.env());
    assert_eq!(cutover.code, 0, "{}\n{}", cutover.stdout, cutover.stderr);
    let migrate = finished(migrate);
    assert_eq!(migrate.code, 0, "{}\n{}", migrate.stdout, migrate.stderr);
    let summary: serde_json::Value = serde_json::from_str(&migrate.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    assert_eq!(summary["slot_dropped"], true, "{summary}");
    assert_eq!(setup.slot_and_publication().await, (false, false));
    setup.cleanup();
}
on_both_targets!(a_quiet_tables_slot_advances_past_the_writes_of_tables_not_migrated, flavor = "multi_thread");

async fn migrate_drops_its_slot_once_verified_unless_keep_slot(target: Target) {
    let setup = Setup::new(target, QUIET_AND_BUSY).await;
    let run = setup.migrate();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["slot_dropped"], true, "{summary}");
    assert_eq!(setup.slot_and_publication().await, (false, false), "the slot and publication are gone");
    // The run is complete without its slot: run again, it copies nothing.
    let again = setup.migrate();
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(!again.stderr.contains("starting over"), "{}", again.stderr);
    setup.cleanup();

    let kept = Setup::new(target, QUIET_AND_BUSY).await;
    let run = kept.migrate_with(&["--keep-slot"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["slot_dropped"], false, "{summary}");
    assert_eq!(kept.slot_and_publication().await, (true, true), "--keep-slot keeps them");
    kept.source.client().await.batch_execute("insert into other.busy (pad) values ('x')").await.unwrap();
    let status = passerelle(&[&kept.args("status")[..], &["--warn-wal-mb", "0"]].concat(), &kept.env());
    assert_eq!(status.code, 0, "{}\n{}", status.stdout, status.stderr);
    assert!(status.stdout.contains("past --warn-wal-mb"), "{}", status.stdout);
    let status = passerelle(&kept.args("status"), &kept.env());
    assert!(status.stdout.contains("of WAL on the source") && !status.stdout.contains("warning"), "{}", status.stdout);
    kept.cleanup();
    assert_eq!(kept.slot_and_publication().await, (false, false));
}
on_both_targets!(migrate_drops_its_slot_once_verified_unless_keep_slot, flavor = "multi_thread");
