//! A run that cannot go on stops everything that waits for it: its source records why on the
//! control topic, and `cutover`, `status` and the sinks end at once with that cause (exit 2).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use passerelle_testkit::{hold_slot, on_both_targets, pg_client, unique_name, SourceDb, Stack, Target, TargetDb};
use url::Url;

use crate::migrate::Setup;
use crate::online::wait_for_the_snapshot_in_kafka;
use crate::support::{finished, passerelle, passerelle_spawn};

const ITEMS: &str = "
create table items (id integer primary key, label text not null);
insert into items select i, 'item ' || i from generate_series(1, 2000) i;
";

/// A table whose rows hold a value stored out of line (TOASTed).
const TOASTED: &str = "
create table items (id integer primary key, label text not null, body text);
alter table items alter column body set storage external;
insert into items select i, 'item ' || i, repeat(md5(i::text), 100) from generate_series(1, 200) i;
";
const CAUSE: &str = "public.items: an update changed a row's key and left a TOASTed value unsent";

async fn a_run_that_cannot_go_on_is_recorded_failed_and_cutover_status_and_sinks_stop_at_once(target: Target) {
    let setup = Setup::new(target, TOASTED).await;
    let migrate = online_migrate(&setup).await;
    let source = setup.source.client().await;
    // The key moves and the TOASTed body, unchanged, is not sent: the new row cannot be written whole.
    source
        .batch_execute("update items set label = 'before' where id = 1; update items set id = 9999 where id = 2;")
        .await
        .unwrap();
    let migrate = finished(migrate);
    assert_eq!(migrate.code, 2, "{}\n{}", migrate.stdout, migrate.stderr);
    assert!(migrate.stderr.contains(CAUSE), "{}", migrate.stderr);

    let started = Instant::now();
    let cutover = passerelle(&setup.args("cutover"), &setup.env());
    let took = started.elapsed();
    assert_eq!(cutover.code, 2, "{}\n{}", cutover.stdout, cutover.stderr);
    assert!(took < Duration::from_secs(20), "the cutover took {took:?} to stop");
    for expected in ["failed: ", CAUSE, "passerelle cleanup --topic-prefix"] {
        assert!(cutover.stderr.contains(expected), "{expected:?} in {}", cutover.stderr);
    }
    assert!(!cutover.stderr.contains("still waiting"), "{}", cutover.stderr);

    let status = passerelle(&[&setup.args("status")[..], &["--json"]].concat(), &setup.env());
    assert_eq!(status.code, 2, "{}\n{}", status.stdout, status.stderr);
    let report: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(report["failed"]["cause"].as_str().unwrap().contains(CAUSE), "{report}");

    let started = Instant::now();
    let sink = passerelle(&setup.args("sink"), &setup.env());
    assert_eq!(sink.code, 2, "{}\n{}", sink.stdout, sink.stderr);
    assert!(sink.stderr.contains(CAUSE), "{}", sink.stderr);
    assert!(started.elapsed() < Duration::from_secs(60), "the sink took {:?} to stop", started.elapsed());
    setup.cleanup();
}
on_both_targets!(
    a_run_that_cannot_go_on_is_recorded_failed_and_cutover_status_and_sinks_stop_at_once,
    flavor = "multi_thread"
);

async fn a_slot_dropped_under_a_streaming_run_stops_it_with_the_way_out(target: Target) {
    let setup = Setup::new(target, ITEMS).await;
    let migrate = online_migrate(&setup).await;
    // As a failover to a standby without the slot, or an administrator, would: the walsender ends
    // and the slot is gone before the stream comes back.
    let source = setup.source.client().await;
    let slot = setup.slot_name();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the slot {slot} could not be dropped");
        source
            .execute("select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1", &[&slot])
            .await
            .unwrap();
        let dropped = source
            .execute(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1 and not active",
                &[&slot],
            )
            .await;
        if dropped.is_ok_and(|n| n == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let migrate = finished(migrate);
    assert_eq!(migrate.code, 2, "{}\n{}", migrate.stdout, migrate.stderr);
    assert!(started.elapsed() < Duration::from_secs(60), "it stopped after {:?}", started.elapsed());
    for expected in ["has no replication slot", "lost to a failover", "start the migration over"] {
        assert!(migrate.stderr.contains(expected), "{expected:?} in {}", migrate.stderr);
    }
    let status = passerelle(&setup.args("status"), &setup.env());
    assert_eq!(status.code, 2, "{}\n{}", status.stdout, status.stderr);
    assert!(status.stdout.contains("FAILED") && status.stdout.contains("has no replication slot"), "{}", status.stdout);
    setup.cleanup();
}
on_both_targets!(a_slot_dropped_under_a_streaming_run_stops_it_with_the_way_out, flavor = "multi_thread");

async fn migrate_waits_for_a_lock_held_on_a_source_table_names_its_holder_and_proceeds(target: Target) {
    let setup = Setup::new(target, ITEMS).await;
    let mut holder = setup.source.client().await;
    let lock = holder.transaction().await.unwrap();
    lock.batch_execute("lock table items in access exclusive mode").await.unwrap();
    let holder_pid: i32 = lock.query_one("select pg_backend_pid()", &[]).await.unwrap().get(0);
    let migrate = passerelle_spawn(&setup.args("migrate"), &setup.env());

    // Passerelle's request waits, gives up after its lock_timeout, and asks again on a new session.
    let observer = setup.source.client().await;
    let waiting = || async {
        observer
            .query(
                "select pid from pg_stat_activity
                 where datname = current_database() and application_name = 'passerelle' and wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<_, i32>(0))
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let first = loop {
        assert!(Instant::now() < deadline, "passerelle never waited for the lock");
        if let Some(pid) = waiting().await.first() {
            break *pid;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    loop {
        assert!(Instant::now() < deadline, "passerelle never asked for the lock again");
        if waiting().await.iter().any(|pid| *pid != first) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lock.commit().await.unwrap();

    let migrate = finished(migrate);
    assert_eq!(migrate.code, 0, "{}\n{}", migrate.stdout, migrate.stderr);
    let named = format!("public.items: AccessExclusiveLock held by pid {holder_pid}");
    for expected in ["waiting for PostgreSQL, retry 1", "no lock on the source's tables within 10 s", &named] {
        assert!(migrate.stderr.contains(expected), "{expected:?} in {}", migrate.stderr);
    }
    setup.cleanup();
}
on_both_targets!(
    migrate_waits_for_a_lock_held_on_a_source_table_names_its_holder_and_proceeds,
    flavor = "multi_thread"
);

/// A private source cluster on port 59692, data under `/var/tmp/passerelle-stack/online-pg`, whose
/// settings a test may change: the shared one's `max_slot_wal_keep_size` stays unlimited.
fn private_source(stack: &Stack) -> Stack {
    // Both halves of a test start it, in one process: one at a time.
    static STARTING: Mutex<()> = Mutex::new(());
    let _starting = STARTING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../stack/stack.sh");
    let output = Command::new("bash")
        .arg(&script)
        .args(["service-up", "postgres"])
        .env("PASSERELLE_STACK_DIR", "/var/tmp/passerelle-stack/online-pg")
        .env("PASSERELLE_PG_PORT", "59692")
        .output()
        .expect("bash runs stack/stack.sh");
    assert!(
        output.status.success(),
        "the private PostgreSQL did not start: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let port = |url: &str| url.replace(&format!(":{}/", Url::parse(url).unwrap().port().unwrap()), ":59692/");
    Stack { source: port(&stack.source), source_admin: port(&stack.source_admin), ..stack.clone() }
}

async fn a_slot_invalidated_past_max_slot_wal_keep_size_is_named_and_not_retried(target: Target) {
    let stack = private_source(&Stack::for_target(target));
    let source = SourceDb::create(&stack).await;
    source.client().await.batch_execute(ITEMS).await.unwrap();
    let target_db = TargetDb::create(&stack).await;
    let setup = Setup { stack, source, target: target_db, prefix: unique_name("migrate") };
    let migrate = online_migrate(&setup).await;

    // The stream stands still (its process stopped) while the server moves to new WAL segments and
    // a checkpoint removes the old ones, which the slot still needs.
    let admin = pg_client(&setup.stack.source_admin).await;
    admin.batch_execute("alter system set max_slot_wal_keep_size = '1MB'").await.unwrap();
    admin.batch_execute("select pg_reload_conf()").await.unwrap();
    let signal = |name: &str| {
        let pid = migrate.id().to_string();
        assert!(Command::new("kill").args([name, &pid]).status().unwrap().success());
    };
    signal("-STOP");
    let slot = setup.slot_name();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the slot {slot} was never invalidated");
        for statement in
            ["create temporary table w as select 1 as one", "drop table w", "select pg_switch_wal()", "checkpoint"]
        {
            admin.batch_execute(statement).await.unwrap();
        }
        let row = admin
            .query_one("select wal_status from pg_replication_slots where slot_name = $1", &[&slot])
            .await
            .unwrap();
        if row.get::<_, Option<String>>(0).as_deref() == Some("lost") {
            break;
        }
    }
    signal("-CONT");
    let migrate = finished(migrate);
    assert_eq!(migrate.code, 2, "{}\n{}", migrate.stdout, migrate.stderr);
    for expected in ["was invalidated", "max_slot_wal_keep_size", "start the migration over"] {
        assert!(migrate.stderr.contains(expected), "{expected:?} in {}", migrate.stderr);
    }
    assert!(!migrate.stderr.contains("retry 2,"), "not retried: {}", migrate.stderr);
    let status = passerelle(&setup.args("status"), &setup.env());
    assert_eq!(status.code, 2, "{}\n{}", status.stdout, status.stderr);
    assert!(status.stdout.contains("is LOST") && status.stdout.contains("FAILED"), "{}", status.stdout);
    setup.cleanup();
}
on_both_targets!(a_slot_invalidated_past_max_slot_wal_keep_size_is_named_and_not_retried, flavor = "multi_thread");

async fn a_cutover_waiting_for_a_killed_source_says_that_nothing_streams_from_the_slot(target: Target) {
    let setup = Setup::new(target, ITEMS).await;
    let mut migrate = online_migrate(&setup).await;
    // Killed outright, the source records no failure: the cutover waits, and says why.
    migrate.kill().unwrap();
    migrate.wait().unwrap();
    let mut cutover = passerelle_spawn(&setup.args("cutover"), &setup.env());
    let stderr = BufReader::new(cutover.stderr.take().unwrap());
    let slot = setup.slot_name();
    let said = std::thread::spawn(move || {
        stderr.lines().map_while(Result::ok).find(|line| line.contains("no process streams from the slot"))
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    while !said.is_finished() {
        assert!(Instant::now() < deadline, "the cutover never said that nothing streams");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cutover.kill().unwrap();
    cutover.wait().unwrap();
    let line = said.join().unwrap().expect("the cutover said that nothing streams");
    assert!(line.contains(&slot) && line.contains("still waiting"), "{line}");
    setup.cleanup();
}
on_both_targets!(
    a_cutover_waiting_for_a_killed_source_says_that_nothing_streams_from_the_slot,
    flavor = "multi_thread"
);

async fn a_source_that_gave_up_is_a_failed_run_until_it_is_run_again(target: Target) {
    let setup = Setup::new(target, ITEMS).await;
    let args = [&setup.args("migrate")[..], &["--online", "--retry-for", "4s"]].concat();
    let first = passerelle_spawn(&args, &setup.env());
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    // A stranger takes the slot between the stream's session ending and its restart: the source
    // waits for it past --retry-for and gives up, which nothing retries by itself.
    let admin = pg_client(&setup.source.admin_url).await;
    let slot = setup.slot_name();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stranger = loop {
        assert!(Instant::now() < deadline, "the stranger never took the slot {slot}");
        admin
            .execute("select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1", &[&slot])
            .await
            .unwrap();
        let mut stranger = hold_slot(&setup.source.url, &slot, "stranger");
        tokio::time::sleep(Duration::from_millis(500)).await;
        if stranger.try_wait().unwrap().is_none() {
            break stranger;
        }
    };
    let first = finished(first);
    assert_eq!(first.code, 2, "{}\n{}", first.stdout, first.stderr);
    assert!(first.stderr.contains("is in use"), "{}", first.stderr);
    let status = passerelle(&setup.args("status"), &setup.env());
    assert_eq!(status.code, 2, "{}\n{}", status.stdout, status.stderr);
    assert!(status.stdout.contains("FAILED") && status.stdout.contains("run the source again"), "{}", status.stdout);

    // The stranger gone, the same command takes the run up again, and the failure is withdrawn.
    stranger.kill().unwrap();
    stranger.wait().unwrap();
    let second = passerelle_spawn(&args, &setup.env());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the failure was never withdrawn");
        if passerelle(&setup.args("status"), &setup.env()).code == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    setup.source.client().await.batch_execute("update items set label = 'after' where id < 10").await.unwrap();
    let cutover = passerelle(&setup.args("cutover"), &setup.env());
    assert_eq!(cutover.code, 0, "{}\n{}", cutover.stdout, cutover.stderr);
    let second = finished(second);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert!(second.stderr.contains("taking it up again"), "{}", second.stderr);
    setup.cleanup();
}
on_both_targets!(a_source_that_gave_up_is_a_failed_run_until_it_is_run_again, flavor = "multi_thread");

/// `migrate --online` started, once its snapshot is in Kafka.
async fn online_migrate(setup: &Setup) -> std::process::Child {
    let args = [&setup.args("migrate")[..], &["--online"]].concat();
    let migrate = passerelle_spawn(&args, &setup.env());
    wait_for_the_snapshot_in_kafka(setup, &setup.env()).await;
    migrate
}
