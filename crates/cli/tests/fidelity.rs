//! Issue 16's patterns applied on both targets: sequences that feed one column's default without
//! being `OWNED BY` it become AUTO_INCREMENT; `last_update` triggers become `ON UPDATE
//! CURRENT_TIMESTAMP`, added after the rows are in, so migrated rows keep the source's timestamps.

use mysql_async::prelude::Queryable;
use passerelle_testkit::{on_both_targets, unique_name, SourceDb, Stack, Target, TargetDb};
use serde_json::Value;

use crate::check::{check, finding};
use crate::migrate::Setup;
use crate::online::{cut_over, wait_for_the_snapshot_in_kafka};
use crate::plan::object;
use crate::support::{passerelle, passerelle_spawn};

const FIXTURE: &str = include_str!("fixtures/fidelity.sql");
const TABLES: [&str; 10] =
    ["actor", "address", "category", "city", "country", "customer", "film", "language", "rental", "staff"];

async fn fidelity_patterns_apply_and_behave(server: Target) {
    let stack = Stack::for_target(server);
    server.assert_version().await;
    let source = SourceDb::create(&stack).await;
    source.client().await.batch_execute(FIXTURE).await.unwrap();
    let target = TargetDb::reserve(&stack);
    let out = std::env::temp_dir().join(unique_name("passerelle_fidelity"));
    let run = passerelle(
        &["plan", "--schema", "public", "--out", out.to_str().unwrap(), "--json", "--apply", "all"],
        &[("PASSERELLE_SOURCE", source.url.as_str()), ("PASSERELLE_TARGET", target.url.as_str())],
    );
    assert_eq!(run.code, 0, "plan failed:\n{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str::<Value>(&run.stdout).unwrap()["report"].clone();
    let mysql = server == Target::MySql;

    for table in TABLES {
        let (outcome, detail) = object(&report, "sequence", &format!("public.{table}_{table}_id_seq"));
        assert_eq!(outcome, "migrated", "{table}: {detail}");
        assert!(detail.starts_with(&format!("AUTO_INCREMENT of public.{table}.{table}_id,")), "{detail}");
        let (outcome, detail) = object(&report, "trigger", &format!("public.{table}.last_updated"));
        assert_eq!(outcome, "translated", "{table}: {detail}");
    }
    assert_eq!(object(&report, "function", "public.last_updated()").0, "translated");
    let (outcome, detail) = object(&report, "sequence", "public.shared_ids");
    assert_eq!(outcome, if mysql { "translated" } else { "migrated" }, "{detail}");
    assert!(detail.contains("the default of 2 columns"), "{detail}");
    if mysql {
        assert_eq!(object(&report, "default", "public.ledger.entry_id").0, "not_migrated");
    }
    let (outcome, detail) = object(&report, "trigger", "public.actor.shout");
    assert!(outcome == "not_migrated" && detail.contains("\"insert\" is not translated"), "{detail}");
    assert_eq!(object(&report, "function", "public.shout()").0, "not_migrated");
    let (outcome, detail) = object(&report, "materialized view", "public.group_sizes");
    assert!(outcome == "translated" && detail.contains("refresh it with DELETE FROM"), "{detail}");
    assert_eq!(object(&report, "aggregate", "public.group_concat(text)").0, "translated");
    assert_eq!(object(&report, "function", "public._group_concat(text, text)").0, "translated");
    for view in ["group_names", "country_counts", "group_ids", "concat_names"] {
        let (outcome, detail) = object(&report, "view", &format!("public.{view}"));
        assert_ne!(outcome, "not_migrated", "{view}: {detail}");
    }
    assert!(object(&report, "view", "public.group_names").1.contains("group_concat_max_len"));
    let (outcome, detail) = object(&report, "view", "public.first_names");
    assert!(outcome == "not_migrated" && detail.contains("DISTINCT ON"), "{detail}");

    let mut conn = target.conn().await;
    let db = target.name.as_str();
    let positions: Vec<(String, u64)> = conn
        .exec(
            "SELECT table_name, auto_increment FROM information_schema.tables WHERE table_schema = ?
             AND auto_increment IS NOT NULL ORDER BY 1",
            (db,),
        )
        .await
        .unwrap();
    let expected: Vec<(String, u64)> = TABLES
        .iter()
        .map(|t| {
            (
                t.to_string(),
                match *t {
                    "film" => 501,
                    "country" => 8,
                    "customer" => 69,
                    _ => 4,
                },
            )
        })
        .collect();
    assert_eq!(positions, expected);
    let on_update: Vec<String> = conn
        .exec(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = ? AND column_name = 'last_update'
             AND LOWER(extra) LIKE '%on update current_timestamp(6)%' ORDER BY 1",
            (db,),
        )
        .await
        .unwrap();
    assert_eq!(on_update, TABLES);

    // The target's film behaves as PostgreSQL's: a new row draws the next id, an update stamps it.
    conn.query_drop(format!(
        "INSERT INTO `{db}`.film (name, grp, last_update) VALUES ('new', 3, '2000-01-01 00:00:00')"
    ))
    .await
    .unwrap();
    let id: Option<i64> =
        conn.query_first(format!("SELECT film_id FROM `{db}`.film WHERE name = 'new'")).await.unwrap();
    assert_eq!(id, Some(501));
    let stamp_sql = format!("SELECT CAST(last_update AS CHAR) FROM `{db}`.film WHERE film_id = 501");
    conn.query_drop(format!("UPDATE `{db}`.film SET grp = 4 WHERE film_id = 501")).await.unwrap();
    assert!(stamp(&mut conn, &stamp_sql).await.as_str() > "2026", "an UPDATE stamps the row");
    // The differences the report names: an explicit value is kept, a no-op update stamps nothing.
    conn.query_drop(format!("UPDATE `{db}`.film SET grp = 5, last_update = '2001-02-03 04:05:06' WHERE film_id = 501"))
        .await
        .unwrap();
    assert_eq!(stamp(&mut conn, &stamp_sql).await, "2001-02-03 04:05:06.000000");
    conn.query_drop(format!("UPDATE `{db}`.film SET grp = 5 WHERE film_id = 501")).await.unwrap();
    assert_eq!(stamp(&mut conn, &stamp_sql).await, "2001-02-03 04:05:06.000000");
    // The simple row trigger runs as MySQL triggers: its assignment and its check.
    let (outcome, detail) = object(&report, "trigger", "public.staff.staff_checks");
    assert!(outcome == "translated" && detail.contains("SIGNAL SQLSTATE '45000'"), "{detail}");
    conn.query_drop(format!("INSERT INTO `{db}`.staff (name, grp) VALUES ('LOUD', 1)")).await.unwrap();
    let name: Option<String> =
        conn.query_first(format!("SELECT name FROM `{db}`.staff WHERE staff_id = 4")).await.unwrap();
    assert_eq!(name.as_deref(), Some("loud"));
    let refused = conn.query_drop(format!("UPDATE `{db}`.staff SET grp = -1 WHERE staff_id = 4")).await;
    assert!(refused.unwrap_err().to_string().contains("grp must not be negative"));
    let post_data = std::fs::read_to_string(out.join("post-data.sql")).unwrap();
    assert!(post_data.contains("DELIMITER //\nCREATE TRIGGER"), "{post_data}");

    let (_, detail) = object(&report, "trigger", "public.film.last_updated");
    assert!(detail.contains("an UPDATE that sets the column keeps the value given"), "{detail}");
    assert!(detail.contains("an UPDATE that changes no value leaves it"), "{detail}");
    std::fs::remove_dir_all(&out).unwrap();
}
on_both_targets!(fidelity_patterns_apply_and_behave);

async fn stamp(conn: &mut mysql_async::Conn, sql: &str) -> String {
    conn.query_first::<String, _>(sql).await.unwrap().unwrap()
}

/// A migration writes the source's timestamps: the ON UPDATE columns come after the load, so the
/// sink's writes are not stamped with the target's clock (verify compares every value). The
/// translated views then return the source's rows.
async fn migrated_rows_keep_the_sources_timestamps(server: Target) {
    let setup = Setup::new(server, FIXTURE).await;
    server.assert_version().await;
    let run = setup.migrate();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let mut conn = setup.target.conn().await;
    let db = setup.target.name.as_str();
    let stamps: Vec<String> = conn
        .query(format!("SELECT CAST(last_update AS CHAR) FROM `{db}`.category ORDER BY category_id"))
        .await
        .unwrap();
    assert_eq!(stamps, ["2020-01-01 10:00:00.123456", "2020-01-02 10:00:00.000000", "2020-01-03 10:00:00.000000"]);
    let extra: Option<String> = conn
        .exec_first(
            "SELECT extra FROM information_schema.columns WHERE table_schema = ? AND table_name = 'category'
             AND column_name = 'last_update'",
            (db,),
        )
        .await
        .unwrap();
    assert!(extra.unwrap().to_lowercase().contains("on update"), "the column maintains itself after the migration");

    // The views return PostgreSQL's rows: NULL names, ties, an empty group, scalar subqueries, and a
    // concatenation past 1,024 bytes once the session allows it, as the report says.
    let client = setup.source.client().await;
    let queries = [
        (
            "select country_id::text, country, names, n_named::text from group_names order by country_id",
            "SELECT CAST(country_id AS CHAR), country, names, CAST(n_named AS CHAR) FROM group_names ORDER BY country_id",
        ),
        (
            "select country_id::text, name, n_customers::text, last_name from country_counts order by country_id",
            "SELECT CAST(country_id AS CHAR), name, CAST(n_customers AS CHAR), last_name FROM country_counts \
             ORDER BY country_id",
        ),
        (
            "select country_id::text, names from concat_names order by country_id",
            "SELECT CAST(country_id AS CHAR), names FROM concat_names ORDER BY country_id",
        ),
    ];
    conn.query_drop("SET SESSION group_concat_max_len = 1048576").await.unwrap();
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    for (pg, target) in queries {
        let expected: Vec<Vec<Option<String>>> = client
            .query(pg, &[])
            .await
            .unwrap()
            .iter()
            .map(|row| (0..row.len()).map(|idx| row.get::<_, Option<String>>(idx)).collect())
            .collect();
        let rows: Vec<mysql_async::Row> = conn.query(target).await.unwrap();
        let actual: Vec<Vec<Option<String>>> = rows
            .into_iter()
            .map(|row| (0..row.len()).map(|idx| row.get::<Option<String>, _>(idx).unwrap()).collect())
            .collect();
        assert_eq!(actual, expected, "{target}");
    }
    let long: Option<String> =
        client.query_one("select names from group_names where country_id = 5", &[]).await.unwrap().get(0);
    assert!(long.as_ref().unwrap().len() > 1024);
    // What the report warns of: at the default group_concat_max_len the concatenation is cut.
    conn.query_drop("SET SESSION group_concat_max_len = 1024").await.unwrap();
    let cut: Option<String> = conn.query_first("SELECT names FROM group_names WHERE country_id = 5").await.unwrap();
    assert_eq!(cut.unwrap().len(), 1024);

    // The materialized view is a table holding what a REFRESH at the migration gives.
    let expected: Vec<(i32, i64)> = client
        .query("select grp, n from group_sizes order by grp", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let actual: Vec<(i32, i64)> = conn.query("SELECT grp, n FROM group_sizes ORDER BY grp").await.unwrap();
    assert_eq!(actual, expected);

    // array_agg's arrays arrive as JSON arrays, with the same elements.
    let sorted = |json: &str| {
        let mut ids: Vec<i64> = serde_json::from_str(json).unwrap();
        ids.sort_unstable();
        ids
    };
    let expected: Vec<(i32, Vec<i64>)> = client
        .query("select grp, array_to_json(ids)::text from group_ids order by grp", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), sorted(row.get(1))))
        .collect();
    let actual: Vec<(i32, String)> =
        conn.query("SELECT grp, CAST(ids AS CHAR) FROM group_ids ORDER BY grp").await.unwrap();
    let actual: Vec<(i32, Vec<i64>)> = actual.into_iter().map(|(grp, ids)| (grp, sorted(&ids))).collect();
    assert_eq!(actual, expected);
    setup.cleanup();
}
on_both_targets!(migrated_rows_keep_the_sources_timestamps);

/// A target user that may not create triggers: without TRIGGER, or (MySQL's binary log on, with
/// log_bin_trust_function_creators off) without SUPER. `check` names what is missing, and the plan
/// reports the trigger it would translate as not migrated, with the reason, and applies the rest.
async fn a_user_who_may_not_create_triggers_is_told_why(server: Target) {
    let stack = Stack::for_target(server);
    server.assert_version().await;
    let source = SourceDb::create(&stack).await;
    source.client().await.batch_execute(FIXTURE).await.unwrap();
    let target = TargetDb::create(&stack).await;
    let user = unique_name("notrigger");
    let password = format!("Pa55-{user}");
    let mut admin = target.conn().await;
    let grant = |privileges: &str| format!("GRANT {privileges} ON `{}`.* TO '{user}'@'127.0.0.1'", target.name);
    admin.query_drop(format!("CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")).await.unwrap();
    admin
        .query_drop(grant(
            "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, CREATE VIEW, CREATE TEMPORARY TABLES",
        ))
        .await
        .unwrap();
    let url = passerelle_testkit::with_credentials(&target.url, &user, &password);

    let run = check(&source.url, &stack.kafka, &url, &[]);
    let (outcome, detail, fix) = finding(&run, "target", "triggers");
    assert_eq!(outcome, "warn", "{detail}");
    assert!(detail.contains("lacks TRIGGER"), "{detail}");
    assert!(fix.contains(&format!("GRANT TRIGGER ON `{}`.*", target.name)), "{fix}");

    let out = std::env::temp_dir().join(unique_name("passerelle_fidelity"));
    let run = passerelle(
        &["plan", "--schema", "public", "--out", out.to_str().unwrap(), "--json", "--apply", "all"],
        &[("PASSERELLE_SOURCE", source.url.as_str()), ("PASSERELLE_TARGET", url.as_str())],
    );
    assert_eq!(run.code, 0, "plan failed:\n{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str::<Value>(&run.stdout).unwrap()["report"].clone();
    let (outcome, detail) = object(&report, "trigger", "public.staff.staff_checks");
    assert!(outcome == "not_migrated" && detail.contains("lacks TRIGGER"), "{detail}");

    admin.query_drop(grant("TRIGGER")).await.unwrap();
    let run = check(&source.url, &stack.kafka, &url, &[]);
    let (outcome, detail, fix) = finding(&run, "target", "triggers");
    if server == Target::MySql {
        // The stack's MySQL logs binary, with MySQL's defaults.
        assert_eq!(outcome, "warn", "{detail}");
        assert!(detail.contains("SUPER") && fix.contains("log_bin_trust_function_creators"), "{detail} / {fix}");
    } else {
        assert_eq!(outcome, "pass", "{detail}");
    }
    let run = passerelle(
        &["plan", "--schema", "public", "--out", out.to_str().unwrap(), "--json"],
        &[("PASSERELLE_SOURCE", source.url.as_str()), ("PASSERELLE_TARGET", url.as_str())],
    );
    let report: Value = serde_json::from_str::<Value>(&run.stdout).unwrap()["report"].clone();
    let (outcome, detail) = object(&report, "trigger", "public.staff.staff_checks");
    match server {
        Target::MySql => assert!(outcome == "not_migrated" && detail.contains("SUPER"), "{detail}"),
        Target::MariaDb => assert_eq!(outcome, "translated", "{detail}"),
    }
    admin.query_drop(format!("DROP USER '{user}'@'127.0.0.1'")).await.unwrap();
    std::fs::remove_dir_all(&out).unwrap();
}
on_both_targets!(a_user_who_may_not_create_triggers_is_told_why);

/// Online, the ON UPDATE columns and the translated triggers come at the cutover, once the stream
/// drained: rows the source updated while the migration streamed keep the source's timestamps (its
/// trigger's clock, to the microsecond), and the target maintains them itself afterwards.
async fn streamed_updates_keep_the_sources_timestamps(server: Target) {
    let setup = Setup::new(server, FIXTURE).await;
    server.assert_version().await;
    let mut args = setup.args("migrate");
    args.extend(["--online", "--json", "--partitions", "3"]);
    let migrate = passerelle_spawn(&args, &setup.env());
    wait_for_the_snapshot_in_kafka(&setup, &setup.env()).await;
    let source = setup.source.client().await;
    source
        .batch_execute(
            "update category set grp = grp + 10; update film set name = 'renamed' where film_id = 2;
             insert into category (name, grp) values ('streamed', 7)",
        )
        .await
        .unwrap();
    cut_over(&setup, migrate, &setup.env());

    let stamps = "SELECT CAST(category_id AS CHAR), CAST(last_update AS CHAR(26)) FROM category ORDER BY 1";
    let expected: Vec<Vec<Option<String>>> = source
        .query(
            "select category_id::text, to_char(last_update, 'YYYY-MM-DD HH24:MI:SS.US') from category order by 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| vec![row.get(0), row.get(1)])
        .collect();
    assert_eq!(setup.target_rows(stamps).await, expected);
    let mut conn = setup.target.conn().await;
    let db = setup.target.name.as_str();
    conn.query_drop(format!("UPDATE `{db}`.category SET grp = 99 WHERE category_id = 4")).await.unwrap();
    let changed: Option<String> = conn
        .query_first(format!("SELECT CAST(last_update AS CHAR(26)) FROM `{db}`.category WHERE category_id = 4"))
        .await
        .unwrap();
    assert_ne!(changed, expected[3][1], "the target stamps its own updates after the cutover");
    setup.cleanup();
}
on_both_targets!(streamed_updates_keep_the_sources_timestamps, flavor = "multi_thread");
