//! A run's settings are fixed when it begins, and what Passerelle finds that it cannot use is
//! refused with one line: another target server for the same run (both identities named), `verify`
//! taking the run's schemas and databases, a bookkeeping of a newer format, records lost from Kafka
//! before the sink applied them.

use mysql_async::prelude::Queryable;
use passerelle_testkit::{on_both_targets, unique_name, with_database, Target, TargetDb};

use crate::migrate::{s, Setup};
use crate::support::passerelle;

const ONE_TABLE: &str =
    "create table t (id integer primary key, v text); insert into t select i, 'v' || i from generate_series(1, 300) i;";

fn other_server(target: Target) -> Target {
    match target {
        Target::MySql => Target::MariaDb,
        Target::MariaDb => Target::MySql,
    }
}

/// The identity Passerelle gives a server: MySQL's server_uuid, MariaDB's installation id.
async fn identity(target: Target) -> String {
    let mut conn = passerelle_testkit::mysql_conn(&with_database(&target.url(), "")).await;
    match target {
        Target::MySql => {
            format!("server_uuid {}", conn.query_first::<String, _>("SELECT @@server_uuid").await.unwrap().unwrap())
        }
        Target::MariaDb => {
            let sql = "SELECT installation_id FROM passerelle.passerelle_installation";
            format!("installation id {}", conn.query_first::<String, _>(sql).await.unwrap().unwrap())
        }
    }
}

/// A database of the same name as `db` on the other server: only the server differs.
async fn twin_on(target: Target, db: &TargetDb) -> TargetDb {
    let twin = TargetDb { name: db.name.clone(), url: with_database(&target.url(), &db.name) };
    twin.conn().await.query_drop(format!("CREATE DATABASE `{}`", twin.name)).await.unwrap();
    twin
}

/// The setup's environment with another target URL.
fn on_target<'a>(setup: &'a Setup, url: &'a str) -> [(&'a str, &'a str); 3] {
    [setup.env()[0], setup.env()[1], ("PASSERELLE_TARGET", url)]
}

async fn table_count(db: &TargetDb) -> u64 {
    let sql = format!("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{}'", db.name);
    db.conn().await.query_first::<u64, _>(sql).await.unwrap().unwrap()
}

fn assert_refused_for_the_server(run: &crate::support::Run, fixed: &str, asked: &str) {
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let line = run.stderr.lines().find(|line| line.contains("began with the target server")).unwrap_or_else(|| {
        panic!("no line names the target servers:\n{}", run.stderr);
    });
    assert!(line.contains(fixed) && line.contains(&format!("this command asks for {asked}")), "{line}");
    assert!(line.contains("passerelle cleanup --topic-prefix") && line.contains("another --topic-prefix"), "{line}");
}

async fn a_run_pointed_at_another_target_server_is_refused_naming_both(target: Target) {
    let setup = Setup::new(target, ONE_TABLE).await;
    let other = twin_on(other_server(target), &setup.target).await;

    // `passerelle source` begins the run without knowing the target: its first sink fixes the server.
    let source = passerelle(&[setup.args("source"), vec!["--partitions", "2"]].concat(), &setup.env());
    assert_eq!(source.code, 0, "{}\n{}", source.stdout, source.stderr);
    let sink = passerelle(&setup.args("sink"), &setup.env());
    assert_eq!(sink.code, 0, "{}\n{}", sink.stdout, sink.stderr);
    let status = passerelle(&[setup.args("status"), vec!["--json"]].concat(), &setup.env());
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let fixed = status["target_server"].as_str().unwrap_or_default();
    assert!(fixed.starts_with(&identity(target).await), "{status}");
    for command in ["sink", "migrate", "verify"] {
        let refused = passerelle(&setup.args(command), &on_target(&setup, &other.url));
        let (fixed, asked) = (identity(target).await, identity(other_server(target)).await);
        assert_refused_for_the_server(&refused, &fixed, &asked);
    }
    assert_eq!(table_count(&other).await, 0, "nothing is written to the other server's database");
    assert_eq!(setup.target_rows("SELECT COUNT(*) FROM t").await, vec![vec![s("300")]]);
    setup.cleanup();

    // `migrate` begins the run knowing the target: its announcement fixes the server.
    // The same source and target databases under a new topic prefix: the table the first run left
    // is not this migration's, so --replace.
    let setup = Setup { prefix: unique_name("migrate"), ..setup };
    let first = setup.migrate_with(&["--replace"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let refused = passerelle(&setup.args("sink"), &on_target(&setup, &other.url));
    assert_refused_for_the_server(&refused, &identity(target).await, &identity(other_server(target)).await);
    assert_eq!(table_count(&other).await, 0, "nothing is written to the other server's database");
    setup.cleanup();
}
on_both_targets!(a_run_pointed_at_another_target_server_is_refused_naming_both, flavor = "multi_thread");

async fn verify_takes_the_runs_schemas_and_target_databases(target: Target) {
    let sql = format!(
        "create schema sales; {}",
        ONE_TABLE.replace("table t ", "table sales.t ").replace("into t ", "into sales.t ")
    );
    let setup = Setup::new(target, &sql).await;
    let map = format!("sales={}", setup.target.name);
    let first = setup.migrate_with(&["--schema", "sales", "--map", &map]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);

    // No --schema, no --map, and a target URL on another database: the run's settings are verified.
    let elsewhere = with_database(&setup.target.url, "demo");
    let env = on_target(&setup, &elsewhere);
    let verified = passerelle(&[setup.args("verify"), vec!["--json"]].concat(), &env);
    assert_eq!(verified.code, 0, "{}\n{}", verified.stdout, verified.stderr);
    let report: serde_json::Value = serde_json::from_str(&verified.stdout).unwrap();
    assert_eq!(report["matches"], true, "{report}");
    assert_eq!(report["tables"].as_array().map(Vec::len), Some(1), "{report}");

    // Asking for others is refused as the other commands refuse it.
    let refused = passerelle(&[setup.args("verify"), vec!["--schema", "public"]].concat(), &env);
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("began with --schema sales, this command asks for public"), "{}", refused.stderr);
    let refused = passerelle(&[setup.args("verify"), vec!["--map", "sales=demo"]].concat(), &env);
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    let expected = format!("began with target databases {map}, this command asks for sales=demo");
    assert!(refused.stderr.contains(&expected), "{}", refused.stderr);

    // Without Kafka, verify plans from its flags as before.
    let no_kafka = [setup.env()[0], ("PASSERELLE_KAFKA", "127.0.0.1:1"), setup.env()[2]];
    let flags = passerelle(&[setup.args("verify"), vec!["--schema", "sales", "--map", &map]].concat(), &no_kafka);
    assert_eq!(flags.code, 0, "{}\n{}", flags.stdout, flags.stderr);
    assert!(flags.stderr.contains("verifying with the flags' settings"), "{}", flags.stderr);
    setup.cleanup();
}
on_both_targets!(verify_takes_the_runs_schemas_and_target_databases, flavor = "multi_thread");

async fn a_bookkeeping_of_a_newer_format_is_refused(target: Target) {
    let setup = Setup::new(target, ONE_TABLE).await;
    // A bookkeeping database of its own, so that no other test sees the newer format.
    let bookkeeping = unique_name("bookkeeping");
    let first = setup.migrate_with(&["--bookkeeping-db", &bookkeeping]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let mut conn = setup.target.conn().await;
    conn.query_drop(format!("UPDATE `{bookkeeping}`.passerelle_installation SET format = 99")).await.unwrap();

    let again = setup.migrate_with(&["--bookkeeping-db", &bookkeeping]);
    conn.query_drop(format!("DROP DATABASE `{bookkeeping}`")).await.unwrap();
    assert_eq!(again.code, 2, "{}\n{}", again.stdout, again.stderr);
    let expected = format!("the bookkeeping in database {bookkeeping} on the target at");
    let line = again.stderr.lines().find(|line| line.contains(&expected)).unwrap_or_else(|| panic!("{}", again.stderr));
    assert!(line.contains("is of format 99, this Passerelle knows formats up to 1"), "{line}");
    assert!(line.contains("run the newer Passerelle that wrote it"), "{line}");
    setup.cleanup();
}
on_both_targets!(a_bookkeeping_of_a_newer_format_is_refused, flavor = "multi_thread");

async fn records_lost_from_kafka_before_the_sink_applied_them_stop_it_at_the_gap(target: Target) {
    let setup = Setup::new(target, ONE_TABLE).await;
    // Per-row records, so that offsets count rows (a COPY-text record would carry all 300).
    let per_row = vec!["--partitions", "1", "--snapshot-encoding", "envelope"];
    let source = passerelle(&[setup.args("source"), per_row].concat(), &setup.env());
    assert_eq!(source.code, 0, "{}\n{}", source.stdout, source.stderr);
    // What retention does to a partition nobody applied yet: its first 100 records are gone.
    let topic = format!("{}.public.t", setup.prefix);
    let offsets = std::env::temp_dir().join(format!("{}.json", setup.prefix));
    let json = format!(r#"{{"version":1,"partitions":[{{"topic":"{topic}","partition":0,"offset":100}}]}}"#);
    std::fs::write(&offsets, json).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../stack/stack.sh");
    let deleted = std::process::Command::new("bash")
        .args([script, "kafka-tool", "DeleteRecordsCommand", "--bootstrap-server", &setup.stack.kafka])
        .arg("--offset-json-file")
        .arg(&offsets)
        .output()
        .unwrap();
    std::fs::remove_file(&offsets).unwrap();
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));

    let sink = passerelle(&setup.args("sink"), &setup.env());
    assert_eq!(sink.code, 2, "{}\n{}", sink.stdout, sink.stderr);
    let line = sink
        .stderr
        .lines()
        .find(|line| line.contains(&format!("{topic}/0:")))
        .unwrap_or_else(|| panic!("{}", sink.stderr));
    assert!(line.contains("the next record to apply is at offset 0, but the first read is at 100"), "{line}");
    assert!(line.contains("Kafka holds offsets 100 to 300"), "{line}");
    assert_eq!(
        setup.target_rows("SELECT COUNT(*) FROM t").await,
        vec![vec![s("0")]],
        "nothing past the gap is applied"
    );
    setup.cleanup();
}
on_both_targets!(records_lost_from_kafka_before_the_sink_applied_them_stop_it_at_the_gap, flavor = "multi_thread");

/// The type mapping (`--uuid`, `--interval`, `--collation`) is fixed with the run: by its first sink
/// for a run `passerelle source` began. A later command without those flags takes the run's (verify
/// would otherwise find the binary uuids differ); one that asks for another is refused.
async fn the_type_mapping_travels_with_the_run(target: Target) {
    let sql = "create table t (id integer primary key, u uuid, d interval); \
               insert into t select i, gen_random_uuid(), make_interval(secs => i) from generate_series(1, 50) i;";
    let setup = Setup::new(target, sql).await;
    let source = passerelle(&setup.args("source"), &setup.env());
    assert_eq!(source.code, 0, "{}\n{}", source.stdout, source.stderr);
    let sink = passerelle(
        &[setup.args("sink"), vec!["--uuid", "binary16", "--interval", "microseconds"]].concat(),
        &setup.env(),
    );
    assert_eq!(sink.code, 0, "{}\n{}", sink.stdout, sink.stderr);
    let column = format!(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = '{}' AND column_name = 'u'",
        setup.target.name
    );
    let held: String = setup.target.conn().await.query_first(column).await.unwrap().unwrap();
    assert_eq!(held, "binary", "the sink's --uuid binary16 holds uuids as BINARY(16)");

    let verify = passerelle(&setup.args("verify"), &setup.env());
    assert_eq!(verify.code, 0, "verify takes the run's mapping:\n{}\n{}", verify.stdout, verify.stderr);
    for (command, flags) in [("verify", ["--uuid", "char36"]), ("sink", ["--interval", "text"])] {
        let refused = passerelle(&[setup.args(command), flags.to_vec()].concat(), &setup.env());
        assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
        let fixed = if flags[0] == "--uuid" { "binary16" } else { "microseconds" };
        let line = format!("began with {} {fixed}, this command asks for {}", flags[0], flags[1]);
        assert!(refused.stderr.contains(&line), "{line:?} not in:\n{}", refused.stderr);
    }
    setup.cleanup();
}
on_both_targets!(the_type_mapping_travels_with_the_run);
