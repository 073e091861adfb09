//! `passerelle check`: the preflight. Asks the three systems at once and prints one line per check,
//! with the fix under every one that did not pass.

use std::process::ExitCode;

use passerelle_model::preflight::{Finding, Outcome, System};
use serde::Serialize;

use passerelle_kafka::topic::control_topic;

use crate::args::CheckArgs;
use crate::config::Endpoints;

#[derive(Serialize)]
struct Report {
    ready: bool,
    findings: Vec<Finding>,
}

pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let endpoints = Endpoints::from_args(&args.endpoints)?;
    let existing = match args.existing_topics {
        true => Some(control_topic(&args.naming.required_prefix()?)),
        false => None,
    };
    let (source, kafka, target) = tokio::join!(
        passerelle_pg::preflight::run(&endpoints.source, &args.schemas),
        passerelle_kafka::preflight::run(&endpoints.kafka, args.durability.durability(), existing.as_deref()),
        passerelle_mysql::preflight::run(&endpoints.target, &[], &args.bookkeeping.name),
    );
    let findings: Vec<Finding> = [source, kafka, target].into_iter().flatten().collect();
    let ready = findings.iter().all(|finding| finding.outcome != Outcome::Fail);
    let report = Report { ready, findings };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if ready { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Refuses a run up front when a preflight check it depends on fails (a missing privilege, a source
/// that cannot stream): found now, before a slot, a topic or a table exists, rather than midway.
pub fn refuse_failures(findings: &[Finding]) -> anyhow::Result<()> {
    let failed: Vec<String> = findings
        .iter()
        .filter(|finding| finding.outcome == Outcome::Fail)
        .map(|finding| match &finding.fix {
            Some(fix) => format!("{}; {fix}", finding.detail),
            None => finding.detail.clone(),
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    anyhow::bail!("the preflight refuses this run (passerelle check says more): {}", failed.join(" | "))
}

fn render(report: &Report) -> String {
    let mut out = String::new();
    for finding in &report.findings {
        let system = match finding.system {
            System::Source => "source",
            System::Kafka => "kafka",
            System::Target => "target",
        };
        let outcome = match finding.outcome {
            Outcome::Pass => "ok  ",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
        };
        out.push_str(&format!("{outcome}  {system:<6}  {:<26} {}\n", finding.check, finding.detail));
        if let Some(fix) = &finding.fix {
            out.push_str(&format!("{:42} fix: {fix}\n", ""));
        }
    }
    let n_failed = report.findings.iter().filter(|f| f.outcome == Outcome::Fail).count();
    let n_warned = report.findings.iter().filter(|f| f.outcome == Outcome::Warn).count();
    out.push_str(&match (report.ready, n_warned) {
        (true, 0) => "ready to migrate\n".to_string(),
        (true, n) => format!("ready to migrate, with {n} warning(s)\n"),
        (false, _) => format!("not ready: {n_failed} check(s) failed\n"),
    });
    out
}
