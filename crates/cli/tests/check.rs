//! `passerelle check` against the real services, healthy and broken on purpose.

use passerelle_testkit::{
    on_both_targets, pg_client, with_credentials, with_database, SourceDb, Stack, Target, TargetDb,
};

use crate::support::{passerelle, Run};

/// Runs `check --json` with the three URLs in the environment.
pub(crate) fn check(source: &str, kafka: &str, target: &str, extra: &[&str]) -> Run {
    let mut args = vec!["check", "--json"];
    args.extend_from_slice(extra);
    passerelle(&args, &[("PASSERELLE_SOURCE", source), ("PASSERELLE_KAFKA", kafka), ("PASSERELLE_TARGET", target)])
}

/// The finding `system`/`name` of a JSON report, as (outcome, detail, fix).
pub(crate) fn finding(run: &Run, system: &str, name: &str) -> (String, String, String) {
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("check --json printed no JSON ({error}): {}\n{}", run.stdout, run.stderr));
    let found = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["system"] == system && f["check"] == name)
        .unwrap_or_else(|| panic!("no finding {system}/{name} in {}", run.stdout));
    let text = |key: &str| found[key].as_str().unwrap_or_default().to_string();
    (text("outcome"), text("detail"), text("fix"))
}

/// A port on 127.0.0.1 where nothing listens: bind one, then let it go.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn healthy_stack_is_ready(server: Target) {
    let stack = Stack::for_target(server);
    let source = SourceDb::create(&stack).await;
    let target = TargetDb::reserve(&stack);
    let run = check(&source.url, &stack.kafka, &target.url, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for (system, name) in [
        ("source", "connection"),
        ("source", "wal_level"),
        ("source", "replication privilege"),
        ("source", "replication connection"),
        ("source", "replication slots"),
        ("kafka", "connection"),
        ("kafka", "replication"),
        ("kafka", "retention"),
        ("kafka", "create and delete a topic"),
        ("target", "connection"),
        ("target", "version"),
        ("target", "target database"),
        ("source", "publication privilege"),
        ("source", "table ownership"),
        ("target", "privileges"),
    ] {
        assert_eq!(finding(&run, system, name).0, "pass", "{system}/{name}: {}", run.stdout);
    }
    // MySQL's default local_infile = OFF is a warning: the snapshot loads through INSERTs.
    let (version, local_infile, ready) = match server {
        Target::MySql => ("MySQL 9.", "warn", "ready to migrate, with 1 warning(s)\n"),
        Target::MariaDb => ("MariaDB 10.11", "pass", "ready to migrate\n"),
    };
    assert!(finding(&run, "target", "version").1.starts_with(version), "{}", run.stdout);
    assert_eq!(finding(&run, "target", "local_infile").0, local_infile, "{}", run.stdout);

    let human = passerelle(
        &["check"],
        &[("PASSERELLE_SOURCE", &source.url), ("PASSERELLE_KAFKA", &stack.kafka), ("PASSERELLE_TARGET", &target.url)],
    );
    assert_eq!(human.code, 0);
    assert!(human.stdout.ends_with(ready), "{}", human.stdout);
}
on_both_targets!(healthy_stack_is_ready);

async fn wrong_password_is_named_and_never_printed(server: Target) {
    let stack = Stack::for_target(server);
    let target = TargetDb::reserve(&stack);
    let bad_source = with_credentials(&stack.source, "passerelle", "Wr0ng-pg-Pa55");
    let bad_target = with_credentials(&target.url, "passerelle", "Wr0ng-my-Pa55");
    let run = check(&bad_source, &stack.kafka, &bad_target, &["-vv"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let (outcome, detail, fix) = finding(&run, "source", "connection");
    assert_eq!(outcome, "fail");
    assert!(detail.contains("rejected the password of user \"passerelle\""), "{detail}");
    assert!(fix.contains("password in the source URL"), "{fix}");
    let (outcome, detail, _) = finding(&run, "target", "connection");
    assert_eq!(outcome, "fail");
    assert!(detail.contains("rejected the password"), "{detail}");
    for secret in ["Wr0ng-pg-Pa55", "Wr0ng-my-Pa55"] {
        assert!(!run.all_output().contains(secret), "the password {secret} leaked:\n{}", run.all_output());
    }
}
on_both_targets!(wrong_password_is_named_and_never_printed);

async fn correct_passwords_never_appear_in_output_logs_or_help(server: Target) {
    let stack = Stack::for_target(server);
    let source = SourceDb::create(&stack).await;
    let target = TargetDb::reserve(&stack);
    let secrets: Vec<String> = [&source.url, &target.url]
        .iter()
        .map(|url| url::Url::parse(url).unwrap().password().unwrap().to_string())
        .collect();

    // Debug logs on, passwords in the environment.
    let run = check(&source.url, &stack.kafka, &target.url, &["-vv"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // Passwords on the command line: a warning that names the variable to use instead, never the password.
    let on_command_line =
        passerelle(&["check", "-vv", "--source", &source.url, "--kafka", &stack.kafka, "--target", &target.url], &[]);
    assert!(on_command_line.stderr.contains("set PASSERELLE_SOURCE instead"), "{}", on_command_line.stderr);
    assert!(on_command_line.stderr.contains("set PASSERELLE_TARGET instead"), "{}", on_command_line.stderr);
    // --help would print environment values of arguments if told to.
    let help =
        passerelle(&["check", "--help"], &[("PASSERELLE_SOURCE", &source.url), ("PASSERELLE_TARGET", &target.url)]);
    assert_eq!(help.code, 0);
    // A malformed URL is reported without being echoed.
    let malformed = check("postgres//passerelle:Malformed-Pa55@nowhere", &stack.kafka, &target.url, &[]);
    assert_eq!(malformed.code, 2);
    assert!(malformed.stderr.contains("invalid source URL"), "{}", malformed.stderr);
    assert!(!malformed.all_output().contains("Malformed-Pa55"), "{}", malformed.all_output());

    for run in [&run, &on_command_line, &help] {
        for secret in &secrets {
            assert!(!run.all_output().contains(secret.as_str()), "a password leaked:\n{}", run.all_output());
        }
    }
}
on_both_targets!(correct_passwords_never_appear_in_output_logs_or_help);

/// Unencrypted sessions to the loopback: `check` says they are unencrypted, and does not warn about
/// the passwords, which never leave this machine. The warning for another machine's address is
/// tested where it is decided (`DbEndpoint::password_in_clear`, and Kafka's in `kafka::preflight`):
/// the tests talk to this machine only.
async fn unencrypted_sessions_to_the_loopback_draw_no_clear_text_warning(server: Target) {
    let stack = Stack::for_target(server);
    let source = SourceDb::create(&stack).await;
    let target = TargetDb::reserve(&stack);
    let run = check(
        &format!("{}?sslmode=disable", source.url),
        &stack.kafka,
        &format!("{}?ssl-mode=DISABLED", target.url),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for system in ["source", "target"] {
        assert!(finding(&run, system, "connection").1.ends_with(", unencrypted"), "{}", run.stdout);
    }
    assert!(
        finding(&run, "kafka", "connection").1.ends_with(", PLAINTEXT, unencrypted, unauthenticated"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("clear-text password"), "{}", run.stdout);
}
on_both_targets!(unencrypted_sessions_to_the_loopback_draw_no_clear_text_warning);

/// The stack's single broker cannot hold two replicas: check says so with the fix, and migrate
/// refuses to start before a slot, a topic or a table exists.
async fn a_replication_factor_beyond_the_brokers_fails_check_and_migrate(server: Target) {
    let stack = Stack::for_target(server);
    let source = SourceDb::create(&stack).await;
    let target = TargetDb::reserve(&stack);
    let run = check(&source.url, &stack.kafka, &target.url, &[]);
    let (outcome, detail, _) = finding(&run, "kafka", "replication");
    assert_eq!(
        (outcome.as_str(), detail.as_str()),
        ("pass", "replication factor 1 of 1 broker(s), min.insync.replicas = 1")
    );
    assert!(finding(&run, "kafka", "retention").1.starts_with("records kept "), "{}", run.stdout);
    let run = check(&source.url, &stack.kafka, &target.url, &["--replication-factor", "2"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let (outcome, detail, fix) = finding(&run, "kafka", "replication");
    assert_eq!(outcome, "fail");
    assert_eq!(detail, "topics would get replication factor 2, and the cluster has 1 broker(s)");
    assert_eq!(fix, "pass --replication-factor 1 or less");
    let env = [
        ("PASSERELLE_SOURCE", source.url.as_str()),
        ("PASSERELLE_KAFKA", &stack.kafka),
        ("PASSERELLE_TARGET", &target.url),
    ];
    let prefix = passerelle_testkit::unique_name("replication");
    let run = passerelle(&["migrate", "--topic-prefix", &prefix, "--replication-factor", "2"], &env);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("the preflight refuses this run"), "{}", run.stderr);
    assert!(run.stderr.contains("replication factor 2, and the cluster has 1 broker(s)"), "{}", run.stderr);
    let slots = pg_client(&source.admin_url)
        .await
        .query("select 1 from pg_replication_slots where database = current_database()", &[])
        .await
        .unwrap();
    assert!(slots.is_empty(), "a slot was created");
}
on_both_targets!(a_replication_factor_beyond_the_brokers_fails_check_and_migrate);

#[tokio::test]
async fn unreachable_ports_are_reported_per_system() {
    let stack = Stack::from_env();
    let port = closed_port();
    let source = stack.source.replace(":55432", &format!(":{port}"));
    let kafka = format!("127.0.0.1:{port}");
    let target = TargetDb::reserve(&stack);
    let target_url =
        target.url.replace(&format!(":{}", url::Url::parse(&target.url).unwrap().port().unwrap()), &format!(":{port}"));
    assert_ne!(source, stack.source, "the stack's source port moved; update this test");
    let run = check(&source, &kafka, &target_url, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let (outcome, detail, fix) = finding(&run, "source", "connection");
    assert_eq!(outcome, "fail");
    assert!(detail.starts_with("cannot reach PostgreSQL at") && detail.contains(&port.to_string()), "{detail}");
    assert!(fix.contains("host and port"), "{fix}");
    let (outcome, detail, _) = finding(&run, "kafka", "connection");
    assert_eq!(outcome, "fail");
    assert!(detail.starts_with("cannot reach Kafka at"), "{detail}");
    let (outcome, detail, _) = finding(&run, "target", "connection");
    assert_eq!(outcome, "fail");
    assert!(detail.contains("Connection refused"), "{detail}");
}

#[tokio::test]
async fn wal_level_replica_blocks() {
    let stack = Stack::from_env();
    let target = TargetDb::reserve(&stack);
    // The stack's second cluster runs with wal_level = replica.
    let run = check(&stack.source_plain_admin, &stack.kafka, &target.url, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let (outcome, detail, fix) = finding(&run, "source", "wal_level");
    assert_eq!(outcome, "fail");
    assert_eq!(detail, "wal_level = replica, logical decoding needs logical");
    assert!(fix.contains("ALTER SYSTEM SET wal_level = logical"), "{fix}");
    assert!(fix.contains("restart"), "{fix}");
}

#[tokio::test]
async fn missing_replication_privilege_blocks() {
    let stack = Stack::from_env();
    let source = SourceDb::create(&stack).await;
    let target = TargetDb::reserve(&stack);
    let role = passerelle_testkit::unique_name("noreplication");
    let admin = pg_client(&stack.source_admin).await;
    admin.batch_execute(&format!("CREATE ROLE {role} LOGIN PASSWORD 'Pa55-{role}'")).await.unwrap();
    let url = with_database(&with_credentials(&stack.source, &role, &format!("Pa55-{role}")), &source.name);
    let run = check(&url, &stack.kafka, &target.url, &[]);
    admin.batch_execute(&format!("DROP ROLE {role}")).await.unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let (outcome, detail, fix) = finding(&run, "source", "replication privilege");
    assert_eq!(outcome, "fail");
    assert_eq!(detail, format!("role {role} has no REPLICATION attribute"));
    assert_eq!(fix, format!("run ALTER ROLE {role} REPLICATION as a superuser"));
}

async fn keyless_tables_and_a_non_empty_target_warn_without_blocking(server: Target) {
    let stack = Stack::for_target(server);
    let source = SourceDb::create(&stack).await;
    source
        .client()
        .await
        .batch_execute("CREATE TABLE keyless (a int); CREATE TABLE keyed (a int PRIMARY KEY)")
        .await
        .unwrap();
    let target = TargetDb::create(&stack).await;
    let mut conn = target.conn().await;
    mysql_async::prelude::Queryable::query_drop(&mut conn, format!("CREATE TABLE `{}`.t (a int)", target.name))
        .await
        .unwrap();
    let run = check(&source.url, &stack.kafka, &target.url, &[]);
    assert_eq!(run.code, 0, "warnings do not block: {}\n{}", run.stdout, run.stderr);
    let (outcome, detail, _) = finding(&run, "source", "replica identity");
    assert_eq!((outcome.as_str(), detail.as_str()), ("warn", "no primary key nor replica identity: public.keyless"));
    let (outcome, detail, _) = finding(&run, "target", "target database");
    assert_eq!(outcome, "warn");
    assert_eq!(detail, format!("{} already holds 1 tables", target.name));
}
on_both_targets!(keyless_tables_and_a_non_empty_target_warn_without_blocking);

/// A target user who may load rows but not create tables is refused by `check` with the GRANT that
/// fixes it, and by `migrate` before a slot, a topic or a table exists.
async fn a_target_user_without_create_is_refused_before_anything_moves(server: Target) {
    let stack = Stack::for_target(server);
    let source = SourceDb::create(&stack).await;
    source.client().await.batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)").await.unwrap();
    let target = TargetDb::create(&stack).await;
    let user = passerelle_testkit::unique_name("nocreate");
    let password = format!("Pa55-{user}");
    let mut conn = target.conn().await;
    for statement in [
        format!("CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON `{}`.* TO '{user}'@'127.0.0.1'", target.name),
    ] {
        mysql_async::prelude::Queryable::query_drop(&mut conn, statement).await.unwrap();
    }
    let url = with_credentials(&target.url, &user, &password);

    let run = check(&source.url, &stack.kafka, &url, &[]);
    let (outcome, detail, fix) = finding(&run, "target", "privileges");
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(outcome, "fail");
    assert!(detail.contains(&format!("'{user}'@'127.0.0.1' lacks CREATE, DROP, ALTER")), "{detail}");
    assert!(detail.contains(&target.name) && detail.contains("on passerelle"), "{detail}");
    assert!(
        fix.contains(&format!(
            "GRANT CREATE, DROP, ALTER, INDEX, REFERENCES, CREATE VIEW, CREATE TEMPORARY TABLES ON `{}`.*",
            target.name
        )),
        "{fix}"
    );

    let prefix = passerelle_testkit::unique_name("nocreate");
    let migrate = passerelle(
        &["migrate", "--topic-prefix", &prefix],
        &[("PASSERELLE_SOURCE", &source.url), ("PASSERELLE_KAFKA", &stack.kafka), ("PASSERELLE_TARGET", &url)],
    );
    mysql_async::prelude::Queryable::query_drop(&mut conn, format!("DROP USER '{user}'@'127.0.0.1'")).await.unwrap();
    assert_eq!(migrate.code, 2, "{}\n{}", migrate.stdout, migrate.stderr);
    assert!(migrate.stderr.contains("the preflight refuses this run"), "{}", migrate.stderr);
    assert!(migrate.stderr.contains("lacks CREATE"), "{}", migrate.stderr);
    assert!(!migrate.all_output().contains(&password), "{}", migrate.all_output());
    let slots = pg_client(&source.admin_url)
        .await
        .query("SELECT 1 FROM pg_replication_slots WHERE database = current_database()", &[])
        .await
        .unwrap();
    assert!(slots.is_empty(), "a refused run created a replication slot");
    let kafka = passerelle_model::endpoint::KafkaEndpoint::parse(&stack.kafka).unwrap();
    let topics = passerelle_kafka::topic::list_topics(&kafka, &prefix).await.unwrap();
    assert!(topics.is_empty(), "a refused run created topics: {topics:?}");
}
on_both_targets!(a_target_user_without_create_is_refused_before_anything_moves, flavor = "multi_thread");

/// A source role that may read a keyed table but does not own it cannot publish it.
#[tokio::test]
async fn a_source_role_that_does_not_own_its_tables_cannot_publish_them() {
    let stack = Stack::from_env();
    let source = SourceDb::create(&stack).await;
    let admin = pg_client(&source.admin_url).await;
    let user = url::Url::parse(&stack.source).unwrap().username().to_string();
    admin
        .batch_execute(&format!(
            "CREATE TABLE foreign_owned (id int PRIMARY KEY); GRANT SELECT ON foreign_owned TO {user}"
        ))
        .await
        .unwrap();
    let target = TargetDb::reserve(&stack);
    let run = check(&source.url, &stack.kafka, &target.url, &["--schema", "public"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let (outcome, detail, fix) = finding(&run, "source", "table ownership");
    assert_eq!(outcome, "fail");
    assert_eq!(detail, format!("role {user} does not own public.foreign_owned, which a publication needs"));
    assert!(fix.contains(&format!("OWNER TO {user}")), "{fix}");
    // Other schemas are not this migration's business.
    let elsewhere = check(&source.url, &stack.kafka, &target.url, &["--schema", "nosuch"]);
    assert_eq!(finding(&elsewhere, "source", "table ownership").0, "pass", "{}", elsewhere.stdout);
}
