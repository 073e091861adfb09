//! A principal that may not create topics: `plan` writes the `kafka-topics.sh --create` commands, one
//! that may runs them (here Kafka's own TopicCommand, from the stack's jars, under that name), and
//! `migrate --existing-topics` uses the topics as they are, creating and deleting none; `check
//! --existing-topics` looks for them instead of creating and deleting a topic.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use passerelle_kafka::producer::Producer;
use passerelle_kafka::topic::end_offsets;
use passerelle_model::endpoint::KafkaEndpoint;
use passerelle_testkit::{on_both_targets, unique_name, Target};

use crate::migrate::Setup;
use crate::support::passerelle;

/// Runs the script `plan` wrote, with `kafka-topics.sh` on the PATH as Kafka's TopicCommand.
fn run_topics_script(script: &Path, kafka: &str) {
    let bin = script.parent().unwrap().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let libs = dirs_cache().join("kafka-libs");
    let shim = format!("#!/bin/sh\nexec java -cp '{}/*' org.apache.kafka.tools.TopicCommand \"$@\"\n", libs.display());
    std::fs::write(bin.join("kafka-topics.sh"), shim).unwrap();
    Command::new("chmod").arg("+x").arg(bin.join("kafka-topics.sh")).status().unwrap();
    let config = script.parent().unwrap().join("admin.properties");
    std::fs::write(&config, "# the stack's plaintext listener needs no security settings\n").unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let output = Command::new("sh")
        .arg(script)
        .env("PATH", path)
        .env("BOOTSTRAP", kafka)
        .env("CONFIG", &config)
        .output()
        .unwrap();
    assert!(output.status.success(), "kafka-topics.sh: {}", String::from_utf8_lossy(&output.stderr));
}

/// Where the stack keeps the Kafka jars (`~/.cache/passerelle`, or `PASSERELLE_CACHE_DIR`).
fn dirs_cache() -> std::path::PathBuf {
    match std::env::var_os("PASSERELLE_CACHE_DIR") {
        Some(dir) => dir.into(),
        None => Path::new(&std::env::var("HOME").unwrap()).join(".cache/passerelle"),
    }
}

async fn migrate_uses_the_topics_plan_wrote_the_commands_for(target: Target) {
    let setup = Setup::new(
        target,
        "create table t (id integer primary key, v text);
         insert into t select i, 'row ' || i from generate_series(1, 3000) i;",
    )
    .await;
    let out = std::env::temp_dir().join(unique_name("plan"));
    let mut plan = setup.args("plan");
    plan.extend(["--out", out.to_str().unwrap(), "--partitions", "1"]);
    let run = passerelle(&plan, &setup.env());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let script = std::fs::read_to_string(out.join("kafka-topics.sh")).unwrap();
    let create = "kafka-topics.sh --bootstrap-server \"$BOOTSTRAP\" --command-config \"$CONFIG\" --create --topic";
    let expected = format!(
        "{create} '{prefix}.passerelle-control' --partitions 1 --replication-factor 1 --config cleanup.policy=compact \
         --config retention.ms=-1\n{create} '{prefix}.public.t' --partitions 1 --replication-factor 1\n",
        prefix = setup.prefix
    );
    assert!(script.ends_with(&expected), "{script}");

    // Without the topics, --existing-topics names the first missing one and creates nothing.
    let mut args = setup.args("migrate");
    // One record per row, so that the topic's end below counts the earlier record and the rows.
    args.extend(["--existing-topics", "--partitions", "1", "--snapshot-encoding", "envelope"]);
    let run = passerelle(&args, &setup.env());
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("it does not exist, and --existing-topics creates none"), "{}", run.stderr);

    let mut check = setup.args("check");
    check.push("--existing-topics");
    let run = passerelle(&check, &setup.env());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let missing = format!(
        "FAIL  kafka   existing topics            topic {}.passerelle-control: it does not exist",
        setup.prefix
    );
    assert!(run.stdout.contains(&missing), "{}", run.stdout);

    run_topics_script(&out.join("kafka-topics.sh"), &setup.stack.kafka);
    let run = passerelle(&check, &setup.env());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("ok    kafka   existing topics            {}.passerelle-control exists", setup.prefix)),
        "{}",
        run.stdout
    );
    // A record left before the run: the topic is used as it is, and the run's records begin after it.
    let kafka = KafkaEndpoint::parse(&setup.stack.kafka).unwrap();
    let topic = format!("{}.public.t", setup.prefix);
    let producer = Producer::new(&kafka, Duration::from_secs(30)).unwrap().for_run("earlier");
    producer.send(&topic, Some(0), Some(b"k"), b"not an event").await.unwrap();
    producer.flush().await.unwrap();

    args.push("--json");
    let run = passerelle(&args, &setup.env());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    let ends = end_offsets(&kafka, std::slice::from_ref(&topic)).await.unwrap();
    assert_eq!(ends[0].end, 1 + 3000, "the topic was recreated: the earlier record is gone");
    std::fs::remove_dir_all(&out).unwrap();
    setup.cleanup();
}
on_both_targets!(migrate_uses_the_topics_plan_wrote_the_commands_for, flavor = "multi_thread");
