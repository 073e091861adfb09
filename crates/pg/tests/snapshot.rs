//! The slot, its exported snapshot and the parallel COPY under it.

use std::collections::HashSet;
use std::time::Instant;

use passerelle_model::event::Row;
use passerelle_model::schema::QualifiedName;
use passerelle_pg::snapshot::{plan_units, CopyWorker, SourceRate};
use passerelle_pg::{session, slot, PgError};
use passerelle_testkit::unique_name;

use crate::support::{copy_all, copy_rows, names, set_hostile_defaults, source, tables, text};

#[tokio::test]
async fn the_copy_sees_exactly_the_state_at_the_slot() {
    let (_db, endpoint) = source(
        "create table item (id int primary key, label text);
         insert into item select i, 'before ' || i from generate_series(1, 1000) i;",
    )
    .await;
    let tables = tables(&endpoint).await;
    let client = passerelle_pg::connect(&endpoint).await.unwrap();
    let (slot_name, publication) = (unique_name("slot"), unique_name("pub"));
    slot::create_publication(&client, &endpoint, &publication, &names(&tables)).await.unwrap();
    let snapshot = slot::create_slot(&endpoint, &slot_name).await.unwrap();

    // Changes committed after the slot: the change stream's, not the snapshot's.
    client
        .batch_execute(
            "insert into item select i, 'after' from generate_series(1001, 1100) i;
             update item set label = 'changed' where id <= 10;
             delete from item where id between 11 and 20;",
        )
        .await
        .unwrap();

    let rows = copy_rows(&endpoint, snapshot.snapshot_name(), &tables, 2).await;
    let mut ids: Vec<i32> = rows[0].iter().map(|row| row[0].as_deref().unwrap().parse().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=1000).collect::<Vec<_>>());
    for row in &rows[0] {
        assert_eq!(row[1].as_deref().unwrap(), format!("before {}", row[0].as_deref().unwrap()));
    }

    let info = slot::slot_info(&client, &endpoint, &slot_name).await.unwrap().expect("the slot exists");
    assert_eq!(info.plugin.as_deref(), Some("pgoutput"));
    assert_eq!(info.database.as_deref(), endpoint.database.as_deref());
    assert!(info.confirmed_flush.is_some_and(|lsn| lsn <= snapshot.consistent_point()));
    let consistent_point = snapshot.consistent_point();
    assert!(consistent_point.0 > 0);

    // Once the exporting connection is gone, the snapshot cannot be imported any more.
    let snapshot_name = snapshot.snapshot_name().to_string();
    snapshot.close().await;
    let error =
        CopyWorker::open(&endpoint, &snapshot_name, None).await.err().expect("the snapshot is gone").to_string();
    assert!(error.contains("importing the exported snapshot"), "{error}");

    assert!(slot::drop_slot(&client, &endpoint, &slot_name).await.unwrap());
    assert!(!slot::drop_slot(&client, &endpoint, &slot_name).await.unwrap());
    assert!(slot::drop_publication(&client, &endpoint, &publication).await.unwrap());
    assert!(!slot::drop_publication(&client, &endpoint, &publication).await.unwrap());
}

/// Values whose text output depends on session settings, escapes or encoding, each read back
/// exactly as `model::event` promises, although the database's own settings say otherwise.
#[tokio::test]
async fn copy_text_round_trips_awkward_values() {
    let (db, endpoint) = source(
        r#"create table awkward (
             id int primary key, t text, b bytea, n numeric, f float8, r real, ts timestamptz, tsn timestamp,
             d date, i interval, j jsonb, p point, ai int[], at text[], m money, tt timetz
           );
           insert into awkward values
             (1, '', '\x', 0, 1e-308, 'NaN', '2024-03-10 02:30:00-08', '1969-07-20 20:17:40', '0044-03-15 BC',
              '1 year 2 months 3 days 04:05:06.5', '{"a": {"b": "ü😀 \"q\"\n"}}', '(1.5,-2)', '{1,NULL,3}',
              '{"a b","c\"d",NULL,"","NULL"}', 1234.56, '23:59:59.999999+05:30'),
             (2, E'tab\there\nnewline\\backslash\r\b\f\x0b', '\x00ff005c0a', 123456789012345678901234567890.123456789,
              'Infinity', '-Infinity', '2038-01-19 03:14:08+00', '9999-12-31 23:59:59.999999', '4713-01-01 BC',
              '-1 days -00:00:01', '[]', '(0,0)', '{}', '{"\\"}', -0.01, '00:00:00+00'),
             (3, 'emoji 😀 and 𝄞 and \N', null, 'NaN', 0.1::float8 + 0.2::float8, 3.4028235e38, '1900-01-01 00:00:00+01:30', null, null, null,
              'null', null, null, null, null, null),
             (4, null, null, null, '-0', null, null, null, null, null, null, null, null, null, null, null);"#,
    )
    .await;
    set_hostile_defaults(&db).await;
    // The walsender, which will render the change stream, runs under the same settings.
    let settings = slot::replication_session_settings(&endpoint).await.unwrap();
    let expected: Vec<(String, String)> =
        session::SETTINGS.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
    assert_eq!(settings, expected);
    let tables = tables(&endpoint).await;
    let (slot_name, publication) = (unique_name("slot"), unique_name("pub"));
    let client = passerelle_pg::connect(&endpoint).await.unwrap();
    slot::create_publication(&client, &endpoint, &publication, &names(&tables)).await.unwrap();
    let snapshot = slot::create_slot(&endpoint, &slot_name).await.unwrap();
    let mut rows = copy_rows(&endpoint, snapshot.snapshot_name(), &tables, 1).await.remove(0);
    snapshot.close().await;
    slot::drop_slot(&client, &endpoint, &slot_name).await.unwrap();
    slot::drop_publication(&client, &endpoint, &publication).await.unwrap();

    rows.sort_by_key(|row| row[0].as_deref().unwrap().parse::<i32>().unwrap());
    let expected: Vec<Row> = vec![
        vec![
            text("1"),
            text(""),
            text("\\x"),
            text("0"),
            text("1e-308"),
            text("NaN"),
            text("2024-03-10 10:30:00+00"),
            text("1969-07-20 20:17:40"),
            text("0044-03-15 BC"),
            text("P1Y2M3DT4H5M6.5S"),
            text(r#"{"a": {"b": "ü😀 \"q\"\n"}}"#),
            text("(1.5,-2)"),
            text("{1,NULL,3}"),
            text(r#"{"a b","c\"d",NULL,"","NULL"}"#),
            text("$1,234.56"),
            text("23:59:59.999999+05:30"),
        ],
        vec![
            text("2"),
            text("tab\there\nnewline\\backslash\r\x08\x0c\x0b"),
            text("\\x00ff005c0a"),
            text("123456789012345678901234567890.123456789"),
            text("Infinity"),
            text("-Infinity"),
            text("2038-01-19 03:14:08+00"),
            text("9999-12-31 23:59:59.999999"),
            text("4713-01-01 BC"),
            text("P-1DT-1S"),
            text("[]"),
            text("(0,0)"),
            text("{}"),
            text(r#"{"\\"}"#),
            text("-$0.01"),
            text("00:00:00+00"),
        ],
        vec![
            text("3"),
            text("emoji 😀 and 𝄞 and \\N"),
            None,
            text("NaN"),
            text("0.30000000000000004"),
            text("3.4028235e+38"),
            text("1899-12-31 22:30:00+00"),
            None,
            None,
            None,
            text("null"),
            None,
            None,
            None,
            None,
            None,
        ],
        vec![text("4"), None, None, None, text("-0"), None, None, None, None, None, None, None, None, None, None, None],
    ];
    for (row, expected) in rows.iter().zip(&expected) {
        for (column, (value, expected)) in tables[0].columns.iter().zip(row.iter().zip(expected)) {
            assert_eq!(value, expected, "row {:?}, column {}", row[0], column.name);
        }
    }
    assert_eq!(rows.len(), expected.len());
}

/// Several ranges per table, copied by several workers, hold every row exactly once, with rows
/// moved by updates and holes left by deletes, in a table without a key and in an empty one.
#[tokio::test]
async fn ranges_cover_every_row_exactly_once() {
    let (_db, endpoint) = source(
        "create table big (id bigint not null, payload text) with (autovacuum_enabled = off);
         insert into big select i, repeat('x', (i % 50)::int) from generate_series(1, 300000) i;
         delete from big where id % 7 = 0;
         update big set payload = 'moved' where id % 11 = 0;
         create table empty (id int primary key);",
    )
    .await;
    let tables = tables(&endpoint).await;
    let big_idx = tables.iter().position(|table| table.name.name == "big").unwrap();
    let client = passerelle_pg::connect(&endpoint).await.unwrap();
    let expected = client.query_one("select count(*), sum(id)::bigint from big", &[]).await.unwrap();
    let (expected_count, expected_sum): (i64, i64) = (expected.get(0), expected.get(1));

    let slot_name = unique_name("slot");
    let snapshot = slot::create_slot(&endpoint, &slot_name).await.unwrap();
    client.batch_execute("insert into big select i, 'late' from generate_series(300001, 310000) i").await.unwrap();
    let units = plan_units(&client, &endpoint, &tables, 1 << 20).await.unwrap();
    let n_big_units = units.iter().filter(|unit| unit.table_idx == big_idx).count();
    assert!(n_big_units >= 5, "{units:?}");
    assert_eq!(units.len(), n_big_units + 1, "one unit for the empty table");

    let mut seen = HashSet::new();
    let mut sum = 0i64;
    let stats = copy_all(&endpoint, snapshot.snapshot_name(), &tables, units, None, 3, |batch| {
        assert_eq!(batch.table_idx, big_idx, "the empty table has no rows");
        assert!(batch.len() <= passerelle_pg::snapshot::BATCH_ROWS);
        for row in batch.rows() {
            let id: i64 = row.get(0).unwrap().parse().unwrap();
            assert!(seen.insert(id), "row {id} copied twice");
            sum += id;
        }
    })
    .await;
    snapshot.close().await;
    slot::drop_slot(&client, &endpoint, &slot_name).await.unwrap();
    assert_eq!((seen.len() as i64, sum), (expected_count, expected_sum));
    assert_eq!(stats.n_rows as i64, expected_count);
}

/// `--max-source-rate`: two workers sharing a rate of 1 MB a second take at least the time their
/// bytes are due, less the one second's worth that may pass at once, and copy every row.
#[tokio::test]
async fn a_source_rate_spreads_the_copy_over_time() {
    let (_db, endpoint) =
        source("create table wide (id int primary key, payload text); insert into wide select i, repeat('y', 200) from generate_series(1, 15000) i;")
            .await;
    let tables = tables(&endpoint).await;
    let client = passerelle_pg::connect(&endpoint).await.unwrap();
    let slot_name = unique_name("slot");
    let snapshot = slot::create_slot(&endpoint, &slot_name).await.unwrap();
    let units = plan_units(&client, &endpoint, &tables, 256 << 10).await.unwrap();
    assert!(units.len() >= 2, "{units:?}");
    const RATE: u64 = 1_000_000;
    let start = Instant::now();
    let mut n_rows = 0;
    let stats =
        copy_all(&endpoint, snapshot.snapshot_name(), &tables, units, Some(SourceRate::new(RATE)), 2, |batch| {
            n_rows += batch.len()
        })
        .await;
    let elapsed = start.elapsed().as_secs_f64();
    snapshot.close().await;
    slot::drop_slot(&client, &endpoint, &slot_name).await.unwrap();
    assert_eq!((n_rows, stats.n_rows), (15_000, 15_000));
    let due = stats.n_bytes as f64 / RATE as f64 - 1.0;
    assert!(due > 1.5, "{} bytes copied", stats.n_bytes);
    assert!(elapsed >= due, "{} bytes in {elapsed:.2} s, within a rate of {RATE} a second", stats.n_bytes);
}

#[tokio::test]
async fn an_existing_slot_or_publication_is_reported() {
    let (_db, endpoint) = source("create table keyed (id int primary key); create table unkeyed (id int);").await;
    let tables = tables(&endpoint).await;
    let client = passerelle_pg::connect(&endpoint).await.unwrap();
    let (slot_name, publication) = (unique_name("slot"), unique_name("pub"));

    slot::create_slot(&endpoint, &slot_name).await.unwrap().close().await;
    let error = slot::create_slot(&endpoint, &slot_name).await.unwrap_err();
    assert!(matches!(&error, PgError::SlotExists { slot, .. } if slot == &slot_name), "{error}");
    assert!(!error.retryable());
    let message = error.to_string();
    assert!(message.contains(&format!("already has a replication slot \"{slot_name}\"")), "{message}");
    assert!(message.contains("passerelle cleanup"), "{message}");
    assert!(slot::drop_slot(&client, &endpoint, &slot_name).await.unwrap());

    let keyed: Vec<QualifiedName> = names(&tables).into_iter().filter(|name| name.name == "keyed").collect();
    slot::create_publication(&client, &endpoint, &publication, &keyed).await.unwrap();
    let error = slot::create_publication(&client, &endpoint, &publication, &keyed).await.unwrap_err();
    assert!(matches!(error, PgError::PublicationExists { .. }), "{error}");
    slot::drop_publication(&client, &endpoint, &publication).await.unwrap();

    // Publishing a table without an identity would break UPDATE and DELETE in the source.
    let error = slot::create_publication(&client, &endpoint, &publication, &names(&tables)).await.unwrap_err();
    assert!(error.to_string().contains("table public.unkeyed"), "{error}");
    assert!(!slot::drop_publication(&client, &endpoint, &publication).await.unwrap());

    let error = slot::create_slot(&endpoint, "Not-Valid").await.unwrap_err();
    assert!(matches!(error, PgError::InvalidName { .. }), "{error}");
}

/// COPY throughput on two million generated rows, with one and two workers. Slow: run it with
/// `--ignored --nocapture` to read its figures.
#[tokio::test]
#[ignore = "slow: a measurement, run by hand"]
async fn copy_throughput() {
    let (_db, endpoint) = source(
        "create table flight (id bigint primary key, code text, departs timestamptz, price numeric(10,2),
                              seats int, note text);
         insert into flight
         select i, 'PG' || lpad((i % 10000)::text, 4, '0'), timestamptz '2024-01-01' + i * interval '1 minute',
                (i % 100000) / 100.0, i % 300, case when i % 3 = 0 then null else md5(i::text) end
         from generate_series(1, 2000000) i;",
    )
    .await;
    // Sets the hint bits, so that the first measured copy does not also write the table.
    passerelle_pg::connect(&endpoint).await.unwrap().batch_execute("vacuum analyze flight").await.unwrap();
    let tables = tables(&endpoint).await;
    let client = passerelle_pg::connect(&endpoint).await.unwrap();
    for n_workers in [1, 2] {
        let slot_name = unique_name("slot");
        let snapshot = slot::create_slot(&endpoint, &slot_name).await.unwrap();
        let units = plan_units(&client, &endpoint, &tables, 32 << 20).await.unwrap();
        let n_units = units.len();
        let start = Instant::now();
        let stats = copy_all(&endpoint, snapshot.snapshot_name(), &tables, units, None, n_workers, drop).await;
        let seconds = start.elapsed().as_secs_f64();
        snapshot.close().await;
        slot::drop_slot(&client, &endpoint, &slot_name).await.unwrap();
        assert_eq!(stats.n_rows, 2_000_000);
        println!(
            "{n_workers} worker(s), {n_units} units: {} rows, {:.0} MB in {seconds:.2} s: {:.0} rows/s, {:.1} MB/s",
            stats.n_rows,
            stats.n_bytes as f64 / 1e6,
            stats.n_rows as f64 / seconds,
            stats.n_bytes as f64 / 1e6 / seconds
        );
    }
}
