//! The report to hand over: `migrate` and `verify` write `report.md` and `report.json` with every
//! table's counts and checksums on both sides, the mapping summary (what is exact, lossy, not
//! migrated and why), the phases, the warnings and the cleanup command, and no secret.

use std::path::Path;

use passerelle_testkit::{on_both_targets, unique_name, Target};

use crate::migrate::Setup;
use crate::support::passerelle;

const SOURCE: &str = "create table flights (id bigint primary key, code text not null, at timestamptz not null,
       constraint in_the_past check (at <= now()));
     insert into flights select i, 'F' || i, timestamptz '2020-01-01' + i * interval '1 h' from generate_series(1, 3000) i;
     create table seats (flight bigint not null references flights, seat text not null, primary key (flight, seat));
     insert into seats select i % 3000 + 1, 'S' || i from generate_series(1, 7000) i;";

/// `report.md` and the parsed `report.json` in `dir`.
fn read(dir: &Path) -> (String, serde_json::Value) {
    let markdown = std::fs::read_to_string(dir.join("report.md")).expect("report.md is written");
    let json = std::fs::read_to_string(dir.join("report.json")).expect("report.json is written");
    (markdown, serde_json::from_str(&json).expect("report.json parses"))
}

/// Every table's counts, equal on both sides, and checksums, equal, in both files.
fn assert_tables(setup: &Setup, markdown: &str, json: &serde_json::Value) {
    let tables = json["verification"]["tables"].as_array().expect("the tables are listed");
    assert_eq!(tables.len(), 2, "{json}");
    for (table, rows) in [("flights", 3000), ("seats", 7000)] {
        let entry = tables.iter().find(|t| t["table"] == format!("public.{table}")).expect("the table is listed");
        assert_eq!(entry["source_rows"], rows, "{entry}");
        assert_eq!(entry["target_rows"], rows, "{entry}");
        let checksum = entry["source_checksum"].as_str().expect("a checksum");
        assert_eq!(entry["target_checksum"], checksum, "{entry}");
        let line = format!(
            "| public.{table} | {}.{table} | {rows} | {rows} | {checksum} | {checksum} | match |",
            setup.target.name
        );
        assert!(markdown.contains(&line), "no line {line} in\n{markdown}");
    }
}

/// The mapping summary and the check that is not migrated, with its reason.
fn assert_mapping(markdown: &str, json: &serde_json::Value) {
    assert!(markdown.contains("## Mapping"), "{markdown}");
    assert!(markdown.contains("1 not migrated"), "{markdown}");
    let objects = json["mapping"]["objects"].as_array().expect("the objects are listed");
    let check = objects
        .iter()
        .find(|object| object["name"].as_str().is_some_and(|name| name.ends_with("in_the_past")))
        .expect("the check is in the mapping");
    assert_eq!(check["outcome"], "not_migrated", "{check}");
    let reason = check["detail"].as_str().expect("a reason");
    assert!(!reason.is_empty());
    assert!(markdown.contains("### Not migrated") && markdown.contains(reason), "{markdown}");
}

async fn migrate_and_verify_write_a_report_with_every_table_and_the_mapping(target: Target) {
    let setup = Setup::new(target, SOURCE).await;
    let dir = std::env::temp_dir().join(unique_name("handover"));
    let dir_text = dir.display().to_string();
    let run = setup.migrate_with(&["--report-dir", &dir_text]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(&format!("the report to hand over is in {dir_text}")), "{}", run.stderr);
    let (markdown, json) = read(&dir);
    assert_eq!(json["command"], "migrate");
    assert_eq!(json["verified"], true);
    assert!(markdown.contains("**Verified**"), "{markdown}");
    assert_tables(&setup, &markdown, &json);
    assert_mapping(&markdown, &json);
    for phase in ["snapshot", "verify"] {
        assert!(markdown.contains(&format!("| {phase} |")), "no phase {phase} in\n{markdown}");
    }
    assert!(markdown.contains(&format!("passerelle cleanup --topic-prefix {}", setup.prefix)), "{markdown}");
    // Endpoints as everywhere else: never a password.
    let password = url::Url::parse(&setup.target.url).unwrap().password().map(str::to_string);
    for secret in
        [password, url::Url::parse(&setup.source.url).unwrap().password().map(str::to_string)].into_iter().flatten()
    {
        assert!(!markdown.contains(&secret) && !json.to_string().contains(&secret), "a password is in the report");
    }

    let verify_dir = std::env::temp_dir().join(unique_name("handover"));
    let verify_text = verify_dir.display().to_string();
    let mut args = setup.args("verify");
    args.extend(["--report-dir", &verify_text]);
    let verified = passerelle(&args, &setup.env());
    assert_eq!(verified.code, 0, "{}\n{}", verified.stdout, verified.stderr);
    let (markdown, json) = read(&verify_dir);
    assert_eq!(json["command"], "verify");
    assert_tables(&setup, &markdown, &json);
    assert_mapping(&markdown, &json);
    setup.cleanup();
}
on_both_targets!(migrate_and_verify_write_a_report_with_every_table_and_the_mapping, flavor = "multi_thread");

async fn a_report_that_cannot_be_written_is_a_warning_not_a_failure(target: Target) {
    let setup = Setup::new(target, "create table t (id integer primary key); insert into t values (1), (2);").await;
    // A file where the directory should be.
    let blocked = std::env::temp_dir().join(unique_name("handover"));
    std::fs::write(&blocked, "not a directory").unwrap();
    let run = setup.migrate_with(&["--report-dir", &blocked.join("inside").display().to_string()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["verified"], true, "{summary}");
    assert!(run.stderr.contains("warning: the report to hand over is not written: creating the report directory"));
    setup.cleanup();
}
on_both_targets!(a_report_that_cannot_be_written_is_a_warning_not_a_failure, flavor = "multi_thread");
