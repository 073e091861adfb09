//! Passerelle's `json` encoding against Debezium itself, in a real Kafka Connect: standalone, with
//! Debezium's PostgreSQL source (3.6.1) and JDBC sink (3.4.0) (jars from `stack/fetch-connect-jars.sh`, which
//! resolves them from Maven Central once).
//!
//! One Connect process serves both directions at once: a JDBC sink writes Passerelle's events into
//! typed columns of each target, MySQL 9.7 (through MySQL's JDBC driver, `mysql-connector-j`, which
//! comes with Debezium's JDBC sink) and MariaDB 10.11 (MariaDB's driver), and `decode` reads what
//! Debezium's PostgreSQL source wrote with its defaults. The two targets share that one Connect
//! worker, which is why this test runs its sink body once per target itself rather than through
//! `on_both_targets!` (two tests, two JVMs). Connectors, the slot and the topics are removed also
//! when the test fails; the databases are kept then, as everywhere in Passerelle's tests.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use passerelle_kafka::consumer::Consumer;
use passerelle_kafka::envelope::{decode, is_tombstone, try_encode, Decoded, Encoding, Origin, TableLayout};
use passerelle_kafka::producer::Producer;
use passerelle_kafka::topic::{create_topics, delete_topics, TopicLayout};
use passerelle_model::endpoint::{DbEndpoint, KafkaEndpoint};
use passerelle_model::event::{Lsn, Op};
use passerelle_model::schema::{ColumnType, PgType};
use passerelle_testkit::{pg_client, unique_name, SourceDb, Stack, Target, TargetDb};
use serde_json::json;

/// How long each direction may take once Connect is up.
const WAIT: Duration = Duration::from_secs(60);

/// Kafka Connect standalone with Debezium's plugins, killed when dropped.
struct Connect {
    process: Child,
    rest: String,
    dir: PathBuf,
}

impl Connect {
    fn start(kafka: &str) -> Connect {
        let fetch = concat!(env!("CARGO_MANIFEST_DIR"), "/../../stack/fetch-connect-jars.sh");
        let output = Command::new(fetch).stderr(Stdio::inherit()).output().expect("run fetch-connect-jars.sh");
        assert!(output.status.success(), "{fetch} failed: Kafka Connect and Debezium's jars are needed");
        let libs = String::from_utf8(output.stdout).unwrap().trim().to_string();
        let dir = std::env::temp_dir().join(unique_name("passerelle-debezium"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let worker = format!(
            "bootstrap.servers={kafka}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename={dir}/connect.offsets
offset.flush.interval.ms=1000
plugin.path={libs}/plugins
plugin.discovery=service_load
listeners=http://127.0.0.1:{port}
connector.client.config.override.policy=All
",
            dir = dir.display()
        );
        std::fs::write(dir.join("worker.properties"), worker).unwrap();
        let log4j = format!(
            "status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {}/connect.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
",
            dir.display()
        );
        std::fs::write(dir.join("log4j2.properties"), log4j).unwrap();
        let process = Command::new("java")
            .args(["-Xms256m", "-Xmx1g", "-Djava.awt.headless=true"])
            .arg(format!("-Dlog4j2.configurationFile={}/log4j2.properties", dir.display()))
            .args(["-cp", &format!("{libs}/runtime/*"), "org.apache.kafka.connect.cli.ConnectStandalone"])
            .arg(dir.join("worker.properties"))
            .stdout(std::fs::File::create(dir.join("connect.stdout")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Kafka Connect: is a JDK 17 installed?");
        let connect = Connect { process, rest: format!("http://127.0.0.1:{port}"), dir };
        let deadline = Instant::now() + WAIT;
        while connect.request("GET", "/connector-plugins", None).is_none() {
            assert!(Instant::now() < deadline, "Kafka Connect did not start; see {}", connect.dir.display());
            std::thread::sleep(Duration::from_millis(250));
        }
        connect
    }

    /// A REST call through curl, the body on stdin (it holds passwords: never on a command line,
    /// and responses, which echo it, are not printed). `None` when the call fails. Creating a connector
    /// validates it against its database first, which takes seconds on a loaded machine: hence 60 s.
    fn request(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Option<serde_json::Value> {
        let mut curl = Command::new("curl")
            .args(["-fsS", "--max-time", "60", "-X", method, "-H", "Content-Type: application/json"])
            .args(body.map(|_| ["--data-binary", "@-"]).into_iter().flatten())
            .arg(format!("{}{path}", self.rest))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl is installed");
        let mut stdin = curl.stdin.take().unwrap();
        if let Some(body) = body {
            stdin.write_all(body.to_string().as_bytes()).unwrap();
        }
        drop(stdin);
        let output = curl.wait_with_output().unwrap();
        if !output.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null))
    }

    fn create(&self, name: &str, config: serde_json::Value) {
        let created = self.request("POST", "/connectors", Some(&json!({"name": name, "config": config})));
        assert!(created.is_some(), "Kafka Connect refused connector {name}; see {}/connect.log", self.dir.display());
    }

    /// Fails the test, with Connect's reason, when the connector or its task has failed.
    fn check_running(&self, name: &str) {
        let Some(status) = self.request("GET", &format!("/connectors/{name}/status"), None) else { return };
        if status.to_string().contains(r#""FAILED""#) {
            let trace =
                status["tasks"][0]["trace"].as_str().or(status["connector"]["trace"].as_str()).unwrap_or_default();
            let cause = trace.lines().rfind(|line| line.starts_with("Caused by"));
            panic!("connector {name} failed: {}", cause.or(trace.lines().next()).unwrap_or_default());
        }
    }

    /// Stops Connect; its logs stay for a post-mortem when the test failed.
    fn stop(mut self, failed: bool) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        if failed {
            eprintln!("Kafka Connect's logs are in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Connect {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn debezium_reads_passerelle_json_and_passerelle_reads_debezium() {
    let stack = Stack::from_env();
    let endpoint = KafkaEndpoint::parse(&stack.kafka).unwrap();
    let source = SourceDb::create(&stack).await;
    let targets = [Target::MySql, Target::MariaDb];
    let mut target_dbs = Vec::new();
    for target in targets {
        // VERSION(): each sink writes into the server it names.
        target.assert_version().await;
        target_dbs.push(TargetDb::create(&Stack::for_target(target)).await);
    }
    let run = unique_name("dbz");
    let topics = TopicLayout { prefix: run.clone(), partitions: 1, replication: 1, retention_ms: Some(3_600_000) };
    let sink_topic = topics.topic_name("public", "sunk");
    let source_topic = topics.topic_name("public", "origin");
    create_topics(&endpoint, &topics, &[sink_topic.clone(), source_topic.clone()]).await.unwrap();
    let connect = std::sync::Arc::new(
        tokio::task::spawn_blocking({
            let kafka = stack.kafka.clone();
            move || Connect::start(&kafka)
        })
        .await
        .unwrap(),
    );

    let outcome = tokio::spawn({
        let (connect, endpoint, run) = (connect.clone(), endpoint.clone(), run.clone());
        let (source_url, source_name) = (source.url.clone(), source.name.clone());
        let [mysql, mariadb] = [0, 1].map(|i| (targets[i], target_dbs[i].url.clone(), target_dbs[i].name.clone()));
        async move {
            // Passerelle's events go to the topic once; each target's sink reads all of them.
            produce_passerelle_json(&endpoint, &run, &sink_topic).await;
            tokio::join!(
                jdbc_sink_writes_passerelle_json(&connect, &mysql, &run, &sink_topic),
                jdbc_sink_writes_passerelle_json(&connect, &mariadb, &run, &sink_topic),
                passerelle_decodes_debezium_source(&connect, &endpoint, &run, &source_topic, &source_url, &source_name),
            )
        }
    })
    .await;

    // Cleanup, also after a failure: connectors, Connect, the slot, the topics.
    let sinks = targets.map(|target| sink_name(&run, target));
    for name in sinks.into_iter().chain([format!("{run}-source")]) {
        connect.request("DELETE", &format!("/connectors/{name}"), None);
    }
    std::sync::Arc::into_inner(connect).expect("the test holds the last reference").stop(outcome.is_err());
    drop_slot(&stack, &run).await;
    let _ =
        delete_topics(&endpoint, &[topics.topic_name("public", "sunk"), topics.topic_name("public", "origin")]).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Drops the replication slot once the walsender of the killed Connect has gone.
async fn drop_slot(stack: &Stack, slot: &str) {
    let admin = pg_client(&stack.source_admin).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dropped = admin
            .query(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1 and not active",
                &[&slot],
            )
            .await;
        let left = admin.query("select 1 from pg_replication_slots where slot_name = $1", &[&slot]).await.unwrap();
        if left.is_empty() || Instant::now() > deadline {
            assert!(left.is_empty(), "replication slot {slot} is still there: {dropped:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn column(base: PgType) -> ColumnType {
    ColumnType { base, array_dims: 0, display: String::new() }
}

/// One column of the sink's table: its types, PostgreSQL's text of rows 1 and 2 (row 3 is NULL),
/// and what the target holds afterwards, as `SELECT` prints it.
struct SinkColumn {
    name: &'static str,
    pg: PgType,
    /// The column's type on the target (`j` is JSON on MySQL, see [`jdbc_sink_writes_passerelle_json`]).
    sql: &'static str,
    texts: [Option<&'static str>; 2],
    stored: [Option<&'static str>; 2],
}

fn sink_columns() -> Vec<SinkColumn> {
    let column = |name, pg, sql, texts, stored| SinkColumn { name, pg, sql, texts, stored };
    vec![
        column("id", PgType::BigInt, "BIGINT PRIMARY KEY", [Some("1"), Some("2")], [Some("1"), Some("2")]),
        column("i2", PgType::SmallInt, "SMALLINT", [Some("-32768"), Some("0")], [Some("-32768"), Some("0")]),
        column("i4", PgType::Integer, "INT", [Some("2147483647"), Some("-1")], [Some("2147483647"), Some("-1")]),
        column(
            "n",
            PgType::Numeric(Some((38, 10))),
            "DECIMAL(38,10)",
            [Some("1234567890123456789012345678.0123456789"), Some("-0.0000000001")],
            [Some("1234567890123456789012345678.0123456789"), Some("-0.0000000001")],
        ),
        column(
            "m",
            PgType::Money,
            "DECIMAL(20,2)",
            [Some("-$1,234,567.89"), Some("$0.00")],
            [Some("-1234567.89"), Some("0.00")],
        ),
        // Row 1 is updated afterwards to `changed 𝄞`.
        column("txt", PgType::Text, "TEXT", [Some("𝄞 é \"q\" \\ tab\t"), Some("")], [Some("changed 𝄞"), Some("")]),
        column("flag", PgType::Boolean, "BOOLEAN", [Some("t"), Some("f")], [Some("1"), Some("0")]),
        column(
            "d",
            PgType::Date,
            "DATE",
            [Some("2017-08-15"), Some("1900-01-01")],
            [Some("2017-08-15"), Some("1900-01-01")],
        ),
        column(
            "ts",
            PgType::Timestamp(None),
            "DATETIME(6)",
            [Some("2017-08-15 15:00:00.123456"), Some("9999-12-31 23:59:59.999999")],
            [Some("2017-08-15 15:00:00.123456"), Some("9999-12-31 23:59:59.999999")],
        ),
        column(
            "tstz",
            PgType::TimestampTz(None),
            "DATETIME(6)",
            [Some("2017-08-15 15:00:00.5+00"), Some("1969-12-31 23:59:59.999999+00")],
            [Some("2017-08-15 15:00:00.500000"), Some("1969-12-31 23:59:59.999999")],
        ),
        column(
            "tm",
            PgType::Time(None),
            "TIME(6)",
            [Some("12:34:56.789012"), Some("00:00:00")],
            [Some("12:34:56.789012"), Some("00:00:00.000000")],
        ),
        column(
            "ttz",
            PgType::TimeTz(None),
            "TIME(6)",
            [Some("12:00:00.5+03"), Some("23:59:59-05:30")],
            [Some("09:00:00.500000"), Some("05:29:59.000000")],
        ),
        column("b", PgType::Bytea, "BLOB", [Some("\\x00ff5c00"), Some("\\x")], [Some("00FF5C00"), Some("")]),
        column(
            "j",
            PgType::Jsonb,
            "LONGTEXT",
            [Some(r#"{"a": {"ü": "𝄞"}}"#), Some("[]")],
            [Some(r#"{"a": {"ü": "𝄞"}}"#), Some("[]")],
        ),
        column(
            "u",
            PgType::Uuid,
            "CHAR(36)",
            [Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380b11"), Some("00000000-0000-0000-0000-000000000000")],
            [Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380b11"), Some("00000000-0000-0000-0000-000000000000")],
        ),
        column("f4", PgType::Real, "FLOAT", [Some("0.1"), Some("-1e+30")], [Some("0.1"), Some("-1e30")]),
        column(
            "f8",
            PgType::Double,
            "DOUBLE",
            [Some("0.1"), Some("-1.7976931348623157e+308")],
            [Some("0.1"), Some("-1.7976931348623157e308")],
        ),
        column(
            "iv",
            PgType::Interval(None),
            "VARCHAR(64)",
            [Some("P1Y2M-3DT4H5M6.5S"), Some("PT0S")],
            [Some("P1Y2M-3DT4H5M6.5S"), Some("PT0S")],
        ),
        column(
            "p",
            PgType::Point,
            "POINT",
            [Some("(1.5,-2)"), Some("(0.1,1e+300)")],
            [Some("POINT(1.5 -2)"), Some("POINT(0.1 1e300)")],
        ),
    ]
}

/// The sink's table as Passerelle's `json` encoding carries it.
fn sink_layout(topic: &str, columns: &[SinkColumn]) -> TableLayout {
    let names = columns.iter().map(|c| c.name.to_string()).collect();
    TableLayout::new("public".into(), "sunk".into(), topic.into(), names, vec![0])
        .with_encoding(Encoding::Json, columns.iter().map(|c| column(c.pg.clone())).collect())
}

/// A row of `columns`: PostgreSQL's text of row `i` (0 or 1), or (2) the row of NULLs but its key.
fn sink_row(columns: &[SinkColumn], i: usize) -> Vec<Option<&'static str>> {
    match i {
        2 => std::iter::once(Some("3")).chain(columns[1..].iter().map(|_| None)).collect(),
        _ => columns.iter().map(|c| c.texts[i]).collect(),
    }
}

/// Direction 1, Passerelle's side: its producer and `json` encoder write three rows, then an update of
/// row 1 that the sinks upsert by key.
async fn produce_passerelle_json(endpoint: &KafkaEndpoint, run: &str, topic: &str) {
    let columns = sink_columns();
    let layout = sink_layout(topic, &columns);
    let producer = Producer::new(endpoint, Duration::from_secs(60)).unwrap();
    let origin = Origin {
        server: run,
        database: "db",
        lsn: Lsn(1),
        change_lsn: Lsn(0),
        position: None,
        snapshot: true,
        ts_ms: 0,
    };
    for i in 0..3 {
        let event = try_encode(&layout, Op::Read, None, Some(&sink_row(&columns, i)), &origin).unwrap();
        producer.send(topic, None, event.key.as_deref(), &event.value).await.unwrap();
    }
    let mut updated = sink_row(&columns, 0);
    updated[layout.columns.iter().position(|c| c == "txt").unwrap()] = Some("changed 𝄞");
    let origin = Origin { snapshot: false, lsn: Lsn(2), ..origin };
    let event = try_encode(&layout, Op::Update, Some(&sink_row(&columns, 0)), Some(&updated), &origin).unwrap();
    producer.send(topic, None, event.key.as_deref(), &event.value).await.unwrap();
    producer.flush().await.unwrap();
}

fn sink_name(run: &str, target: Target) -> String {
    match target {
        Target::MySql => format!("{run}-sink-mysql"),
        Target::MariaDb => format!("{run}-sink-mariadb"),
    }
}

/// Direction 1, Debezium's side: its JDBC sink (upsert by record key) writes the topic into a table
/// of `target` (server, URL, database) created here with typed columns, through the server's own
/// JDBC driver.
async fn jdbc_sink_writes_passerelle_json(
    connect: &Connect,
    (server, target_url, target_name): &(Target, String, String),
    run: &str,
    topic: &str,
) {
    let columns = sink_columns();
    let mut conn = passerelle_testkit::mysql_conn(target_url).await;
    // The sink's MySQL dialect writes io.debezium.data.Json as CAST(? AS JSON): into MySQL's JSON
    // type there; MariaDB has no such cast, so json travels on as a plain string into LONGTEXT, as in
    // bench/reference.sh.
    let json_typed = *server == Target::MySql;
    let sql_type = |c: &SinkColumn| if c.name == "j" && json_typed { "JSON" } else { c.sql };
    let definitions: Vec<String> = columns.iter().map(|c| format!("{} {}", c.name, sql_type(c))).collect();
    conn.query_drop(format!("CREATE TABLE sunk ({}) CHARACTER SET utf8mb4", definitions.join(", "))).await.unwrap();

    let sink = sink_name(run, *server);
    let target = DbEndpoint::parse_mysql(target_url).unwrap();
    let scheme = if json_typed { "mysql" } else { "mariadb" };
    let mut config = json!({
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "tasks.max": "1",
        "topics": topic,
        "connection.url": format!("jdbc:{scheme}://{}:{}/{target_name}", target.host, target.port),
        "connection.username": target.user,
        "connection.password": target.password.as_ref().map(|p| p.expose()).unwrap_or_default(),
        "insert.mode": "upsert",
        "primary.key.mode": "record_key",
        "schema.evolution": "none",
        "collection.name.format": "sunk",
        "quote.identifiers": "true",
        "consumer.override.auto.offset.reset": "earliest",
        "transforms": "unwrap",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
    });
    if !json_typed {
        config["transforms"] = json!("unwrap,jsontext");
        config["transforms.jsontext.type"] = json!("org.apache.kafka.connect.transforms.Cast$Value");
        config["transforms.jsontext.spec"] = json!("j:string");
    }
    connect.create(&sink, config);
    let selected: Vec<String> = columns
        .iter()
        .map(|c| match c.sql {
            "BLOB" => format!("HEX({})", c.name),
            "POINT" => format!("ST_AsText({})", c.name),
            _ => format!("CAST({} AS CHAR)", c.name),
        })
        .collect();
    let query = format!("SELECT {} FROM sunk ORDER BY id", selected.join(", "));
    let stored = |i: usize| -> Vec<Option<String>> { columns.iter().map(|c| c.stored[i].map(String::from)).collect() };
    let expected = vec![stored(0), stored(1), sink_row(&columns, 2).iter().map(|v| v.map(String::from)).collect()];
    let deadline = Instant::now() + WAIT;
    loop {
        connect.check_running(&sink);
        let rows: Vec<mysql_async::Row> = conn.query(query.as_str()).await.unwrap();
        let got: Vec<Vec<Option<String>>> = rows
            .into_iter()
            .map(|row| (0..columns.len()).map(|i| row.get::<Option<String>, _>(i).unwrap()).collect())
            .collect();
        if got == expected {
            return;
        }
        assert!(Instant::now() < deadline, "the JDBC sink wrote into {server:?} {got:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Direction 2: Debezium's PostgreSQL source with its defaults (decimal.handling.mode=precise,
/// time.precision.mode=adaptive, …) snapshots a table; `decode` must give PostgreSQL's values.
async fn passerelle_decodes_debezium_source(
    connect: &Connect,
    endpoint: &KafkaEndpoint,
    run: &str,
    topic: &str,
    source_url: &str,
    source_name: &str,
) {
    let client = pg_client(source_url).await;
    client
        .batch_execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601';
             SET extra_float_digits = 3; SET bytea_output = 'hex'; SET lc_monetary = 'C';
             CREATE TABLE origin (id bigint PRIMARY KEY, i2 smallint, n numeric(30,10), nv numeric, m money, txt text,
               flag boolean, d date, ts timestamp, ts3 timestamp(3), tstz timestamptz, tm time, ttz timetz, b bytea,
               j jsonb, u uuid, f4 real, f8 double precision, p point);
             INSERT INTO origin VALUES
               (1, -32768, '12345678901234567890.0123456789', '1234567890123456.1234567890', '-1234567.89',
                '𝄞 é \"q\" \\ tab', true, '2017-08-15', '2017-08-15 15:00:00.123456', '2017-08-15 15:00:00.123',
                '2017-08-15 18:00:00.5+03', '12:34:56.789012', '12:00:00+03', '\\x00ff5c00', '{\"a\": {\"ü\": \"𝄞\"}}',
                'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380b11', 0.1, 'NaN', '(1.5,-2)'),
               (2, 0, '-0.0000000001', '-1e-20', '0', '', false, '1900-01-01', '9999-12-31 23:59:59.999999',
                'infinity', '-infinity', '24:00:00', '23:59:59.999999-05:30', '\\x', '[]',
                '00000000-0000-0000-0000-000000000000', '-Infinity', '-1.7976931348623157e+308', '(1e-308,-0)'),
               (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
               (4, NULL, NULL, NULL, NULL, NULL, NULL, 'infinity', '-infinity', '-infinity', 'infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
               (5, NULL, NULL, NULL, NULL, NULL, NULL, '-infinity', 'infinity', 'infinity', '-infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             -- A text too long to stay in the row: PostgreSQL TOASTs it.
             INSERT INTO origin (id, txt) SELECT 6, string_agg(md5(i::text), '') FROM generate_series(1, 400) i",
        )
        .await
        .unwrap();
    // PostgreSQL's text of each value; where Debezium keeps the value but not PostgreSQL's text, the
    // text of the value it keeps: numeric without trailing zeros, timetz at UTC.
    let rows = client
        .query(
            "SELECT id::text, i2::text, n::text, trim_scale(nv)::text, m::text, txt, CASE WHEN flag THEN 't' WHEN NOT flag THEN 'f' END,
                    d::text, ts::text, ts3::text, tstz::text, tm::text, (ttz AT TIME ZONE 'UTC')::text, b::text, j::text,
                    u::text, f4::text, f8::text, p::text
               FROM origin ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let expected: Vec<Vec<Option<String>>> = rows.iter().map(|row| (0..19).map(|i| row.get(i)).collect()).collect();

    let source = DbEndpoint::parse_postgres(source_url).unwrap();
    let name = format!("{run}-source");
    connect.create(
        &name,
        json!({
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "tasks.max": "1",
            "plugin.name": "pgoutput",
            "database.hostname": source.host,
            "database.port": source.port.to_string(),
            "database.user": source.user,
            "database.password": source.password.as_ref().map(|p| p.expose()).unwrap_or_default(),
            "database.dbname": source_name,
            "topic.prefix": run,
            "slot.name": run,
            "publication.name": run,
            "publication.autocreate.mode": "filtered",
            "table.include.list": "public.origin",
            "snapshot.mode": "initial",
        }),
    );
    let columns = [
        "id", "i2", "n", "nv", "m", "txt", "flag", "d", "ts", "ts3", "tstz", "tm", "ttz", "b", "j", "u", "f4", "f8",
        "p",
    ];
    let types = [
        PgType::BigInt,
        PgType::SmallInt,
        PgType::Numeric(Some((30, 10))),
        PgType::Numeric(None),
        PgType::Money,
        PgType::Text,
        PgType::Boolean,
        PgType::Date,
        PgType::Timestamp(None),
        PgType::Timestamp(Some(3)),
        PgType::TimestampTz(None),
        PgType::Time(None),
        PgType::TimeTz(None),
        PgType::Bytea,
        PgType::Jsonb,
        PgType::Uuid,
        PgType::Real,
        PgType::Double,
        PgType::Point,
    ];
    // The layout decodes with the json encoding's types, as Passerelle's sink would.
    let layout =
        TableLayout::new("public".into(), "origin".into(), topic.into(), columns.map(String::from).to_vec(), vec![0])
            .with_encoding(Encoding::Json, types.into_iter().map(column).collect());
    let consumer = Consumer::subscribe(endpoint, &unique_name("group"), vec![topic.to_string()]).unwrap();
    let mut got: Vec<Vec<Option<String>>> = Vec::new();
    let mut debezium_schema = None;
    let deadline = Instant::now() + WAIT;
    while got.len() < expected.len() {
        connect.check_running(&name);
        assert!(Instant::now() < deadline, "Debezium sent {} of {} rows", got.len(), expected.len());
        for record in consumer.next_batch(100, usize::MAX, Duration::from_millis(500)).await.unwrap() {
            let decoded = decode(&layout, &record.value).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(decoded.op, Op::Read);
            assert!(decoded.lsn > Lsn(0));
            got.push(decoded.after.unwrap());
            let value: serde_json::Value = serde_json::from_slice(&record.value).unwrap();
            debezium_schema = Some(value["schema"].clone());
        }
    }
    got.sort_by_key(|row| row[0].as_deref().unwrap().parse::<i64>().unwrap());
    assert_eq!(got, expected);
    assert_same_schema_as_debezium(&layout, debezium_schema.expect("a record was read"), run);

    // The change stream: an update that leaves the TOASTed text alone, which the default replica
    // identity does not log and Debezium replaces by a placeholder, must not pass for the value;
    // a delete carries its key, and the tombstone after it is told apart.
    client.batch_execute("UPDATE origin SET i2 = 7 WHERE id = 6; DELETE FROM origin WHERE id = 2").await.unwrap();
    let mut changes = Vec::new();
    while changes.len() < 3 {
        connect.check_running(&name);
        assert!(Instant::now() < deadline, "Debezium sent {changes:?} of the update, the delete and its tombstone");
        for record in consumer.next_batch(100, usize::MAX, Duration::from_millis(500)).await.unwrap() {
            changes.push(if is_tombstone(&record.value) {
                "tombstone".to_string()
            } else {
                match decode(&layout, &record.value) {
                    Ok(Decoded { op: Op::Delete, before: Some(before), after: None, .. }) => {
                        let key_only: Vec<Option<String>> =
                            std::iter::once(Some("2".to_string())).chain(std::iter::repeat_n(None, 18)).collect();
                        assert_eq!(before, key_only);
                        "delete".to_string()
                    }
                    Ok(other) => panic!("unexpected {other:?}"),
                    Err(error) => error,
                }
            });
        }
    }
    assert_eq!(
        changes,
        [
            r#"column "txt" of public.origin: Debezium's placeholder for an unchanged TOASTed value: give the source table REPLICA IDENTITY FULL"#,
            "delete",
            "tombstone"
        ]
    );
}

/// Passerelle's `json` schema for the table is Debezium's own, field for field, except the columns
/// where Passerelle picks Debezium's exact setting over its default: numeric and money as strings
/// (`decimal.handling.mode=string`), timestamp(3) in microseconds (`adaptive_time_microseconds`).
fn assert_same_schema_as_debezium(layout: &TableLayout, debezium: serde_json::Value, run: &str) {
    // A row of NULLs but its key: the values do not matter here.
    let nulls: Vec<Option<&str>> = std::iter::once(Some("1")).chain(std::iter::repeat_n(None, 18)).collect();
    let origin = Origin {
        server: run,
        database: "db",
        lsn: Lsn(1),
        change_lsn: Lsn(0),
        position: None,
        snapshot: true,
        ts_ms: 0,
    };
    let encoded = try_encode(layout, Op::Read, None, Some(&nulls), &origin).unwrap();
    let ours: serde_json::Value =
        serde_json::from_slice::<serde_json::Value>(&encoded.value).unwrap()["schema"].clone();
    let field = |schema: &serde_json::Value, name: &str| {
        schema["fields"].as_array().unwrap().iter().find(|f| f["field"] == name).cloned().unwrap_or_default()
    };
    let without_fields = |schema: &serde_json::Value| {
        let mut schema = schema.clone();
        schema.as_object_mut().unwrap().remove("fields");
        schema
    };
    assert_eq!(without_fields(&ours), without_fields(&debezium));
    for name in ["source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"] {
        assert_eq!(field(&ours, name), field(&debezium, name), "envelope field {name}");
    }
    let (our_row, debezium_row) = (field(&ours, "after"), field(&debezium, "after"));
    assert_eq!(without_fields(&our_row), without_fields(&debezium_row));
    for name in &layout.columns {
        if ["n", "nv", "m", "ts3"].contains(&name.as_str()) {
            continue;
        }
        assert_eq!(field(&our_row, name), field(&debezium_row, name), "column {name}");
    }
}
