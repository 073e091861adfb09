//! Distinctive secrets, each used for real over the secured connections of `secured.rs` (a
//! PostgreSQL password, a MySQL password, the SASL password, and the passphrases of the Kafka client
//! key and of the PostgreSQL one, `sslpassword`), appear nowhere a user or another user of the machine could read them: stdout and stderr at
//! trace level with librdkafka's `debug=all`, `--json`, the errors of failing commands, the records of
//! the migration's topics (its control topic included), the files `plan` writes, the target's
//! bookkeeping, and `/proc/<pid>/cmdline` of the running process (which starts no child process).

use std::path::Path;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use passerelle_kafka::consumer::Consumer;
use passerelle_kafka::topic::list_topics;
use passerelle_testkit::{
    encrypted_client_key, mysql_conn, on_both_targets, pg_client, unique_name, with_database, Target,
};

use crate::migrate::Setup;
use crate::secured::{env, start_broker, Secured};
use crate::support::{finished, passerelle, passerelle_logged, Pause, Run};

/// Everything `text` must not contain, and where it came from.
struct Secrets(Vec<String>);

impl Secrets {
    fn assert_absent(&self, place: &str, text: &str) {
        for secret in &self.0 {
            assert!(!text.contains(secret.as_str()), "a secret appears in {place}");
        }
    }
}

/// Every record value in the migration's topics, its control topic included, read with a consumer
/// of the test's own: an empty batch after the first records means the end.
async fn topic_records(secured: &Secured, prefix: &str) -> String {
    let endpoint = secured.kafka_endpoint();
    let topics = list_topics(&endpoint, prefix).await.unwrap();
    assert!(topics.contains(&format!("{prefix}.passerelle-control")), "{topics:?}");
    let consumer = Consumer::subscribe(&endpoint, &unique_name("secrets-reader"), topics).unwrap();
    let mut records = String::new();
    let mut n_records = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(std::time::Instant::now() < deadline, "the topics were not read within 120 s");
        let batch = consumer.next_batch(10_000, usize::MAX, Duration::from_secs(5)).await.unwrap();
        if batch.is_empty() && n_records > 0 {
            return records;
        }
        n_records += batch.len();
        for record in batch {
            records.push_str(&String::from_utf8_lossy(&record.value));
            records.push('\n');
        }
    }
}

/// What a finished `passerelle_logged` process wrote.
fn logged(dir: &Path, child: std::process::Child) -> Run {
    let status = finished(child);
    let read = |name: &str| String::from_utf8_lossy(&std::fs::read(dir.join(name)).unwrap()).into_owned();
    Run { code: status.code, stdout: read("stdout"), stderr: read("stderr") }
}

async fn no_secret_appears_in_output_logs_json_errors_topics_reports_or_the_process_list(target: Target) {
    start_broker();
    let setup = Setup::new(
        target,
        "create table t (id integer primary key, v text);
         insert into t select i, 'row ' || i from generate_series(1, 2000) i;",
    )
    .await;
    // A source role and a target user of the test's own, with passwords found nowhere else.
    let (pg_user, pg_password) = (unique_name("secrets"), unique_name("PgSecret"));
    let (my_user, my_password) = (unique_name("secrets"), unique_name("MySecret"));
    let passphrase = unique_name("KeyPassphrase");
    pg_client(&setup.source.admin_url)
        .await
        .batch_execute(&format!("create role {pg_user} login replication password '{pg_password}' in role passerelle"))
        .await
        .unwrap();
    let mut admin = setup.target.conn().await;
    for host in ["127.0.0.1", "localhost"] {
        admin
            .query_drop(format!(
                "CREATE USER '{my_user}'@'{host}' IDENTIFIED BY '{my_password}' REQUIRE SSL; \
                 GRANT ALL PRIVILEGES ON *.* TO '{my_user}'@'{host}'"
            ))
            .await
            .unwrap();
    }
    let mut secured =
        Secured::with_users(target, &setup, Some((&pg_user, &pg_password)), Some((&my_user, &my_password)), "");
    let key = encrypted_client_key(&passphrase);
    let key = key.display().to_string();
    let client_key = format!(
        "ssl.certificate.location={}\nssl.key.location={key}\nssl.key.password={passphrase}\n",
        env("PASSERELLE_TLS_CLIENT_CERT")
    );
    let properties = std::fs::read_to_string(&secured.kafka_config).unwrap() + &client_key;
    std::fs::write(&secured.kafka_config, properties).unwrap();
    // The source's client key is encrypted too, its passphrase in the URL (libpq's sslpassword).
    let pg_passphrase = unique_name("PgKeyPassphrase");
    let pg_key = encrypted_client_key(&pg_passphrase);
    secured.source = format!(
        "{}&sslcert={}&sslkey={}&sslpassword={pg_passphrase}",
        secured.source,
        env("PASSERELLE_TLS_CLIENT_CERT"),
        pg_key.display()
    );
    let secrets = Secrets(vec![
        pg_password.clone(),
        my_password.clone(),
        secured.kafka_password.clone(),
        passphrase,
        pg_passphrase,
    ]);

    // The migration at trace level, librdkafka's debug log included, held before its post-data DDL
    // while its command line is read.
    let trace = [("RUST_LOG", "trace")];
    let mut env = secured.env();
    env.extend(trace);
    let pause = Pause::at("before-post-data");
    let mut args = setup.args("migrate");
    args.extend(["--json", "--kafka-option", "debug=all"]);
    let mut child = passerelle_logged(&args, &pause.env(&env), &secured.dir);
    pause.reached(&mut child).await;
    let proc = Path::new("/proc").join(child.id().to_string());
    let cmdline = std::fs::read(proc.join("cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("migrate --topic-prefix"), "{cmdline}");
    secrets.assert_absent("/proc/<pid>/cmdline", &cmdline);
    for task in std::fs::read_dir(proc.join("task")).unwrap() {
        let children = std::fs::read_to_string(task.unwrap().path().join("children")).unwrap();
        assert_eq!(children, "", "passerelle started a child process");
    }
    pause.release();
    let migrate = logged(&secured.dir, child);
    assert_eq!(migrate.code, 0, "{}\n{}", migrate.stdout, &migrate.stderr[migrate.stderr.len().saturating_sub(5000)..]);
    let summary: serde_json::Value = serde_json::from_str(&migrate.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    // librdkafka's own debug log reached Passerelle's: its configuration dump, the SASL handshake.
    assert!(migrate.stderr.contains("sasl.password = [redacted]"), "no librdkafka configuration in the trace");
    assert!(migrate.stderr.contains("SCRAM-SHA-512"), "no SASL handshake in the trace");
    secrets.assert_absent("migrate's output at trace level", &migrate.all_output());

    let status = [&setup.args("status")[..], &["--json"]].concat();
    for args in [&status[..], &["verify", "--json"]] {
        let run = passerelle(args, &env);
        assert_eq!(run.code, 0, "{args:?}: {}\n{}", run.stdout, run.stderr);
        secrets.assert_absent(args[0], &run.all_output());
    }
    let out = secured.dir.join("plan");
    let plan = passerelle(&["plan", "--out", out.to_str().unwrap()], &env);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    secrets.assert_absent("plan's output", &plan.all_output());
    for file in std::fs::read_dir(&out).unwrap() {
        let path = file.unwrap().path();
        secrets.assert_absent(&path.display().to_string(), &std::fs::read_to_string(&path).unwrap());
    }

    // Failing commands that carry every secret: hosts that do not exist, a wrong key passphrase.
    let nowhere = |url: &str| {
        let mut url = url::Url::parse(url).unwrap();
        url.set_host(Some("nowhere.invalid")).unwrap();
        url.to_string()
    };
    let (source, target_url) = (nowhere(&secured.source), nowhere(&secured.target));
    let mut wrong_hosts = env.clone();
    wrong_hosts.retain(|(name, _)| !["PASSERELLE_SOURCE", "PASSERELLE_KAFKA", "PASSERELLE_TARGET"].contains(name));
    wrong_hosts.extend([("PASSERELLE_SOURCE", source.as_str()), ("PASSERELLE_TARGET", target_url.as_str())]);
    wrong_hosts.push(("PASSERELLE_KAFKA", "nowhere.invalid:9094"));
    let check = passerelle(&["check", "--kafka-option", "debug=all"], &wrong_hosts);
    assert_eq!(check.code, 1, "{}\n{}", check.stdout, check.stderr);
    assert_eq!(check.stdout.matches("FAIL").count(), 3, "{}", check.stdout);
    secrets.assert_absent("check's errors", &check.all_output());
    let wrong_passphrase = unique_name("WrongPassphrase");
    let properties = std::fs::read_to_string(&secured.kafka_config).unwrap();
    let wrong_config = secured.dir.join("wrong.properties");
    let passphrase_line = format!("ssl.key.password={}", secrets.0[3]);
    std::fs::write(
        &wrong_config,
        properties.replace(&passphrase_line, &format!("ssl.key.password={wrong_passphrase}")),
    )
    .unwrap();
    let mut wrong_key = env.clone();
    wrong_key.retain(|(name, _)| *name != "PASSERELLE_KAFKA_CONFIG");
    let wrong_config = wrong_config.display().to_string();
    wrong_key.push(("PASSERELLE_KAFKA_CONFIG", &wrong_config));
    let run = passerelle(&setup.args("status"), &wrong_key);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("the Kafka client for 127.0.0.1:59394 cannot be configured: ssl.key"),
        "{}",
        run.stderr
    );
    secrets.assert_absent("an error about the key", &run.all_output());
    assert!(!run.all_output().contains(&wrong_passphrase), "the wrong passphrase appears: {}", run.all_output());

    secrets.assert_absent("the migration's topics", &topic_records(&secured, &setup.prefix).await);
    let runs: Vec<mysql_async::Row> = admin.query("SELECT * FROM passerelle.passerelle_runs").await.unwrap();
    secrets.assert_absent("the target's bookkeeping", &format!("{runs:?}"));

    secured.cleanup(&setup);
    for key in [&key, &pg_key.display().to_string()] {
        std::fs::remove_file(key).unwrap();
    }
    let (admin_url, stack) = (setup.source.admin_url.clone(), setup.stack.clone());
    drop(setup);
    let server_admin = with_database(&admin_url, "postgres");
    pg_client(&server_admin).await.batch_execute(&format!("drop role {pg_user}")).await.unwrap();
    let mut admin = mysql_conn(&with_database(&stack.target, "")).await;
    admin.query_drop(format!("DROP USER '{my_user}'@'127.0.0.1', '{my_user}'@'localhost'")).await.unwrap();
}
on_both_targets!(
    no_secret_appears_in_output_logs_json_errors_topics_reports_or_the_process_list,
    flavor = "multi_thread"
);
