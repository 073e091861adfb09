//! SASL_SSL with SCRAM-SHA-512 on a private broker of this test's own (59292, SASL_SSL on 59294):
//! a broker's listeners are fixed when it starts, and the shared one may predate the stack's TLS.

use passerelle_model::endpoint::{KafkaEndpoint, Secret};
use passerelle_model::preflight::Outcome;

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

fn scram_endpoint(password: &str) -> KafkaEndpoint {
    let mut endpoint = KafkaEndpoint::parse("127.0.0.1:59294").unwrap();
    let properties = format!(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.username={}\nssl.ca.location={}\n",
        env("PASSERELLE_KAFKA_SASL_SCRAM_USER"),
        env("PASSERELLE_TLS_CA")
    );
    endpoint.set_from_properties(&properties).unwrap();
    endpoint.set("sasl.password", Secret::new(password.to_string()));
    endpoint
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_ssl_with_scram_connects_and_a_wrong_password_fails() {
    start_private_broker();
    let findings =
        passerelle_kafka::preflight::run(&scram_endpoint(&env("PASSERELLE_KAFKA_SASL_SCRAM_PASSWORD"))).await;
    assert!(findings.iter().all(|finding| finding.outcome == Outcome::Pass), "{findings:#?}");
    assert_eq!(findings.len(), 2, "{findings:#?}");

    let findings = passerelle_kafka::preflight::run(&scram_endpoint("Wr0ng-sasl-Pa55")).await;
    let text = format!("{findings:?}");
    assert_eq!(findings[0].outcome, Outcome::Fail, "{text}");
    // Not yet the cause the issue asks for: librdkafka reports the refused password as an error
    // event, and the metadata request only as a transport failure.
    assert!(!text.contains("Wr0ng-sasl-Pa55") && !findings[0].detail.contains('\n'), "{text}");
}
