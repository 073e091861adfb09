//! TLS to the stack's PostgreSQL, as its TLS-only role (`hostssl` lines, then `reject` without TLS):
//! encryption is checked on the server's side, in `pg_stat_ssl`, for a session and for the walsender.

use passerelle_model::endpoint::DbEndpoint;
use passerelle_pg::{slot, PgError};
use passerelle_testkit::{pg_client, unique_name, with_database, SourceDb, Stack};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: eval \"$(stack/stack.sh env)\""))
}

/// The TLS-only role's URL (`sslmode=verify-full` with the stack's CA) on `database`, with `query`
/// parameters replacing the stack's when given.
fn tls_url(database: &str, query: Option<String>) -> String {
    let mut url = url::Url::parse(&with_database(&env("PASSERELLE_SOURCE_TLS"), database)).unwrap();
    if let Some(query) = query {
        url.set_query(Some(&query));
    }
    url.to_string()
}

#[tokio::test]
async fn verify_full_encrypts_the_session_and_the_walsender() {
    let db = SourceDb::create(&Stack::from_env()).await;
    let endpoint = DbEndpoint::parse_postgres(&tls_url(&db.name, None)).unwrap();
    let client = passerelle_pg::connect(&endpoint).await.unwrap();
    let row = client.query_one("select ssl, version from pg_stat_ssl where pid = pg_backend_pid()", &[]).await.unwrap();
    assert!(row.get::<_, bool>(0), "the session is not encrypted");
    assert!(row.get::<_, String>(1).starts_with("TLSv1."), "{row:?}");
    let findings = passerelle_pg::preflight::run(&endpoint, &[]).await;
    assert!(findings[0].detail.contains(", encrypted (TLSv1."), "{:?}", findings[0]);
    assert!(findings[0].detail.ends_with("), certificate and host name verified"), "{:?}", findings[0]);
    // The server offers SCRAM-SHA-256-PLUS over TLS, and accepts the exchange only if the binding
    // matches its own certificate: it saw and checked the channel binding.
    let replication = findings.iter().find(|finding| finding.check == "replication connection").unwrap();
    assert_eq!(
        replication.detail, "opened; the password by SCRAM-SHA-256-PLUS, bound to the TLS session (channel binding)",
        "{findings:?}"
    );
    let plain =
        DbEndpoint::parse_postgres(&format!("{}?sslmode=disable", with_database(&Stack::from_env().source, &db.name)))
            .unwrap();
    assert_eq!(slot::replication_authentication(&plain).await.unwrap(), Some("SCRAM-SHA-256"));

    let slot_name = unique_name("tls");
    let exported = slot::create_slot(&endpoint, &slot_name).await.unwrap();
    let admin = pg_client(&db.admin_url).await;
    let walsenders = admin
        .query(
            "select s.ssl from pg_stat_ssl s join pg_stat_activity a using (pid) \
             where a.backend_type = 'walsender' and a.datname = $1",
            &[&db.name],
        )
        .await
        .unwrap();
    exported.close().await;
    slot::drop_slot(&admin, &"the test", &slot_name).await.unwrap();
    let encrypted: Vec<bool> = walsenders.iter().map(|row| row.get(0)).collect();
    assert_eq!(encrypted, [true], "the walsender's connection");
}

/// Both connections, the session's and the replication one, fail with the same one-line cause.
async fn both_fail(url: &str) -> Vec<PgError> {
    let endpoint = DbEndpoint::parse_postgres(url).unwrap();
    let session = passerelle_pg::connect(&endpoint).await.map(|_| ()).unwrap_err();
    let replication = slot::replication_session_settings(&endpoint).await.map(|_| ()).unwrap_err();
    vec![session, replication]
}

fn assert_one_line(error: &PgError, expected: &str) {
    let text = error.to_string();
    assert!(text.contains(expected), "{text}");
    assert!(!text.contains('\n') && !text.contains("tls-secret-pg"), "{text}");
    assert!(!error.retryable(), "{text}");
}

#[tokio::test]
async fn a_wrong_ca_a_wrong_host_and_no_tls_are_refused_with_their_cause() {
    let db = SourceDb::create(&Stack::from_env()).await;
    let (ca, other_ca) = (env("PASSERELLE_TLS_CA"), env("PASSERELLE_TLS_OTHER_CA"));

    let wrong_ca = tls_url(&db.name, Some(format!("sslmode=verify-full&sslrootcert={other_ca}")));
    for error in both_fail(&wrong_ca).await {
        assert!(matches!(error, PgError::Tls { .. }), "{error}");
        assert_one_line(&error, "the server's certificate was refused: self-signed certificate in certificate chain");
    }

    // The right server, under a name its certificate does not carry.
    let mut wrong_host = url::Url::parse(&tls_url(&db.name, None)).unwrap();
    wrong_host.set_host(Some("db.example")).unwrap();
    wrong_host.set_query(Some(&format!("sslmode=verify-full&sslrootcert={ca}&hostaddr=127.0.0.1")));
    for error in both_fail(wrong_host.as_str()).await {
        assert_one_line(&error, "the server's certificate was refused: hostname mismatch");
    }
    // verify-ca checks the signature, not the name.
    let verify_ca = wrong_host.as_str().replace("verify-full", "verify-ca");
    let endpoint = DbEndpoint::parse_postgres(&verify_ca).unwrap();
    passerelle_pg::connect(&endpoint).await.unwrap();
    slot::replication_session_settings(&endpoint).await.unwrap();

    for error in both_fail(&tls_url(&db.name, Some("sslmode=disable".to_string()))).await {
        assert!(matches!(error, PgError::Refused { .. }), "{error}");
        assert_one_line(&error, "no encryption");
        assert!(error.to_string().contains("sslmode=require"), "{error}");
    }

    // An encrypted client key: named without its passphrase, never asked for on the terminal.
    let key = passerelle_testkit::encrypted_client_key("Pg-Key-Pa55");
    let with_key = |password: &str| {
        let query = format!(
            "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}{password}",
            env("PASSERELLE_TLS_CLIENT_CERT"),
            key.display()
        );
        tls_url(&db.name, Some(query))
    };
    for error in both_fail(&with_key("")).await {
        assert_one_line(&error, &format!("sslkey {} is encrypted: give its passphrase as sslpassword", key.display()));
    }
    for error in both_fail(&with_key("&sslpassword=wrong")).await {
        assert_one_line(&error, "sslpassword does not decrypt sslkey");
    }
    let endpoint = DbEndpoint::parse_postgres(&with_key("&sslpassword=Pg-Key-Pa55")).unwrap();
    passerelle_pg::connect(&endpoint).await.unwrap();
    slot::replication_session_settings(&endpoint).await.unwrap();
    std::fs::remove_file(&key).unwrap();

    let no_ca = tls_url(&db.name, Some("sslmode=verify-full".to_string()));
    let error = passerelle_pg::connect(&DbEndpoint::parse_postgres(&no_ca).unwrap()).await.unwrap_err();
    assert_one_line(&error, "sslmode=verify-full needs sslrootcert");
}

/// `require` encrypts without checking, and the default, `prefer`, encrypts when the server offers it.
#[tokio::test]
async fn require_and_prefer_encrypt() {
    let db = SourceDb::create(&Stack::from_env()).await;
    for query in [Some("sslmode=require".to_string()), Some(String::new())] {
        let endpoint = DbEndpoint::parse_postgres(&tls_url(&db.name, query)).unwrap();
        let client = passerelle_pg::connect(&endpoint).await.unwrap();
        let row = client.query_one("select ssl from pg_stat_ssl where pid = pg_backend_pid()", &[]).await.unwrap();
        assert!(row.get::<_, bool>(0), "{:?} is not encrypted", endpoint.tls.mode);
        slot::replication_session_settings(&endpoint).await.unwrap();
    }
}
