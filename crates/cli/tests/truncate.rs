//! `TRUNCATE` on the source while an online migration streams: carried in stream order, with the
//! tables `CASCADE` reaches, `RESTART IDENTITY` honoured at the cutover, exactly once through a kill
//! between producing the truncate and applying it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use passerelle_testkit::{on_both_targets, Target};

use crate::migrate::Setup;
use crate::online::{cut_over, wait_for_the_snapshot_in_kafka};
use crate::support::{passerelle_child, passerelle_spawn, Pause};

const FAMILY: &str = "
create table parent (id serial primary key, name text not null);
create table child (id integer primary key, parent_id integer not null references parent, note text);
create table counter (id serial primary key, label text not null);
insert into parent (name) select 'p' || i from generate_series(1, 300) i;
insert into child select i, 1 + i % 300, 'c' from generate_series(1, 600) i;
insert into counter (label) select 'l' || i from generate_series(1, 250) i;
";

async fn truncates_while_streaming_are_carried_in_order_through_a_kill(target: Target) {
    let setup = Setup::new(target, FAMILY).await;
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json", "--partitions", "3"]);
    // Held once the first TRUNCATE's markers are handed to Kafka, then killed: its transaction is
    // not confirmed to the slot, the sink may or may not have applied some of its markers.
    let pause = Pause::at("truncate-produced:1");
    let mut first = passerelle_child(&args, &pause.env(&setup.env()));
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    let stop = Arc::new(AtomicBool::new(false));
    // The writer: every table, one transaction at a time, until told to stop (3,000 at most).
    let (client, stopped) = (setup.source.client().await, stop.clone());
    let writes = tokio::spawn(async move {
        let mut n = 0;
        while !stopped.load(Ordering::SeqCst) && n < 3000 {
            n += 1;
            let child_id = 1_000_000 + n;
            let written = client
                .execute(
                    "with p as (insert into parent (name) values ('w') returning id)
                     insert into child select $1, id, 'w' from p",
                    &[&child_id],
                )
                .await;
            // TRUNCATE ... CASCADE locks the parent and the child, this write the other way round:
            // PostgreSQL may end it as a deadlock's victim, and an application would write again.
            if let Err(error) = written {
                assert!(format!("{error:?}").contains("E40P01"), "{error:?}");
                continue;
            }
            client.execute("insert into counter (label) values ('w')", &[]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        n
    });
    let source = setup.source.client().await;
    // Writes to the table just before and just after, the writer's around them too.
    source.batch_execute("insert into parent (name) values ('just before')").await.unwrap();
    // Either side of the writer's deadlock may be PostgreSQL's victim (see the writer).
    while let Err(error) = source.batch_execute("truncate parent cascade").await {
        assert!(format!("{error:?}").contains("E40P01"), "{error:?}");
    }
    source
        .batch_execute(
            "insert into parent (name) values ('just after');
             insert into child select 2000000, max(id), 'just after' from parent;",
        )
        .await
        .unwrap();
    pause.reached(&mut first).await;
    first.kill().unwrap();
    first.wait().unwrap();
    pause.release();
    // While nothing streams: a write, a truncate and a write in one transaction.
    source
        .batch_execute(
            "begin;
             insert into counter (label) values ('gone with the truncate');
             truncate counter restart identity;
             insert into counter (label) values ('first after the restart');
             commit;",
        )
        .await
        .unwrap();

    let second = passerelle_spawn(&args, &setup.env());
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let n_writes = writes.await.unwrap();
    assert!(n_writes > 0, "the writer wrote nothing");
    let counted = |sql: &'static str| {
        let source = &source;
        async move { source.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(counted("select count(*) from parent where name like 'p%'").await, 0);
    assert_eq!(counted("select count(*) from child where note = 'c'").await, 0);
    assert_eq!(counted("select count(*) from counter where label like 'l%' or label like 'gone%'").await, 0);

    cut_over(&setup, second, &setup.env());
    // Identical after the cutover (verified above); the rows the truncates removed are gone.
    let rows = setup.target_rows("SELECT COUNT(*) FROM parent WHERE name LIKE 'p%' OR name = 'just before'").await;
    assert_eq!(rows[0][0].as_deref(), Some("0"));
    let rows = setup.target_rows("SELECT COUNT(*) FROM child WHERE note = 'c'").await;
    assert_eq!(rows[0][0].as_deref(), Some("0"));
    // RESTART IDENTITY: the target's next id is the source's, far below the 250 rows before it.
    let next_source: i32 =
        source.query_one("insert into counter (label) values ('next') returning id", &[]).await.unwrap().get(0);
    let mut conn = setup.target.conn().await;
    conn.query_drop(format!("INSERT INTO `{}`.counter (label) VALUES ('next')", setup.target.name)).await.unwrap();
    let next_target: Option<i64> = conn.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(next_target, Some(i64::from(next_source)));
    assert!(next_source < 250, "the sequence restarted: {next_source}");
    setup.cleanup();
}
on_both_targets!(truncates_while_streaming_are_carried_in_order_through_a_kill, flavor = "multi_thread");
