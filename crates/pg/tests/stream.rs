//! The change stream: what it decodes, in which order, at which LSNs, how confirming moves the slot,
//! and the errors that stop it.

use std::collections::HashMap;
use std::time::Duration;

use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::event::{ChangeEvent, Lsn, Op, Row};
use passerelle_model::schema::{QualifiedName, Table};
use passerelle_pg::stream::{ChangeStream, StreamItem, Truncate};
use passerelle_pg::{slot, PgError};
use passerelle_testkit::{unique_name, SourceDb};
use tokio::time::Instant;
use tokio_postgres::Client;

use crate::support::{copy_rows, names, set_hostile_defaults, source, tables, text, SlotGuard};

/// One committed transaction as the stream delivered it.
#[derive(Debug)]
struct Transaction {
    changes: Vec<StreamItem>,
    commit_lsn: Lsn,
    end_lsn: Lsn,
}

/// Reads until `n_transactions` transactions have committed, failing after 30 s.
async fn read_transactions(stream: &mut ChangeStream, n_transactions: usize) -> Vec<Transaction> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut transactions = Vec::new();
    let mut changes = Vec::new();
    while transactions.len() < n_transactions {
        assert!(Instant::now() < deadline, "only {} transactions in 30 s: {transactions:?}", transactions.len());
        match stream.next(Duration::from_secs(1)).await.unwrap_or_else(|error| panic!("{error}")) {
            Some(StreamItem::Commit { commit_lsn, end_lsn }) => {
                transactions.push(Transaction { changes: std::mem::take(&mut changes), commit_lsn, end_lsn });
            }
            Some(StreamItem::Idle { .. }) | None => {}
            Some(item) => changes.push(item),
        }
    }
    assert!(changes.is_empty(), "changes after the last commit: {changes:?}");
    transactions
}

/// Runs `sql` and returns the WAL insert position after it.
async fn run(client: &Client, sql: &str) -> Lsn {
    client.batch_execute(sql).await.unwrap();
    let row = client.query_one("select pg_current_wal_insert_lsn()::text", &[]).await.unwrap();
    row.get::<_, String>(0).parse().unwrap()
}

fn qualified(name: &str) -> QualifiedName {
    QualifiedName { schema: "public".to_string(), name: name.to_string() }
}

fn row(values: &[Option<&str>]) -> Row {
    values.iter().map(|value| value.map(str::to_string)).collect()
}

/// A change as the test expects it, before it knows the commit LSN.
fn change(table: &str, op: Op, before: Option<Row>, after: Option<Row>, unchanged: Vec<usize>) -> ChangeEvent {
    ChangeEvent {
        table: qualified(table),
        op,
        before,
        after,
        unchanged,
        commit_lsn: Lsn(0),
        lsn: Lsn(0),
        position: None,
    }
}

/// Every kind of change, in transactions of one or several statements, against keyed, keyless,
/// TOASTed and awkwardly typed tables, decoded exactly, in commit order, at their commit LSNs, with
/// each value's text as COPY prints it, although the database's own settings say otherwise.
#[tokio::test]
async fn the_stream_carries_every_committed_change_as_copy_prints_it() {
    let (db, endpoint) = source(
        "create table pair (a int, b text, note text, primary key (a, b));
         create table keyless (x int, y text);
         alter table keyless replica identity full;
         create table doc (id int primary key, body text, counter int,
                           doubled int generated always as (counter * 2) stored);
         create table typed (id int primary key, n numeric, ts timestamptz, d date, i interval, b bytea,
                             j jsonb, ai int[], at text[], p point, f float8, r real, t text, m money, tt timetz);
         insert into pair values (1, 'one', 'before');
         insert into keyless values (1, 'a'), (2, 'b');
         insert into doc (id, body, counter) select 1, string_agg(md5(i::text), ''), 0 from generate_series(1, 1000) i;",
    )
    .await;
    set_hostile_defaults(&db).await;
    let (slot, publication, tables, consistent_point) = publish(&db, &endpoint).await;
    let client = passerelle_pg::connect(&endpoint).await.unwrap();

    let mut lsns = vec![run(&client, "select 1").await];
    let transactions = [
        r#"insert into typed values
             (1, 123456789012345678901234567890.123456789, '2024-03-10 02:30:00-08', '0044-03-15 BC',
              '1 year 2 months 3 days 04:05:06.5', '\x00ff005c0a', '{"a": {"b": "ü😀 \"q\"\n"}}', '{1,NULL,3}',
              '{"a b","c\"d",NULL,"","NULL"}', '(1.5,-2)', 'NaN', 'Infinity', E'emoji 😀 𝄞 tab\t\\N', 1234.56,
              '23:59:59.999999+05:30'),
             (2, 'NaN', '1900-01-01 00:00:00+01:30', '4713-01-01 BC', '-1 days -00:00:01', '\x', '[]', '{}',
              '{"\\"}', '(0,0)', '-Infinity', '-0', '', -0.01, '00:00:00+00'),
             (3, null, null, null, null, null, null, null, null, null, 0.1::float8 + 0.2::float8, null, null, null, null)"#,
        "begin;
         insert into pair values (2, 'two', 'x'), (3, 'three', 'y');
         update pair set a = 20 where a = 2;
         update pair set note = 'after' where a = 3;
         commit;",
        "begin; insert into keyless values (9, 'never'); rollback;",
        "update doc set counter = 1 where id = 1",
        "begin;
         update keyless set y = 'c' where x = 1;
         delete from keyless where x = 2;
         delete from pair where a = 1;
         commit;",
        "truncate keyless restart identity",
        "insert into doc (id, body, counter)
         select 2, string_agg(md5((-i)::text), ''), 5 from generate_series(1, 1000) i",
    ];
    for sql in transactions {
        lsns.push(run(&client, sql).await);
    }

    let mut stream =
        ChangeStream::start(&endpoint, &slot.name, &publication, consistent_point, &tables, &[]).await.unwrap();
    let mut streamed = read_transactions(&mut stream, 6).await;
    stream.close().await.unwrap();

    // Each transaction committed between the WAL positions around it, after the slot's consistent point.
    let committed: Vec<(Lsn, Lsn)> = [0, 1, 3, 4, 5, 6].iter().map(|&idx| (lsns[idx], lsns[idx + 1])).collect();
    assert!(consistent_point <= lsns[0]);
    for (transaction, (before, after)) in streamed.iter().zip(&committed) {
        assert!(*before < transaction.commit_lsn && transaction.commit_lsn < transaction.end_lsn, "{transaction:?}");
        assert!(transaction.end_lsn <= *after, "{transaction:?}");
    }
    // Every change carries its transaction's commit LSN, and its own WAL position, which grows
    // within the transaction and comes before the commit; the rest is compared without them.
    // Each change also carries its place among the transaction's changes.
    for transaction in &mut streamed {
        let mut previous = Lsn(0);
        let mut n_changes = 0;
        for item in &mut transaction.changes {
            if let StreamItem::Change(event) = item {
                assert_eq!(event.position.take(), Some(n_changes));
                n_changes += 1;
            }
            let (commit_lsn, lsn) = match item {
                StreamItem::Change(event) => (&mut event.commit_lsn, &mut event.lsn),
                StreamItem::Truncate(truncate) => (&mut truncate.commit_lsn, &mut truncate.lsn),
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(*commit_lsn, transaction.commit_lsn);
            assert!(previous < *lsn && *lsn < *commit_lsn, "{previous} < {lsn} < {commit_lsn}");
            previous = *lsn;
            (*commit_lsn, *lsn) = (Lsn(0), Lsn(0));
        }
    }
    let changes: Vec<Vec<StreamItem>> = streamed.into_iter().map(|transaction| transaction.changes).collect();

    // The typed rows are checked against COPY below; here, only their shape.
    assert_eq!(changes[0].len(), 3);
    let typed_rows: Vec<Row> =
        changes[0]
            .iter()
            .map(|item| match item {
                StreamItem::Change(ChangeEvent {
                    op: Op::Create, before: None, after: Some(after), unchanged, ..
                }) if unchanged.is_empty() => after.clone(),
                other => panic!("not an insert: {other:?}"),
            })
            .collect();
    let big_body: String = client
        .query_one("select string_agg(md5((-i)::text), '') from generate_series(1, 1000) i", &[])
        .await
        .unwrap()
        .get(0);
    let expected = vec![
        vec![
            change("pair", Op::Create, None, Some(row(&[Some("2"), Some("two"), Some("x")])), vec![]),
            change("pair", Op::Create, None, Some(row(&[Some("3"), Some("three"), Some("y")])), vec![]),
            // The key changed: the old key comes along, the other old columns do not.
            change(
                "pair",
                Op::Update,
                Some(row(&[Some("2"), Some("two"), None])),
                Some(row(&[Some("20"), Some("two"), Some("x")])),
                vec![],
            ),
            change("pair", Op::Update, None, Some(row(&[Some("3"), Some("three"), Some("after")])), vec![]),
        ],
        // The TOASTed body did not change, so it is not sent; the generated column never is.
        vec![change("doc", Op::Update, None, Some(row(&[Some("1"), None, Some("1"), None])), vec![1, 3])],
        vec![
            change(
                "keyless",
                Op::Update,
                Some(row(&[Some("1"), Some("a")])),
                Some(row(&[Some("1"), Some("c")])),
                vec![],
            ),
            change("keyless", Op::Delete, Some(row(&[Some("2"), Some("b")])), None, vec![]),
            change("pair", Op::Delete, Some(row(&[Some("1"), Some("one"), None])), None, vec![]),
        ],
        vec![],
        vec![change("doc", Op::Create, None, Some(row(&[Some("2"), Some(&big_body), Some("5"), None])), vec![3])],
    ];
    let expected: Vec<Vec<StreamItem>> =
        expected.into_iter().map(|transaction| transaction.into_iter().map(StreamItem::Change).collect()).collect();
    assert_eq!(changes[1], expected[0]);
    assert_eq!(changes[2], expected[1]);
    assert_eq!(changes[3], expected[2]);
    let truncate = Truncate {
        tables: vec![qualified("keyless")],
        cascade: false,
        restart_identity: true,
        commit_lsn: Lsn(0),
        lsn: Lsn(0),
    };
    assert_eq!(changes[4], vec![StreamItem::Truncate(truncate)]);
    assert_eq!(changes[5], expected[4]);

    // COPY under an exported snapshot of the final state prints every streamed value identically.
    let snapshot_client = passerelle_pg::connect(&endpoint).await.unwrap();
    snapshot_client.batch_execute("begin isolation level repeatable read").await.unwrap();
    let snapshot_name: String = snapshot_client.query_one("select pg_export_snapshot()", &[]).await.unwrap().get(0);
    let copied = copy_rows(&endpoint, &snapshot_name, &tables, 1).await;
    let copied: HashMap<String, Vec<Row>> =
        tables.iter().zip(copied).map(|(table, rows)| (table.name.name.clone(), rows)).collect();
    let mut copied_typed = copied["typed"].clone();
    copied_typed.sort_by_key(|row| row[0].clone());
    assert_eq!(typed_rows, copied_typed);
    let copied_doc_2 = copied["doc"].iter().find(|row| row[0].as_deref() == Some("2")).unwrap();
    assert_eq!(copied_doc_2[1].as_ref(), Some(&big_body));
    // And those are the values the pinned settings print, not the database's.
    assert_eq!(typed_rows[0][2], text("2024-03-10 10:30:00+00"));
    assert_eq!(typed_rows[0][3], text("0044-03-15 BC"));
    assert_eq!(typed_rows[0][4], text("P1Y2M3DT4H5M6.5S"));
    assert_eq!(typed_rows[0][5], text("\\x00ff005c0a"));
    assert_eq!(typed_rows[0][6], text(r#"{"a": {"b": "ü😀 \"q\"\n"}}"#));
    assert_eq!(typed_rows[0][12], text("emoji 😀 𝄞 tab\t\\N"));
    assert_eq!(typed_rows[1][4], text("P-1DT-1S"));
    assert_eq!(typed_rows[1][11], text("-0"));
    assert_eq!(typed_rows[2][10], text("0.30000000000000004"));
    drop(snapshot_client);
    slot::drop_publication(&client, &endpoint, &publication).await.unwrap();
}

/// The ids that `transactions` inserted into a one-column table, one list per transaction.
fn inserted_ids(transactions: &[Transaction]) -> Vec<Vec<String>> {
    let id = |item: &StreamItem| match item {
        StreamItem::Change(ChangeEvent { op: Op::Create, after: Some(after), .. }) => after[0].clone().unwrap(),
        other => panic!("not an insert: {other:?}"),
    };
    transactions.iter().map(|transaction| transaction.changes.iter().map(id).collect()).collect()
}

/// A source with one table, its publication and slot, and the slot's consistent point.
async fn streamed_source() -> (SourceDb, DbEndpoint, SlotGuard, String, Vec<Table>, Lsn) {
    let (db, endpoint) = source("create table item (id int primary key)").await;
    let (slot, publication, tables, consistent_point) = publish(&db, &endpoint).await;
    (db, endpoint, slot, publication, tables, consistent_point)
}

/// Publishes every table of `db` and creates a slot: its guard, the publication, the tables and
/// the slot's consistent point.
async fn publish(db: &SourceDb, endpoint: &DbEndpoint) -> (SlotGuard, String, Vec<Table>, Lsn) {
    let tables = tables(endpoint).await;
    let slot = SlotGuard::new(db);
    let publication = unique_name("pub");
    let client = passerelle_pg::connect(endpoint).await.unwrap();
    slot::create_publication(&client, endpoint, &publication, &names(&tables)).await.unwrap();
    let snapshot = slot::create_slot(endpoint, &slot.name).await.unwrap();
    let consistent_point = snapshot.consistent_point();
    snapshot.close().await;
    (slot, publication, tables, consistent_point)
}

/// A marker written between two transactions, in a database made read-only, arrives between them at
/// the position `emit_marker` returned; another program's message does not arrive at all.
#[tokio::test]
async fn a_marker_arrives_in_its_place_in_the_wal() {
    let (db, endpoint, slot, publication, tables, consistent_point) = streamed_source().await;
    let client = passerelle_pg::connect(&endpoint).await.unwrap();
    client.batch_execute("insert into item values (1)").await.unwrap();
    client.batch_execute("set default_transaction_read_only = on").await.unwrap();
    client.query_one("select pg_logical_emit_message(false, 'another program', 'x')", &[]).await.unwrap();
    let at = passerelle_pg::stream::emit_marker(&client, &endpoint, "cutover 42").await.unwrap();
    let admin = passerelle_pg::connect(&endpoint).await.unwrap();
    admin.batch_execute("set default_transaction_read_only = off; insert into item values (2)").await.unwrap();

    let mut stream =
        ChangeStream::start(&endpoint, &slot.name, &publication, consistent_point, &tables, &[]).await.unwrap();
    let mut kinds = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while kinds.len() < 5 {
        assert!(Instant::now() < deadline, "only {kinds:?} in 30 s");
        match stream.next(Duration::from_secs(1)).await.unwrap() {
            Some(StreamItem::Change(change)) => {
                kinds.push(format!("change {}", change.after.unwrap()[0].as_deref().unwrap()))
            }
            Some(StreamItem::Commit { .. }) => kinds.push("commit".to_string()),
            Some(StreamItem::Marker { lsn, content }) => {
                kinds.push(format!("marker {content} at the returned lsn: {}", lsn == at))
            }
            Some(StreamItem::Idle { .. }) | None => {}
            Some(item) => panic!("{item:?}"),
        }
    }
    stream.close().await.unwrap();
    assert_eq!(kinds, ["change 1", "commit", "marker cutover 42 at the returned lsn: true", "change 2", "commit"]);
    drop(db);
}

/// The slot moves to what the caller confirmed, never back, on close and every 10 s while streaming,
/// and a stream started again from the same point resumes after it.
#[tokio::test]
async fn a_restarted_stream_resumes_after_the_confirmed_position() {
    let (_db, endpoint, slot, publication, tables, consistent_point) = streamed_source().await;
    let client = passerelle_pg::connect(&endpoint).await.unwrap();
    let confirmed_flush =
        || async { slot::slot_info(&client, &endpoint, &slot.name).await.unwrap().unwrap().confirmed_flush.unwrap() };
    for sql in ["insert into item values (1)", "insert into item values (2)"] {
        client.batch_execute(sql).await.unwrap();
    }

    let mut stream =
        ChangeStream::start(&endpoint, &slot.name, &publication, consistent_point, &tables, &[]).await.unwrap();
    let first = read_transactions(&mut stream, 2).await;
    assert_eq!(inserted_ids(&first), [["1"], ["2"]]);
    stream.confirm(first[0].end_lsn);
    stream.confirm(consistent_point);
    stream.close().await.unwrap();
    assert_eq!(confirmed_flush().await, first[0].end_lsn);

    // Asked for the consistent point again, the slot starts after what was confirmed.
    let mut stream =
        ChangeStream::start(&endpoint, &slot.name, &publication, consistent_point, &tables, &[]).await.unwrap();
    client.batch_execute("insert into item values (3)").await.unwrap();
    let second = read_transactions(&mut stream, 2).await;
    assert_eq!(inserted_ids(&second), [["2"], ["3"]]);
    assert_eq!(second[0].commit_lsn, first[1].commit_lsn);

    // Without close, the server hears of a confirmation within 10 s, even while the caller reads
    // nothing and more changes than the stream queues wait for it.
    stream.confirm(second[1].end_lsn);
    client.batch_execute("insert into item select generate_series(4, 300)").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(12);
    while confirmed_flush().await != second[1].end_lsn {
        assert!(Instant::now() < deadline, "the confirmation did not reach the server in 12 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expected: Vec<String> = (4..=300).map(|id| id.to_string()).collect();
    assert_eq!(inserted_ids(&read_transactions(&mut stream, 1).await), [expected]);
    stream.close().await.unwrap();
    slot::drop_publication(&client, &endpoint, &publication).await.unwrap();
}

/// Reads until the stream fails, failing the test if it goes on for 30 s.
async fn read_until_error(stream: &mut ChangeStream) -> PgError {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the stream went on for 30 s");
        if let Err(error) = stream.next(Duration::from_secs(1)).await {
            return error;
        }
    }
}

/// What stops a stream, each with its cause: a missing slot or publication, a second reader of the
/// slot, a table the migration does not carry, a dropped connection, a table altered mid-stream.
#[tokio::test]
async fn the_stream_refuses_what_it_cannot_carry() {
    let (_db, endpoint, slot, publication, tables, from) = streamed_source().await;
    let client = passerelle_pg::connect(&endpoint).await.unwrap();

    let error = ChangeStream::start(&endpoint, "no_such_slot", &publication, from, &tables, &[]).await.unwrap_err();
    assert!(matches!(&error, PgError::SlotMissing { slot, .. } if slot == "no_such_slot"), "{error}");
    let error = ChangeStream::start(&endpoint, &slot.name, "no_such_pub", from, &tables, &[]).await.unwrap_err();
    assert!(matches!(&error, PgError::PublicationMissing { publication, .. } if publication == "no_such_pub"));
    assert!(error.to_string().contains("has no publication \"no_such_pub\""), "{error}");

    // A publication that publishes more than the migration copies.
    let mut stream = ChangeStream::start(&endpoint, &slot.name, &publication, from, &[], &[]).await.unwrap();
    client.batch_execute("insert into item values (1)").await.unwrap();
    let error = read_until_error(&mut stream).await;
    assert!(matches!(&error, PgError::UnexpectedTable { table, .. } if table == "public.item"), "{error}");
    stream.close().await.unwrap();

    let mut stream = ChangeStream::start(&endpoint, &slot.name, &publication, from, &tables, &[]).await.unwrap();
    let error = ChangeStream::start(&endpoint, &slot.name, &publication, from, &tables, &[]).await.unwrap_err();
    assert!(matches!(&error, PgError::SlotInUse { .. }), "{error}");
    assert!(error.retryable());
    assert!(error.to_string().contains("another process streams from it"), "{error}");

    // The walsender ends, as when an administrator terminates it or the server restarts.
    client
        .execute(
            "select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1",
            &[&slot.name],
        )
        .await
        .unwrap();
    let error = read_until_error(&mut stream).await;
    assert!(matches!(&error, PgError::ConnectionLost { .. }), "{error}");
    assert!(error.retryable());
    drop(stream);

    // Retried as its error says it may be, until the server has released the slot.
    let mut stream = loop {
        match ChangeStream::start(&endpoint, &slot.name, &publication, from, &tables, &[]).await {
            Err(error) if error.retryable() => tokio::time::sleep(Duration::from_millis(100)).await,
            started => break started.unwrap(),
        }
    };
    assert_eq!(inserted_ids(&read_transactions(&mut stream, 1).await), [["1"]]);
    // A column added is a new version of the table, said before its first row.
    client.batch_execute("alter table item add column note text; insert into item values (2, 'x')").await.unwrap();
    let transactions = read_transactions(&mut stream, 1).await;
    let table = QualifiedName { schema: "public".to_string(), name: "item".to_string() };
    let sent = vec!["id".to_string(), "note".to_string()];
    assert_eq!(transactions[0].changes[0], StreamItem::Altered { table, sent });
    let StreamItem::Change(change) = &transactions[0].changes[1] else { panic!("{transactions:?}") };
    assert_eq!(change.after, Some(vec![Some("2".to_string()), Some("x".to_string())]));
    // A column given another type is not carried.
    client
        .batch_execute(
            "alter table item alter column note type integer using length(note); insert into item values (3, 1)",
        )
        .await
        .unwrap();
    let error = read_until_error(&mut stream).await;
    assert!(matches!(&error, PgError::TableChanged { table, .. } if table == "public.item"), "{error}");
    assert!(error.to_string().contains("column \"note\" has a new type"), "{error}");
    assert!(!error.retryable());
    stream.close().await.unwrap();
    slot::drop_publication(&client, &endpoint, &publication).await.unwrap();
}

/// Decoding throughput on 500,000 inserted rows of six columns. Slow: run it with
/// `--ignored --nocapture` to read its figures.
#[tokio::test]
#[ignore = "slow: a measurement, run by hand"]
async fn stream_throughput() {
    let (db, endpoint) = source(
        "create table flight (id bigint primary key, code text, departs timestamptz, price numeric(10,2),
                              seats int, note text)",
    )
    .await;
    let tables = tables(&endpoint).await;
    let slot = SlotGuard::new(&db);
    let publication = unique_name("pub");
    let client = passerelle_pg::connect(&endpoint).await.unwrap();
    slot::create_publication(&client, &endpoint, &publication, &names(&tables)).await.unwrap();
    let snapshot = slot::create_slot(&endpoint, &slot.name).await.unwrap();
    let from = snapshot.consistent_point();
    snapshot.close().await;
    client
        .batch_execute(
            "insert into flight
             select i, 'PG' || lpad((i % 10000)::text, 4, '0'), timestamptz '2024-01-01' + i * interval '1 minute',
                    (i % 100000) / 100.0, i % 300, case when i % 3 = 0 then null else md5(i::text) end
             from generate_series(1, 500000) i",
        )
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let mut stream = ChangeStream::start(&endpoint, &slot.name, &publication, from, &tables, &[]).await.unwrap();
    let mut n_changes = 0;
    loop {
        match stream.next(Duration::from_secs(30)).await.unwrap() {
            Some(StreamItem::Change(_)) => n_changes += 1,
            Some(StreamItem::Commit { end_lsn, .. }) => {
                stream.confirm(end_lsn);
                break;
            }
            Some(_) => {}
            None => panic!("nothing for 30 s after {n_changes} changes"),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    stream.close().await.unwrap();
    assert_eq!(n_changes, 500_000);
    println!("{n_changes} changes in {seconds:.2} s: {:.0} changes/s", f64::from(n_changes) / seconds);
}
