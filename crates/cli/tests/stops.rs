//! A run that cannot go on stops everything that waits for it: its source records why on the
//! control topic, and `cutover`, `status` and the sinks end at once with that cause (exit 2).

use std::time::{Duration, Instant};

use passerelle_testkit::{on_both_targets, Target};

use crate::migrate::Setup;
use crate::online::wait_for_the_snapshot_in_kafka;
use crate::support::{finished, passerelle, passerelle_spawn};

const ITEMS: &str = "
create table items (id integer primary key, label text not null);
insert into items select i, 'item ' || i from generate_series(1, 2000) i;
";

async fn a_truncate_mid_stream_fails_the_run_and_cutover_status_and_sinks_stop_at_once(target: Target) {
    let setup = Setup::new(target, ITEMS).await;
    let mut args = setup.args("migrate");
    args.push("--online");
    let migrate = passerelle_spawn(&args, &setup.env());
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    let source = setup.source.client().await;
    source.batch_execute("update items set label = 'before' where id = 1; truncate items;").await.unwrap();
    let migrate = finished(migrate);
    assert_eq!(migrate.code, 2, "{}\n{}", migrate.stdout, migrate.stderr);
    assert!(migrate.stderr.contains("TRUNCATE of public.items"), "{}", migrate.stderr);

    let started = Instant::now();
    let cutover = passerelle(&setup.args("cutover"), &setup.env());
    let took = started.elapsed();
    assert_eq!(cutover.code, 2, "{}\n{}", cutover.stdout, cutover.stderr);
    assert!(took < Duration::from_secs(20), "the cutover took {took:?} to stop");
    for expected in ["failed: ", "TRUNCATE of public.items", "passerelle cleanup --topic-prefix"] {
        assert!(cutover.stderr.contains(expected), "{expected:?} in {}", cutover.stderr);
    }
    assert!(!cutover.stderr.contains("still waiting"), "{}", cutover.stderr);

    let status = passerelle(&[&setup.args("status")[..], &["--json"]].concat(), &setup.env());
    assert_eq!(status.code, 2, "{}\n{}", status.stdout, status.stderr);
    let report: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(report["failed"]["cause"].as_str().unwrap().contains("TRUNCATE of public.items"), "{report}");

    let started = Instant::now();
    let sink = passerelle(&setup.args("sink"), &setup.env());
    assert_eq!(sink.code, 2, "{}\n{}", sink.stdout, sink.stderr);
    assert!(sink.stderr.contains("TRUNCATE of public.items"), "{}", sink.stderr);
    assert!(started.elapsed() < Duration::from_secs(60), "the sink took {:?} to stop", started.elapsed());
    setup.cleanup();
}
on_both_targets!(
    a_truncate_mid_stream_fails_the_run_and_cutover_status_and_sinks_stop_at_once,
    flavor = "multi_thread"
);
