//! The report to hand over: `migrate`, `cutover` and `verify` each write `report.md` (for people who
//! were not there) and `report.json` (the same data, for programs) into `--report-dir`, by default a
//! directory named after the topic prefix, the run and the command in the working directory.
//!
//! It gathers what the run already knows: the plan's mapping report (every column's fidelity, every
//! object migrated, translated or not migrated and why), verify's per-table counts and checksums on
//! both sides, the run's timings and peak memory per phase (`report::RunSummary`), warnings, and the
//! commands that clean up. Endpoints appear as everywhere else, `user@host:port/db`, never a secret.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use passerelle_ddl::report::{Outcome, Report as Mapping};
use passerelle_ddl::types::Fidelity;
use passerelle_kafka::envelope::Civil;
use passerelle_verify::report::{Report as Verification, SchemaOutcome, TableOutcome};
use serde::Serialize;

use crate::report::RunSummary;

#[derive(Debug, clap::Args)]
pub struct ReportDirArg {
    /// Where to write report.md and report.json, the report to hand over [default:
    /// passerelle-report-<topic prefix>-<run>-<command> in the working directory]
    #[arg(long, value_name = "DIR", env = "PASSERELLE_REPORT_DIR")]
    pub report_dir: Option<PathBuf>,
}

/// The systems a run talked to, as they are printed everywhere: no password, no secret.
#[derive(Serialize)]
pub struct Systems {
    pub source: String,
    pub kafka: Option<String>,
    pub target: String,
}

#[derive(Serialize)]
pub struct Handover<'a> {
    /// `migrate`, `cutover` or `verify`.
    pub command: &'static str,
    /// The topic prefix.
    pub migration: &'a str,
    pub run_id: Option<&'a str>,
    /// When the report was written, UTC.
    pub written_at: String,
    pub systems: Systems,
    pub verified: bool,
    pub run: Option<&'a RunSummary>,
    pub mapping: &'a Mapping,
    pub verification: &'a Verification,
    /// What a reader should know: lossy columns, objects not migrated, tables that differ, ...
    pub warnings: Vec<String>,
    /// Commands that remove what the migration left behind, the migrated data excepted.
    pub cleanup: Vec<String>,
}

impl Handover<'_> {
    /// With the warnings the mapping, the verification and the run imply; the caller may add its own.
    pub fn new<'a>(
        command: &'static str,
        migration: &'a str,
        run_id: Option<&'a str>,
        systems: Systems,
        mapping: &'a Mapping,
        verification: &'a Verification,
        run: Option<&'a RunSummary>,
    ) -> Handover<'a> {
        let mut warnings = Vec::new();
        let lossy = mapping.count_fidelity(Fidelity::Lossy);
        if lossy > 0 {
            warnings.push(format!("columns migrated with a loss: {lossy} (see Mapping: lossy columns)"));
        }
        let not_migrated = mapping.count(Outcome::NotMigrated);
        if not_migrated > 0 {
            warnings
                .push(format!("objects not migrated: {not_migrated} (see Mapping: not migrated, with the reasons)"));
        }
        for table in verification.tables.iter().filter(|table| table.outcome != TableOutcome::Match) {
            warnings.push(format!("{} -> {}: {}", table.table, table.target, outcome_text(table.outcome)));
        }
        if let Some(run) = run.filter(|run| run.retries > 0) {
            warnings.push(format!("the run rode through transient failures: {} retries", run.retries));
        }
        Handover {
            command,
            migration,
            run_id,
            written_at: utc_now(),
            systems,
            verified: verification.matches,
            run,
            mapping,
            verification,
            warnings,
            cleanup: vec![format!(
                "passerelle cleanup --topic-prefix {migration}   # drops the replication slot and publication, the \
                 topics and the target's bookkeeping of the migration; the migrated data stays"
            )],
        }
    }

    /// Writes `report.md` and `report.json` into `dir`, or the default directory, and says where. A
    /// report that cannot be written is a warning: the command's outcome stands, and it is printed.
    pub fn write(&self, dir: Option<&Path>) {
        match self.try_write(dir) {
            // On stderr: stdout may be --json.
            Ok(dir) => {
                eprintln!("passerelle: the report to hand over is in {} (report.md, report.json)", dir.display())
            }
            Err(error) => eprintln!("passerelle: warning: the report to hand over is not written: {error:#}"),
        }
    }

    fn try_write(&self, dir: Option<&Path>) -> anyhow::Result<PathBuf> {
        let dir = match dir {
            Some(dir) => dir.to_path_buf(),
            None => {
                let run = self.run_id.map_or_else(|| self.written_at.replace([':', '-'], ""), str::to_string);
                PathBuf::from(format!("passerelle-report-{}-{run}-{}", self.migration, self.command))
            }
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating the report directory {}", dir.display()))?;
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        };
        write("report.md", self.markdown())?;
        write("report.json", serde_json::to_string_pretty(self)? + "\n")?;
        Ok(dir)
    }

    fn markdown(&self) -> String {
        let mut out = String::new();
        let run = self.run_id.map_or(String::new(), |run| format!(", run {run}"));
        writeln!(out, "# Passerelle {}: {}{run}\n", self.command, self.migration).ok();
        writeln!(out, "Written {} UTC.\n", self.written_at).ok();
        if self.verified {
            writeln!(out, "**Verified**: every table's row count and content checksum match the source.\n").ok();
        } else {
            writeln!(out, "**NOT VERIFIED**: the target differs from the source (see Tables and Warnings).\n").ok();
        }
        writeln!(out, "| system | endpoint |\n| --- | --- |").ok();
        writeln!(out, "| PostgreSQL (source) | {} |", self.systems.source).ok();
        if let Some(kafka) = &self.systems.kafka {
            writeln!(out, "| Kafka | {kafka} |").ok();
        }
        writeln!(out, "| target | {} ({}) |", self.systems.target, self.mapping.server).ok();

        writeln!(out, "\n## Tables\n").ok();
        writeln!(out, "Checksums: the sum of every row's hash, computed alike on both sides (`passerelle verify`).\n")
            .ok();
        writeln!(
            out,
            "| table | target | source rows | target rows | source checksum | target checksum | outcome |\n\
             | --- | --- | ---: | ---: | --- | --- | --- |"
        )
        .ok();
        for table in &self.verification.tables {
            let count = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
            let sum = |sum: &Option<String>| sum.clone().unwrap_or_else(|| "-".to_string());
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                table.table,
                table.target,
                count(table.source_rows),
                count(table.target_rows),
                sum(&table.source_checksum),
                sum(&table.target_checksum),
                outcome_text(table.outcome)
            )
            .ok();
        }
        let present = self.verification.schema.iter().filter(|f| f.outcome == SchemaOutcome::Present).count();
        writeln!(out, "\n{present} schema objects (keys, indexes, checks, comments, ...) are present on the target.")
            .ok();
        for finding in self.verification.schema.iter().filter(|f| f.outcome == SchemaOutcome::Missing) {
            writeln!(out, "- MISSING {} {}{}", finding.kind, finding.name, note(&finding.detail)).ok();
        }

        self.mapping_section(&mut out);
        if let Some(run) = self.run {
            writeln!(out, "\n## Timings and memory\n").ok();
            writeln!(out, "| phase | seconds | peak memory (MB) |\n| --- | ---: | ---: |").ok();
            for (phase, seconds) in &run.phases {
                let peak = run.phase_peak_rss_mb.iter().find(|(name, _)| name == phase);
                let peak = peak.map_or("-".to_string(), |(_, mb)| format!("{mb:.0}"));
                writeln!(out, "| {phase} | {seconds:.1} | {peak} |").ok();
            }
            writeln!(
                out,
                "\n{} rows and {} changes in {:.1} s ({:.0} rows/s); peak memory {}; {} retries.",
                run.rows,
                run.changes,
                run.seconds,
                run.rows_per_second,
                run.peak_rss_mb.map_or("unknown".to_string(), |mb| format!("{mb:.0} MB")),
                run.retries
            )
            .ok();
            if let Some(load_path) = run.load_path {
                writeln!(out, "Snapshot rows entered the target through `{load_path}`.").ok();
            }
        }
        writeln!(out, "\n## Warnings\n").ok();
        if self.warnings.is_empty() {
            writeln!(out, "None.").ok();
        }
        for warning in &self.warnings {
            writeln!(out, "- {warning}").ok();
        }
        writeln!(out, "\n## Cleaning up\n\n```sh").ok();
        for command in &self.cleanup {
            writeln!(out, "{command}").ok();
        }
        writeln!(out, "```").ok();
        out
    }

    fn mapping_section(&self, out: &mut String) {
        let mapping = self.mapping;
        writeln!(out, "\n## Mapping\n").ok();
        writeln!(
            out,
            "DDL written for {}. Objects: {} migrated, {} translated with changes, {} not migrated. Columns: {} \
             exact, {} lossy, {} unsupported. Every column and object is in report.json (`mapping`).",
            mapping.server,
            mapping.count(Outcome::Migrated),
            mapping.count(Outcome::Translated),
            mapping.count(Outcome::NotMigrated),
            mapping.count_fidelity(Fidelity::Exact),
            mapping.count_fidelity(Fidelity::Lossy),
            mapping.count_fidelity(Fidelity::Unsupported),
        )
        .ok();
        let columns: Vec<_> = mapping.columns.iter().filter(|column| column.fidelity != Fidelity::Exact).collect();
        if !columns.is_empty() {
            writeln!(out, "\n### Lossy columns\n").ok();
            for column in columns {
                writeln!(
                    out,
                    "- {}.{}: {} -> {}{}",
                    column.table,
                    column.column,
                    column.source_type,
                    column.target_type,
                    note(&column.note)
                )
                .ok();
            }
        }
        for (outcome, title) in [(Outcome::Translated, "Translated"), (Outcome::NotMigrated, "Not migrated")] {
            let objects: Vec<_> = mapping.objects.iter().filter(|object| object.outcome == outcome).collect();
            if objects.is_empty() {
                continue;
            }
            writeln!(out, "\n### {title}\n").ok();
            for object in objects {
                writeln!(out, "- {} {}{}", object.kind, object.name, note(&object.detail)).ok();
            }
        }
    }
}

fn note(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

fn outcome_text(outcome: TableOutcome) -> &'static str {
    match outcome {
        TableOutcome::Match => "match",
        TableOutcome::Differs => "DIFFERS",
        TableOutcome::Missing => "MISSING on the target",
        TableOutcome::NotCompared => "not compared",
    }
}

/// Now, as `YYYY-MM-DDTHH:MM:SS`, UTC.
fn utc_now() -> String {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = ((seconds / 86_400) as i64, seconds % 86_400);
    let Civil { year, month, day } = Civil::from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rest / 3_600, rest % 3_600 / 60, rest % 60)
}
