//! Every connection secured, on the real services: PostgreSQL `verify-full` with the stack's CA,
//! Kafka SASL_SSL with SCRAM-SHA-512 on a private broker whose only client listener is SASL_SSL
//! (59394; nothing listens on 59392, its KRaft controller on 59393), the target `VERIFY_IDENTITY`.
//!
//! The airline migrates online while a writer changes rows, then cuts over and verifies, on MySQL and
//! on MariaDB. It runs at the `tiny` scale (260 k rows, as `kills.rs`): small's 2.3 M rows would take
//! minutes per target in CI, and the connections are what is tested here, not the volume. With
//! `Scale::Small` instead (2,290,626 rows) and `cargo test --release`, it passed on 2026-12-07 on the
//! 2-core machine: 144 s on MySQL 9.7, 125 s on MariaDB 10.11.

use std::path::{Path, PathBuf};
use std::sync::Once;

use passerelle_demodata::Scale;
use passerelle_model::endpoint::{KafkaEndpoint, Secret};
use passerelle_testkit::{on_both_targets, pg_client, unique_name, with_credentials, with_database, Target};

use crate::migrate::Setup;
use crate::online::{cut_over, wait_for_the_snapshot_in_kafka};
use crate::support::{passerelle, passerelle_spawn};

/// The private broker's only client listener, SASL_SSL.
pub const KAFKA: &str = "127.0.0.1:59394";
/// Where its plaintext listener would be: nothing listens there.
const KAFKA_PLAINTEXT: &str = "127.0.0.1:59392";

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: eval \"$(stack/stack.sh env)\""))
}

/// Starts the private SASL_SSL-only broker, once per test process (`service-up` returns at once when
/// it runs already); its data lives in `/var/tmp/passerelle-stack/secured-kafka`.
pub fn start_broker() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../stack/stack.sh");
        let ca = PathBuf::from(env("PASSERELLE_TLS_CA"));
        let output = std::process::Command::new("bash")
            .arg(&script)
            .args(["service-up", "kafka"])
            .env("PASSERELLE_STACK_DIR", "/var/tmp/passerelle-stack/secured-kafka")
            .env("PASSERELLE_TLS_DIR", ca.parent().unwrap())
            .env("PASSERELLE_KAFKA_PORT", "59392")
            .env("PASSERELLE_KAFKA_PLAINTEXT", "off")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "stack.sh service-up kafka (SASL_SSL only): {stderr}");
    });
}

/// Passerelle's three connections for a migration of a [`Setup`], every one secured, and the
/// environment that gives them: the passwords in the URLs and `PASSERELLE_KAFKA_SASL_PASSWORD`, Kafka's
/// other properties in a `--kafka-config` file.
pub struct Secured {
    pub source: String,
    pub target: String,
    pub kafka_config: String,
    pub kafka_password: String,
    /// A directory of the test's own: the properties file, and whatever else the test writes.
    pub dir: PathBuf,
}

impl Secured {
    /// As the stack's users that may only use TLS: PostgreSQL's `passerelle_tls` (`hostssl` only),
    /// the target's `passerelle_tls` (`REQUIRE SSL`), Kafka's SCRAM user.
    pub fn new(target: Target, setup: &Setup) -> Secured {
        Secured::with_users(target, setup, None, None, "")
    }

    /// As other users (name, password) where given, with `kafka_properties` added to the file.
    pub fn with_users(
        target: Target,
        setup: &Setup,
        source_user: Option<(&str, &str)>,
        target_user: Option<(&str, &str)>,
        kafka_properties: &str,
    ) -> Secured {
        let source = with_database(&env("PASSERELLE_SOURCE_TLS"), &setup.source.name);
        let target_variable = match target {
            Target::MySql => "PASSERELLE_TARGET_MYSQL_TLS",
            Target::MariaDb => "PASSERELLE_TARGET_MARIADB_TLS",
        };
        let target_url = with_database(&env(target_variable), &setup.target.name);
        let as_user = |url: String, user: Option<(&str, &str)>| match user {
            Some((name, password)) => with_credentials(&url, name, password),
            None => url,
        };
        let dir = std::env::temp_dir().join(unique_name("secured"));
        std::fs::create_dir_all(&dir).unwrap();
        let kafka_config = dir.join("client.properties");
        let properties = format!(
            "# the brokers' client properties, as a hosted Kafka gives them\nsecurity.protocol=SASL_SSL\n\
             sasl.mechanism=SCRAM-SHA-512\nsasl.username={}\nssl.ca.location={}\n{kafka_properties}",
            env("PASSERELLE_KAFKA_SASL_SCRAM_USER"),
            env("PASSERELLE_TLS_CA"),
        );
        std::fs::write(&kafka_config, properties).unwrap();
        Secured {
            source: as_user(source, source_user),
            target: as_user(target_url, target_user),
            kafka_config: kafka_config.display().to_string(),
            kafka_password: env("PASSERELLE_KAFKA_SASL_SCRAM_PASSWORD"),
            dir,
        }
    }

    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("PASSERELLE_SOURCE", self.source.as_str()),
            ("PASSERELLE_KAFKA", KAFKA),
            ("PASSERELLE_KAFKA_CONFIG", self.kafka_config.as_str()),
            ("PASSERELLE_KAFKA_SASL_PASSWORD", self.kafka_password.as_str()),
            ("PASSERELLE_TARGET", self.target.as_str()),
        ]
    }

    /// The same Kafka connection, for the test's own clients.
    pub fn kafka_endpoint(&self) -> KafkaEndpoint {
        let mut endpoint = KafkaEndpoint::parse(KAFKA).unwrap();
        endpoint.set_from_properties(&std::fs::read_to_string(&self.kafka_config).unwrap()).unwrap();
        endpoint.set("sasl.password", Secret::new(self.kafka_password.clone()));
        endpoint
    }

    /// `passerelle cleanup` of the migration, over the same connections: its topics and bookkeeping
    /// (a verified `migrate` dropped its slot already).
    pub fn cleanup(&self, setup: &Setup) {
        let run = passerelle(&setup.args("cleanup"), &self.env());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    }
}

impl Drop for Secured {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The same users over plaintext are refused everywhere: PostgreSQL's `hostssl` role with
/// `sslmode=disable`, the `REQUIRE SSL` target user with `ssl-mode=DISABLED`, and Kafka where its
/// plaintext listener would be.
fn assert_plaintext_is_refused(secured: &Secured) {
    let plain = |url: &str, parameter: &str| {
        let mut url = url::Url::parse(url).unwrap();
        url.set_query(Some(parameter));
        url.to_string()
    };
    let source = plain(&secured.source, "sslmode=disable");
    let target = plain(&secured.target, "ssl-mode=DISABLED");
    let env =
        [("PASSERELLE_SOURCE", source.as_str()), ("PASSERELLE_KAFKA", KAFKA_PLAINTEXT), ("PASSERELLE_TARGET", &target)];
    let run = passerelle(&["check", "--json"], &env);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    for system in ["source", "kafka", "target"] {
        let connection = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|finding| finding["system"] == system && finding["check"] == "connection")
            .unwrap_or_else(|| panic!("no {system} connection finding: {}", run.stdout));
        assert_eq!(connection["outcome"], "fail", "plaintext to the {system} was not refused: {}", run.stdout);
    }
}

/// One round of the writer: updates, an insert and deletes across the airline's tables, round by
/// round on other rows.
fn writes(round: u32) -> String {
    format!(
        "begin;
         update bookings.bookings set total_amount = total_amount + 1
           where book_ref in (select book_ref from bookings.bookings order by book_ref limit 500 offset {offset});
         insert into bookings.bookings values ('ZZ{round:04}', now(), 42.00);
         commit;
         update bookings.flights set status = 'Delayed' where flight_id % 101 = {round} and status = 'Scheduled';
         delete from bookings.boarding_passes where (ticket_no, flight_id) in
           (select ticket_no, flight_id from bookings.boarding_passes order by 1, 2 limit 100 offset {offset});",
        offset = round * 500
    )
}

async fn the_airline_migrates_online_and_cuts_over_with_every_connection_secured(target: Target) {
    start_broker();
    let setup = Setup::new(target, "").await;
    passerelle_demodata::load(&setup.source.client().await, Scale::Tiny, 1).await.expect("the airline loads");
    let secured = Secured::new(target, &setup);
    assert_plaintext_is_refused(&secured);

    let mut args = setup.args("migrate");
    args.extend(["--schema", "bookings", "--online", "--json", "--jobs", "2", "--partitions", "3"]);
    let mut migrate = passerelle_spawn(&args, &secured.env());
    let writer = setup.source.client().await;
    writer.batch_execute(&writes(0)).await.unwrap();
    wait_for_the_snapshot_in_kafka(&setup, &secured.env()).await;
    for round in 1..=3 {
        writer.batch_execute(&writes(round)).await.unwrap();
    }
    // PostgreSQL's side of it: every session of the TLS-only role on the database, the walsender
    // streaming the changes among them, is encrypted. The stream's walsender starts once the
    // snapshot is announced complete: it is waited for.
    let admin = pg_client(&setup.source.admin_url).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let sessions = admin
            .query_one(
                "select count(*) filter (where a.backend_type = 'walsender'), bool_and(s.ssl) \
                 from pg_stat_activity a join pg_stat_ssl s using (pid) \
                 where a.usename = 'passerelle_tls' and a.datname = $1",
                &[&setup.source.name],
            )
            .await
            .unwrap();
        let (n_walsenders, all_encrypted): (i64, Option<bool>) = (sessions.get(0), sessions.get(1));
        if n_walsenders == 1 {
            assert_eq!(all_encrypted, Some(true), "a session of passerelle_tls is not encrypted");
            break;
        }
        if migrate.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            let run = crate::support::finished(migrate);
            panic!("no walsender streams the changes: {}\n{}", run.stdout, run.stderr);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    cut_over(&setup, migrate, &secured.env());
    let new_booking = setup.target_rows("SELECT total_amount FROM bookings WHERE book_ref = 'ZZ0003'").await;
    assert_eq!(new_booking, vec![vec![Some("42.00".to_string())]]);
    secured.cleanup(&setup);
}
on_both_targets!(the_airline_migrates_online_and_cuts_over_with_every_connection_secured, flavor = "multi_thread");
