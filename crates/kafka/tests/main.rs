//! The Kafka crate against the real broker of the local stack: topics, producer and consumer group.

use std::collections::HashMap;
use std::time::Duration;

use passerelle_kafka::consumer::Consumer;
use passerelle_kafka::envelope::{decode, try_encode, Encoding, Origin, TableLayout};
use passerelle_kafka::producer::Producer;
use passerelle_kafka::topic::{create_topics, delete_topics, TopicLayout};
use passerelle_model::endpoint::KafkaEndpoint;
use passerelle_model::event::{Lsn, Op};
use passerelle_model::schema::{ColumnType, PgType};
use passerelle_testkit::{unique_name, Stack};

#[tokio::test(flavor = "multi_thread")]
async fn events_round_trip_in_key_order_through_the_broker() {
    let stack = Stack::from_env();
    let endpoint = KafkaEndpoint::parse(&stack.kafka).unwrap();
    let layout =
        TopicLayout { prefix: unique_name("test"), partitions: 3, replication: 1, retention_ms: Some(3_600_000) };
    let topic = layout.topic_name("s", "t");
    create_topics(&endpoint, &layout, std::slice::from_ref(&topic)).await.unwrap();
    // Creating again is fine: a resumed run finds its topics.
    create_topics(&endpoint, &layout, std::slice::from_ref(&topic)).await.unwrap();

    let table = TableLayout::new("s".into(), "t".into(), topic.clone(), vec!["id".into(), "v".into()], vec![0]);
    let producer = Producer::new(&endpoint, Duration::from_secs(60)).unwrap();
    let n_keys = 50;
    let n_versions = 40;
    for version in 0..n_versions {
        for key in 0..n_keys {
            let (key, version_text) = (key.to_string(), version.to_string());
            let row = [Some(key.as_str()), Some(version_text.as_str())];
            let origin = Origin {
                server: &layout.prefix,
                database: "db",
                lsn: Lsn(version),
                change_lsn: Lsn(0),
                position: None,
                snapshot: false,
                ts_ms: 0,
            };
            let event = try_encode(&table, Op::Update, None, Some(&row), &origin).unwrap();
            producer.send(&topic, None, event.key.as_deref(), &event.value).await.unwrap();
        }
    }
    assert_eq!(producer.flush().await.unwrap(), n_keys * n_versions);

    let consumer = Consumer::subscribe(&endpoint, &unique_name("group"), vec![topic.clone()]).unwrap();
    let ends = passerelle_kafka::topic::end_offsets(&endpoint, std::slice::from_ref(&topic)).await.unwrap();
    assert_eq!(ends.len(), 3, "one end per partition");
    assert_eq!(ends.iter().map(|end| end.end).sum::<i64>(), (n_keys * n_versions) as i64);
    // Every key's versions arrive in order, all of them, each once.
    let mut last_version: HashMap<String, i64> = HashMap::new();
    let mut n_records = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while n_records < n_keys * n_versions && tokio::time::Instant::now() < deadline {
        for record in consumer.next_batch(500, usize::MAX, Duration::from_millis(500)).await.unwrap() {
            let decoded = decode(&table, &record.value).unwrap();
            let row = decoded.after.unwrap();
            let version: i64 = row[1].as_deref().unwrap().parse().unwrap();
            let previous = last_version.insert(row[0].clone().unwrap(), version);
            assert_eq!(previous.map_or(0, |v| v + 1), version, "versions of key {:?} out of order", row[0]);
            assert_eq!(decoded.lsn, Lsn(version as u64));
            n_records += 1;
        }
    }
    assert_eq!(n_records, n_keys * n_versions);
    assert!(last_version.values().all(|&v| v == n_versions as i64 - 1));
    delete_topics(&endpoint, &[topic]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_brokers_fail_with_the_broker_list() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = KafkaEndpoint::parse(&format!("127.0.0.1:{port}")).unwrap();
    let layout = TopicLayout { prefix: "x".into(), partitions: 1, replication: 1, retention_ms: None };
    let error = create_topics(&endpoint, &layout, &["x.s.t".to_string()]).await.unwrap_err();
    assert!(error.to_string().starts_with(&format!("cannot reach Kafka at 127.0.0.1:{port}")), "{error}");
}

/// PostgreSQL's session settings that shape text output, as `pg::session` pins them.
const SESSION: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601';
    SET extra_float_digits = 3; SET bytea_output = 'hex'; SET lc_monetary = 'C'";

/// Every value PostgreSQL prints for these types, edge values and thousands of random floats
/// included, comes back byte-identical from `json`.
#[tokio::test(flavor = "multi_thread")]
async fn json_gives_back_postgres_text_of_every_type() {
    let stack = Stack::from_env();
    let client = passerelle_testkit::pg_client(&stack.source).await;
    client.batch_execute(SESSION).await.unwrap();
    // Normal, subnormal and binary-fraction values across each width's whole exponent range.
    let random_floats = |max_exponent: i32, min_normal: &str| {
        format!(
            "(select array_agg(case when i % 3 = 0 then (random() - 0.5) * 10 ^ (random() * {} - {max_exponent})
                                    when i % 3 = 1 then random() * {min_normal} + {min_normal} / 2 ^ 23
                                    else (random() * 2 ^ 53)::bigint / 2 ^ (i % 60) end)
              from generate_series(1, 3000) i)",
            2 * max_exponent
        )
    };
    let cases: Vec<(PgType, &str, String)> = vec![
        (PgType::SmallInt, "int2", "array[-32768, 0, 32767]".into()),
        (PgType::BigInt, "int8", "array[-9223372036854775808, 9223372036854775807]".into()),
        (PgType::Numeric(None), "numeric", "array['1234567890123456789012345678.0123456789', 'NaN', '-0.000001', '1e-40']".into()),
        (PgType::Money, "money", "array['-1234567.5', '0', '92233720368547758.07', '-92233720368547758.08']".into()),
        (PgType::Double, "float8", format!("array['NaN', 'Infinity', '-Infinity', '-0', '1e-308', '5e-324', '2.2250738585072014e-308', '1.7976931348623157e308', '0.1']::float8[] || {}", random_floats(307, "2.3e-308"))),
        (PgType::Real, "float4", format!("array['NaN', '-Infinity', '-0', '1e-45', '1.1754942e-38', '3.4028235e38', '0.1']::float4[] || {}::float4[]", random_floats(37, "1.2e-38"))),
        // bool's cast to text says `true`; its output function, which COPY and pgoutput call, says `t`.
        (PgType::Boolean, "text", "array['t', 'f']".into()),
        (PgType::Text, "text", "array['', 'NULL', '𝄞 é \"q\" \\ tab	nl
']".into()),
        (PgType::Bytea, "bytea", "array['\\x'::bytea, '\\x00ff00', '\\x5c']".into()),
        (PgType::Date, "date", "array['1970-01-01', '1900-01-01', '2038-01-19', '9999-12-31', '10000-01-01', '0044-03-15 BC', '4714-11-24 BC', '5874897-12-31', 'infinity', '-infinity']".into()),
        (PgType::Timestamp(None), "timestamp", "array['1969-12-31 23:59:59.999999', '2038-01-19 03:14:08', '9999-12-31 23:59:59.999999', '10000-01-01', '294276-12-31 23:59:59.999999', '0044-03-15 12:00:00.5 BC', '4714-11-24 00:00:00 BC', 'infinity', '-infinity']".into()),
        (PgType::TimestampTz(None), "timestamptz", "array['2017-08-15 18:00:00+03', '1900-01-01 00:00:00.000001', '0044-03-15 12:00:00.5 BC', '294276-12-31 23:59:59.999999', 'infinity', '-infinity']".into()),
        (PgType::Time(None), "time", "array['00:00:00', '24:00:00', '12:34:56.789012']".into()),
        (PgType::TimeTz(None), "timetz", "array['24:00:00+03', '12:00:00-01:02:03', '12:00:00.123+05:30', '00:00:00+00', '23:59:59.999999-15:59']".into()),
        (PgType::Interval(None), "interval", "array['1 year 2 months -3 days 04:05:06.5', '-1 mon', '0', '178000000 years', '-00:00:00.000001']".into()),
        (PgType::Jsonb, "jsonb", "array['{\"a\": {\"ü\": \"𝄞\\u00e9\", \"n\": [1, null, 1e400]}}', '\"\"', 'null']".into()),
        (PgType::Uuid, "uuid", "array['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380b11']".into()),
        (PgType::Point, "point", "array[point(1.5, -2), point('NaN', 'Infinity'), point(1e-308, '-0'), point(0.1, 1e300)]".into()),
        (PgType::Integer, "int4[]", "(values ('{1,NULL,3}'::int4[]), ('[0:1]={7,8}'), ('{}'), ('{{1,2},{3,4}}')) a".into()),
        (PgType::Box, "box", "array[box(point(1, 2), point(3, 4))]".into()),
    ];
    for (base, sql_type, array) in cases {
        let array_dims = u32::from(sql_type.ends_with("[]"));
        let column_type = ColumnType { base, array_dims, display: sql_type.into() };
        let layout = TableLayout::new("s".into(), "t".into(), "p.s.t".into(), vec!["v".into()], vec![])
            .with_encoding(Encoding::Json, vec![column_type]);
        let query = format!("select v::text from unnest(({array})::{sql_type}[]) v");
        let query = if array_dims > 0 { format!("select v::text from {array}(v)") } else { query };
        let rows = client.query(query.as_str(), &[]).await.unwrap_or_else(|error| panic!("{query}: {error:?}"));
        assert!(!rows.is_empty(), "{sql_type}");
        for row in rows {
            let text: Option<String> = row.get(0);
            let origin = Origin {
                server: "p",
                database: "db",
                lsn: Lsn(1),
                change_lsn: Lsn(0),
                position: None,
                snapshot: true,
                ts_ms: 0,
            };
            let encoded = match try_encode(&layout, Op::Read, None, Some(&[text.as_deref()]), &origin) {
                Ok(encoded) => encoded,
                // What the json encoding refuses by design: floats JSON has no number for, and
                // timestamps past io.debezium.time.MicroTimestamp.
                Err(error) if ["NaN", "Infinity"].iter().any(|word| text.as_deref().unwrap().contains(word)) => {
                    assert!(error.contains("has no JSON number"), "{error}");
                    continue;
                }
                Err(error) if text.as_deref() == Some("294276-12-31 23:59:59.999999") => {
                    assert!(error.contains("io.debezium.time.MicroTimestamp"), "{error}");
                    continue;
                }
                Err(error) => panic!("{sql_type} {text:?}: {error}"),
            };
            let decoded =
                decode(&layout, &encoded.value).unwrap_or_else(|error| panic!("{sql_type} {text:?}: {error}"));
            assert_eq!(decoded.after.unwrap()[0], text, "{sql_type}");
        }
    }
}

/// Bytes lz4 cannot shrink, so that a record's size on the broker is its size here.
fn incompressible(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A topic whose `max.message.bytes` is 20,000: records past it travel in chunks that the consumer
/// puts together again, each record reported from its first chunk's offset to its last's; a
/// consumer positioned at a chunked record's first offset reads it whole, one positioned inside it
/// skips its chunks; a producer that does not chunk has such a record refused by the broker.
#[tokio::test(flavor = "multi_thread")]
async fn records_larger_than_the_topic_takes_travel_in_chunks_and_arrive_whole() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;

    let stack = Stack::from_env();
    let endpoint = KafkaEndpoint::parse(&stack.kafka).unwrap();
    let topic = format!("{}.s.big", unique_name("chunks"));
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &stack.kafka).create().unwrap();
    let new = NewTopic::new(&topic, 1, TopicReplication::Fixed(1)).set("max.message.bytes", "20000");
    for result in admin.create_topics(&[new], &AdminOptions::new()).await.unwrap() {
        result.unwrap();
    }
    let limits = passerelle_kafka::topic::message_limits(&endpoint, std::slice::from_ref(&topic)).await.unwrap();
    assert_eq!(limits, vec![(topic.clone(), 20_000)], "the limit is read from the topic");

    let values = [incompressible(100, 1), incompressible(100_000, 2), incompressible(10, 3), incompressible(45_000, 4)];
    let producer = Producer::chunking(&endpoint, Duration::from_secs(60), std::slice::from_ref(&topic))
        .await
        .unwrap()
        .for_run("r1");
    for value in &values {
        producer.send(&topic, None, Some(b"k"), value).await.unwrap();
    }
    let delivered = producer.flush().await.unwrap();
    assert!(delivered > 4 + 5, "the two large records went in chunks: {delivered} messages");

    let read = |group: String, from: Option<i64>, expect: usize| {
        let (endpoint, topic) = (endpoint.clone(), topic.clone());
        async move {
            let consumer = Consumer::subscribe(&endpoint, &group, vec![topic]).unwrap();
            if let Some(from) = from {
                consumer.set_position(0, 0, from);
            }
            let mut records = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while records.len() < expect && tokio::time::Instant::now() < deadline {
                // One byte per call: every call returns at most one record, however large.
                let batch = consumer.next_batch(100, 1, Duration::from_millis(500)).await.unwrap();
                assert!(batch.len() <= 1, "a batch bounded to one byte holds one record");
                records.extend(batch);
            }
            records
        }
    };
    let all = read(unique_name("group"), None, values.len()).await;
    assert_eq!(all.len(), values.len());
    let mut next = 0;
    for (record, value) in all.iter().zip(&values) {
        assert!(record.value == *value, "a record of {} bytes came back as {} bytes", value.len(), record.value.len());
        assert_eq!(record.first, next, "records follow each other without a gap");
        assert_eq!(record.run.as_deref(), Some("r1"));
        assert_eq!(record.offset > record.first, value.len() > 20_000, "only the large records are chunked");
        next = record.offset + 1;
    }
    assert_eq!(next as u64, delivered);

    // Positioned at the first chunk of the large record: it comes whole, then the rest.
    let second = &all[1];
    let again = read(unique_name("group"), Some(second.first), 3).await;
    assert_eq!(again.iter().map(|r| r.first).collect::<Vec<_>>(), all[1..].iter().map(|r| r.first).collect::<Vec<_>>());
    assert!(again[0].value == values[1]);
    // Positioned inside it (never at a stored offset, which is always at a record): its chunks are skipped.
    let inside = read(unique_name("group"), Some(second.first + 1), 2).await;
    assert_eq!(inside.iter().map(|r| r.first).collect::<Vec<_>>(), vec![all[2].first, all[3].first]);

    // Without chunking, the broker refuses the record: the limit is real.
    let plain = Producer::new(&endpoint, Duration::from_secs(10)).unwrap();
    let refused = match plain.send(&topic, None, Some(b"k"), &values[1]).await {
        Err(error) => error,
        Ok(()) => plain.flush().await.unwrap_err(),
    };
    assert!(refused.to_string().to_lowercase().contains("too large"), "{refused}");
    delete_topics(&endpoint, &[topic]).await.unwrap();
}
