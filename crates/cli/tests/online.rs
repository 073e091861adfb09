//! An online migration: the source keeps taking writes while the snapshot copies and afterwards;
//! `passerelle cutover` drains the stream, and the target ends identical to the source.

use std::time::{Duration, Instant};

use passerelle_testkit::{on_both_targets, Target};

use crate::migrate::{s, Setup};
use crate::support::{finished, passerelle, passerelle_child, passerelle_spawn, Pause};

const SHOP: &str = "
create table customers (id serial primary key, name text not null, note text);
insert into customers (name, note) select 'c' || i, repeat('n', i % 30) from generate_series(1, 20000) i;
create table orders (customer_id integer not null references customers, line integer not null,
                     amount numeric(12,2), at timestamptz, doc jsonb, primary key (customer_id, line));
insert into orders select 1 + i % 20000, i, i * 1.25, timestamptz '2024-01-01' + i * interval '1 min', '{\"k\": \"v\"}'
from generate_series(1, 60000) i;
create table payments (id serial primary key, customer_id integer not null references customers on update cascade,
                       amount integer);
insert into payments (customer_id, amount) select 1 + i % 20000, i from generate_series(1, 3000) i;
create table big_text (id integer primary key, body text, counter integer not null);
insert into big_text select i, repeat(md5(i::text), 400), 0 from generate_series(1, 20) i;
alter table big_text alter column body set storage external;
";

/// Writes of every kind, in several transactions, while the migration runs.
const WRITES: &str = "
begin;
insert into customers (name) select 'new' || i from generate_series(1, 500) i;
update customers set note = 'updated ' || id where id % 97 = 0;
delete from orders where customer_id % 113 = 0;
commit;
update orders set amount = amount + 0.01, doc = '{\"k\": \"ü 😀\"}' where line % 501 = 0;
update customers set id = id + 1000000 where id in (select id from customers where id % 1009 = 0 and
  not exists (select 1 from orders where customer_id = customers.id));
update big_text set counter = counter + 1;
begin;
insert into orders values (1, 999999, null, null, null);
delete from orders where customer_id = 1 and line = 999999;
rollback;
delete from customers where id in (select id from customers c where name like 'new%' and id % 2 = 0);
";

async fn writes_during_and_after_the_snapshot_arrive_and_the_cutover_verifies(target: Target) {
    let setup = Setup::new(target, SHOP).await;
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json", "--partitions", "3"]);
    let migrate = passerelle_spawn(&args, &setup.env());

    let source = setup.source.client().await;
    // Some writes race the snapshot, the rest follow it.
    source.batch_execute(WRITES).await.unwrap();
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    for _ in 0..3 {
        source.batch_execute(WRITES).await.unwrap();
    }
    let last_id: i64 = source.query_one("select max(id)::bigint from customers", &[]).await.unwrap().get(0);

    let said = cut_over(&setup, migrate, &setup.env());
    // payments.customer_id is first in no key or index: its index was built while changes streamed.
    assert!(said.contains("built 1 index(es) that foreign keys need, while the source still changes"), "{said}");

    // AUTO_INCREMENT continues past the sequence as it stood at the cutover, not at the snapshot.
    let next = setup
        .target_rows(
            "SELECT AUTO_INCREMENT FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'customers'",
        )
        .await;
    let next: i64 = next[0][0].as_deref().unwrap().parse().unwrap();
    assert!(next > last_id, "AUTO_INCREMENT {next} must pass {last_id}");
    assert_eq!(setup.target_rows("SELECT COUNT(*) FROM orders WHERE line = 999999").await, vec![vec![s("0")]]);
    setup.cleanup();
}
on_both_targets!(writes_during_and_after_the_snapshot_arrive_and_the_cutover_verifies, flavor = "multi_thread");

/// Runs `cutover` while `migrate --online --json` streams; both end verified, changes applied.
/// Runs `cutover`, checks that it and `migrate` verified, and returns what the cutover said.
pub fn cut_over(setup: &Setup, migrate: std::process::Child, env: &[(&str, &str)]) -> String {
    let mut cutover = setup.args("cutover");
    cutover.push("--json");
    let cutover = passerelle(&cutover, env);
    assert_eq!(cutover.code, 0, "{}\n{}", cutover.stdout, cutover.stderr);
    let report: serde_json::Value = serde_json::from_str(&cutover.stdout).unwrap();
    assert_eq!(report["verified"], true, "{report}");

    let migrate = finished(migrate);
    assert_eq!(migrate.code, 0, "{}\n{}", migrate.stdout, migrate.stderr);
    let summary: serde_json::Value = serde_json::from_str(&migrate.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    assert!(summary["changes"].as_u64().unwrap() > 0, "{summary}");
    cutover.stderr
}

/// Waits until `status` says the run's snapshot is complete in Kafka.
pub async fn wait_for_the_snapshot_in_kafka(setup: &Setup, env: &[(&str, &str)]) {
    wait_for_the_snapshot_in_kafka_within(setup, env, Duration::from_secs(300)).await
}

/// [`wait_for_the_snapshot_in_kafka`] for up to `bound`.
pub async fn wait_for_the_snapshot_in_kafka_within(setup: &Setup, env: &[(&str, &str)], bound: Duration) {
    let deadline = Instant::now() + bound;
    loop {
        assert!(Instant::now() < deadline, "the snapshot never reached Kafka");
        let run = passerelle(&[&["status", "--json"][..], &["--topic-prefix", &setup.prefix]].concat(), env);
        let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
        if status["snapshot_in_kafka"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn killed_while_streaming_a_restarted_migration_loses_and_repeats_nothing(target: Target) {
    let setup = Setup::new(target, SHOP).await;
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json", "--partitions", "3"]);
    // Killed once the first change is in Kafka: the slot is behind it, the sink may or may not
    // have applied it.
    let pause = Pause::at("changes-produced:1");
    let mut first = passerelle_child(&args, &pause.env(&setup.env()));
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    let source = setup.source.client().await;
    source.batch_execute(WRITES).await.unwrap();
    pause.reached(&mut first).await;
    first.kill().unwrap();
    first.wait().unwrap();
    pause.release();
    source.batch_execute(WRITES).await.unwrap();

    let second = passerelle_spawn(&args, &setup.env());
    source.batch_execute(WRITES).await.unwrap();
    let mut cutover = setup.args("cutover");
    cutover.push("--json");
    let cutover = passerelle(&cutover, &setup.env());
    assert_eq!(cutover.code, 0, "{}\n{}", cutover.stdout, cutover.stderr);
    let second = finished(second);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert!(!second.stderr.contains("starting it over"), "the run goes on: {}", second.stderr);
    let summary: serde_json::Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    setup.cleanup();
}
on_both_targets!(killed_while_streaming_a_restarted_migration_loses_and_repeats_nothing, flavor = "multi_thread");
