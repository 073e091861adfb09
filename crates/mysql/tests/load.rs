//! `Sink::load_rows` on both load paths, `LOAD DATA LOCAL` and multi-row INSERT: the same rows, the
//! same refusals, exactly once, in statements the server takes. MySQL has `local_infile` OFF, so
//! there the sink takes INSERT by itself and LOAD DATA is not tried.

use passerelle_model::event::Row;
use passerelle_model::target::{ArrayElement, Conversion, Shape, TargetTable};
use passerelle_mysql::sink::LoadPath;
use passerelle_testkit::{on_both_targets, Target};

use crate::support::{row, TestDb, ORIGIN};

/// `rows` numbered from offset `first`.
fn numbered(first: i64, rows: Vec<Row>) -> Vec<(i64, Row)> {
    (first..).zip(rows).collect()
}

/// The load paths `server` allows, the one the sink chose first: INSERT, and LOAD DATA where the
/// server's local_infile is ON.
async fn paths(server: Target) -> Vec<LoadPath> {
    let chosen = TestDb::new(server, "").await.sink.load_path();
    let expected = if server == Target::MySql { LoadPath::Insert } else { LoadPath::LoadData };
    assert_eq!(chosen, expected, "the sink's own choice on {server:?}");
    if chosen == LoadPath::Insert {
        vec![LoadPath::Insert]
    } else {
        vec![LoadPath::LoadData, LoadPath::Insert]
    }
}

async fn target_on(server: Target, path: LoadPath, ddl: &str) -> TestDb {
    let mut target = TestDb::new(server, ddl).await;
    target.sink.set_load_path(path);
    target
}

const MIXED: &str = "CREATE TABLE t (id INT PRIMARY KEY, n DECIMAL(10,2), b TINYINT(1) NOT NULL, raw VARBINARY(20),
                     at DATETIME(6), spot POINT, nibble BIT(4), ints JSON, body TEXT,
                     twice INT AS (id * 2) STORED)";

fn mixed(target: &TestDb) -> TargetTable {
    target.table(
        "t",
        &[
            ("id", Conversion::Text, false),
            ("n", Conversion::Number, false),
            ("b", Conversion::Boolean, false),
            ("raw", Conversion::Bytes, false),
            ("at", Conversion::DateTime, false),
            ("spot", Conversion::Geometry(Shape::Point), false),
            ("nibble", Conversion::Bits, false),
            ("ints", Conversion::Array(ArrayElement::Number), false),
            ("body", Conversion::Text, false),
            ("twice", Conversion::Text, true),
        ],
        &[0],
    )
}

async fn both_paths_load_the_same_values(server: Target) {
    let rows = numbered(
        0,
        vec![
            row(&[
                Some("1"),
                Some("-12345678.90"),
                Some("t"),
                Some("\\x005c0a09ff"),
                Some("2038-01-19 03:14:08.5+00"),
                Some("(1.5,-2)"),
                Some("1010"),
                Some("{1,NULL,3}"),
                Some("tab\tnl\ncr\r back\\slash \\N 😀"),
                Some("ignored: the target computes it"),
            ]),
            row(&[Some("2"), None, Some("f"), None, None, None, None, None, None, None]),
            row(&[
                Some("3"),
                Some("0"),
                Some("f"),
                Some("\\x"),
                Some("0001-01-01"),
                Some("(0,0)"),
                Some("0000"),
                Some("{}"),
                Some(""),
                None,
            ]),
        ],
    );
    let mut seen = Vec::new();
    for path in paths(server).await {
        let mut target = target_on(server, path, MIXED).await;
        let table = mixed(&target);
        assert_eq!(target.sink.load_rows(&table, ORIGIN, &rows).await.unwrap(), 3, "{path:?}");
        assert_eq!(target.next_offset().await, Some(3));
        seen.push(
            target
                .rows(
                    "SELECT id, n, b, HEX(raw), at, ST_AsText(spot), BIN(nibble), ints, HEX(body), twice
                     FROM t ORDER BY id",
                )
                .await,
        );
    }
    assert!(seen.windows(2).all(|pair| pair[0] == pair[1]), "LOAD DATA, then INSERT: {seen:?}");
    let rows = &seen[0];
    assert_eq!(rows[0][3].as_deref(), Some("005C0A09FF"));
    assert_eq!(rows[0][8].as_deref().map(str::len), Some(2 * "tab\tnl\ncr\r back\\slash \\N 😀".len()));
    assert_eq!(rows[0][9].as_deref(), Some("2"));
    assert_eq!(rows[1].iter().filter(|value| value.is_none()).count(), 7);
    assert_eq!(rows[2][3].as_deref(), Some(""), "an empty bytea is empty, not NULL");
}
on_both_targets!(both_paths_load_the_same_values);

async fn both_paths_refuse_a_value_naming_table_column_and_offset(server: Target) {
    for path in paths(server).await {
        let mut target = target_on(server, path, "CREATE TABLE t (id INT PRIMARY KEY, small TINYINT)").await;
        let table = target.table("t", &[("id", Conversion::Text, false), ("small", Conversion::Text, false)], &[0]);
        let rows =
            numbered(10, vec![row(&[Some("1"), Some("1")]), row(&[Some("2"), Some("300")]), row(&[Some("3"), None])]);
        let error = target.sink.load_rows(&table, ORIGIN, &rows).await.unwrap_err().to_string();
        let name = format!("{}.t from {}/{}", target.db.name, ORIGIN.topic, ORIGIN.partition);
        for part in [name.as_str(), "1264", "'small'", "offset 11"] {
            assert!(error.contains(part), "{path:?}: {part} missing from {error}");
        }
        assert!(!error.contains("300"), "{path:?}: the value leaked: {error}");
        assert_eq!(target.rows("SELECT COUNT(*) FROM t").await, vec![vec![Some("0".to_string())]], "{path:?}");
        assert_eq!(target.next_offset().await, None, "{path:?}: no offset recorded");

        // A value the conversion refuses: the same words on both paths, before the server sees it.
        let table = target.table("t", &[("id", Conversion::Text, false), ("small", Conversion::Number, false)], &[0]);
        let error = target.sink.load_rows(&table, ORIGIN, &numbered(10, vec![row(&[Some("1"), Some("NaN")])])).await;
        assert_eq!(
            error.unwrap_err().cause(),
            format!(
                "a value for {}.t from {}/{} cannot be converted: offset 10, row (id)=(1), column small: NaN has no equivalent \
                 in the target's numeric types",
                target.db.name, ORIGIN.topic, ORIGIN.partition
            )
        );
    }
}
on_both_targets!(both_paths_refuse_a_value_naming_table_column_and_offset);

async fn insert_statements_stay_within_the_placeholder_cap_and_one_packet(server: Target) {
    // 40 columns: 65,535 placeholders make 1,638 rows, so statements of 1,024 rows and the powers of
    // two that add up to the rest: 1,024 + 1,024 + 512 + 256 + 128 + 32 + 16 + 8 = 3,000.
    let columns: Vec<String> = (0..40).map(|i| format!("c{i} INT")).collect();
    let mut target = target_on(server, LoadPath::Insert, &format!("CREATE TABLE wide ({})", columns.join(", "))).await;
    let names: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
    let spec: Vec<(&str, Conversion, bool)> =
        names.iter().map(|name| (name.as_str(), Conversion::Text, false)).collect();
    let wide = target.table("wide", &spec, &[]);
    let rows: Vec<Row> = (0..3_000).map(|i| (0..40).map(|j| Some((i * 40 + j).to_string())).collect()).collect();
    let before = target.sink.n_load_statements();
    assert_eq!(target.sink.load_rows(&wide, ORIGIN, &numbered(0, rows)).await.unwrap(), 3_000);
    assert_eq!(target.sink.n_load_statements() - before, 8);
    assert_eq!(
        target.rows("SELECT COUNT(*), SUM(c0), SUM(c39) FROM wide").await,
        vec![vec![Some("3000".to_string()), Some("179940000".to_string()), Some("180057000".to_string())]]
    );

    // Three rows of 6 MB: two fit the 16 MB packet, the third goes on its own.
    let mut target = target_on(server, LoadPath::Insert, "CREATE TABLE big (id INT PRIMARY KEY, body LONGTEXT)").await;
    let big = target.table("big", &[("id", Conversion::Text, false), ("body", Conversion::Text, false)], &[0]);
    let body = "x".repeat(6 << 20);
    let rows = (1..=3).map(|id| row(&[Some(&id.to_string()), Some(&body)])).collect();
    let before = target.sink.n_load_statements();
    assert_eq!(target.sink.load_rows(&big, ORIGIN, &numbered(0, rows)).await.unwrap(), 3);
    assert_eq!(target.sink.n_load_statements() - before, 2);
    assert_eq!(
        target.rows("SELECT COUNT(*), SUM(LENGTH(body)) FROM big").await,
        vec![vec![Some("3".to_string()), Some((3 * (6 << 20)).to_string())]]
    );
}
on_both_targets!(insert_statements_stay_within_the_placeholder_cap_and_one_packet);

async fn the_insert_path_loads_a_batch_seen_again_once(server: Target) {
    let mut target = target_on(server, LoadPath::Insert, "CREATE TABLE t (a INT, b TEXT)").await;
    let table = target.table("t", &[("a", Conversion::Text, false), ("b", Conversion::Text, false)], &[]);
    let twins = numbered(0, vec![row(&[Some("1"), Some("twin")]), row(&[Some("1"), Some("twin")])]);
    assert_eq!(target.sink.load_rows(&table, ORIGIN, &twins).await.unwrap(), 2);
    assert_eq!(target.sink.load_rows(&table, ORIGIN, &twins).await.unwrap(), 0, "a replayed batch is skipped");
    let overlapping = numbered(1, vec![row(&[Some("9"), Some("skipped")]), row(&[Some("2"), None])]);
    assert_eq!(target.sink.load_rows(&table, ORIGIN, &overlapping).await.unwrap(), 1);
    assert_eq!(target.next_offset().await, Some(3));
    assert_eq!(
        target.rows("SELECT a, b, COUNT(*) FROM t GROUP BY a, b ORDER BY a").await,
        vec![
            vec![Some("1".to_string()), Some("twin".to_string()), Some("2".to_string())],
            vec![Some("2".to_string()), None, Some("1".to_string())]
        ]
    );
}
on_both_targets!(the_insert_path_loads_a_batch_seen_again_once);
