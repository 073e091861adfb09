//! `Sink::apply_changes`: change events applied exactly once, batched, in the target's types.

use passerelle_model::target::{Conversion, Shape};

use passerelle_testkit::{on_both_targets, Target};

use crate::support::{at, delete, insert, row, update, TestDb, ORIGIN};

const COMPOSITE: &str = "CREATE TABLE t (k1 INT NOT NULL, k2 VARCHAR(10) NOT NULL, v TEXT, n INT NOT NULL,
                         PRIMARY KEY (k1, k2))";

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|value| Some(value.to_string())).collect()
}

async fn composite_key_changes_land_once(server: Target) {
    let mut target = TestDb::new(server, COMPOSITE).await;
    let table = target.table(
        "t",
        &[
            ("k1", Conversion::Text, false),
            ("k2", Conversion::Text, false),
            ("v", Conversion::Text, false),
            ("n", Conversion::Text, false),
        ],
        &[0, 1],
    );
    let first = at(
        0,
        vec![
            insert(&[Some("1"), Some("a"), Some("x"), Some("1")]),
            insert(&[Some("1"), Some("b"), Some("y"), Some("2")]),
            insert(&[Some("2"), Some("a"), Some("z"), Some("3")]),
            // Kept its key: no old row under the default replica identity.
            update(None, &[Some("1"), Some("a"), Some("x2"), Some("10")], &[]),
            delete(&[Some("1"), Some("b"), None, None]),
            // Moved its key: the old row carries the key columns only.
            update(Some(&[Some("2"), Some("a"), None, None]), &[Some("3"), Some("a"), Some("z"), Some("30")], &[]),
            // Left its TOASTed text out: the target keeps it.
            update(None, &[Some("3"), Some("a"), None, Some("31")], &[2]),
            // Moved its key and left the text out.
            update(Some(&[Some("3"), Some("a"), None, None]), &[Some("4"), Some("a"), None, Some("40")], &[2]),
        ],
    );
    assert_eq!(target.apply(&table, &first).await, 8);
    let expected = vec![some(&["1", "a", "x2", "10"]), some(&["4", "a", "z", "40"])];
    assert_eq!(target.rows("SELECT k1, k2, v, n FROM t ORDER BY k1, k2").await, expected);
    assert_eq!(target.next_offset().await, Some(8));

    // Kafka hands the batch over again: nothing changes.
    assert_eq!(target.apply(&table, &first).await, 0);
    assert_eq!(target.rows("SELECT k1, k2, v, n FROM t ORDER BY k1, k2").await, expected);

    // A batch that starts inside what was applied: only offsets 8 and 9 are new. Offsets 6 and 7 say
    // something else here, to show that they are skipped rather than applied again.
    let overlapping = at(
        6,
        vec![
            delete(&[Some("1"), Some("a"), None, None]),
            delete(&[Some("4"), Some("a"), None, None]),
            insert(&[Some("5"), Some("e"), None, Some("5")]),
            // An insert that finds its row (a replay that raced the snapshot) overwrites it.
            insert(&[Some("1"), Some("a"), Some("again"), Some("11")]),
        ],
    );
    assert_eq!(target.apply(&table, &overlapping).await, 2);
    assert_eq!(
        target.rows("SELECT k1, k2, v, n FROM t ORDER BY k1, k2").await,
        vec![
            some(&["1", "a", "again", "11"]),
            some(&["4", "a", "z", "40"]),
            vec![Some("5".into()), Some("e".into()), None, Some("5".into())]
        ]
    );
    assert_eq!(target.next_offset().await, Some(10));
}
on_both_targets!(composite_key_changes_land_once);

async fn keyless_rows_are_deleted_one_at_a_time(server: Target) {
    // FLOAT and a DECIMAL beyond a double's precision: compared with string parameters, the first
    // would never match and the second would match its neighbour.
    let mut target = TestDb::new(
        server,
        "CREATE TABLE t (a INT, b TEXT, f FLOAT, d DECIMAL(30,3), p POINT, j JSON, g INT AS (a + 1) STORED)",
    )
    .await;
    let table = target.table(
        "t",
        &[
            ("a", Conversion::Text, false),
            ("b", Conversion::Text, false),
            ("f", Conversion::Number, false),
            ("d", Conversion::Number, false),
            ("p", Conversion::Geometry(Shape::Point), false),
            ("j", Conversion::Text, false),
            ("g", Conversion::Text, true),
        ],
        &[],
    );
    let twin = [
        Some("1"),
        None,
        Some("0.1"),
        Some("123456789012345678901234567.123"),
        Some("(1.5,2)"),
        Some(r#"{"a": [1, 2]}"#),
        Some("2"),
    ];
    let neighbour = [
        Some("1"),
        None,
        Some("0.1"),
        Some("123456789012345678901234567.124"),
        Some("(1.5,2)"),
        Some(r#"{"a": [1, 2]}"#),
        Some("2"),
    ];
    let changes = at(
        0,
        vec![
            insert(&twin),
            insert(&twin),
            insert(&neighbour),
            delete(&twin),
            // REPLICA IDENTITY FULL: the whole old row; the JSON was not sent again.
            update(Some(&neighbour), &[Some("2"), Some("b"), Some("0.25"), Some("1.000"), None, None, Some("3")], &[5]),
        ],
    );
    assert_eq!(target.apply(&table, &changes).await, 5);
    let mut expected = twin;
    expected[4] = Some("POINT(1.5 2)");
    assert_eq!(
        target.rows("SELECT a, b, f, d, ST_AsText(p), j, g FROM t ORDER BY a").await,
        vec![
            row(&expected),
            row(&[Some("2"), Some("b"), Some("0.25"), Some("1.000"), None, Some(r#"{"a": [1, 2]}"#), Some("3")])
        ]
    );
    assert_eq!(target.apply(&table, &changes).await, 0);
    assert_eq!(target.rows("SELECT COUNT(*) FROM t").await, vec![some(&["2"])]);
}
on_both_targets!(keyless_rows_are_deleted_one_at_a_time);

async fn values_convert_as_the_snapshot_converts_them(server: Target) {
    let mut target = TestDb::new(
        server,
        "CREATE TABLE t (id BIGINT NOT NULL PRIMARY KEY, amount DECIMAL(20,5), at DATETIME(6), data LONGBLOB,
                         doc JSON, place POINT, flags BIT(8), ok BOOLEAN, day DATE,
                         twice BIGINT AS (id * 2) STORED)",
    )
    .await;
    let table = target.table(
        "t",
        &[
            ("id", Conversion::Text, false),
            ("amount", Conversion::Number, false),
            ("at", Conversion::DateTime, false),
            ("data", Conversion::Bytes, false),
            ("doc", Conversion::Text, false),
            ("place", Conversion::Geometry(Shape::Point), false),
            ("flags", Conversion::Bits, false),
            ("ok", Conversion::Boolean, false),
            ("day", Conversion::DateTime, false),
            ("twice", Conversion::Text, true),
        ],
        &[0],
    );
    let changes = at(
        0,
        vec![
            insert(&[
                Some("7"),
                Some("-12345.67891"),
                Some("2017-08-15 15:00:00.25+00"),
                Some("\\x00ff5c0900"),
                Some(r#"{"k": "v"}"#),
                Some("(129.77099609375,62.093299865722656)"),
                Some("10100101"),
                Some("t"),
                Some("0001-01-01"),
                // The source's generated value: the target computes its own.
                Some("14"),
            ]),
            insert(&[Some("8"), None, None, None, None, None, None, Some("f"), None, None]),
            // The blob is TOASTed and unchanged.
            update(
                None,
                &[
                    Some("7"),
                    Some("1"),
                    Some("2020-02-29 23:59:59+00"),
                    None,
                    Some("[]"),
                    Some("(0,0)"),
                    Some("1"),
                    Some("f"),
                    Some("9999-12-31"),
                    Some("14"),
                ],
                &[3],
            ),
        ],
    );
    assert_eq!(target.apply(&table, &changes).await, 3);
    let sql = "SELECT id, amount, at, HEX(data), doc, ST_AsText(place), flags + 0, ok, day, twice FROM t ORDER BY id";
    assert_eq!(
        target.rows(sql).await,
        vec![
            row(&[
                Some("7"),
                Some("1.00000"),
                Some("2020-02-29 23:59:59.000000"),
                Some("00FF5C0900"),
                Some("[]"),
                Some("POINT(0 0)"),
                Some("1"),
                Some("0"),
                Some("9999-12-31"),
                Some("14")
            ]),
            row(&[Some("8"), None, None, None, None, None, None, Some("0"), None, Some("16")]),
        ]
    );

    // Back to the first values, to check them too.
    let changes = at(
        3,
        vec![update(
            None,
            &[
                Some("7"),
                Some("-12345.67891"),
                Some("2017-08-15 15:00:00.25+00"),
                None,
                Some(r#"{"k": "v"}"#),
                Some("(129.77099609375,62.093299865722656)"),
                Some("10100101"),
                Some("t"),
                Some("0001-01-01"),
                None,
            ],
            &[3],
        )],
    );
    assert_eq!(target.apply(&table, &changes).await, 1);
    assert_eq!(
        target.rows(&format!("{sql} LIMIT 1")).await,
        vec![row(&[
            Some("7"),
            Some("-12345.67891"),
            Some("2017-08-15 15:00:00.250000"),
            Some("00FF5C0900"),
            Some(r#"{"k": "v"}"#),
            Some("POINT(129.77099609375 62.093299865722656)"),
            Some("165"),
            Some("1"),
            Some("0001-01-01"),
            Some("14")
        ])]
    );
}
on_both_targets!(values_convert_as_the_snapshot_converts_them);

async fn a_table_of_key_columns_only_takes_inserts_again(server: Target) {
    let mut target = TestDb::new(server, "CREATE TABLE t (a INT NOT NULL, b INT NOT NULL, PRIMARY KEY (a, b))").await;
    let table = target.table("t", &[("a", Conversion::Text, false), ("b", Conversion::Text, false)], &[0, 1]);
    let changes = at(
        0,
        vec![
            insert(&[Some("1"), Some("2")]),
            insert(&[Some("1"), Some("2")]),
            update(Some(&[Some("1"), Some("2")]), &[Some("1"), Some("3")], &[]),
        ],
    );
    assert_eq!(target.apply(&table, &changes).await, 3);
    assert_eq!(target.rows("SELECT a, b FROM t").await, vec![some(&["1", "3"])]);
}
on_both_targets!(a_table_of_key_columns_only_takes_inserts_again);

async fn a_value_the_target_refuses_rolls_the_batch_back(server: Target) {
    let mut target =
        TestDb::new(server, "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, s VARCHAR(3), n DECIMAL(10,2))").await;
    let table = target.table(
        "t",
        &[("id", Conversion::Text, false), ("s", Conversion::Text, false), ("n", Conversion::Number, false)],
        &[0],
    );
    let good = |id: &'static str| insert(&[Some(id), Some("abc"), Some("1.5")]);

    // Refused by the server, in the middle of a multi-row statement: pinned down to its change.
    let too_long = at(10, vec![good("1"), good("2"), insert(&[Some("3"), Some("abcd"), Some("1")]), good("4")]);
    let error = target.sink.apply_changes(&table, ORIGIN, &too_long).await.unwrap_err();
    let cause = error.cause();
    assert!(cause.contains(&format!("{}.t", target.db.name)) && cause.contains("offset 12:"), "{cause}");
    assert!(cause.contains("'s'") && !cause.contains("abcd"), "{cause}");
    assert!(!error.retryable());

    // Refused by the conversion, as the snapshot refuses it.
    let not_a_number = at(10, vec![good("1"), insert(&[Some("3"), Some("abc"), Some("NaN")])]);
    let cause = target.sink.apply_changes(&table, ORIGIN, &not_a_number).await.unwrap_err().cause();
    assert!(cause.contains("offset 11, row (id)=(3), column n: NaN has no equivalent"), "{cause}");

    // Neither the rows before the bad one nor the offset stayed.
    assert_eq!(target.rows("SELECT COUNT(*) FROM t").await, vec![some(&["0"])]);
    assert_ne!(target.next_offset().await, Some(11));
    assert_eq!(target.apply(&table, &at(10, vec![good("1")])).await, 1);
    assert_eq!(target.next_offset().await, Some(11));
}
on_both_targets!(a_value_the_target_refuses_rolls_the_batch_back);

async fn twenty_thousand_upserts_go_in_batches(server: Target) {
    let mut target = TestDb::new(server, "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL)").await;
    let table = target.table("t", &[("id", Conversion::Text, false), ("v", Conversion::Text, false)], &[0]);
    let n = 20_000;
    let ids: Vec<String> = (0..n).map(|id| id.to_string()).collect();
    let inserts = at(0, ids.iter().map(|id| insert(&[Some(id.as_str()), Some("first")])).collect());
    // The same keys again, and one key many times over: the last of each wins.
    let mut updates: Vec<_> = ids.iter().map(|id| update(None, &[Some(id.as_str()), Some("second")], &[])).collect();
    updates.extend((0..100).map(|i| update(None, &[Some("0"), Some(&*format!("hot {i}"))], &[])));
    let updates = at(n, updates);
    let deletes = at(2 * n + 100, ids[..n as usize / 2].iter().map(|id| delete(&[Some(id.as_str()), None])).collect());

    let statements_before = target.sink.n_change_statements();
    assert_eq!(target.apply(&table, &inserts).await, n as u64);
    assert_eq!(target.apply(&table, &updates).await, n as u64 + 100);
    assert_eq!(target.apply(&table, &deletes).await, n as u64 / 2);
    // 2,000 rows a statement: 10 for the inserts, 11 for the updates, and for the deletes 5 rounds of
    // filling the scratch table, deleting through it and emptying it.
    assert_eq!(target.sink.n_change_statements() - statements_before, 10 + 11 + 15);
    assert_eq!(
        target.rows("SELECT COUNT(*), MIN(id), SUM(v = 'second') FROM t").await,
        vec![some(&["10000", "10000", "10000"])]
    );
}
on_both_targets!(twenty_thousand_upserts_go_in_batches);

async fn an_update_leaving_a_not_null_toasted_value_out_keeps_it(server: Target) {
    let mut target =
        TestDb::new(server, "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, big LONGTEXT NOT NULL, n INT)").await;
    let table = target.table(
        "t",
        &[("id", Conversion::Text, false), ("big", Conversion::Text, false), ("n", Conversion::Text, false)],
        &[0],
    );
    let changes = at(
        0,
        vec![
            insert(&[Some("1"), Some("large"), Some("1")]),
            insert(&[Some("2"), Some("other"), Some("2")]),
            // PostgreSQL leaves an unchanged TOASTed value out of an update: an upsert's INSERT would
            // need it, and a NOT NULL column without a default refuses the row (error 1364).
            update(None, &[Some("1"), None, Some("10")], &[1]),
            update(None, &[Some("2"), None, Some("20")], &[1]),
        ],
    );
    assert_eq!(target.apply(&table, &changes).await, 4);
    assert_eq!(
        target.rows("SELECT id, big, n FROM t ORDER BY id").await,
        vec![some(&["1", "large", "10"]), some(&["2", "other", "20"])]
    );
}
on_both_targets!(an_update_leaving_a_not_null_toasted_value_out_keeps_it);
