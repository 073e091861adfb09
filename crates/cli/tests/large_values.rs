//! Values of megabytes: rows of a 10 MB `bytea` and a 5 MB `jsonb` migrate online within a bound
//! on the peak resident memory ([`PEAK_MB`]), through the snapshot and an UPDATE the change stream carries,
//! each record past the broker's `message.max.bytes` (1 MB by default) travelling in chunks. MySQL
//! loads by INSERT (`local_infile` OFF), MariaDB by `LOAD DATA`.

use std::time::Duration;

use passerelle_kafka::topic::end_offsets;
use passerelle_model::endpoint::KafkaEndpoint;
use passerelle_testkit::{on_both_targets, Target};

use crate::migrate::Setup;
use crate::online::wait_for_the_snapshot_in_kafka_within;
use crate::support::{finished, passerelle, passerelle_spawn};

/// 16 rows, each a 10 MB `bytea` and a 5 MB `jsonb`, every row's values its own: more rows than the
/// pipeline holds at once (the bound depends on the rows' size, not their number; 100 rows take
/// minutes of a debug build).
const LARGE: &str = "
create table blobs (id integer primary key, b bytea not null, j jsonb not null);
insert into blobs select i, decode(repeat(md5(i::text), 655360), 'hex'),
                         jsonb_build_object('id', i, 'text', repeat(md5((-i)::text), 163840))
from generate_series(1, 16) i;
";

/// The peak this test allows: what was measured (420 MB on MariaDB, 439 MB on MySQL, debug build,
/// two copy workers and two sink connections) with room to spare. The target is 256 MB; see ARCHITECTURE.md's
/// Memory paragraph for where the rest goes.
const PEAK_MB: f64 = 560.0;

async fn large_values_migrate_online_within_the_memory_bound(target: Target) {
    let setup = Setup::new(target, LARGE).await;
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json", "--jobs", "2", "--partitions", "2"]);
    let migrate = passerelle_spawn(&args, &setup.env());
    wait_for_the_snapshot_in_kafka_within(&setup, &setup.env(), Duration::from_secs(900)).await;
    // A change of one large value, the other left as it is (PostgreSQL sends it as unchanged TOAST).
    let source = setup.source.client().await;
    source
        .batch_execute("update blobs set b = decode(repeat(md5('changed'), 655360), 'hex') where id = 7")
        .await
        .unwrap();

    let mut cutover = setup.args("cutover");
    cutover.push("--json");
    let cutover = passerelle(&cutover, &setup.env());
    assert_eq!(cutover.code, 0, "{}\n{}", cutover.stdout, cutover.stderr);
    let migrate = finished(migrate);
    assert_eq!(migrate.code, 0, "{}\n{}", migrate.stdout, migrate.stderr);
    let summary: serde_json::Value = serde_json::from_str(&migrate.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    assert_eq!(summary["changes"], 1, "{summary}");
    let expected_path = if target == Target::MySql { "insert" } else { "load-data" };
    assert!(summary["load_path"].as_str().unwrap_or_default().contains(expected_path), "{summary}");
    let peak = summary["peak_rss_mb"].as_f64().expect("the summary gives the peak memory");
    eprintln!("{target:?}: peak {peak:.0} MB, phases {}", summary["phase_peak_rss_mb"]);
    assert!(peak <= PEAK_MB, "peak resident memory {peak:.0} MB past {PEAK_MB} MB: {}", summary["phase_peak_rss_mb"]);

    // SHA2: MySQL 9.6 removed MD5().
    let changed =
        setup.target_rows("SELECT SHA2(b, 256), LENGTH(b), LENGTH(j) > 5000000 FROM blobs WHERE id = 7").await;
    let expected: String = source
        .query_one("select encode(sha256(b), 'hex'), length(b)::text from blobs where id = 7", &[])
        .await
        .map(|row| format!("{} {}", row.get::<_, String>(0), row.get::<_, String>(1)))
        .unwrap();
    let got = changed[0].iter().map(|v| v.clone().unwrap_or_default()).collect::<Vec<_>>().join(" ");
    assert_eq!(got, format!("{expected} 1"));

    // The records went in chunks: the topic holds more records than rows and changes.
    let kafka = KafkaEndpoint::parse(&setup.stack.kafka).unwrap();
    let topic = format!("{}.public.blobs", setup.prefix);
    let ends = end_offsets(&kafka, &[topic]).await.unwrap();
    let records: i64 = ends.iter().map(|end| end.end).sum();
    assert!(records > 17 * 10, "{records} records for 17 events of 25 MB");
    setup.cleanup();
}
on_both_targets!(large_values_migrate_online_within_the_memory_bound, flavor = "multi_thread");
