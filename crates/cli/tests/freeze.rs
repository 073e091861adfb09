//! `passerelle cutover --freeze`: the cutover stops the application's writes itself (the source
//! database read-only, its sessions ended), prints the downtime, and makes the source read-write
//! again when the target does not verify.

use std::time::{Duration, Instant};

use passerelle_testkit::{on_both_targets, Target};

use crate::migrate::{s, Setup};
use crate::online::wait_for_the_snapshot_in_kafka;
use crate::support::{finished, passerelle, passerelle_spawn, Pause};

const ACCOUNTS: &str = "
create table accounts (id serial primary key, owner text not null, balance integer not null);
insert into accounts (owner, balance) select 'o' || i, i from generate_series(1, 2000) i;
";

/// What the application's writer saw: how many writes committed, and the refusal that stopped it.
struct Writes {
    n_committed: u64,
    refusal: String,
}

/// Writes like an application until its session is ended, then reconnects like a pool would and
/// tries once more: that write must be refused.
async fn write_until_refused(url: String) -> Writes {
    let client = passerelle_testkit::pg_client(&url).await;
    let mut n_committed = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "the writer was never stopped");
        let write =
            "with moved as (update accounts set balance = balance - 1 where id = 1 + $1::int % 2000 returning 1)
                     insert into accounts (owner, balance) values ('w', 1)";
        match client.execute(write, &[&(n_committed as i32)]).await {
            Ok(_) => n_committed += 1,
            Err(_) => break,
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let client = passerelle_testkit::pg_client(&url).await;
    let refused = client.execute("insert into accounts (owner, balance) values ('late', 1)", &[]).await;
    let refused = refused.expect_err("a write after the freeze was taken");
    let refusal = refused.as_db_error().map_or_else(|| refused.to_string(), |error| error.message().to_string());
    Writes { n_committed, refusal }
}

async fn default_read_only(setup: &Setup) -> String {
    let client = setup.source.client().await;
    client.query_one("show default_transaction_read_only", &[]).await.unwrap().get(0)
}

/// `migrate --online` of the accounts, once its snapshot is in Kafka.
async fn streaming(target: Target) -> (Setup, std::process::Child) {
    let setup = Setup::new(target, ACCOUNTS).await;
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json", "--partitions", "2"]);
    let migrate = passerelle_spawn(&args, &setup.env());
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    (setup, migrate)
}

async fn a_frozen_cutover_under_a_writer_refuses_its_writes_and_verifies(target: Target) {
    let (setup, migrate) = streaming(target).await;
    let writer = tokio::spawn(write_until_refused(setup.source.url.clone()));
    // The writer is under way before the freeze.
    let client = setup.source.client().await;
    while client.query_one("select count(*) from accounts where owner = 'w'", &[]).await.unwrap().get::<_, i64>(0) < 20
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut cutover = setup.args("cutover");
    cutover.extend(["--freeze", "--json"]);
    // The writer goes on, on the runtime's other threads, while this one waits for the cutover.
    let cutover = tokio::task::block_in_place(|| passerelle(&cutover, &setup.env()));
    assert_eq!(cutover.code, 0, "{}\n{}", cutover.stdout, cutover.stderr);
    let report: serde_json::Value = serde_json::from_str(&cutover.stdout).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["freeze"]["source_read_only"], true, "{report}");
    assert!(report["freeze"]["sessions_ended"].as_u64().unwrap() >= 1, "{report}");
    let downtime = report["freeze"]["downtime_seconds"].as_f64().unwrap();
    assert!(downtime > 0.0 && downtime < 120.0, "{report}");
    // The writer's changes during the first step were compared again while it went on (the second
    // pass): the cutover re-checked only those that came after.
    let first = &report["first_verification"];
    assert!(first["changes_rechecked_while_streaming"].as_u64().unwrap() >= 1, "{first}");
    assert_ne!(first["pass_lsn"], first["from_lsn"], "{first}");

    let writes = writer.await.unwrap();
    assert!(writes.n_committed >= 20, "{}", writes.n_committed);
    assert!(writes.refusal.contains("read-only transaction"), "{}", writes.refusal);
    // Every committed write is in the target, and nothing the freeze refused.
    // The freeze ended this test's own session too.
    let client = setup.source.client().await;
    let n_source: i64 = client.query_one("select count(*) from accounts", &[]).await.unwrap().get(0);
    assert_eq!(setup.target_rows("SELECT COUNT(*) FROM accounts").await, vec![vec![s(&n_source.to_string())]]);
    assert_eq!(setup.target_rows("SELECT COUNT(*) FROM accounts WHERE owner = 'late'").await, vec![vec![s("0")]]);
    assert_eq!(default_read_only(&setup).await, "on");

    // Passerelle's own sessions are not frozen: the migration drops its publication and slot.
    let migrate = finished(migrate);
    assert_eq!(migrate.code, 0, "{}\n{}", migrate.stdout, migrate.stderr);
    assert_eq!(setup.slot_and_publication().await, (false, false));
    setup.cleanup();
}
on_both_targets!(a_frozen_cutover_under_a_writer_refuses_its_writes_and_verifies, flavor = "multi_thread");

async fn a_frozen_cutover_that_does_not_verify_makes_the_source_read_write_again(target: Target) {
    let (setup, migrate) = streaming(target).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    // The table may not be created yet.
    while setup.try_target_rows("SELECT COUNT(*) FROM accounts").await.ok() != Some(vec![vec![s("2000")]]) {
        assert!(Instant::now() < deadline, "the snapshot never reached the target");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A row rewritten behind Passerelle's back, as a change lost on the way would leave it.
    setup.target_rows("UPDATE accounts SET balance = -7 WHERE id = 42").await;

    let mut cutover = setup.args("cutover");
    cutover.extend(["--freeze", "--json"]);
    let run = passerelle(&cutover, &setup.env());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], false, "{report}");
    assert_eq!(report["freeze"]["source_read_only"], false, "{report}");
    let table = &report["verification"]["tables"][0];
    assert_eq!(table["changed"]["items"][0]["key"], "id=\"42\"", "{table}");
    // The first step saw the table differ and listed the row: the cutover re-checked rows, not the table.
    let first = &report["first_verification"];
    assert_eq!(first["rows_that_differed"], serde_json::json!({"public.accounts": 1}), "{first}");
    assert_eq!(first["compared_again_whole"], serde_json::json!([]), "{first}");
    assert_eq!(table["source_checksum"], serde_json::Value::Null, "only rows are compared: {table}");
    assert!(run.stderr.contains("read-write again"), "{}", run.stderr);
    assert_eq!(default_read_only(&setup).await, "off");
    let client = setup.source.client().await;
    client.execute("insert into accounts (owner, balance) values ('after', 1)", &[]).await.unwrap();

    let migrate = finished(migrate);
    assert_eq!(migrate.code, 1, "{}\n{}", migrate.stdout, migrate.stderr);
    setup.cleanup();
}
on_both_targets!(a_frozen_cutover_that_does_not_verify_makes_the_source_read_write_again, flavor = "multi_thread");

/// The cutover's second step re-checks the rows whose keys the source's own WAL names: a change that
/// reached the target and was then undone there (as a change lost on its way would leave the row)
/// fails the verification, naming the row, though the first step found every table equal.
async fn a_change_lost_after_the_first_verification_fails_the_cutover_naming_its_row(target: Target) {
    let (setup, migrate) = streaming(target).await;
    let pause = Pause::at("cutover-first-verified");
    let mut args = setup.args("cutover");
    args.extend(["--freeze", "--json"]);
    let env = pause.env(&setup.env());
    let mut cutover = passerelle_spawn(&args, &env);
    pause.reached(&mut cutover).await;
    let client = setup.source.client().await;
    client.execute("update accounts set balance = 4242 where id = 42", &[]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while setup.target_rows("SELECT balance FROM accounts WHERE id = 42").await != vec![vec![s("4242")]] {
        assert!(Instant::now() < deadline, "the change never reached the target");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    setup.target_rows("UPDATE accounts SET balance = 42 WHERE id = 42").await;
    pause.release();

    let run = finished(cutover);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["verified"], false, "{report}");
    assert_eq!(report["first_verification"]["compared_again_whole"], serde_json::json!([]), "{report}");
    assert!(report["first_verification"]["changes_since"].as_u64().unwrap() >= 1, "{report}");
    let table = &report["verification"]["tables"][0];
    assert_eq!(table["changed"]["items"][0]["key"], "id=\"42\"", "{table}");
    assert_eq!(table["source_checksum"], serde_json::Value::Null, "only the changed rows are compared: {table}");
    assert_eq!(report["freeze"]["source_read_only"], false, "{report}");
    assert_eq!(default_read_only(&setup).await, "off");
    let migrate = finished(migrate);
    assert_eq!(migrate.code, 1, "{}\n{}", migrate.stdout, migrate.stderr);
    setup.cleanup();
}
on_both_targets!(a_change_lost_after_the_first_verification_fails_the_cutover_naming_its_row, flavor = "multi_thread");
