//! `passerelle migrate` end to end against the real stack: PostgreSQL → Kafka → MySQL and MariaDB.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use passerelle_testkit::{on_both_targets, unique_name, SourceDb, Stack, Target, TargetDb};

use crate::support::{passerelle, passerelle_child, Run};

/// The environment of one migration: its own source database, target database and topic prefix.
pub struct Setup {
    pub stack: Stack,
    pub source: SourceDb,
    pub target: TargetDb,
    pub prefix: String,
}

impl Setup {
    /// A migration from `source_sql` into a new database on `target`.
    pub async fn new(target: Target, source_sql: &str) -> Setup {
        let stack = Stack::for_target(target);
        let source = SourceDb::create(&stack).await;
        source.client().await.batch_execute(source_sql).await.expect("the source fixture loads");
        let target = TargetDb::create(&stack).await;
        Setup { stack, source, target, prefix: unique_name("migrate") }
    }

    pub fn env(&self) -> [(&str, &str); 3] {
        [
            ("PASSERELLE_SOURCE", &self.source.url),
            ("PASSERELLE_KAFKA", &self.stack.kafka),
            ("PASSERELLE_TARGET", &self.target.url),
        ]
    }

    pub fn args<'a>(&'a self, command: &'a str) -> Vec<&'a str> {
        vec![command, "--topic-prefix", &self.prefix]
    }

    pub fn migrate(&self) -> Run {
        self.migrate_with(&[])
    }

    pub fn migrate_with(&self, extra: &[&str]) -> Run {
        let mut args = self.args("migrate");
        args.extend(["--json", "--jobs", "2", "--partitions", "3"]);
        args.extend(extra);
        passerelle(&args, &self.env())
    }

    /// Drops the slot (if `migrate` left one) and topics.
    pub fn cleanup(&self) {
        let run = passerelle(&self.args("cleanup"), &self.env());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    }

    /// The migration's replication slot, which is also its publication's name.
    pub fn slot_name(&self) -> String {
        format!("passerelle_{}", self.prefix.replace(|c: char| !c.is_ascii_alphanumeric(), "_")).to_ascii_lowercase()
    }

    /// The migration's replication slot and publication, as far as they exist.
    pub async fn slot_and_publication(&self) -> (bool, bool) {
        let slot = self.slot_name();
        let row = self
            .source
            .client()
            .await
            .query_one(
                "select exists (select 1 from pg_replication_slots where slot_name = $1),
                        exists (select 1 from pg_publication where pubname = $1)",
                &[&slot],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }

    /// How many Kafka records the target has applied so far; 0 before the bookkeeping exists.
    pub async fn applied_offsets(&self) -> u64 {
        let mut conn = self.target.conn().await;
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(next_offset), 0) AS UNSIGNED) FROM passerelle.passerelle_offsets \
             WHERE topic LIKE '{}.%'",
            self.prefix
        );
        conn.query_first::<u64, _>(sql).await.ok().flatten().unwrap_or(0)
    }

    pub async fn target_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.try_target_rows(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// [`Setup::target_rows`], or the error: a table the run has not created yet, while a test waits.
    pub async fn try_target_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, mysql_async::Error> {
        let mut conn = self.target.conn().await;
        conn.query_drop(format!("USE `{}`", self.target.name)).await.unwrap();
        let rows: Vec<mysql_async::Row> = conn.query(sql).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        row.get_opt::<Option<Vec<u8>>, _>(i)
                            .and_then(Result::ok)
                            .flatten()
                            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    })
                    .collect()
            })
            .collect())
    }
}

pub fn s(text: &str) -> Option<String> {
    Some(text.to_string())
}

const EVERY_TYPE: &str = r#"
create type mood as enum ('sad', 'ok', 'happy');
create domain positive as integer check (value > 0);
create type pair as (n integer, label text);
create table every_type (
  id integer primary key,
  small smallint, big bigint, exact numeric(38,10), free numeric, single real, double double precision,
  cash money, flag boolean, fixed char(5), var varchar(20), body text, raw bytea,
  day date, clock time(6), clock_tz timetz, moment timestamp(6), instant timestamptz(6), span interval,
  id_u uuid, doc json, docb jsonb, markup xml, address inet, network cidr, mac macaddr, nibble bit(4),
  bits varbit(8), spot point, segment lseg, area box, route path, shape polygon, ring circle,
  words tsvector, range int4range, ints integer[], texts text[], feeling mood, pos positive, couple pair
);
insert into every_type values
 (1, -32768, 9223372036854775807, 1234567890123456789012345678.0123456789, 0.000000000000000000001,
  1.5e-38, 1.7976931348623157e308, '-1234.56', true, 'ab', '', 'tab	nl
 back\slash 𝄞 😀 é', '\x00ff5c0a', '1901-12-13', '23:59:59.999999', '12:00:00+03', '1969-07-20 20:17:40.000001',
  '2038-01-19 03:14:08.5+00', '1 year 2 months 3 days 04:05:06.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"b": 1,  "a": [1, 2]}', '{"ü": "😀 \"q\"", "n": {"a": [1, 2.50]}}', '<a>b</a>', '192.168.0.1/24',
  '10.0.0.0/8', '08:00:2b:01:02:03', B'1010', B'101', '(1.5,-2)', '[(0,0),(1,1)]', '(2,2),(0,0)',
  '[(0,0),(1,1),(2,0)]', '((0,0),(1,0),(1,1))', '<(0,0),1>', 'a fat cat', '[1,10)', '{1,NULL,3}',
  '{"a,b","",NULL,"q\"uote"}', 'happy', 7, '(1,"x y")'),
 (2, null, null, null, null, null, null, null, false, null, null, null, null, null, null, null, null, null, null, null,
  null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, '{}', '{}', null,
  null, null),
 (3, 0, 0, -0.0000000001, 12345678901234567890.5, -0.0, -1e-300, '0', false, 'x', 'spring forward', '', '\x',
  '2099-12-31', '00:00', '23:30:00-05:30', '2100-01-01 00:00', '2021-03-28 01:30:00+00', '-1 days -1 seconds',
  '00000000-0000-0000-0000-000000000000', '[]', '{}', '<x/>', '::1', '::/0', 'ff:ff:ff:ff:ff:ff', B'0000',
  B'', '(0,0)', '[(1,2),(3,4)]', '(1,1),(1,1)', '((0,0),(0,1))', '((0,0),(0,1),(1,1),(1,0))', '<(1,1),0.5>', '',
  'empty', '{{1,2},{3,4}}', '{"", " "}', 'sad', 1, '(,)');
create table pairs (a integer, b text, note text, primary key (a, b));
insert into pairs select i % 7, 'k' || (i / 7), repeat('x', i % 3) from generate_series(1, 500) i;
create table keyless (a integer, b text);
insert into keyless values (1, 'twin'), (1, 'twin'), (2, null), (null, null);
create table nothing (id bigint primary key, v text);
"#;

async fn every_type_composite_keys_keyless_and_empty_tables_arrive_exactly(target: Target) {
    every_type_arrives_exactly(target, &[]).await;
}
on_both_targets!(every_type_composite_keys_keyless_and_empty_tables_arrive_exactly, flavor = "multi_thread");

async fn every_type_arrives_exactly_through_the_json_encoding_too(target: Target) {
    every_type_arrives_exactly(target, &["--encoding", "json"]).await;
}
on_both_targets!(every_type_arrives_exactly_through_the_json_encoding_too, flavor = "multi_thread");

async fn every_type_arrives_exactly_through_the_insert_path_too(target: Target) {
    every_type_arrives_exactly(target, &["--load-path", "insert"]).await;
}
on_both_targets!(every_type_arrives_exactly_through_the_insert_path_too, flavor = "multi_thread");

async fn every_type_arrives_exactly(target: Target, extra: &[&str]) {
    let setup = Setup::new(target, EVERY_TYPE).await;
    let run = setup.migrate_with(extra);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    if let Some(forced) = extra.windows(2).find(|pair| pair[0] == "--load-path") {
        assert_eq!(summary["load_path"], forced[1], "the summary says how the snapshot loaded");
    }
    let rows = |table: &str| {
        summary["tables"].as_array().unwrap().iter().find(|t| t["table"] == table).unwrap()["rows"].as_u64().unwrap()
    };
    assert_eq!(
        (rows("public.every_type"), rows("public.pairs"), rows("public.keyless"), rows("public.nothing")),
        (3, 500, 4, 0)
    );

    let values = setup
        .target_rows(
            "SELECT small, big, exact, free, single, `double`, cash, flag, fixed, var, body, HEX(raw), day, clock,
                    clock_tz, moment, instant, span, id_u, doc, docb, markup, address, network, mac, BIN(nibble),
                    bits, ST_AsText(spot), ST_AsText(segment), ST_AsText(area), ST_AsText(route), ST_AsText(shape),
                    ring, words, `range`, ints, texts, feeling, pos, couple
             FROM every_type ORDER BY id",
        )
        .await;
    // A JSON column's text as MariaDB keeps it and as MySQL rewrites it.
    let json = |mariadb: &str, mysql: &str| s(if target == Target::MySql { mysql } else { mariadb });
    let expected_first = vec![
        s("-32768"),
        s("9223372036854775807"),
        s("1234567890123456789012345678.0123456789"),
        s("0.000000000000000000001000000000"),
        s("1.5e-38"),
        s("1.7976931348623157e308"),
        s("-1234.56"),
        s("1"),
        // CHAR(5): MySQL strips the padding when reading, as PostgreSQL does when comparing.
        s("ab"),
        s(""),
        s("tab\tnl\n back\\slash 𝄞 😀 é"),
        s("00FF5C0A"),
        s("1901-12-13"),
        s("23:59:59.999999"),
        s("09:00:00.000000"),
        s("1969-07-20 20:17:40.000001"),
        s("2038-01-19 03:14:08.500000"),
        s("P1Y2M3DT4H5M6.5S"),
        s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        // MySQL's JSON is binary, and normalises json text as it does jsonb (the report says so).
        json(r#"{"b": 1,  "a": [1, 2]}"#, r#"{"a": [1, 2], "b": 1}"#),
        json(r#"{"n": {"a": [1, 2.50]}, "ü": "😀 \"q\""}"#, r#"{"n": {"a": [1, 2.5]}, "ü": "😀 \"q\""}"#),
        s("<a>b</a>"),
        s("192.168.0.1/24"),
        s("10.0.0.0/8"),
        s("08:00:2b:01:02:03"),
        s("1010"),
        s("101"),
        s("POINT(1.5 -2)"),
        s("LINESTRING(0 0,1 1)"),
        s("POLYGON((2 2,0 2,0 0,2 0,2 2))"),
        s("LINESTRING(0 0,1 1,2 0)"),
        s("POLYGON((0 0,1 0,1 1,0 0))"),
        s("<(0,0),1>"),
        s("'a' 'cat' 'fat'"),
        s("[1,10)"),
        json("[1,null,3]", "[1, null, 3]"),
        json(r#"["a,b","",null,"q\"uote"]"#, r#"["a,b", "", null, "q\"uote"]"#),
        s("happy"),
        s("7"),
        json(r#"{"label":"x y","n":"1"}"#, r#"{"n": "1", "label": "x y"}"#),
    ];
    let differing: Vec<_> = (0..expected_first.len())
        .filter(|&i| values[0].get(i) != Some(&expected_first[i]))
        .map(|i| (i, values[0].get(i), &expected_first[i]))
        .collect();
    assert!(differing.is_empty(), "row 1, (column, got, expected): {differing:#?}");
    assert_eq!(
        values[1].iter().filter(|v| v.is_none()).count(),
        37,
        "row 2 is NULL but for flag, ints, texts: {:?}",
        values[1]
    );
    assert_eq!(values[1][7], s("0"));
    assert_eq!((values[1][35].clone(), values[1][36].clone()), (s("[]"), s("[]")));
    // MariaDB reads -0 back as 0; both engines compare them equal.
    assert_eq!(values[2][4], s("0"));
    assert_eq!(values[2][16], s("2021-03-28 01:30:00.000000"), "an instant inside a DST change stays UTC");
    assert_eq!(values[2][17], s("P-1DT-1S"));
    assert_eq!(values[2][11], s(""), "an empty bytea is empty, not NULL");
    assert_eq!(values[2][35], json("[[1,2],[3,4]]", "[[1, 2], [3, 4]]"));
    assert_eq!(values[2][39], json(r#"{"label":null,"n":null}"#, r#"{"n": null, "label": null}"#));

    let keyless = setup.target_rows("SELECT a, b, COUNT(*) FROM keyless GROUP BY a, b ORDER BY a, b").await;
    assert_eq!(keyless, vec![vec![None, None, s("1")], vec![s("1"), s("twin"), s("2")], vec![s("2"), None, s("1")]]);
    let pairs = setup.target_rows("SELECT COUNT(*), SUM(a), SUM(LENGTH(note)), COUNT(DISTINCT b) FROM pairs").await;
    let source = setup.source.client().await;
    let row = source
        .query_one(
            "select count(*)::text, sum(a)::text, sum(length(note))::text, count(distinct b)::text from pairs",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(pairs, vec![(0..4).map(|i| Some(row.get::<_, String>(i))).collect::<Vec<_>>()]);
    assert_eq!(setup.target_rows("SELECT COUNT(*) FROM nothing").await, vec![vec![s("0")]]);

    // A second run finds the migration done and copies nothing again.
    let again = setup.migrate_with(extra);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(setup.target_rows("SELECT COUNT(*) FROM pairs").await, vec![vec![s("500")]]);
    setup.cleanup();
}

async fn killed_in_the_middle_of_the_snapshot_a_rerun_ends_identical(target: Target) {
    let setup = Setup::new(
        target,
        "create table big (id bigint primary key, payload text not null, at timestamptz not null);
         insert into big select i, md5(i::text) || repeat('y', i % 50), timestamptz '2020-01-01' + i * interval '1 s'
         from generate_series(1, 400000) i;",
    )
    .await;
    let mut args = setup.args("migrate");
    args.extend(["--jobs", "2", "--partitions", "3"]);
    let mut child = passerelle_child(&args, &setup.env());
    // Kill it once the target has taken some rows but not all.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the first run never started loading");
        if setup.applied_offsets().await > 0 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the first run ended before it could be killed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = setup.target_rows("SELECT COUNT(*) FROM big").await;
    assert_ne!(partial, vec![vec![s("400000")]], "killed too late to test anything");

    let run = setup.migrate();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // The killed run may have put the whole snapshot in Kafka already (COPY-text batches travel fast),
    // and the rerun applies the rest of it; otherwise the rerun copies the snapshot over. Either way
    // the slot kept every change since the snapshot.
    assert!(!run.stderr.contains("is gone"), "{}", run.stderr);
    let target =
        setup.target_rows("SELECT COUNT(*), COUNT(DISTINCT id), SUM(id), SUM(LENGTH(payload)), MAX(at) FROM big").await;
    let source = setup.source.client().await;
    let row = source
        .query_one(
            "select count(*)::text, count(distinct id)::text, sum(id)::text, sum(length(payload))::text,
                    to_char(max(at) at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') from big",
            &[],
        )
        .await
        .unwrap();
    let expected: Vec<Option<String>> = (0..5).map(|i| Some(row.get::<_, String>(i))).collect();
    assert_eq!(target, vec![expected]);
    setup.cleanup();
}
on_both_targets!(killed_in_the_middle_of_the_snapshot_a_rerun_ends_identical, flavor = "multi_thread");

async fn a_value_the_target_cannot_hold_stops_the_load_and_names_the_column(target: Target) {
    a_value_the_target_cannot_hold_stops_the_load(target, &[]).await;
}
on_both_targets!(a_value_the_target_cannot_hold_stops_the_load_and_names_the_column, flavor = "multi_thread");

async fn a_value_the_target_cannot_hold_stops_the_insert_path_alike(target: Target) {
    a_value_the_target_cannot_hold_stops_the_load(target, &["--load-path", "insert"]).await;
}
on_both_targets!(a_value_the_target_cannot_hold_stops_the_insert_path_alike, flavor = "multi_thread");

async fn a_value_the_target_cannot_hold_stops_the_load(target: Target, extra: &[&str]) {
    let setup = Setup::new(
        target,
        "create table measures (id integer primary key, reading numeric(10,2));
         insert into measures values (1, 1.5), (2, 'NaN'), (3, 2.5);",
    )
    .await;
    let run = setup.migrate_with(extra);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("row (id)=(2), column reading: NaN has no equivalent in the target's numeric types"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("see the mapping report"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("a value for {}.measures from ", setup.target.name)), "{}", run.stderr);
    assert!(run.stderr.contains("cannot be converted: offset "), "{}", run.stderr);
    setup.cleanup();
}

async fn a_plan_table_that_exists_is_refused_unless_replace_and_other_tables_stay(target: Target) {
    let setup =
        Setup::new(target, "create table t (id integer primary key, v text); insert into t values (1, 'a'), (2, 'b');")
            .await;
    let mut conn = setup.target.conn().await;
    let db = &setup.target.name;
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.t (x INT PRIMARY KEY); INSERT INTO `{db}`.t VALUES (7);
         CREATE TABLE `{db}`.other (x INT PRIMARY KEY); INSERT INTO `{db}`.other VALUES (8);"
    ))
    .await
    .unwrap();
    let refused = setup.migrate();
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains(&format!("({db}.t); migrate into other databases (--map), or pass --replace")),
        "{}",
        refused.stderr
    );
    assert_eq!(setup.target_rows("SELECT x FROM t").await, vec![vec![s("7")]], "a refused run changes nothing");
    let refused = setup.migrate_with(&["--replace"]);
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains(&format!("({db}.other); migrate into empty databases, or pass --force")),
        "{}",
        refused.stderr
    );

    let run = setup.migrate_with(&["--replace", "--force"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(setup.target_rows("SELECT COUNT(*) FROM t").await, vec![vec![s("2")]]);
    assert_eq!(setup.target_rows("SELECT x FROM other").await, vec![vec![s("8")]], "--force harms nothing");
    let tables = setup
        .target_rows("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1")
        .await;
    assert_eq!(tables, vec![vec![s("other")], vec![s("t")]], "no bookkeeping among the user's tables");
    setup.cleanup();
}
on_both_targets!(a_plan_table_that_exists_is_refused_unless_replace_and_other_tables_stay, flavor = "multi_thread");

async fn a_target_database_dropped_and_recreated_is_rebuilt_by_the_same_migrate(target: Target) {
    let setup = Setup::new(
        target,
        "create table t (id integer primary key, v text); insert into t select i, md5(i::text) from generate_series(1, 3000) i;
         create table u (id integer primary key); insert into u select generate_series(1, 500);",
    )
    .await;
    let first = setup.migrate();
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let mut conn = setup.target.conn().await;
    let db = &setup.target.name;
    conn.query_drop(format!("DROP DATABASE `{db}`; CREATE DATABASE `{db}`")).await.unwrap();

    let again = setup.migrate();
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("the target lost 2 table(s) of run"), "{}", again.stderr);
    let summary: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    assert_eq!(setup.target_rows("SELECT COUNT(*) FROM t").await, vec![vec![s("3000")]]);
    setup.cleanup();
}
on_both_targets!(a_target_database_dropped_and_recreated_is_rebuilt_by_the_same_migrate, flavor = "multi_thread");

async fn a_rerun_with_other_settings_is_refused_up_front(target: Target) {
    let setup = Setup::new(target, "create table t (id integer primary key); insert into t values (1);").await;
    let first = setup.migrate();
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    // The same migration (topic prefix) asked for another schema and another target database.
    let other = passerelle_testkit::with_database(&setup.target.url, &unique_name("other"));
    let env = [setup.env()[0], setup.env()[1], ("PASSERELLE_TARGET", other.as_str())];
    let mut args = setup.args("migrate");
    args.extend(["--schema", "nosuch"]);
    let run = passerelle(&args, &env);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("began with --schema public, this command asks for nosuch"), "{}", run.stderr);
    assert!(run.stderr.contains("passerelle cleanup --topic-prefix"), "{}", run.stderr);
    let run = passerelle(&setup.args("migrate"), &env);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let expected =
        format!("began with target databases public={}, this command asks for public=other_", setup.target.name);
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    setup.cleanup();
}
on_both_targets!(a_rerun_with_other_settings_is_refused_up_front, flavor = "multi_thread");
