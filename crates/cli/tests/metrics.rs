//! What an operator watches during a migration held at pause points: the Prometheus metrics
//! (`--metrics-addr`), scraped after the snapshot's first batch reached Kafka, then with every row in
//! the target before post-data (each table's rows grow from one scrape to the next and end at its
//! migrated count), and `status --watch --json`, a few refreshes at each of two pauses.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use passerelle_testkit::{on_both_targets, unique_name, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::migrate::Setup;
use crate::support::{finished, passerelle_logged, passerelle_spawn, Pause};

const SOURCE: &str = "create table flights (id bigint primary key, code text not null);
     insert into flights select i, 'F' || i from generate_series(1, 10000) i;
     create table seats (id bigint primary key, flight bigint not null);
     insert into seats select i, i % 100 from generate_series(1, 6000) i;";
const TABLES: [(&str, u64); 2] = [("public.flights", 10_000), ("public.seats", 6_000)];

/// The address the process serves its metrics on, from its stderr.
fn metrics_address(dir: &Path) -> String {
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    let line = stderr.lines().find_map(|line| line.strip_prefix("passerelle: metrics on http://"));
    line.and_then(|rest| rest.strip_suffix("/metrics")).expect("passerelle says where it serves metrics").to_string()
}

/// The body of `GET /metrics`.
async fn scrape(address: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("the metrics endpoint accepts");
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: passerelle\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// The samples of `name`, by their labels as written (`phase="copy",table="public.flights"`).
fn samples(metrics: &str, name: &str) -> HashMap<String, f64> {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(name))
        .filter_map(|rest| {
            let (labels, value) = rest.rsplit_once(' ')?;
            let labels = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}')).unwrap_or(labels);
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Rows of `table` in `phase`, 0 when the table has no sample yet.
fn rows(metrics: &str, table: &str, phase: &str) -> u64 {
    let samples = samples(metrics, "passerelle_rows_total");
    samples.get(&format!("phase=\"{phase}\",table=\"{table}\"")).map_or(0, |rows| *rows as u64)
}

async fn a_scrape_during_a_migration_shows_rows_per_table_growing_to_the_migrated_counts(target: Target) {
    let setup = Setup::new(target, SOURCE).await;
    let dir = std::env::temp_dir().join(unique_name("metrics"));
    std::fs::create_dir_all(&dir).unwrap();
    let pause = Pause::at("snapshot-rows-produced:1,before-post-data");
    let mut args = setup.args("migrate");
    args.extend(["--json", "--jobs", "1", "--partitions", "1", "--metrics-addr", "127.0.0.1:0"]);
    // Per-row records in 4,096-row batches: a COPY-text record would carry a whole table here.
    args.extend(["--snapshot-encoding", "envelope"]);
    let mut child = passerelle_logged(&args, &pause.env(&setup.env()), &dir);

    // One COPY worker, held after its first batch: the other rows are not in Kafka yet.
    pause.reached(&mut child).await;
    let address = metrics_address(&dir);
    let first = scrape(&address).await;
    let copied: u64 = TABLES.iter().map(|(table, _)| rows(&first, table, "copy")).sum();
    assert!(copied > 0 && copied < 16_000, "after the first batch, {copied} rows copied:\n{first}");
    assert!(first.contains("# TYPE passerelle_batch_seconds histogram"), "{first}");
    pause.release();

    // Every row applied, before post-data.
    pause.reached(&mut child).await;
    let last = scrape(&address).await;
    for (table, count) in TABLES {
        for phase in ["copy", "apply"] {
            let (before, after) = (rows(&first, table, phase), rows(&last, table, phase));
            assert_eq!(after, count, "{table} {phase}:\n{last}");
            assert!(before < after, "{table} {phase}: {before} rows at the first scrape, {after} at the last");
        }
    }
    let events = samples(&last, "passerelle_events_total");
    assert_eq!(events.get("direction=\"applied\",kind=\"snapshot\""), Some(&16_000.0), "{last}");
    assert_eq!(events.get("direction=\"produced\",kind=\"snapshot\""), Some(&16_000.0), "{last}");
    let batches = samples(&last, "passerelle_batch_seconds_count");
    assert!(batches.get("stage=\"apply_rows\"").is_some_and(|n| *n >= 1.0), "{last}");
    assert!(batches.get("stage=\"produce\"").is_some_and(|n| *n >= 4.0), "16,000 rows in 4,096-row batches:\n{last}");
    let bytes = samples(&last, "passerelle_bytes_total");
    assert!(bytes.get("phase=\"copy\",table=\"public.flights\"").is_some_and(|b| *b > 60_000.0), "{last}");
    for gauge in ["passerelle_retained_wal_bytes", "passerelle_replication_lag_bytes", "passerelle_slot_active"] {
        assert!(last.contains(&format!("# TYPE {gauge} ")), "{gauge} missing:\n{last}");
    }
    pause.release();

    while child.try_wait().unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run = finished(child);
    assert_eq!(run.code, 0, "{}", std::fs::read_to_string(dir.join("stderr")).unwrap_or_default());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stdout")).unwrap()).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    for (table, count) in TABLES {
        let migrated = summary["tables"].as_array().unwrap().iter().find(|t| t["table"] == table).unwrap();
        assert_eq!(migrated["rows"], count, "{summary}");
    }
    setup.cleanup();
}
on_both_targets!(
    a_scrape_during_a_migration_shows_rows_per_table_growing_to_the_migrated_counts,
    flavor = "multi_thread"
);

/// `status --watch --json`'s refreshes (one JSON object a line) from the first that `settled`
/// accepts, and `n_more` after it; the watch is then ended.
async fn watch(setup: &Setup, settled: fn(&serde_json::Value) -> bool, n_more: usize) -> Vec<serde_json::Value> {
    let mut args = setup.args("status");
    args.extend(["--watch", "--json"]);
    let mut child = passerelle_spawn(&args, &setup.env());
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut refreshes: Vec<serde_json::Value> = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let refresh = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            if !refreshes.is_empty() || settled(&refresh) {
                refreshes.push(refresh);
            }
            if refreshes.len() > n_more {
                break;
            }
        }
        refreshes
    });
    let refreshes = tokio::time::timeout(Duration::from_secs(60), lines).await;
    child.kill().unwrap();
    let run = finished(child);
    let refreshes = refreshes.expect("the watch settles within 60 s").unwrap();
    assert_eq!(refreshes.len(), n_more + 1, "{}", run.stderr);
    refreshes
}

/// The (in Kafka, applied) messages of each table in one refresh.
fn counts(refresh: &serde_json::Value) -> Vec<(String, i64, i64)> {
    let tables = refresh["tables"].as_array().unwrap();
    let count = |table: &serde_json::Value, key: &str| table[key].as_i64().unwrap();
    tables
        .iter()
        .map(|t| (t["table"].as_str().unwrap().to_string(), count(t, "in_kafka"), count(t, "applied")))
        .collect()
}

/// Every message in Kafka is applied.
fn caught_up(refresh: &serde_json::Value) -> bool {
    counts(refresh).iter().all(|(_, in_kafka, applied)| in_kafka == applied)
}

async fn status_watch_json_refreshes_with_the_numbers_of_a_paused_migration(target: Target) {
    let setup = Setup::new(target, SOURCE).await;
    let dir = std::env::temp_dir().join(unique_name("watch"));
    std::fs::create_dir_all(&dir).unwrap();
    let pause = Pause::at("snapshot-rows-produced:1,before-post-data");
    let mut args = setup.args("migrate");
    // Per-row records, whose offsets count rows (a COPY-text record carries a whole batch).
    args.extend(["--json", "--jobs", "1", "--partitions", "1", "--snapshot-encoding", "envelope"]);
    let mut child = passerelle_logged(&args, &pause.env(&setup.env()), &dir);

    // One COPY worker held after its first batch; the sink applies it, then waits for more.
    pause.reached(&mut child).await;
    watch(&setup, |refresh| caught_up(refresh) && refresh["sinks_connected"] == 1, 0).await;
    // A watch begun once nothing moves: its rates, over its own refreshes, are all 0.
    let refreshes = watch(&setup, |_| true, 2).await;
    for refresh in &refreshes {
        assert_eq!(refresh["migration"], setup.prefix.as_str(), "{refresh}");
        assert_eq!(refresh["phase"], "snapshot", "{refresh}");
        assert_eq!(refresh["snapshot_in_kafka"], false, "{refresh}");
        assert_eq!(refresh["slot"]["exists"], true, "{refresh}");
        assert!(refresh["slot"]["retained_wal_bytes"].is_u64(), "{refresh}");
        let tables: Vec<String> = counts(refresh).into_iter().map(|(table, ..)| table).collect();
        assert_eq!(tables, ["public.flights", "public.seats"], "{refresh}");
        let applied: i64 = counts(refresh).iter().map(|(_, _, applied)| applied).sum();
        assert_eq!(applied, 4096, "one COPY batch: {refresh}");
        assert!(caught_up(refresh), "{refresh}");
    }
    // Rates from the second refresh on: nothing moves while the copy is held, so no ETA.
    for table in refreshes[2]["tables"].as_array().unwrap() {
        assert_eq!(table["applied_per_second"], 0.0, "{table}");
        assert_eq!(table["in_kafka_per_second"], 0.0, "{table}");
    }
    pause.release();

    // Every row applied, before post-data.
    pause.reached(&mut child).await;
    let refreshes = watch(&setup, |_| true, 1).await;
    let expected: Vec<(String, i64, i64)> =
        TABLES.iter().map(|(table, rows)| (table.to_string(), *rows as i64, *rows as i64)).collect();
    for refresh in &refreshes {
        assert_eq!(refresh["phase"], "snapshot-applied", "{refresh}");
        assert_eq!(refresh["snapshot_in_kafka"], true, "{refresh}");
        assert_eq!(counts(refresh), expected, "{refresh}");
    }
    for table in refreshes[1]["tables"].as_array().unwrap() {
        assert_eq!(table["eta_seconds"], 0.0, "{table}");
    }
    pause.release();

    while child.try_wait().unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(finished(child).code, 0, "{}", std::fs::read_to_string(dir.join("stderr")).unwrap_or_default());
    setup.cleanup();
}
on_both_targets!(status_watch_json_refreshes_with_the_numbers_of_a_paused_migration, flavor = "multi_thread");
