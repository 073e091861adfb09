//! `passerelle plan --apply all` against the real PostgreSQL, and MySQL and MariaDB: a schema with
//! every built-in type and feature, and the airline demo's structure. What the report says is
//! checked against what the target's information_schema shows.

use std::path::{Path, PathBuf};

use mysql_async::prelude::Queryable;
use passerelle_testkit::{on_both_targets, pg_client, unique_name, SourceDb, Stack, Target, TargetDb};
use serde_json::Value;

use crate::support::{passerelle, Run};

/// A source database loaded with `fixture`, after `admin_sql` ran as the superuser.
async fn source_with(stack: &Stack, admin_sql: &str, fixture: &str) -> SourceDb {
    let source = SourceDb::create(stack).await;
    pg_client(&source.admin_url).await.batch_execute(admin_sql).await.unwrap();
    source.client().await.batch_execute(fixture).await.unwrap();
    source
}

fn plan(source: &SourceDb, target: &TargetDb, out: &Path, schema: &str, extra: &[&str]) -> Run {
    let out = out.to_str().unwrap();
    let mut args = vec!["plan", "--schema", schema, "--out", out, "--json"];
    args.extend_from_slice(extra);
    passerelle(&args, &[("PASSERELLE_SOURCE", source.url.as_str()), ("PASSERELLE_TARGET", target.url.as_str())])
}

fn report(run: &Run) -> Value {
    assert_eq!(run.code, 0, "plan failed:\n{}\n{}", run.stdout, run.stderr);
    let output: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("plan --json printed no JSON ({error}): {}", run.stdout));
    output["report"].clone()
}

/// The report's entry for `kind` `name`, as (outcome, detail).
pub(crate) fn object(report: &Value, kind: &str, name: &str) -> (String, String) {
    let found = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
        .unwrap_or_else(|| panic!("the report has no {kind} {name}"));
    (found["outcome"].as_str().unwrap().to_string(), found["detail"].as_str().unwrap_or_default().to_string())
}

/// The report's (target type, fidelity) of a column.
fn column(report: &Value, table: &str, column: &str) -> (String, String) {
    let found = report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["table"] == table && c["column"] == column)
        .unwrap_or_else(|| panic!("the report has no column {table}.{column}"));
    (found["target_type"].as_str().unwrap().to_string(), found["fidelity"].as_str().unwrap().to_string())
}

fn out_dir() -> PathBuf {
    std::env::temp_dir().join(unique_name("passerelle_plan"))
}

async fn strings(conn: &mut mysql_async::Conn, sql: &str, database: &str) -> Vec<String> {
    conn.exec(sql, (database,)).await.unwrap()
}

async fn every_type_applies_and_every_object_is_reported(server: Target) {
    let stack = Stack::for_target(server);
    let source = source_with(
        &stack,
        "create extension hstore; create extension citext;",
        include_str!("fixtures/every_type.sql"),
    )
    .await;
    let target = TargetDb::reserve(&stack);
    let out = out_dir();
    let report = report(&plan(&source, &target, &out, "kitchen", &["--apply", "all"]));
    let mysql = server == Target::MySql;
    assert_eq!(report["dialect"], if mysql { "mysql9" } else { "mariadb" });
    let version = server.assert_version().await;
    assert_eq!(report["server"], passerelle_ddl::Server::from_version(&version).unwrap().to_string());
    for file in ["pre-data.sql", "post-data.sql", "report.txt", "report.json"] {
        assert!(out.join(file).is_file(), "{file} was not written");
    }

    // Every column of the source is in the report, each with the fidelity it deserves.
    let client = source.client().await;
    let n_columns: i64 = client
        .query_one(
            "select count(*) from information_schema.columns where table_schema = 'kitchen'
             and table_name in ('every_type', 'events', 'event_notes', 'tickets')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(report["columns"].as_array().unwrap().len() as i64, n_columns);
    let t = "kitchen.every_type";
    for (name, fidelity) in [
        ("c_integer", "exact"),
        ("c_numeric", "exact"),
        ("c_numeric_free", "lossy"),
        ("c_real", "lossy"),
        ("c_money", "lossy"),
        ("c_text", "exact"),
        ("c_text_en", "lossy"),
        ("c_bytea", "exact"),
        ("c_date", "lossy"),
        ("c_time", "exact"),
        ("c_timetz", "lossy"),
        ("c_timestamptz", "lossy"),
        ("c_interval", "lossy"),
        ("c_uuid", "exact"),
        // MySQL's JSON is binary: the text's key order and whitespace go.
        ("c_json", if mysql { "lossy" } else { "exact" }),
        ("c_jsonb", "exact"),
        ("c_xml", "lossy"),
        ("c_inet", "lossy"),
        ("c_bit", "exact"),
        ("c_varbit", "lossy"),
        ("c_point", "lossy"),
        ("c_circle", "lossy"),
        ("c_tsvector", "lossy"),
        ("c_int4range", "lossy"),
        ("c_int4multirange", "lossy"),
        ("c_oid", "exact"),
        ("c_regclass", "lossy"),
        ("c_pg_lsn", "lossy"),
        ("c_int_array", "lossy"),
        ("c_text_matrix", "lossy"),
        ("c_mood", "exact"),
        ("c_positive", "exact"),
        ("c_address", "lossy"),
        ("c_hstore", "lossy"),
        ("c_citext", "exact"),
    ] {
        assert_eq!(column(&report, t, name).1, fidelity, "{name}");
    }
    assert_eq!(column(&report, t, "c_timestamptz").0, "DATETIME(6)");
    // Byte order, no padding, as PostgreSQL's C collation compares.
    let binary = if mysql { "utf8mb4_0900_bin" } else { "utf8mb4_nopad_bin" };
    assert!(column(&report, t, "c_text").0.contains(binary));

    // Every object, with an honest outcome.
    for (kind, name, outcome) in [
        ("table", "kitchen.every_type", "migrated"),
        ("table", "kitchen.events", "translated"),
        ("partition", "kitchen.events_2024", "translated"),
        ("table", "kitchen.event_notes", "translated"),
        ("identity", "kitchen.every_type.id", "translated"),
        ("generated column", "kitchen.every_type.c_total", "migrated"),
        ("check", "kitchen.every_type.every_type_code_length", "migrated"),
        ("check", "kitchen.every_type.c_positive (domain kitchen.positive_int check positive_int_check)", "migrated"),
        ("unique", "kitchen.every_type.every_type_code_key", "migrated"),
        ("index", "kitchen.every_type.every_type_lower_code", "translated"),
        ("index", "kitchen.every_type.every_type_varchar_when_happy", "translated"),
        ("index", "kitchen.every_type.every_type_ts_desc", "migrated"),
        ("index", "kitchen.every_type.every_type_hash", "translated"),
        ("index", "kitchen.every_type.every_type_gin", "not_migrated"),
        ("foreign key", "kitchen.event_notes.event_notes_event_id_happened_fkey", "translated"),
        ("sequence", "kitchen.every_type_id_seq", "migrated"),
        ("sequence", "kitchen.event_notes_note_id_seq", "migrated"),
        // MySQL has no sequences: a one-row table.
        ("sequence", "kitchen.ticket_numbers", if mysql { "translated" } else { "migrated" }),
        ("view", "kitchen.every_type_names", "migrated"),
        // A table filled from the definition.
        ("materialized view", "kitchen.event_counts", "translated"),
        ("enum", "kitchen.mood", "migrated"),
        ("domain", "kitchen.positive_int", "translated"),
        ("composite type", "kitchen.address", "translated"),
        ("trigger", "kitchen.every_type.every_type_touch", "not_migrated"),
        ("function", "kitchen.touch()", "not_migrated"),
        ("procedure", "kitchen.noop()", "not_migrated"),
        ("extension", "hstore", "not_migrated"),
        ("extension", "citext", "not_migrated"),
    ] {
        assert_eq!(object(&report, kind, name).0, outcome, "{kind} {name}: {:?}", object(&report, kind, name));
    }

    // What the report says is migrated is on the target.
    let mut conn = target.conn().await;
    let db = target.name.as_str();
    let mut tables =
        strings(&mut conn, "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", db).await;
    tables.sort();
    assert_eq!(
        tables,
        ["event_counts", "event_notes", "events", "every_type", "every_type_names", "ticket_numbers", "tickets"]
    );
    let checks = strings(
        &mut conn,
        "SELECT constraint_name FROM information_schema.table_constraints WHERE constraint_schema = ?
         AND table_name = 'every_type' AND constraint_type = 'CHECK' ORDER BY 1",
        db,
    )
    .await;
    assert!(checks.contains(&"every_type_code_length".to_string()), "{checks:?}");
    let ticket_default: Vec<Option<String>> = conn
        .exec(
            "SELECT column_default FROM information_schema.columns WHERE table_schema = ? AND table_name = 'tickets'
             AND column_name = 'ticket_no'",
            (db,),
        )
        .await
        .unwrap();
    let next: Option<i64> = if mysql {
        // No default from a sequence in MySQL: the report says so, and how to draw the next value,
        // with a statement that runs.
        assert_eq!(ticket_default, [None]);
        assert_eq!(object(&report, "default", "kitchen.tickets.ticket_no").0, "not_migrated");
        let (_, detail) = object(&report, "sequence", "kitchen.ticket_numbers");
        let update = detail.split_once("nextval is ").unwrap().1.split_once("; SELECT LAST_INSERT_ID()").unwrap().0;
        conn.query_drop(update).await.unwrap();
        conn.query_first("SELECT LAST_INSERT_ID()").await.unwrap()
    } else {
        assert!(ticket_default[0].as_ref().unwrap().to_lowercase().contains("nextval"), "{ticket_default:?}");
        conn.query_first(format!("SELECT NEXTVAL(`{db}`.`ticket_numbers`)")).await.unwrap()
    };
    assert_eq!(next, Some(1020));
    conn.query_drop(format!(
        "INSERT INTO `{db}`.`every_type` (c_code, c_jsonb, c_mood, c_positive) VALUES ('ab', '{{\"name\": \"x\"}}', 'ok', 1)"
    ))
    .await
    .unwrap();
    let name: Option<String> = conn.query_first(format!("SELECT name FROM `{db}`.`every_type_names`")).await.unwrap();
    assert_eq!(name.as_deref(), Some("x"));

    // A second apply into the now non-empty database is refused.
    let again = plan(&source, &target, &out, "kitchen", &["--apply", "pre"]);
    assert_eq!(again.code, 1, "{}\n{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    std::fs::remove_dir_all(&out).unwrap();
}
on_both_targets!(every_type_applies_and_every_object_is_reported);

async fn airline_keys_checks_and_comments_reach_the_target(server: Target) {
    let stack = Stack::for_target(server);
    let source = source_with(&stack, "select 1", include_str!("fixtures/airline.sql")).await;
    let target = TargetDb::reserve(&stack);
    let out = out_dir();
    let report = report(&plan(&source, &target, &out, "bookings", &["--apply", "all"]));
    let mut conn = target.conn().await;
    let db = target.name.as_str();

    let count = |kind: &str| -> Vec<String> {
        report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == kind && o["outcome"] != "not_migrated")
            .map(|o| o["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(count("table").len(), 8);
    assert_eq!(count("primary key").len(), 8);
    assert_eq!(count("unique").len(), 3);
    assert_eq!(count("foreign key").len(), 8);
    assert_eq!(count("check").len(), 7);

    // MariaDB's JSON columns add column-level JSON_VALID checks: only table-level checks are ours.
    // MySQL has no LEVEL column, and no such checks.
    let level = if server == Target::MySql { "" } else { " AND level = 'Table'" };
    let n_checks: Option<i64> = conn
        .exec_first(
            format!("SELECT COUNT(*) FROM information_schema.check_constraints WHERE constraint_schema = ?{level}"),
            (db,),
        )
        .await
        .unwrap();
    assert_eq!(n_checks, Some(7));
    let constraints: Vec<(String, i64)> = conn
        .exec(
            "SELECT constraint_type, COUNT(*) FROM information_schema.table_constraints WHERE constraint_schema = ?
             AND constraint_type <> 'CHECK' GROUP BY constraint_type ORDER BY 1",
            (db,),
        )
        .await
        .unwrap();
    assert_eq!(
        constraints,
        [("FOREIGN KEY".to_string(), 8), ("PRIMARY KEY".to_string(), 8), ("UNIQUE".to_string(), 3)]
    );
    let composite_pks: Vec<String> = conn
        .exec(
            "SELECT table_name FROM information_schema.key_column_usage WHERE constraint_schema = ?
             AND constraint_name = 'PRIMARY' GROUP BY table_name HAVING COUNT(*) = 2 ORDER BY 1",
            (db,),
        )
        .await
        .unwrap();
    assert_eq!(composite_pks, ["boarding_passes", "seats", "ticket_flights"]);
    let cascade: Vec<(String, String)> = conn
        .exec(
            "SELECT constraint_name, delete_rule FROM information_schema.referential_constraints
             WHERE constraint_schema = ? AND delete_rule <> 'NO ACTION'",
            (db,),
        )
        .await
        .unwrap();
    assert_eq!(cascade, [("seats_aircraft_code_fkey".to_string(), "CASCADE".to_string())]);
    let composite_fk: Vec<String> = conn
        .exec(
            "SELECT column_name FROM information_schema.key_column_usage WHERE constraint_schema = ?
             AND table_name = 'boarding_passes' AND referenced_table_name = 'ticket_flights' ORDER BY ordinal_position",
            (db,),
        )
        .await
        .unwrap();
    assert_eq!(composite_fk, ["ticket_no", "flight_id"]);
    let auto_increment: Vec<(String, u64)> = conn
        .exec(
            "SELECT table_name, auto_increment FROM information_schema.tables WHERE table_schema = ?
             AND auto_increment IS NOT NULL",
            (db,),
        )
        .await
        .unwrap();
    assert_eq!(auto_increment, [("flights".to_string(), 33_122)]);
    let comments: Vec<(String, String)> = conn
        .exec(
            "SELECT table_name, table_comment FROM information_schema.tables WHERE table_schema = ?
             AND table_type = 'BASE TABLE' ORDER BY 1",
            (db,),
        )
        .await
        .unwrap();
    assert_eq!(comments.len(), 8);
    assert!(comments.iter().all(|(_, comment)| !comment.is_empty()), "{comments:?}");
    let column_comment: Option<String> = conn
        .exec_first(
            "SELECT column_comment FROM information_schema.columns WHERE table_schema = ? AND table_name = 'flights'
             AND column_name = 'status'",
            (db,),
        )
        .await
        .unwrap();
    assert_eq!(column_comment.as_deref(), Some("Flight status"));

    // The four views call lang(), timezone() or use WITH: each is reported with its reason.
    for view in ["aircrafts", "airports", "flights_v", "routes"] {
        let (outcome, detail) = object(&report, "view", &format!("bookings.{view}"));
        assert_eq!(outcome, "not_migrated", "{view}");
        assert!(!detail.is_empty(), "{view}");
    }
    assert_eq!(object(&report, "sequence", "bookings.flights_flight_id_seq").0, "migrated");
    std::fs::remove_dir_all(&out).unwrap();
}
on_both_targets!(airline_keys_checks_and_comments_reach_the_target);

/// `--check-values` reads every value whose conversion can fail and names the first row per column
/// by its primary key, before anything moves; values that convert are not reported.
#[tokio::test]
async fn check_values_names_the_rows_the_target_would_refuse() {
    let stack = Stack::from_env();
    let source = source_with(
        &stack,
        "",
        "create table readings (site text, seq int, taken timestamptz, reading numeric, note text,
                                primary key (site, seq));
         insert into readings values ('a', 1, '2024-01-01 10:00+00', 1.5, 'fine'),
                                     ('a', 2, 'infinity', 'NaN', 'two refused'),
                                     ('b', 1, '0044-03-15 12:00+00 BC', 2.5, 'one refused'),
                                     ('b', 2, null, null, 'nulls are fine');
         create table clean (id int primary key, at date);
         insert into clean values (1, '2024-02-29');",
    )
    .await;
    let target = TargetDb::reserve(&stack);
    let out = out_dir();
    let run = plan(&source, &target, &out, "public", &["--check-values"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let output: Value = serde_json::from_str(&run.stdout).unwrap();
    let refused: Vec<(String, u64, String)> = output["refused_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["column"].as_str().unwrap().into(),
                c["n_refused"].as_u64().unwrap(),
                c["first_key"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        vec![
            ("public.readings.taken".to_string(), 2, "(site, seq)=(a, 2)".to_string()),
            ("public.readings.reading".to_string(), 1, "(site, seq)=(a, 2)".to_string()),
        ]
    );
    assert!(output["refused_values"][0]["cause"].as_str().unwrap().contains("outside the target's date range"));

    let human = passerelle(
        &["plan", "--schema", "public", "--out", out.to_str().unwrap(), "--check-values"],
        &[("PASSERELLE_SOURCE", source.url.as_str()), ("PASSERELLE_TARGET", target.url.as_str())],
    );
    assert_eq!(human.code, 1);
    assert!(
        human.stdout.contains("REFUSED  public.readings.taken: 2 value(s), the first at (site, seq)=(a, 2)"),
        "{}",
        human.stdout
    );
    assert!(!human.stdout.contains("public.clean"), "{}", human.stdout);

    source.client().await.batch_execute("delete from readings where note like '%refused'").await.unwrap();
    let fixed = plan(&source, &target, &out, "public", &["--check-values"]);
    assert_eq!(fixed.code, 0, "{}\n{}", fixed.stdout, fixed.stderr);
    assert_eq!(serde_json::from_str::<Value>(&fixed.stdout).unwrap()["refused_values"], serde_json::json!([]));
    std::fs::remove_dir_all(&out).unwrap();
}

/// On a MySQL that requires primary keys (`sql_require_primary_key`, as managed services set it), a
/// keyless table gets an invisible AUTO_INCREMENT key that the application's `SELECT *` never sees;
/// without it the server refuses the table.
#[tokio::test]
async fn a_keyless_table_gets_an_invisible_key_where_mysql_requires_one() {
    use passerelle_model::endpoint::DbEndpoint;
    let stack = Stack::for_target(Target::MySql);
    assert!(Target::MySql.assert_version().await.starts_with("9."));
    let source = source_with(&stack, "", "create table log (at timestamptz, msg text)").await;
    let source_endpoint = DbEndpoint::parse_postgres(&source.url).unwrap();
    let mut client = passerelle_pg::connect(&source_endpoint).await.unwrap();
    let schema = passerelle_pg::catalog::read(&mut client, &source_endpoint, &["public".to_string()]).await.unwrap();
    let target = TargetDb::create(&stack).await;
    let target_endpoint = DbEndpoint::parse_mysql(&target.url).unwrap();
    let plan = |require_primary_key| {
        let config = passerelle_ddl::Config {
            server: passerelle_ddl::Server::from_version("9.7.4").unwrap(),
            databases: [("public".to_string(), target.name.clone())].into(),
            types: passerelle_ddl::TypeOptions {
                uuid: passerelle_ddl::UuidAs::Native,
                interval: passerelle_ddl::IntervalAs::Text,
                text_collation: None,
            },
            require_primary_key,
            trigger_refusal: None,
        };
        passerelle_ddl::plan(&schema, &config)
    };

    let mut conn = passerelle_mysql::connect(&target_endpoint).await.unwrap();
    conn.query_drop("SET SESSION sql_require_primary_key = ON").await.unwrap();
    assert!(passerelle_mysql::schema_apply::requires_primary_key(&mut conn, &target_endpoint).await.unwrap());
    let refused = passerelle_mysql::schema_apply::apply(&mut conn, &target_endpoint, &plan(false).pre_data).await;
    assert!(refused.unwrap_err().to_string().contains("3750"), "MySQL refuses a keyless table when it requires keys");

    let keyed = plan(true);
    let (outcome, detail) =
        object(&serde_json::to_value(&keyed.report).unwrap(), "primary key", "public.log.passerelle_row_id");
    assert_eq!(outcome, "translated");
    assert!(detail.contains("invisible AUTO_INCREMENT key"), "{detail}");
    passerelle_mysql::schema_apply::apply(&mut conn, &target_endpoint, &keyed.pre_data).await.unwrap();
    conn.query_drop(format!("INSERT INTO `{}`.log (at, msg) VALUES (NOW(), 'a'), (NOW(), 'b')", target.name))
        .await
        .unwrap();
    let columns: Vec<mysql_async::Row> = conn.query(format!("SELECT * FROM `{}`.log", target.name)).await.unwrap();
    assert_eq!(columns.len(), 2);
    assert_eq!(columns[0].columns_ref().len(), 2, "SELECT * does not see the invisible key");
    let ids: Vec<u64> =
        conn.query(format!("SELECT passerelle_row_id FROM `{}`.log ORDER BY 1", target.name)).await.unwrap();
    assert_eq!(ids, vec![1, 2]);
    let _ = conn.disconnect().await;
}

/// The DDL is written for the target's version, and every statement of it applies. MySQL 9.7 has no
/// `MD5()`: each md5() object is reported as not migrated there, with the reason. MariaDB has it, and
/// its `MD5()` gives PostgreSQL's md5(), as MySQL 8's does (whose DDL only the golden files of
/// crates/ddl check: no MySQL 8.0 can be installed here). A CHECK on the current time applies
/// nowhere, and names that are reserved words in MySQL 8.4 and 9 apply everywhere.
async fn the_ddl_is_written_for_the_targets_version(server: Target) {
    let stack = Stack::for_target(server);
    let source = source_with(&stack, "", include_str!("fixtures/versions.sql")).await;
    let target = TargetDb::reserve(&stack);
    let out = out_dir();
    let report = report(&plan(&source, &target, &out, "vault", &["--apply", "all"]));
    let written_for = passerelle_ddl::Server::from_version(&server.assert_version().await).unwrap();
    assert_eq!(report["server"], written_for.to_string());
    let pre_data = std::fs::read_to_string(out.join("pre-data.sql")).unwrap();
    let header = format!("-- passerelle plan: pre-data DDL written for {written_for} (the target's version)");
    assert!(pre_data.starts_with(&header), "{pre_data}");
    let mysql = server == Target::MySql;
    // A default translated as is has no line of its own in the report.
    let md5_default = if mysql { [("default", "vault.secrets.token")].as_slice() } else { &[] };
    for &(kind, name) in md5_default.iter().chain(&[
        ("generated column", "vault.secrets.digest"),
        ("check", "vault.secrets.secrets_qualify_check"),
        ("index", "vault.secrets.secrets_md5_library"),
        ("view", "vault.secret_digests"),
    ]) {
        let (outcome, detail) = object(&report, kind, name);
        match mysql {
            true => {
                assert!(outcome == "not_migrated" && detail.contains("MySQL 9.6 removed MD5()"), "{name}: {detail}")
            }
            false => assert_ne!(outcome, "not_migrated", "{kind} {name}: {detail}"),
        }
    }
    let (outcome, detail) = object(&report, "check", "vault.secrets.secrets_external_check");
    assert!(outcome == "not_migrated" && detail.contains("now() changes"), "{detail}");
    for (kind, name) in [
        ("table", "vault.secrets"),
        ("check", "vault.secrets.secrets_parallel_check"),
        ("index", "vault.secrets.secrets_lower_manual"),
        ("view", "vault.secret_manuals"),
        ("foreign key", "vault.loans.loans_shelf_fkey"),
    ] {
        assert_ne!(object(&report, kind, name).0, "not_migrated", "{kind} {name}");
    }

    // The source's row, written on the target: where the target computes a value, it is PostgreSQL's.
    let row = source.client().await.query_one("select digest, md5(library) from vault.secrets", &[]).await.unwrap();
    let (digest, library_md5): (String, String) = (row.get(0), row.get(1));
    let mut conn = target.conn().await;
    let db = target.name.as_str();
    conn.query_drop(format!(
        "INSERT INTO `{db}`.secrets (id, manual, parallel, `qualify`, `tablesample`, `library`, `external`)
         VALUES (1, 'Handbuch 𝄞', 2, 'q', 3, 'bibliothèque', '2020-01-01')"
    ))
    .await
    .unwrap();
    if mysql {
        // A plain column there: the sink writes the source's values into it.
        conn.exec_drop(format!("UPDATE `{db}`.secrets SET digest = ?"), (&digest,)).await.unwrap();
    }
    let (stored, token): (String, Option<String>) =
        conn.query_first(format!("SELECT digest, token FROM `{db}`.secrets")).await.unwrap().unwrap();
    assert_eq!(stored, digest);
    assert_eq!(token.map(|token| token.len()), if mysql { None } else { Some(32) }, "the default draws an md5");
    let qualify: Option<String> =
        conn.query_first(format!("SELECT `qualify` FROM `{db}`.secret_manuals")).await.unwrap();
    assert_eq!(qualify.as_deref(), Some("Handbuch 𝄞"));
    let views =
        strings(&mut conn, "SELECT table_name FROM information_schema.views WHERE table_schema = ? ORDER BY 1", db)
            .await;
    let indexes = strings(
        &mut conn,
        "SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = ?
         AND table_name = 'secrets' ORDER BY 1",
        db,
    )
    .await;
    // md5(''), which the check refuses where it holds.
    let empty_md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let refused =
        conn.query_drop(format!("INSERT INTO `{db}`.secrets (id, `qualify`) VALUES (2, '{empty_md5}')")).await;
    if mysql {
        assert_eq!(views, ["secret_manuals"]);
        assert_eq!(indexes, ["PRIMARY", "secrets_lower_manual"]);
        refused.expect("no check on md5 there");
    } else {
        assert_eq!(views, ["secret_digests", "secret_manuals"]);
        assert_eq!(indexes, ["PRIMARY", "secrets_lower_manual", "secrets_md5_library"]);
        let tablesample: Option<String> =
            conn.query_first(format!("SELECT `tablesample` FROM `{db}`.secret_digests")).await.unwrap();
        assert_eq!(tablesample, Some(library_md5));
        assert!(refused.unwrap_err().to_string().contains("secrets_qualify_check"), "the check holds there");
    }
    // The foreign key applied in the key's column order, each column still paired with its own.
    let pairs: Vec<(String, String)> = conn
        .exec(
            "SELECT column_name, referenced_column_name FROM information_schema.key_column_usage
             WHERE constraint_schema = ? AND constraint_name = 'loans_shelf_fkey' ORDER BY ordinal_position",
            (db,),
        )
        .await
        .unwrap();
    assert_eq!(pairs, [("y".to_string(), "a".to_string()), ("x".to_string(), "b".to_string())]);
    std::fs::remove_dir_all(&out).unwrap();
}
on_both_targets!(the_ddl_is_written_for_the_targets_version);

/// `--target-version` plans for a server without asking the target (which need not be reachable), and
/// is refused with `--apply`, which writes for the server it applies to.
#[tokio::test]
async fn a_target_version_plans_without_a_target() {
    let stack = Stack::from_env();
    let source = source_with(&stack, "", include_str!("fixtures/versions.sql")).await;
    let out = out_dir();
    let unreachable = "mysql://nobody@127.0.0.1:9/vault";
    let env = [("PASSERELLE_SOURCE", source.url.as_str()), ("PASSERELLE_TARGET", unreachable)];
    let dir = out.to_str().unwrap();
    let run = passerelle(&["plan", "--schema", "vault", "--out", dir, "--target-version", "mysql-8.4"], &env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("DDL written for MySQL 8.4 (--target-version)\n"), "{}", run.stdout);
    let pre_data = std::fs::read_to_string(out.join("pre-data.sql")).unwrap();
    assert!(pre_data.contains("GENERATED ALWAYS AS (MD5(`manual`)) STORED"), "{pre_data}");
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(report.starts_with("written for: MySQL 8.4 (dialect mysql8)\n"), "{report}");

    let nine = passerelle(&["plan", "--schema", "vault", "--out", dir, "--target-version", "mysql-9.7"], &env);
    assert_eq!(nine.code, 0, "{}\n{}", nine.stdout, nine.stderr);
    assert!(!std::fs::read_to_string(out.join("pre-data.sql")).unwrap().contains("MD5("));

    let apply = passerelle(&["plan", "--schema", "vault", "--target-version", "mysql-8.4", "--apply", "all"], &env);
    assert_eq!(apply.code, 2, "{}\n{}", apply.stdout, apply.stderr);
    assert!(apply.stderr.contains("--apply"), "{}", apply.stderr);
    let old = passerelle(&["plan", "--schema", "vault", "--target-version", "mysql-5.7"], &env);
    assert!(old.code == 2 && old.stderr.contains("older than Passerelle supports"), "{}", old.stderr);
    std::fs::remove_dir_all(&out).unwrap();
}
