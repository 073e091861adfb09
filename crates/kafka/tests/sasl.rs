//! SASL_SSL with SCRAM-SHA-512 on a private broker of this test's own (59292, SASL_SSL on 59294):
//! a broker's listeners are fixed when it starts, and the shared one may predate the stack's TLS.
//! A wrong password and a wrong CA each read as what they are, in one line with what to do.

use passerelle_kafka::preflight::Durability;
use passerelle_kafka::KafkaError;
use passerelle_model::endpoint::{KafkaEndpoint, Secret};
use passerelle_model::preflight::{Finding, Outcome};

/// The topics as `migrate` creates them by default.
const DURABILITY: Durability = Durability { replication: 1, retention_ms: None };

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: eval \"$(stack/stack.sh env)\""))
}

fn start_private_broker() {
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../stack/stack.sh");
    let ca = std::path::PathBuf::from(env("PASSERELLE_TLS_CA"));
    let output = std::process::Command::new("bash")
        .arg(&script)
        .args(["service-up", "kafka"])
        .env("PASSERELLE_STACK_DIR", "/var/tmp/passerelle-stack/tls-kafka")
        .env("PASSERELLE_TLS_DIR", ca.parent().unwrap())
        .env("PASSERELLE_KAFKA_PORT", "59292")
        .output()
        .unwrap();
    assert!(output.status.success(), "stack.sh service-up kafka: {}", String::from_utf8_lossy(&output.stderr));
}

fn scram_endpoint(password: &str, ca: &str) -> KafkaEndpoint {
    let mut endpoint = KafkaEndpoint::parse("127.0.0.1:59294").unwrap();
    let properties = format!(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username={}\nssl.ca.location={ca}\n",
        env("PASSERELLE_KAFKA_SASL_SCRAM_USER"),
    );
    endpoint.set_from_properties(&properties).unwrap();
    endpoint.set("sasl.password", Secret::new(password.to_string()));
    endpoint
}

/// The connection line of `check`, and its only finding when the connection failed.
fn assert_refused(findings: &[Finding], expected: &str, hint: &str, password: &str) {
    let text = format!("{findings:?}");
    assert_eq!((findings.len(), findings[0].outcome), (1, Outcome::Fail), "{text}");
    assert!(findings[0].detail.contains(expected), "{text}");
    assert_eq!(findings[0].fix.as_deref(), Some(hint), "{text}");
    assert!(!text.contains(password) && !findings[0].detail.contains('\n'), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_ssl_with_scram_connects_and_a_wrong_password_or_ca_reads_as_such() {
    start_private_broker();
    let (password, ca) = (env("PASSERELLE_KAFKA_SASL_SCRAM_PASSWORD"), env("PASSERELLE_TLS_CA"));
    let findings = passerelle_kafka::preflight::run(&scram_endpoint(&password, &ca), DURABILITY, None).await;
    assert!(findings.iter().all(|finding| finding.outcome == Outcome::Pass), "{findings:#?}");
    assert_eq!(findings.len(), 4, "{findings:#?}");
    let expected = format!(
        "1 broker(s) at 127.0.0.1:59294, SASL_SSL, encrypted, certificate and host name verified against the CA in \
         {ca}, SASL SCRAM-SHA-512 as {}",
        env("PASSERELLE_KAFKA_SASL_SCRAM_USER")
    );
    assert_eq!(findings[0].detail, expected);

    let wrong = "Wr0ng-sasl-Pa55";
    let started = std::time::Instant::now();
    let findings = passerelle_kafka::preflight::run(&scram_endpoint(wrong, &ca), DURABILITY, None).await;
    assert_refused(
        &findings,
        &format!(
            "Kafka at 127.0.0.1:59294 refused the SASL credentials of {}: SASL authentication error: \
             Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
            env("PASSERELLE_KAFKA_SASL_SCRAM_USER")
        ),
        "check sasl.username, sasl.mechanism and the password (PASSERELLE_KAFKA_SASL_PASSWORD, or sasl.password in \
         --kafka-config)",
        wrong,
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "{:?}", started.elapsed());
    // Not retried: a refusal stays a refusal however often it is tried.
    let error = passerelle_kafka::topic::broker_count(&scram_endpoint(wrong, &ca)).await.unwrap_err();
    assert!(matches!(error, KafkaError::Credentials { .. }) && !error.retryable(), "{error}");

    let findings =
        passerelle_kafka::preflight::run(&scram_endpoint(&password, &env("PASSERELLE_TLS_OTHER_CA")), DURABILITY, None)
            .await;
    assert_refused(
        &findings,
        "no TLS connection to Kafka at 127.0.0.1:59294: SSL handshake failed: error:0A000086:SSL routines::\
         certificate verify failed",
        "check ssl.ca.location: the CA certificate (PEM) that signed the brokers' certificate, and security.protocol",
        &password,
    );
    let error = passerelle_kafka::topic::broker_count(&scram_endpoint(&password, &env("PASSERELLE_TLS_OTHER_CA")))
        .await
        .unwrap_err();
    assert!(matches!(error, KafkaError::Tls { .. }) && !error.retryable(), "{error}");

    // The right broker under a name its certificate does not carry ("127.1" is 127.0.0.1).
    let mut wrong_host = scram_endpoint(&password, &ca);
    wrong_host.bootstrap_servers = "127.1:59294".to_string();
    let error = passerelle_kafka::topic::broker_count(&wrong_host).await.unwrap_err();
    assert!(matches!(error, KafkaError::Tls { .. }) && !error.retryable(), "{error}");
    assert!(error.cause().contains("certificate verify failed"), "{error}");

    // A plaintext client at the TLS listener: librdkafka sees the connection dropped, which a broker
    // going down looks like too, so it stays an outage; the hint names security.protocol.
    let error =
        passerelle_kafka::topic::broker_count(&KafkaEndpoint::parse("127.0.0.1:59294").unwrap()).await.unwrap_err();
    assert!(matches!(error, KafkaError::Unreachable { .. }), "{error}");
    assert!(error.hint().contains("security.protocol is their listener's") && !error.to_string().contains('\n'));
}
