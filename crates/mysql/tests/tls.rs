//! TLS to the stack's MySQL and MariaDB, as their `REQUIRE SSL` user: encryption is checked on the
//! server's side, in the session's `Ssl_cipher`.

use mysql_async::prelude::Queryable;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_mysql::MysqlError;
use passerelle_testkit::{on_both_targets, Target};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: eval \"$(stack/stack.sh env)\""))
}

/// A MariaDB of this test's own, on the stack's CA: MariaDB reads its certificate only when it starts,
/// and the shared one may have started before the stack served TLS.
const PRIVATE_MARIADB_PORT: u16 = 53396;

fn start_private_mariadb() {
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../stack/stack.sh");
    let ca = std::path::PathBuf::from(env("PASSERELLE_TLS_CA"));
    let output = std::process::Command::new("bash")
        .arg(&script)
        .args(["service-up", "mariadb"])
        .env("PASSERELLE_STACK_DIR", "/var/tmp/passerelle-stack/tls-mariadb")
        .env("PASSERELLE_TLS_DIR", ca.parent().unwrap())
        .env("PASSERELLE_MARIADB_PORT", PRIVATE_MARIADB_PORT.to_string())
        .output()
        .unwrap();
    assert!(output.status.success(), "stack.sh service-up mariadb: {}", String::from_utf8_lossy(&output.stderr));
}

/// The server's `REQUIRE SSL` user (`VERIFY_IDENTITY` with the stack's CA), with `query` replacing
/// the URL's parameters when given.
fn tls_url(target: Target, query: Option<&str>) -> url::Url {
    let mut url = url::Url::parse(&env("PASSERELLE_TARGET_MYSQL_TLS")).unwrap();
    if target == Target::MariaDb {
        url = url::Url::parse(&env("PASSERELLE_TARGET_MARIADB_TLS")).unwrap();
        url.set_port(Some(PRIVATE_MARIADB_PORT)).unwrap();
    }
    if let Some(query) = query {
        url.set_query(Some(query));
    }
    url
}

async fn connect(url: &url::Url) -> Result<mysql_async::Conn, MysqlError> {
    passerelle_mysql::connect(&DbEndpoint::parse_mysql(url.as_str()).unwrap()).await
}

async fn cipher(conn: &mut mysql_async::Conn) -> String {
    let row: Option<(String, String)> = conn.query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'").await.unwrap();
    row.map(|(_, cipher)| cipher).unwrap_or_default()
}

fn assert_one_line(error: &MysqlError, expected: &str) {
    let text = error.to_string();
    assert!(text.contains(expected), "{text}");
    assert!(!text.contains('\n') && !text.contains("tls-secret-my"), "{text}");
    assert!(!error.retryable(), "{text}");
}

async fn every_mode_encrypts_or_fails_with_its_cause(target: Target) {
    if target == Target::MariaDb {
        start_private_mariadb();
    }
    let ca = env("PASSERELLE_TLS_CA");
    // VERIFY_IDENTITY (the stack's URL), VERIFY_CA, REQUIRED without a CA, and the default, PREFERRED.
    let verify_ca = format!("ssl-mode=VERIFY_CA&ssl-ca={ca}");
    for query in [None, Some(verify_ca.as_str()), Some("ssl-mode=REQUIRED"), Some("")] {
        let mut conn = connect(&tls_url(target, query)).await.unwrap_or_else(|error| panic!("{query:?}: {error}"));
        assert!(!cipher(&mut conn).await.is_empty(), "{query:?}: the session is not encrypted");
    }

    let endpoint = DbEndpoint::parse_mysql(tls_url(target, None).as_str()).unwrap();
    let findings = passerelle_mysql::preflight::run(&endpoint, &[], "passerelle").await;
    assert!(findings[0].detail.ends_with("), certificate and host name verified"), "{:?}", findings[0]);

    let wrong_ca = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", env("PASSERELLE_TLS_OTHER_CA"));
    let error = connect(&tls_url(target, Some(&wrong_ca))).await.unwrap_err();
    assert!(matches!(error, MysqlError::Tls { .. }), "{error}");
    assert_one_line(&error, "certificate verify failed");

    // "127.1" reaches 127.0.0.1 (inet_aton's short form) under a name the certificate does not carry.
    let mut wrong_host = tls_url(target, None);
    wrong_host.set_host(Some("127.1")).unwrap();
    let error = connect(&wrong_host).await.unwrap_err();
    assert!(matches!(error, MysqlError::Tls { .. }), "{error}");
    assert_one_line(&error, "certificate verify failed");
    // VERIFY_CA checks the signature, not the name.
    wrong_host.set_query(Some(&verify_ca));
    connect(&wrong_host).await.unwrap();

    let error = connect(&tls_url(target, Some("ssl-mode=DISABLED"))).await.unwrap_err();
    assert!(matches!(error, MysqlError::AuthFailed { encrypted: false, .. }), "{error}");
    assert_one_line(&error, "rejected the password of user \"passerelle_tls\" on an unencrypted connection");
    assert_one_line(&error, "REQUIRE SSL");

    let error = connect(&tls_url(target, Some("ssl-mode=VERIFY_CA"))).await.unwrap_err();
    assert_one_line(&error, "ssl-mode=VERIFY_CA needs ssl-ca");

    // An encrypted client key is named, never asked for on the terminal (OpenSSL's default).
    let key = passerelle_testkit::encrypted_client_key("My-Key-Pa55");
    let query = format!(
        "ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}&ssl-cert={}&ssl-key={}",
        env("PASSERELLE_TLS_CLIENT_CERT"),
        key.display()
    );
    let error = connect(&tls_url(target, Some(&query))).await.unwrap_err();
    assert_one_line(
        &error,
        &format!("ssl-key {} is encrypted: the target's client key must be unencrypted", key.display()),
    );
    std::fs::remove_file(&key).unwrap();
}
on_both_targets!(every_mode_encrypts_or_fails_with_its_cause);
