//! The configuration file (`passerelle.toml`, `--config`) and `passerelle config`: the precedence
//! flag > environment > file > default, where each value came from, secrets masked, and a command
//! that runs with the file's values.

use std::path::PathBuf;

use passerelle_testkit::{unique_name, SourceDb, Stack};
use serde_json::Value;

use crate::support::{passerelle, passerelle_in};

fn config_dir(file: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name("passerelle_config"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("passerelle.toml"), file).unwrap();
    dir
}

/// (values, source) of `key` in the JSON of `passerelle config COMMAND`.
fn setting(config: &Value, command: &str, key: &str) -> (Vec<String>, String) {
    let commands = config["commands"].as_array().unwrap();
    let settings = commands.iter().find(|c| c["command"] == command).unwrap()["settings"].as_array().unwrap();
    let global = config["global"].as_array().unwrap();
    let setting = settings.iter().chain(global).find(|s| s["key"] == key).unwrap_or_else(|| panic!("no {key}"));
    let values = setting["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    (values, setting["source"].as_str().unwrap().to_string())
}

#[test]
fn config_shows_each_value_with_its_source_flag_over_env_over_file_over_default_and_masks_secrets() {
    let file = "\
# shared by every command
topic-prefix = \"from-file\"
jobs = 3
kafka = \"file-broker:9092\"
source = \"postgres://app:FileSecret-7d1@db.example/shop?sslmode=require&sslpassword=KeySecret-55a\"
kafka-option = [\"security.protocol=SASL_SSL\", \"sasl.password=SaslSecret-e42\"]
retry-for = \"7m\"

[sink]
jobs = 8
";
    let dir = config_dir(file);
    let env = [
        ("PASSERELLE_SOURCE", "postgres://app:EnvSecret-90c@env.example/shop"),
        ("PASSERELLE_KAFKA", "env-broker:9092"),
    ];
    let run = passerelle_in(&dir, &["config", "migrate", "--kafka", "flag-broker:9092", "--json"], &env);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for secret in ["FileSecret-7d1", "KeySecret-55a", "SaslSecret-e42", "EnvSecret-90c"] {
        assert!(!run.all_output().contains(secret), "{secret} printed:\n{}", run.all_output());
    }
    let config: Value = serde_json::from_str(&run.stdout).unwrap();
    // A flag over the environment over the file.
    assert_eq!(setting(&config, "migrate", "kafka"), (vec!["flag-broker:9092".into()], "flag --kafka".into()));
    // The environment over the file, its password masked.
    assert_eq!(
        setting(&config, "migrate", "source"),
        (vec!["postgres://app:***@env.example/shop".into()], "env PASSERELLE_SOURCE".into())
    );
    // The file over the default, by line; a global option at the top of the file.
    assert_eq!(setting(&config, "migrate", "jobs"), (vec!["3".into()], "passerelle.toml:3".into()));
    assert_eq!(setting(&config, "migrate", "topic-prefix"), (vec!["from-file".into()], "passerelle.toml:2".into()));
    assert_eq!(setting(&config, "migrate", "retry-for"), (vec!["7m".into()], "passerelle.toml:7".into()));
    assert_eq!(
        setting(&config, "migrate", "kafka-option"),
        (vec!["security.protocol=SASL_SSL".into(), "sasl.password=***".into()], "passerelle.toml:6".into())
    );
    // The default, and what nothing sets.
    assert_eq!(setting(&config, "migrate", "load-path"), (vec!["auto".into()], "default".into()));
    assert_eq!(setting(&config, "migrate", "collation"), (vec![], "not set".into()));

    // Every command, as text: a [sink] table overrides the top for sink alone; the file's URL is masked.
    let all = passerelle_in(&dir, &["config"], &[]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    let sink = all.stdout.split("\n[sink]\n").nth(1).unwrap().split("\n[").next().unwrap();
    assert!(sink.lines().any(|l| l.starts_with("jobs = 8") && l.ends_with("# passerelle.toml:10")), "{sink}");
    assert!(all.stdout.contains("sslmode=require&sslpassword=***"), "{}", all.stdout);
    for secret in ["FileSecret-7d1", "KeySecret-55a", "SaslSecret-e42"] {
        assert!(!all.all_output().contains(secret), "{secret} printed:\n{}", all.all_output());
    }

    // --config names another file; a key no command has and a value the flag refuses are named by line.
    let other = dir.join("other.toml");
    std::fs::write(&other, "jobs = 5\njbos = 3\n").unwrap();
    let typo = passerelle(&["--config", other.to_str().unwrap(), "config", "migrate"], &[]);
    assert_eq!(typo.code, 2, "{}", typo.stdout);
    assert!(typo.stderr.contains("other.toml:2: no command has --jbos"), "{}", typo.stderr);
    std::fs::write(&other, "[migrate]\njobs = 99\n").unwrap();
    let range = passerelle(&["config", "migrate"], &[("PASSERELLE_CONFIG", other.to_str().unwrap())]);
    assert!(
        range.code == 2 && range.stderr.contains("other.toml:2: invalid value '99' for '--jobs"),
        "{}",
        range.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `plan` takes its source, schema, output directory and target version from the file alone.
#[tokio::test]
async fn a_command_runs_with_the_files_values() {
    let stack = Stack::from_env();
    let source = SourceDb::create(&stack).await;
    source
        .client()
        .await
        .batch_execute("create schema shop; create table shop.items (id int primary key);")
        .await
        .unwrap();
    let out = std::env::temp_dir().join(unique_name("passerelle_config_plan"));
    let file = format!(
        "source = \"{}\"\ntarget = \"mysql://nobody@127.0.0.1:9/vault\"\nschema = [\"shop\"]\n\n[plan]\nout = \"{}\"\ntarget-version = \"mysql-8.4\"\n",
        source.url,
        out.display()
    );
    let dir = config_dir(&file);
    let run = passerelle_in(&dir, &["plan"], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("DDL written for MySQL 8.4 (--target-version)\n"), "{}", run.stdout);
    let pre_data = std::fs::read_to_string(out.join("pre-data.sql")).unwrap();
    assert!(pre_data.contains("CREATE TABLE `vault`.`items`"), "{pre_data}");
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Completions and man pages come from the command line's definition: every command and option is in them.
#[test]
fn completions_and_man_pages_are_generated_from_the_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let run = passerelle(&["completions", shell], &[]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        for word in ["cutover", "topic-prefix", "char36", "retry-for"] {
            assert!(run.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    let man = passerelle(&["man"], &[]);
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(man.stdout.contains(".TH passerelle 1"), "{}", man.stdout);
    assert!(man.stdout.contains("cutover") && man.stdout.contains("retry\\-for"), "{}", man.stdout);
    let dir = std::env::temp_dir().join(unique_name("passerelle_man"));
    let pages = passerelle(&["man", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(pages.code, 0, "{}", pages.stderr);
    let migrate = std::fs::read_to_string(dir.join("passerelle-migrate.1")).unwrap();
    assert!(migrate.contains(".TH passerelle-migrate 1") && migrate.contains("topic\\-prefix"), "{migrate}");
    assert!(dir.join("passerelle-verify.1").is_file() && dir.join("passerelle.1").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--jobs` and `--partitions` left to the machine: Passerelle says what it chose, and only what
/// neither a flag nor the file set.
#[test]
fn jobs_and_partitions_left_to_the_machine_are_said() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let machine = cpus.clamp(1, 8);
    let dir = config_dir("jobs = 3\n");
    let stderr = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--source", "not a url", "--kafka", "127.0.0.1:1"]);
        let run = passerelle_in(&dir, &args, &[]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        run.stderr
    };
    let said = stderr(&["source", "--schema", "public"]);
    assert!(said.contains(&format!("passerelle: --partitions {machine}, from this machine's {cpus} CPUs\n")), "{said}");
    let said = stderr(&["source", "--schema", "public", "--partitions", "4"]);
    assert!(!said.contains("from this machine's"), "{said}");

    let sink = passerelle(&["sink", "--topic-prefix", "x", "--target", "not a url", "--kafka", "127.0.0.1:1"], &[]);
    assert!(
        sink.stderr.contains(&format!("passerelle: --jobs {machine}, from this machine's {cpus} CPUs\n")),
        "{}",
        sink.stderr
    );
}
