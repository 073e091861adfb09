//! `passerelle source`, `passerelle sink` and `passerelle status` as separate processes, the way a
//! migration runs across machines: the sink knows only Kafka, the target and the topic prefix.

use std::time::{Duration, Instant};

use passerelle_testkit::{on_both_targets, Target};

use crate::migrate::{s, Setup};
use crate::support::{passerelle, passerelle_child, Run};

const TWO_TABLES: &str = "
create table parent (id bigint primary key, name text not null unique);
insert into parent select i, 'p' || i from generate_series(1, 2000) i;
create table child (id bigint primary key, parent_id bigint not null references parent, payload text);
create index child_parent on child (parent_id);
insert into child select i, 1 + i % 2000, md5(i::text) || repeat('z', i % 40) from generate_series(1, 300000) i;
";

impl Setup {
    /// Only Kafka and the target: what a sink machine has.
    fn sink_env(&self) -> [(&str, &str); 2] {
        [("PASSERELLE_KAFKA", &self.stack.kafka), ("PASSERELLE_TARGET", &self.target.url)]
    }

    fn source(&self, extra: &[&str]) -> Run {
        let mut args = self.args("source");
        args.extend(["--json", "--partitions", "4"]);
        args.extend(extra);
        passerelle(&args, &[("PASSERELLE_SOURCE", &self.source.url), ("PASSERELLE_KAFKA", &self.stack.kafka)])
    }

    fn sink(&self) -> Run {
        let mut args = self.args("sink");
        args.push("--json");
        passerelle(&args, &self.sink_env())
    }

    fn status(&self) -> serde_json::Value {
        let mut args = self.args("status");
        args.push("--json");
        let run = passerelle(&args, &self.env());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        serde_json::from_str(&run.stdout).unwrap()
    }

    fn verify(&self) -> Run {
        passerelle(&["verify"], &self.env())
    }
}

fn rows_applied(run: &Run) -> u64 {
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    summary["rows"].as_u64().unwrap()
}

async fn two_sinks_share_the_partitions_and_apply_the_ddl_once(target: Target) {
    let setup = Setup::new(target, TWO_TABLES).await;
    let status = setup.status();
    assert!(status["run_id"].is_null(), "{status}");

    let source = setup.source(&[]);
    assert_eq!(source.code, 0, "{}\n{}", source.stdout, source.stderr);
    assert_eq!(rows_applied(&source), 302_000, "the source reports the rows it copied");
    let status = setup.status();
    assert_eq!(status["snapshot_in_kafka"], true, "{status}");
    assert!(status["target_phase"].is_null(), "{status}");

    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| setup.sink());
        let second = scope.spawn(|| setup.sink());
        (first.join().unwrap(), second.join().unwrap())
    });
    for sink in [&first, &second] {
        assert_eq!(sink.code, 0, "{}\n{}", sink.stdout, sink.stderr);
    }
    assert_eq!(rows_applied(&first) + rows_applied(&second), 302_000, "each row applied once, by one of them");

    let status = setup.status();
    assert_eq!(status["target_phase"], "post-data", "{status}");
    for table in status["tables"].as_array().unwrap() {
        assert_eq!(table["in_kafka"], table["applied"], "{status}");
    }
    assert_eq!(status["slot"]["exists"], true, "{status}");
    let indexes = setup
        .target_rows(
            "SELECT COUNT(*) FROM information_schema.statistics
             WHERE table_schema = DATABASE() AND table_name = 'child' AND index_name = 'child_parent'",
        )
        .await;
    assert_eq!(indexes, vec![vec![s("1")]], "post-data ran");
    let verify = setup.verify();
    assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);
    setup.cleanup();
}
on_both_targets!(two_sinks_share_the_partitions_and_apply_the_ddl_once, flavor = "multi_thread");

async fn a_killed_sink_resumes_from_the_offsets_in_the_target(target: Target) {
    let setup = Setup::new(target, TWO_TABLES).await;
    // Per-row records: the sink is killed after its first round, which could otherwise take all the
    // COPY-text records, and offsets count rows.
    let source = setup.source(&["--snapshot-encoding", "envelope"]);
    assert_eq!(source.code, 0, "{}\n{}", source.stdout, source.stderr);

    let mut child = passerelle_child(&setup.args("sink"), &setup.sink_env());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the sink never started loading");
        if setup.applied_offsets().await > 0 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the sink ended before it could be killed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let applied_before = setup.applied_offsets().await;
    assert!(applied_before < 302_000, "killed too late to test anything");

    let sink = setup.sink();
    assert_eq!(sink.code, 0, "{}\n{}", sink.stdout, sink.stderr);
    assert!(!sink.stderr.contains("over"), "the run goes on, it does not start over: {}", sink.stderr);
    assert_eq!(rows_applied(&sink), 302_000 - applied_before, "the second sink applies only what the first did not");
    let verify = setup.verify();
    assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);

    // The migration is complete: running `migrate` now copies nothing and verifies.
    let migrate = setup.migrate();
    assert_eq!(migrate.code, 0, "{}\n{}", migrate.stdout, migrate.stderr);
    assert_eq!(rows_applied(&migrate), 0, "{}", migrate.stdout);
    setup.cleanup();
}
on_both_targets!(a_killed_sink_resumes_from_the_offsets_in_the_target, flavor = "multi_thread");

async fn a_sink_needs_the_topic_prefix(target: Target) {
    let setup = Setup::new(target, "").await;
    let run = passerelle(&["sink"], &setup.sink_env());
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("name the migration with --topic-prefix"), "{}", run.stderr);
}
on_both_targets!(a_sink_needs_the_topic_prefix, flavor = "multi_thread");
