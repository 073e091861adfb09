//! SIGTERM and SIGINT stop `migrate` gracefully: the batch being applied commits with its offsets,
//! no other is taken, the process says how to resume and exits 143 (or 130); a second signal ends it
//! at once. The signal arrives while the sink waits at a pause point, never after a sleep.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use passerelle_testkit::{on_both_targets, unique_name, Target};

use crate::migrate::Setup;
use crate::online::{cut_over, wait_for_the_snapshot_in_kafka};
use crate::support::{finished, passerelle, passerelle_logged, Pause, Run};

const SOURCE: &str = "create table flights (id bigint primary key, payload text not null);
     insert into flights select i, md5(i::text) || repeat('f', i % 40) from generate_series(1, 120000) i;
     create table seats (id bigint primary key, flight bigint not null, code text not null);
     insert into seats select i, i % 1000, 'S' || i from generate_series(1, 120000) i;";

fn send(child: &Child, signal: &str) {
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success(), "kill {signal} failed");
}

fn stderr(dir: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(dir.join("stderr")).unwrap_or_default()).into_owned()
}

/// Waits for `child` to end, at most `within`; returns what it printed and how long it took.
async fn ends_within(child: Child, dir: &Path, within: Duration) -> (Run, Duration) {
    let (started, mut child) = (Instant::now(), child);
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < within, "passerelle still runs {within:?} after the signal");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let code = finished(child).code;
    let stdout = String::from_utf8_lossy(&std::fs::read(dir.join("stdout")).unwrap()).into_owned();
    (Run { code, stdout, stderr: stderr(dir) }, started.elapsed())
}

/// `migrate` (its output in a directory of its own) paused after its first applied batch. The
/// snapshot travels as one event per row, so that a partition's offset counts its rows.
async fn paused_mid_snapshot(setup: &Setup, pause: &Pause) -> (Child, PathBuf) {
    let dir = std::env::temp_dir().join(unique_name("graceful"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = setup.args("migrate");
    args.extend(["--jobs", "2", "--partitions", "1", "--snapshot-encoding", "envelope"]);
    let mut child = passerelle_logged(&args, &pause.env(&setup.env()), &dir);
    pause.reached(&mut child).await;
    (child, dir)
}

/// Every partition's stored offset is the count of the rows of its table in the target: each
/// table's topic has one partition, which starts at 0 for a fresh run.
async fn offsets_on_a_batch_boundary(setup: &Setup) -> u64 {
    let mut total = 0;
    for table in ["flights", "seats"] {
        let sql = format!(
            "SELECT CAST(COALESCE(MAX(next_offset), 0) AS CHAR), (SELECT CAST(COUNT(*) AS CHAR) FROM `{table}`) \
             FROM passerelle.passerelle_offsets WHERE topic = '{}.public.{table}' AND kafka_partition = 0",
            setup.prefix
        );
        let row = &setup.target_rows(&sql).await[0];
        assert_eq!(row[0], row[1], "{table}: the stored offset and the rows applied differ");
        total += row[1].as_deref().unwrap().parse::<u64>().unwrap();
    }
    total
}

fn rerun_verifies(setup: &Setup) {
    let mut args = setup.args("migrate");
    args.extend(["--json", "--jobs", "2", "--partitions", "1", "--snapshot-encoding", "envelope"]);
    let run = passerelle(&args, &setup.env());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
}

async fn sigterm_mid_snapshot_commits_the_batch_says_how_to_resume_and_a_rerun_ends_identical(target: Target) {
    let setup = Setup::new(target, SOURCE).await;
    let pause = Pause::at("rows-applied:1");
    let (child, dir) = paused_mid_snapshot(&setup, &pause).await;
    send(&child, "-TERM");
    pause.release();
    let (run, took) = ends_within(child, &dir, Duration::from_secs(10)).await;
    assert_eq!(run.code, 143, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("SIGTERM received: stopping after the current batch"), "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("stopped by SIGTERM") && last.contains("run the same command again to resume"), "{last}");
    assert!(!run.stderr.contains("error:"), "{}", run.stderr);
    let applied = offsets_on_a_batch_boundary(&setup).await;
    assert!(applied > 0 && applied < 240_000, "stopped before any batch or after the last: {applied}");
    eprintln!("stopped in {took:?} with {applied} rows applied");
    rerun_verifies(&setup);
    setup.cleanup();
}
on_both_targets!(
    sigterm_mid_snapshot_commits_the_batch_says_how_to_resume_and_a_rerun_ends_identical,
    flavor = "multi_thread"
);

async fn a_second_sigint_exits_at_once(target: Target) {
    let setup = Setup::new(target, SOURCE).await;
    let pause = Pause::at("rows-applied:1");
    let (child, dir) = paused_mid_snapshot(&setup, &pause).await;
    // Held at the pause, the first signal cannot end the run; the second must, with no release.
    send(&child, "-INT");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stderr(&dir).contains("SIGINT received: stopping") {
        assert!(Instant::now() < deadline, "the first SIGINT is not acknowledged: {}", stderr(&dir));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    send(&child, "-INT");
    let (run, took) = ends_within(child, &dir, Duration::from_secs(2)).await;
    pause.release();
    assert_eq!(run.code, 130, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("SIGINT received again: exiting at once"), "{}", run.stderr);
    eprintln!("the second signal ended it in {took:?}");
    offsets_on_a_batch_boundary(&setup).await;
    rerun_verifies(&setup);
    setup.cleanup();
}
on_both_targets!(a_second_sigint_exits_at_once, flavor = "multi_thread");

async fn sigterm_while_streaming_records_no_failure_and_the_same_command_resumes(target: Target) {
    let setup = Setup::new(
        target,
        "create table accounts (id integer primary key, balance bigint not null);
         insert into accounts select i, i * 10 from generate_series(1, 5000) i;",
    )
    .await;
    // Held once the stream has handed Kafka its first change; signalled there, it goes on to stop.
    let pause = Pause::at("changes-produced:1");
    let dir = std::env::temp_dir().join(unique_name("graceful"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json", "--partitions", "1"]);
    let mut child = passerelle_logged(&args, &pause.env(&setup.env()), &dir);
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    let source = setup.source.client().await;
    let writes = "update accounts set balance = balance + 1 where id % 7 = 0;
                  insert into accounts select i, 0 from generate_series(5001, 5100) i;";
    source.batch_execute(writes).await.unwrap();
    pause.reached(&mut child).await;
    send(&child, "-TERM");
    pause.release();
    let (run, took) = ends_within(child, &dir, Duration::from_secs(10)).await;
    assert_eq!(run.code, 143, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("stopped by SIGTERM"), "{}", run.stderr);
    assert!(!run.stderr.contains("error:"), "{}", run.stderr);
    eprintln!("the streaming run stopped in {took:?}");
    // A stop is not a failure: status does not say the run failed (it would exit 2).
    let status = passerelle(&[&["status"][..], &["--topic-prefix", &setup.prefix]].concat(), &setup.env());
    assert_ne!(status.code, 2, "{}\n{}", status.stdout, status.stderr);
    source.batch_execute(writes.replace("5001, 5100", "5101, 5200").as_str()).await.unwrap();
    // The same command resumes the run, streams what was written meanwhile, and the cutover verifies.
    let again = crate::support::passerelle_spawn(&args, &setup.env());
    cut_over(&setup, again, &setup.env());
    setup.cleanup();
}
on_both_targets!(sigterm_while_streaming_records_no_failure_and_the_same_command_resumes, flavor = "multi_thread");
