//! `passerelle estimate`: from the catalog and a measured sample (COPY of the biggest table, an
//! insert into a throwaway target table), the expected phases and disk, before anything moves.

use passerelle_testkit::{on_both_targets, Target};

use crate::migrate::Setup;
use crate::support::passerelle;

const SOURCE: &str = "create table flights (id bigint primary key, code text not null, note text);
     insert into flights select i, 'F' || i, repeat('n', i % 50) from generate_series(1, 30000) i;
     create index on flights (code);
     create table seats (id bigint primary key, flight bigint not null);
     insert into seats select i, i % 100 from generate_series(1, 3000) i;
     analyze flights; analyze seats;";

fn run_estimate(setup: &Setup, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["estimate", "--json"];
    args.extend(extra);
    let run = passerelle(&args, &setup.env());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("not JSON: {}", run.stdout))
}

async fn estimate_samples_the_biggest_table_and_gives_each_phase_and_the_disk(target: Target) {
    let setup = Setup::new(target, SOURCE).await;
    let estimate = run_estimate(&setup, &[]);
    assert_eq!(estimate["tables"], 2, "{estimate}");
    assert_eq!(estimate["rows"], 33_000, "analyzed: {estimate}");
    let sample = &estimate["sample"];
    assert_eq!(sample["table"], "public.flights", "the biggest table: {estimate}");
    // The whole table is smaller than the 8 MB sample: every row is copied and inserted.
    assert_eq!(sample["rows"], 30_000, "{estimate}");
    assert!(sample["copy_seconds"].as_f64().unwrap() > 0.0 && sample["insert_seconds"].as_f64().unwrap() > 0.0);
    let phases: Vec<&str> = estimate["phases"].as_array().unwrap().iter().map(|p| p[0].as_str().unwrap()).collect();
    assert_eq!(phases, ["plan and pre-data", "snapshot", "post-data", "verify"], "{estimate}");
    assert!(estimate["phases"].as_array().unwrap().iter().all(|p| p[1].as_f64().unwrap() > 0.0), "{estimate}");
    let copy_bytes = estimate["copy_bytes"].as_u64().unwrap();
    // 30,000 flights of about 35 bytes and 3,000 seats of about 10 in COPY text.
    assert!((700_000..2_500_000).contains(&copy_bytes), "{estimate}");
    assert!(estimate["target_disk_bytes"].as_u64().unwrap() > estimate["source_bytes"].as_u64().unwrap());
    let kafka = estimate["kafka_disk_bytes"].as_u64().unwrap();
    assert!(kafka >= copy_bytes, "{estimate}");
    // Retention shorter than the run: Kafka holds only its last part; twice the replicas, twice the disk.
    let short = run_estimate(&setup, &["--retention-ms", "1000", "--replication-factor", "2"]);
    assert!(short["kafka_disk_bytes"].as_u64().unwrap() < 2 * kafka, "{short}");
    // The throwaway table is gone.
    let left = setup
        .target_rows(
            "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.tables \
             WHERE table_schema = 'passerelle' AND table_name LIKE 'passerelle\\_estimate\\_%'",
        )
        .await;
    assert_eq!(left[0][0].as_deref(), Some("0"));
}
on_both_targets!(estimate_samples_the_biggest_table_and_gives_each_phase_and_the_disk, flavor = "multi_thread");
