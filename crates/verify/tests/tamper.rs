//! A target tampered with in one place: verify reports exactly that row and column, nothing else.

use std::collections::{BTreeMap, BTreeSet};

use expect_test::{expect, Expect};
use passerelle_model::schema::QualifiedName;
use passerelle_verify::Recheck;

use passerelle_testkit::{on_both_targets, Target};

use crate::equal::SETUP;
use crate::support::Migrated;

/// Migrates `setup`, runs `tamper` on the target, and checks verify's report.
async fn check(target: Target, setup: &str, tamper: &str, expected: Expect) {
    let migrated = Migrated::new(target, setup).await;
    migrated.on_target(tamper).await;
    let report = migrated.verify(2).await;
    assert!(!report.matches);
    expected.assert_eq(&report.render().replace(&migrated.target.name, "TARGET"));
}

async fn a_deleted_row_is_missing(target: Target) {
    check(
        target,
        SETUP,
        "DELETE FROM items WHERE id = 2",
        expect![[r#"
        DIFFERS  public.items -> TARGET.items: 3 rows in the source, 2 in the target
            1 missing in the target
              id="2"
        ok       public.log: 3 rows in the source, 3 in the target
        ok       public.owners: 2 rows in the source, 2 in the target
        NOT VERIFIED: 1 of 3 tables differ, 0 schema objects missing
    "#]],
    )
    .await;
}
on_both_targets!(a_deleted_row_is_missing);

async fn an_extra_row_is_extra(target: Target) {
    check(
        target,
        SETUP,
        "INSERT INTO items (id) VALUES (99)",
        expect![[r#"
        DIFFERS  public.items -> TARGET.items: 3 rows in the source, 4 in the target
            1 extra in the target
              id="99"
        ok       public.log: 3 rows in the source, 3 in the target
        ok       public.owners: 2 rows in the source, 2 in the target
        NOT VERIFIED: 1 of 3 tables differ, 0 schema objects missing
    "#]],
    )
    .await;
}
on_both_targets!(an_extra_row_is_extra);

async fn a_duplicated_row_without_a_key_is_counted(target: Target) {
    check(
        target,
        SETUP,
        "INSERT INTO log VALUES ('bob', 'out')",
        expect![[r#"
        ok       public.items: 3 rows in the source, 3 in the target
        DIFFERS  public.log -> TARGET.log: 3 rows in the source, 4 in the target
            1 rows with a different number of copies
              1 copies in the source, 2 in the target: who="bob", what="out"
        ok       public.owners: 2 rows in the source, 2 in the target
        NOT VERIFIED: 1 of 3 tables differ, 0 schema objects missing
    "#]],
    )
    .await;
}
on_both_targets!(a_duplicated_row_without_a_key_is_counted);

async fn a_trailing_space_in_a_varchar_differs(target: Target) {
    check(
        target,
        SETUP,
        "UPDATE items SET label = 'alpha ' WHERE id = 1",
        expect![[r#"
        DIFFERS  public.items -> TARGET.items: 3 rows in the source, 3 in the target
            1 different
              id="1": label
        ok       public.log: 3 rows in the source, 3 in the target
        ok       public.owners: 2 rows in the source, 2 in the target
        NOT VERIFIED: 1 of 3 tables differ, 0 schema objects missing
    "#]],
    )
    .await;
}
on_both_targets!(a_trailing_space_in_a_varchar_differs);

async fn a_trailing_space_in_a_text_differs(target: Target) {
    check(
        target,
        SETUP,
        "UPDATE items SET body = 'second ' WHERE id = 2",
        expect![[r#"
        DIFFERS  public.items -> TARGET.items: 3 rows in the source, 3 in the target
            1 different
              id="2": body
        ok       public.log: 3 rows in the source, 3 in the target
        ok       public.owners: 2 rows in the source, 2 in the target
        NOT VERIFIED: 1 of 3 tables differ, 0 schema objects missing
    "#]],
    )
    .await;
}
on_both_targets!(a_trailing_space_in_a_text_differs);

async fn a_numeric_last_digit_differs(target: Target) {
    check(
        target,
        SETUP,
        "UPDATE items SET price = 12.35 WHERE id = 1",
        expect![[r#"
        DIFFERS  public.items -> TARGET.items: 3 rows in the source, 3 in the target
            1 different
              id="1": price
        ok       public.log: 3 rows in the source, 3 in the target
        ok       public.owners: 2 rows in the source, 2 in the target
        NOT VERIFIED: 1 of 3 tables differ, 0 schema objects missing
    "#]],
    )
    .await;
}
on_both_targets!(a_numeric_last_digit_differs);

async fn a_timestamp_microsecond_differs(target: Target) {
    check(
        target,
        SETUP,
        "UPDATE items SET at = at + INTERVAL 1 MICROSECOND WHERE id = 1",
        expect![[r#"
        DIFFERS  public.items -> TARGET.items: 3 rows in the source, 3 in the target
            1 different
              id="1": at
        ok       public.log: 3 rows in the source, 3 in the target
        ok       public.owners: 2 rows in the source, 2 in the target
        NOT VERIFIED: 1 of 3 tables differ, 0 schema objects missing
    "#]],
    )
    .await;
}
on_both_targets!(a_timestamp_microsecond_differs);

async fn one_character_of_a_json_string_differs(target: Target) {
    check(
        target,
        SETUP,
        "UPDATE items SET doc = '{\"a\": \"y\", \"b\": [1, 2.50]}' WHERE id = 1",
        expect![[r#"
        DIFFERS  public.items -> TARGET.items: 3 rows in the source, 3 in the target
            1 different
              id="1": doc
        ok       public.log: 3 rows in the source, 3 in the target
        ok       public.owners: 2 rows in the source, 2 in the target
        NOT VERIFIED: 1 of 3 tables differ, 0 schema objects missing
    "#]],
    )
    .await;
}
on_both_targets!(one_character_of_a_json_string_differs);

async fn a_missing_index_and_check_are_reported(target: Target) {
    check(
        target,
        SETUP,
        "ALTER TABLE owners DROP INDEX owners_by_age; ALTER TABLE owners DROP CONSTRAINT owners_age_positive",
        expect![[r#"
            ok       public.items: 3 rows in the source, 3 in the target
            ok       public.log: 3 rows in the source, 3 in the target
            ok       public.owners: 2 rows in the source, 2 in the target
            MISSING  check public.owners.owners_age_positive
            MISSING  index public.owners.owners_by_age
            NOT VERIFIED: 0 of 3 tables differ, 2 schema objects missing
        "#]],
    )
    .await;
}
on_both_targets!(a_missing_index_and_check_are_reported);

const BIG: &str = "
CREATE TABLE big (id bigint PRIMARY KEY, v text);
INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
CREATE TABLE pairs (a int, b varchar(4), v int, PRIMARY KEY (a, b));
INSERT INTO pairs SELECT g, s, g FROM generate_series(1, 3000) g, unnest(array['x', 'y']) s;
";

async fn bisection_finds_single_rows_in_larger_tables(target: Target) {
    check(
        target,
        BIG,
        "UPDATE big SET v = 'x' WHERE id = 12345; DELETE FROM big WHERE id = 777; INSERT INTO big VALUES (30000, 'n');
         UPDATE pairs SET v = 0 WHERE a = 2999 AND b = 'y'",
        expect![[r#"
            DIFFERS  public.big -> TARGET.big: 20000 rows in the source, 20000 in the target
                1 missing in the target
                  id="777"
                1 extra in the target
                  id="30000"
                1 different
                  id="12345": v
            DIFFERS  public.pairs -> TARGET.pairs: 6000 rows in the source, 6000 in the target
                1 different
                  a="2999", b="y": v
            NOT VERIFIED: 2 of 2 tables differ, 0 schema objects missing
        "#]],
    )
    .await;
}
on_both_targets!(bisection_finds_single_rows_in_larger_tables);

/// A table of three ranges of rows as the first step's follow-up reads it.
const RANGES: &str = "
CREATE TABLE big (id bigint PRIMARY KEY, v text);
INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 50000) g;
";

/// The rows that differ are listed by key, range after range; a re-check of those keys alone (no
/// change since) names them again, and reads no table whole (no checksum).
async fn differing_rows_are_listed_by_key_and_rechecked(target: Target) {
    let migrated = Migrated::new(target, RANGES).await;
    migrated
        .on_target("UPDATE big SET v = 'x' WHERE id = 45678; DELETE FROM big WHERE id = 777; INSERT INTO big VALUES (60000, 'n')")
        .await;
    let big = QualifiedName { schema: "public".to_string(), name: "big".to_string() };
    let config = migrated.config(2);
    let tables = BTreeSet::from([big.clone()]);
    let mut listed =
        passerelle_verify::differing_keys(&config, &migrated.schema, &migrated.plan, &tables).await.unwrap();
    listed.values_mut().for_each(|keys| keys.sort());
    let expected: Vec<Vec<String>> = ["45678", "60000", "777"].iter().map(|key| vec![key.to_string()]).collect();
    assert_eq!(listed, BTreeMap::from([(big, expected)]));

    let recheck = Recheck { listed, ..Recheck::default() };
    let (sender, _receiver) = tokio::sync::mpsc::unbounded_channel();
    let report = passerelle_verify::recheck(&config, &migrated.schema, &migrated.plan, recheck, sender).await.unwrap();
    assert_eq!(report.tables[0].source_checksum, None, "{report:?}");
    expect![[r#"
        DIFFERS  public.big -> TARGET.big: 50000 rows in the source, 50000 in the target
            1 missing in the target
              id="777"
            1 extra in the target
              id="60000"
            1 different
              id="45678": v
        NOT VERIFIED: 1 of 1 tables differ, 0 schema objects missing
    "#]]
    .assert_eq(&report.render().replace(&migrated.target.name, "TARGET"));
}
on_both_targets!(differing_rows_are_listed_by_key_and_rechecked);

/// Between the steps, only the rows named that differ now are left for the cutover: of two listed
/// keys, the one tampered with; a row not named is not looked at.
async fn a_pass_between_the_steps_keeps_only_the_named_rows_that_differ(target: Target) {
    let migrated = Migrated::new(target, RANGES).await;
    migrated.on_target("UPDATE big SET v = 'x' WHERE id IN (45678, 3)").await;
    let big = QualifiedName { schema: "public".to_string(), name: "big".to_string() };
    let named: Vec<Vec<String>> = ["45678", "7"].iter().map(|key| vec![key.to_string()]).collect();
    let recheck = Recheck { listed: BTreeMap::from([(big.clone(), named)]), ..Recheck::default() };
    let (listed, whole) =
        passerelle_verify::differing_among(&migrated.config(2), &migrated.schema, &migrated.plan, &recheck)
            .await
            .unwrap();
    assert_eq!(listed, BTreeMap::from([(big, vec![vec!["45678".to_string()]])]));
    assert!(whole.is_empty(), "{whole:?}");
}
on_both_targets!(a_pass_between_the_steps_keeps_only_the_named_rows_that_differ);
