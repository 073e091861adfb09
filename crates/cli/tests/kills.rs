//! Passerelle killed (SIGKILL) at known moments of a migration of the airline (`tiny` scale), on
//! MySQL and MariaDB: the one rerun finishes and verifies. Each kill waits at a pause point (`PASSERELLE_PAUSE_AT`), never
//! for a sleep that may miss its window, and asserts where it struck.

use std::time::{Duration, Instant};

use passerelle_kafka::producer::Producer;
use passerelle_model::endpoint::KafkaEndpoint;

use mysql_async::prelude::Queryable;
use passerelle_demodata::{Scale, TABLES};
use passerelle_testkit::{on_both_targets, unique_name, Target};

use crate::migrate::Setup;
use crate::support::{finished, passerelle_child, passerelle_spawn, Pause, Run};

/// A source holding the airline at the tiny scale, and an empty target.
async fn airline(target: Target) -> Setup {
    let setup = Setup::new(target, "").await;
    passerelle_demodata::load(&setup.source.client().await, Scale::Tiny, 1).await.expect("the airline loads");
    setup
}

/// Rows in the target's airline tables; a table not created yet counts none.
async fn target_rows(setup: &Setup) -> u64 {
    let mut total = 0;
    for table in TABLES {
        let sql = format!(
            "SELECT COALESCE((SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() \
             AND table_name = '{table}'), 0)"
        );
        if setup.target_rows(&sql).await[0][0].as_deref() == Some("1") {
            let count = setup.target_rows(&format!("SELECT COUNT(*) FROM `{table}`")).await;
            total += count[0][0].as_deref().unwrap_or("0").parse::<u64>().unwrap();
        }
    }
    total
}

/// Runs `migrate` until it pauses at `point`, waits until the target holds some rows, and kills
/// it; returns how many rows the target held then.
async fn kill_at(setup: &Setup, point: &str, extra: &[&str]) -> u64 {
    let pause = Pause::at(point);
    let mut args = setup.args("migrate");
    args.extend(["--schema", "bookings", "--jobs", "2", "--partitions", "3"]);
    args.extend(extra);
    let mut child = passerelle_child(&args, &pause.env(&setup.env()));
    pause.reached(&mut child).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    // The sink goes on while the source waits: the target takes some of what Kafka holds.
    let mut held = target_rows(setup).await;
    while held == 0 {
        assert!(Instant::now() < deadline, "the target took no row while migrate waited at {point}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        held = target_rows(setup).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    pause.release();
    held
}

/// The rerun after a kill: it must finish and verify.
fn rerun(setup: &Setup, extra: &[&str]) -> Run {
    let run = setup.migrate_with(&[&["--schema", "bookings"], extra].concat());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    run
}

/// Killed in the snapshot, the rerun starts over, and drops only what the migration created: a
/// table of the user's in the target database stays, rows and all, and no table of Passerelle's
/// joins it there.
async fn killed_in_the_snapshot(target: Target, produced: u64) {
    let setup = airline(target).await;
    let mut conn = setup.target.conn().await;
    let foreign = format!("`{}`.`keep_me`", setup.target.name);
    conn.query_drop(format!("CREATE TABLE {foreign} (id INT PRIMARY KEY); INSERT INTO {foreign} VALUES (1), (2)"))
        .await
        .unwrap();
    let held = kill_at(&setup, &format!("snapshot-rows-produced:{produced}"), &["--force"]).await;
    assert!(held < Scale::Tiny.total_rows(), "killed after the whole snapshot was in: {held}");
    let run = rerun(&setup, &["--force"]);
    assert!(run.stderr.contains("was interrupted; starting it over"), "{}", run.stderr);
    assert_eq!(setup.target_rows("SELECT COUNT(*) FROM keep_me").await[0][0].as_deref(), Some("2"));
    let tables = setup
        .target_rows("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1")
        .await;
    let mut expected: Vec<&str> = TABLES.into_iter().chain(["keep_me"]).collect();
    expected.sort();
    let mut tables: Vec<&str> = tables.iter().map(|row| row[0].as_deref().unwrap()).collect();
    tables.sort();
    assert_eq!(tables, expected, "only the migrated tables and the user's");
    setup.cleanup();
}

async fn killed_early_in_the_snapshot_one_rerun_ends_identical(target: Target) {
    killed_in_the_snapshot(target, 10_000).await;
}
on_both_targets!(killed_early_in_the_snapshot_one_rerun_ends_identical, flavor = "multi_thread");

async fn killed_in_the_middle_of_the_snapshot_one_rerun_ends_identical(target: Target) {
    killed_in_the_snapshot(target, Scale::Tiny.total_rows() / 2).await;
}
on_both_targets!(killed_in_the_middle_of_the_snapshot_one_rerun_ends_identical, flavor = "multi_thread");

async fn killed_before_the_post_data_one_rerun_ends_identical(target: Target) {
    let setup = airline(target).await;
    let held = kill_at(&setup, "before-post-data", &[]).await;
    assert_eq!(held, Scale::Tiny.total_rows(), "every row is in before the post-data");
    let foreign_keys = "SELECT COUNT(*) FROM information_schema.referential_constraints \
                        WHERE constraint_schema = DATABASE()";
    assert_eq!(setup.target_rows(foreign_keys).await[0][0].as_deref(), Some("0"), "killed after the post-data");
    let report = std::env::temp_dir().join(unique_name("airline-report"));
    let run = rerun(&setup, &["--report-dir", &report.display().to_string()]);
    assert!(!run.stderr.contains("starting it over"), "the run goes on: {}", run.stderr);
    assert_ne!(setup.target_rows(foreign_keys).await[0][0].as_deref(), Some("0"), "the rerun adds the keys");
    // The report to hand over: every table of the airline with its counts, equal on both sides, and
    // the mapping summary.
    let markdown = std::fs::read_to_string(report.join("report.md")).expect("report.md is written");
    let json = std::fs::read_to_string(report.join("report.json")).expect("report.json is written");
    let json: serde_json::Value = serde_json::from_str(&json).expect("report.json parses");
    assert!(markdown.contains("## Mapping") && json["mapping"]["objects"].is_array(), "{markdown}");
    let tables = json["verification"]["tables"].as_array().expect("the tables are listed");
    for table in TABLES {
        let name = format!("bookings.{table}");
        let entry = tables.iter().find(|entry| entry["table"] == name.as_str()).expect("every table is listed");
        assert!(entry["source_rows"].as_u64().is_some_and(|rows| rows > 0), "{entry}");
        assert_eq!(entry["target_rows"], entry["source_rows"], "{entry}");
        assert!(markdown.contains(&format!("| {name} |")), "no line for {name} in\n{markdown}");
    }
    setup.cleanup();
}
on_both_targets!(killed_before_the_post_data_one_rerun_ends_identical, flavor = "multi_thread");

async fn a_record_of_another_run_in_a_topic_is_refused_with_its_offset(target: Target) {
    let setup = Setup::new(
        target,
        "create table t (id integer primary key, v text);
         insert into t select i, md5(i::text) from generate_series(1, 50000) i;",
    )
    .await;
    let pause = Pause::at("snapshot-rows-produced:10000");
    let mut args = setup.args("migrate");
    args.extend(["--jobs", "1", "--partitions", "1"]);
    let mut child = passerelle_spawn(&args, &pause.env(&setup.env()));
    pause.reached(&mut child).await;
    // What a producer of an abandoned run would leave, amid this run's records.
    let kafka = KafkaEndpoint::parse(&setup.stack.kafka).unwrap();
    let producer = Producer::new(&kafka, Duration::from_secs(30)).unwrap().for_run("abandoned");
    let topic = format!("{}.public.t", setup.prefix);
    producer.send(&topic, Some(0), Some(b"k"), b"{}").await.unwrap();
    producer.flush().await.unwrap();
    pause.release();
    let run = finished(child);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let line = run.stderr.lines().find(|line| line.contains("a record of run abandoned")).unwrap_or_else(|| {
        panic!("the foreign record is not named: {}", run.stderr);
    });
    assert!(line.contains(&format!("{topic}/0@")), "{line}");
    assert!(setup.target_rows("SELECT COUNT(*) FROM t").await[0][0].as_deref() != Some("50000"));
    setup.cleanup();
}
on_both_targets!(a_record_of_another_run_in_a_topic_is_refused_with_its_offset, flavor = "multi_thread");
