//! Outages Passerelle rides through with nobody running it again: a Kafka broker or the target
//! server SIGKILLed and restarted, the change stream's PostgreSQL session terminated, and a
//! restart right after `migrate --online` was SIGKILLed. Each test stops a run at a named pause
//! point (`PASSERELLE_PAUSE_AT`), asserts the target holds some rows but not all, causes the fault,
//! lets the run go on, and asserts that the one process exits 0 with a verified target and, where it
//! rode through, a retry count above zero.
//!
//! The services these tests kill are private (`passerelle_testkit::services`), and the tests run one
//! at a time ([`SERIAL`]), so no other test ever sees an outage.

#[allow(dead_code)]
#[path = "support.rs"]
mod support;

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use passerelle_testkit::services::Private;
use passerelle_testkit::{unique_name, SourceDb, Stack, TargetDb};

use support::{finished, passerelle, passerelle_spawn};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Two tables, 120,000 rows: enough that a pause after 20,000 applied rows is mid-snapshot.
const DATA: &str = "
create table big (id bigint primary key, payload text not null, at timestamptz not null);
insert into big select i, md5(i::text) || repeat('y', i % 50), timestamptz '2020-01-01' + i * interval '1 s'
from generate_series(1, 100000) i;
create table accounts (id serial primary key, name text not null, balance numeric(12,2) not null);
insert into accounts (name, balance) select 'a' || i, i * 0.5 from generate_series(1, 20000) i;
";
const TOTAL_ROWS: u64 = 120_000;

/// Writes of every kind for an online run.
const WRITES: &str = "
insert into accounts (name, balance) select 'new' || i, 1 from generate_series(1, 50) i;
update accounts set balance = balance + 1 where id % 101 = 0;
delete from accounts where id in (select id from accounts where name like 'new%' order by id limit 10);
";

/// One migration of its own: source and target databases, topic prefix, pause file.
struct Fault {
    stack: Stack,
    source: SourceDb,
    target: TargetDb,
    prefix: String,
    pause_file: PathBuf,
}

impl Fault {
    async fn new(stack: Stack) -> Fault {
        let source = SourceDb::create(&stack).await;
        source.client().await.batch_execute(DATA).await.expect("the source fixture loads");
        let target = TargetDb::create(&stack).await;
        let prefix = unique_name("faults");
        let pause_file = std::env::temp_dir().join(format!("{prefix}.pause"));
        Fault { stack, source, target, prefix, pause_file }
    }

    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("PASSERELLE_SOURCE", self.source.url.as_str()),
            ("PASSERELLE_KAFKA", self.stack.kafka.as_str()),
            ("PASSERELLE_TARGET", self.target.url.as_str()),
        ]
    }

    fn args<'a>(&'a self, command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![command, "--topic-prefix", &self.prefix, "--json"];
        args.extend(extra);
        args
    }

    /// `migrate` (with `extra`), pausing at `pause` (`point:count`).
    fn migrate_paused(&self, pause: &str, extra: &[&str]) -> Child {
        self.spawn_paused("migrate", pause, extra)
    }

    /// `command` (`migrate` or `source`, with `extra`), pausing at `pause` (`point:count`).
    fn spawn_paused(&self, command: &str, pause: &str, extra: &[&str]) -> Child {
        let mut args = self.args(command, &["--jobs", "2", "--partitions", "3"]);
        args.extend(extra);
        let pause_file = self.pause_file.to_string_lossy().into_owned();
        let mut env = self.env();
        env.extend([("PASSERELLE_PAUSE_AT", pause), ("PASSERELLE_PAUSE_FILE", pause_file.as_str())]);
        passerelle_spawn(&args, &env)
    }

    /// Waits (bounded) until the run has paused, running `meanwhile` between looks.
    async fn wait_paused(&self, child: &mut Child, meanwhile: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while !self.pause_file.exists() {
            assert!(Instant::now() < deadline, "the run never reached its pause point");
            if child.try_wait().unwrap().is_some() {
                let run = finished(std::mem::replace(child, passerelle_spawn(&["--version"], &[])));
                panic!("the run ended before its pause point:\n{}\n{}", run.stdout, run.stderr);
            }
            if let Some(sql) = meanwhile {
                self.source.client().await.batch_execute(sql).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn resume(&self) {
        std::fs::remove_file(&self.pause_file).expect("the pause file exists");
    }

    /// `migrate --online` SIGKILLed once its first change is applied, writes going on meanwhile.
    async fn kill_while_streaming(&self) {
        let mut first = self.migrate_paused("changes-applied:1", &["--online"]);
        self.wait_paused(&mut first, Some(WRITES)).await;
        first.kill().unwrap();
        first.wait().unwrap();
        self.resume();
    }

    async fn target_rows(&self) -> u64 {
        self.created_target_rows().await.expect("the target tables exist")
    }

    /// The rows in the target; `None` before a sink created the tables.
    async fn created_target_rows(&self) -> Option<u64> {
        let mut conn = self.target.conn().await;
        let db = &self.target.name;
        let sql = format!("SELECT (SELECT COUNT(*) FROM `{db}`.big) + (SELECT COUNT(*) FROM `{db}`.accounts)");
        conn.query_first::<u64, _>(sql).await.ok().flatten()
    }

    /// The fault must hit a snapshot under way: some rows in the target, not all.
    async fn assert_partial(&self) {
        let rows = self.target_rows().await;
        assert!(rows > 0 && rows < TOTAL_ROWS, "paused with {rows} of {TOTAL_ROWS} rows in the target");
    }

    fn cutover(&self) {
        let run = passerelle(&self.args("cutover", &[]), &self.env());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    }

    fn cleanup(&self) {
        let run = passerelle(&self.args("cleanup", &[]), &self.env());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    }
}

/// Per-row snapshot records, so that the sink's rounds are small enough for a pause at
/// `rows-applied` to find part of the snapshot applied: a copy-text round takes all 120,000 rows at once.
const PER_ROW: &[&str] = &["--snapshot-encoding", "envelope"];

/// The one `migrate` process ended with 0 and a verified target; returns its retries and stderr.
fn verified(child: Child) -> (u64, String) {
    let run = finished(child);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    (summary["retries"].as_u64().expect("the summary counts retries"), run.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kafka_broker_killed_mid_snapshot_and_restarted_is_waited_out() {
    let _serial = SERIAL.lock().await;
    Private::Kafka.up();
    let fault = Fault::new(Stack { kafka: Private::Kafka.url(), ..Stack::from_env() }).await;
    let mut child = fault.migrate_paused("rows-applied:20000", PER_ROW);
    fault.wait_paused(&mut child, None).await;
    fault.assert_partial().await;
    let started = Instant::now();
    Private::Kafka.kill();
    fault.resume();
    tokio::time::sleep(Duration::from_secs(5)).await;
    Private::Kafka.up();
    let (retries, stderr) = verified(child);
    assert!(retries > 0, "{stderr}");
    assert!(stderr.contains("waiting for Kafka"), "{stderr}");
    eprintln!("broker kill: {retries} retries, finished {:.0} s after the kill", started.elapsed().as_secs_f64());
    fault.cleanup();
}

async fn a_target_killed_mid_snapshot_and_restarted_is_reconnected(server: Private) {
    let _serial = SERIAL.lock().await;
    server.up();
    let fault = Fault::new(Stack { target: server.url(), ..Stack::from_env() }).await;
    let mut child = fault.migrate_paused("rows-applied:20000", PER_ROW);
    fault.wait_paused(&mut child, None).await;
    fault.assert_partial().await;
    let started = Instant::now();
    server.kill();
    fault.resume();
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.up();
    let (retries, stderr) = verified(child);
    assert!(retries > 0, "{stderr}");
    assert!(stderr.contains("waiting for the target"), "{stderr}");
    eprintln!("{server:?} kill: {retries} retries, finished {:.0} s after the kill", started.elapsed().as_secs_f64());
    fault.cleanup();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mariadb_target_killed_mid_snapshot_and_restarted_is_reconnected() {
    a_target_killed_mid_snapshot_and_restarted_is_reconnected(Private::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mysql_target_killed_mid_snapshot_and_restarted_is_reconnected() {
    a_target_killed_mid_snapshot_and_restarted_is_reconnected(Private::MySql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_session_terminated_mid_snapshot_starts_the_snapshot_over_by_itself() {
    let _serial = SERIAL.lock().await;
    let fault = Fault::new(Stack::from_env()).await;
    let mut child = fault.migrate_paused("snapshot-rows-produced:60000", &[]);
    fault.wait_paused(&mut child, None).await;
    terminate_copy_once_some_rows_are_applied(&fault).await;
    let (retries, stderr) = verified(child);
    assert!(retries > 0, "{stderr}");
    assert!(stderr.contains("was interrupted; starting it over"), "{stderr}");
    fault.cleanup();
}

/// With the source paused mid-snapshot: waits until the sink applied some of what Kafka holds (the
/// paused worker's COPY stays open, its rows queued), terminates the COPY sessions, and resumes.
async fn terminate_copy_once_some_rows_are_applied(fault: &Fault) {
    let deadline = Instant::now() + Duration::from_secs(60);
    // A separate sink may not have created the tables yet.
    while fault.created_target_rows().await.unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the sink applied nothing while the source was paused");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    fault.assert_partial().await;
    let admin = passerelle_testkit::pg_client(&fault.source.admin_url).await;
    let terminated: i64 = admin
        .query_one(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity
             where datname = current_database() and query ilike 'copy%' and pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(terminated >= 1, "no COPY session was running");
    fault.resume();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_session_terminated_under_source_alone_starts_over_and_a_separate_sink_follows() {
    let _serial = SERIAL.lock().await;
    let fault = Fault::new(Stack::from_env()).await;
    let mut source = fault.spawn_paused("source", "snapshot-rows-produced:60000", &[]);
    let sink = passerelle_spawn(&fault.args("sink", &["--jobs", "2"]), &fault.env());
    fault.wait_paused(&mut source, None).await;
    terminate_copy_once_some_rows_are_applied(&fault).await;
    let source = finished(source);
    assert_eq!(source.code, 0, "{}\n{}", source.stdout, source.stderr);
    assert!(source.stderr.contains("was interrupted; starting it over"), "{}", source.stderr);
    let sink = finished(sink);
    assert_eq!(sink.code, 0, "{}\n{}", sink.stdout, sink.stderr);
    assert!(sink.stderr.contains("following the new run"), "{}", sink.stderr);
    let verify = support::passerelle(&fault.args("verify", &[]), &fault.env());
    assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);
    let report: serde_json::Value = serde_json::from_str(&verify.stdout).unwrap();
    assert_eq!(report["tables"].as_array().map(Vec::len), Some(2), "{report}");
    fault.cleanup();
}

/// Ends the walsender that streams from the migration's slot, as `pg_terminate_backend` by an
/// administrator (or a server restart) would.
async fn terminate_walsender(fault: &Fault) {
    let slot = format!("passerelle_{}", fault.prefix);
    let admin = passerelle_testkit::pg_client(&fault.source.admin_url).await;
    let row = admin
        .query_one(
            "select count(pg_terminate_backend(active_pid)) from pg_replication_slots where slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1, "a walsender streamed from {slot}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_change_streams_session_terminated_is_resumed_from_the_slot() {
    let _serial = SERIAL.lock().await;
    let fault = Fault::new(Stack::from_env()).await;
    let mut child = fault.migrate_paused("changes-produced:1", &["--online"]);
    // Writes until the stream has produced one of them.
    fault.wait_paused(&mut child, Some(WRITES)).await;
    terminate_walsender(&fault).await;
    fault.resume();
    let source = fault.source.client().await;
    source.batch_execute(WRITES).await.unwrap();
    fault.cutover();
    let (retries, stderr) = verified(child);
    assert!(retries > 0, "{stderr}");
    assert!(stderr.contains("waiting for PostgreSQL"), "{stderr}");
    fault.cleanup();
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_online_killed_while_streaming_and_restarted_at_once_takes_its_slot_back() {
    let _serial = SERIAL.lock().await;
    let fault = Fault::new(Stack::from_env()).await;
    fault.kill_while_streaming().await;
    // Well within wal_sender_timeout (60 s): only ending the dead process's walsender frees the slot in time.
    let mut args = fault.args("migrate", &["--online", "--retry-for", "20s"]);
    args.extend(["--jobs", "2", "--partitions", "3"]);
    let second = passerelle_spawn(&args, &fault.env());
    let source = fault.source.client().await;
    source.batch_execute(WRITES).await.unwrap();
    fault.cutover();
    let (_, stderr) = verified(second);
    let took_over = stderr.contains("whose process has ended; ending it");
    eprintln!(
        "restart after kill -9: the dead process's walsender {}",
        if took_over { "was ended" } else { "had gone" }
    );
    fault.cleanup();
}

/// `pg_recvlogical` holding the migration's slot under `application_name`.
fn hold_slot(fault: &Fault, application_name: &str) -> Child {
    passerelle_testkit::hold_slot(&fault.source.url, &format!("passerelle_{}", fault.prefix), application_name)
}

async fn wait_until_held(fault: &Fault, application_name: &str) {
    let admin = passerelle_testkit::pg_client(&fault.source.admin_url).await;
    let slot = format!("passerelle_{}", fault.prefix);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held: bool = admin
            .query_one(
                "select exists (select from pg_replication_slots s join pg_stat_activity a on a.pid = s.active_pid
                                where s.slot_name = $1 and a.application_name = $2)",
                &[&slot, &application_name],
            )
            .await
            .unwrap()
            .get(0);
        if held {
            return;
        }
        assert!(Instant::now() < deadline, "{application_name} never held {slot}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_held_by_a_live_reader_is_named_and_one_left_by_a_dead_passerelle_is_taken_back() {
    let _serial = SERIAL.lock().await;
    let fault = Fault::new(Stack::from_env()).await;
    fault.kill_while_streaming().await;
    let mut args = fault.args("migrate", &["--online", "--jobs", "2", "--partitions", "3"]);

    // A live reader of the slot is never taken for dead: named, waited for, then given up on.
    let mut stranger = hold_slot(&fault, "stranger");
    wait_until_held(&fault, "stranger").await;
    args.extend(["--retry-for", "3s"]);
    let refused = support::passerelle(&args, &fault.env());
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("serving stranger"), "{}", refused.stderr);
    assert!(refused.stderr.contains("gave up after"), "{}", refused.stderr);
    stranger.kill().unwrap();
    stranger.wait().unwrap();

    // A walsender serving a Passerelle process of this host that has ended is ended, at once.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let ghost = format!("passerelle 9999999@{}", host.trim());
    let mut left = hold_slot(&fault, &ghost);
    wait_until_held(&fault, &ghost).await;
    args.truncate(args.len() - 2);
    args.extend(["--retry-for", "20s"]);
    let second = passerelle_spawn(&args, &fault.env());
    fault.source.client().await.batch_execute(WRITES).await.unwrap();
    fault.cutover();
    let (_, stderr) = verified(second);
    assert!(stderr.contains("whose process has ended; ending it"), "{stderr}");
    assert!(!left.wait().unwrap().success(), "its walsender was ended");
    fault.cleanup();
}
