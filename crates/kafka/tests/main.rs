//! The Kafka crate against the real broker of the local stack: topics, producer and consumer group.

use std::collections::HashMap;
use std::time::Duration;

use passerelle_kafka::consumer::Consumer;
use passerelle_kafka::envelope::{decode, encode, Origin, TableLayout};
use passerelle_kafka::producer::Producer;
use passerelle_kafka::topic::{create_topics, delete_topics, TopicLayout};
use passerelle_model::endpoint::KafkaEndpoint;
use passerelle_model::event::{Lsn, Op};
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
    let producer = Producer::new(&endpoint).unwrap();
    let n_keys = 50;
    let n_versions = 40;
    for version in 0..n_versions {
        for key in 0..n_keys {
            let (key, version_text) = (key.to_string(), version.to_string());
            let row = [Some(key.as_str()), Some(version_text.as_str())];
            let origin =
                Origin { server: &layout.prefix, database: "db", lsn: Lsn(version), snapshot: false, ts_ms: 0 };
            let event = encode(&table, Op::Update, None, Some(&row), &origin);
            producer.send(&topic, None, event.key.as_deref(), &event.value).await.unwrap();
        }
    }
    assert_eq!(producer.flush().await.unwrap(), n_keys * n_versions);

    let consumer = Consumer::subscribe(&endpoint, &unique_name("group"), vec![topic.clone()]).unwrap();
    let ends = consumer.end_offsets().unwrap();
    assert_eq!(ends.len(), 3, "one end per partition");
    assert_eq!(ends.values().sum::<i64>(), (n_keys * n_versions) as i64);
    // Every key's versions arrive in order, all of them, each once.
    let mut last_version: HashMap<String, i64> = HashMap::new();
    let mut n_records = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while n_records < n_keys * n_versions && tokio::time::Instant::now() < deadline {
        for record in consumer.next_batch(500, Duration::from_millis(500)).await.unwrap() {
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
