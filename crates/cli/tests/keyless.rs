//! Tables without a primary key streamed online: `REPLICA IDENTITY FULL` (duplicate rows, NULLs) and a
//! unique index as replica identity (with and without a primary key beside it), under a writer that
//! keeps inserting, updating and deleting duplicates while `migrate --online` is killed twice with
//! changes in Kafka that its slot had not confirmed: the slot sends them again, and each is applied
//! once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use passerelle_kafka::topic::end_offsets;
use passerelle_model::endpoint::KafkaEndpoint;
use passerelle_testkit::{on_both_targets, Target};

use crate::migrate::Setup;
use crate::online::{cut_over, wait_for_the_snapshot_in_kafka};
use crate::support::{passerelle_logged, passerelle_spawn, Pause};

const TABLES: &str = "
create table dup (a integer, b text);
alter table dup replica identity full;
insert into dup select i % 40, case when i % 9 = 0 then null else 'v' || (i % 5) end from generate_series(1, 300) i;
create table ident (id integer primary key, code varchar(20) not null, v integer);
create unique index ident_code on ident (code);
alter table ident replica identity using index ident_code;
insert into ident select i, 'c' || i, i from generate_series(1, 100) i;
create table uniq (code varchar(20) not null, v integer);
create unique index uniq_code on uniq (code);
alter table uniq replica identity using index uniq_code;
insert into uniq select 'u' || i, i from generate_series(1, 30) i;
";
const SNAPSHOT_ROWS: i64 = 300 + 100 + 30;

/// One transaction of the writer, making `EVENTS_PER_WRITE` events: three inserts of which two are
/// equal, a delete and an update of one of several equal rows (NULLs among them), a primary-key change
/// that keeps the identity, an identity change (a delete and a create), an insert and a delete by the
/// unique identity of a keyless table.
const WRITE: &str = "
begin;
insert into dup values (1, 'same'), (1, 'same'), (null, null);
delete from dup where ctid = (select ctid from dup where a = 1 and b = 'same' limit 1);
update dup set b = 'was null' where ctid = (select ctid from dup where a is null and b is null limit 1);
update ident set id = id + 100000 where id = (select min(id) from ident);
update ident set code = code || 'x' where id = (select max(id) from ident where length(code) < 19);
insert into uniq select 'w' || coalesce(max(v), 0) + 1, coalesce(max(v), 0) + 1 from uniq;
delete from uniq where code = (select min(code) from uniq);
commit;
";
const EVENTS_PER_WRITE: i64 = 3 + 1 + 1 + 1 + 2 + 1 + 1;

async fn keyless_tables_stream_exactly_once_through_kills_with_unconfirmed_changes(target: Target) {
    let setup = Setup::new(target, TABLES).await;
    let kafka = KafkaEndpoint::parse(&setup.stack.kafka).unwrap();
    let topics: Vec<String> = ["dup", "ident", "uniq"].iter().map(|t| format!("{}.public.{t}", setup.prefix)).collect();
    let in_kafka = || async { end_offsets(&kafka, &topics).await.unwrap().iter().map(|end| end.end).sum::<i64>() };
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json", "--partitions", "3"]);
    // The killed processes' output, kept for a failure's diagnosis.
    let logs = std::env::temp_dir().join(passerelle_testkit::unique_name("keyless"));
    let logged = |name: &str, env: &[(&str, &str)]| {
        let dir = logs.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        passerelle_logged(&args, env, &dir)
    };
    eprintln!("the killed processes log into {}", logs.display());

    // The writer runs from the snapshot to just before the cutover, across both kills.
    let pause = Pause::at("changes-produced:10");
    let mut first = logged("first", &pause.env(&setup.env()));
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    let (stop, n_writes) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let writer = {
        let (client, stop, n_writes) = (setup.source.client().await, stop.clone(), n_writes.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                client.batch_execute(WRITE).await.unwrap();
                n_writes.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Killed between produce and apply: the ten changes reached Kafka, the slot confirmed none of
    // the transaction under way, and the sink may not have applied them yet.
    pause.reached(&mut first).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while in_kafka().await < SNAPSHOT_ROWS + 10 {
        assert!(Instant::now() < deadline, "the produced changes never reached Kafka");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    pause.release();

    // Killed once the sink applied all that Kafka holds, the slot still behind it.
    let pause = Pause::at("changes-produced:10");
    let mut second = logged("second", &pause.env(&setup.env()));
    pause.reached(&mut second).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let held = in_kafka().await;
        if held > SNAPSHOT_ROWS && setup.applied_offsets().await == held as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "the sink never applied what Kafka holds");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();
    pause.release();

    let third = passerelle_spawn(&args, &setup.env());
    let more = n_writes.load(Ordering::SeqCst) + 5;
    while n_writes.load(Ordering::SeqCst) < more {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    cut_over(&setup, third, &setup.env());

    // Kafka holds changes twice (the slot sent them again), the target each once: identical.
    let n_writes = i64::try_from(n_writes.load(Ordering::SeqCst)).unwrap();
    let held = in_kafka().await;
    assert!(held > SNAPSHOT_ROWS + n_writes * EVENTS_PER_WRITE, "no change was sent twice: {held} records");
    let source = setup.source.client().await;
    for (table, sql) in [
        ("dup", "select count(*) from dup where a = 1 and b = 'same'"),
        ("dup", "select count(*) from dup"),
        ("uniq", "select count(*) from uniq"),
    ] {
        let expected: i64 = source.query_one(sql, &[]).await.unwrap().get(0);
        let found = setup.target_rows(&sql.replace("select", "SELECT")).await;
        assert_eq!(found[0][0].as_deref(), Some(expected.to_string().as_str()), "{table}: {sql}");
    }
    setup.cleanup();
}
on_both_targets!(keyless_tables_stream_exactly_once_through_kills_with_unconfirmed_changes, flavor = "multi_thread");

async fn an_online_run_refuses_a_table_whose_rows_the_stream_cannot_tell_apart(target: Target) {
    let setup = Setup::new(
        target,
        "create table log (at timestamptz, line text); create table ok (id int primary key);
         create table full_log (at timestamptz, line text); alter table full_log replica identity full;",
    )
    .await;
    let mut args = setup.args("migrate");
    args.push("--online");
    let run = crate::support::passerelle(&args, &setup.env());
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("public.log has no primary key and no replica identity that tells its rows apart")
            && run.stderr.contains("ALTER TABLE public.log REPLICA IDENTITY FULL"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("full_log"), "{}", run.stderr);
}
on_both_targets!(an_online_run_refuses_a_table_whose_rows_the_stream_cannot_tell_apart, flavor = "multi_thread");
