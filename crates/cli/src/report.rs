//! What a run reports at its end: time and peak memory per phase, rows and bytes per table,
//! throughput and CPU time, as text for people and JSON for programs. `source`, `sink` and `migrate`
//! share it, so their summaries read alike.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Wall time and peak memory per phase, in the order the phases ran.
pub struct PhaseClock {
    started: Instant,
    laps: Mutex<Laps>,
}

#[derive(Default)]
struct Laps {
    phases: Vec<(String, f64)>,
    peaks: Vec<(String, f64)>,
    since: Option<Instant>,
}

impl PhaseClock {
    pub fn new() -> PhaseClock {
        reset_peak_rss();
        PhaseClock { started: Instant::now(), laps: Mutex::new(Laps::default()) }
    }

    /// Ends the phase `name`, which began when the previous one ended.
    pub fn lap(&self, name: &str) {
        let mut laps = self.laps.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let since = laps.since.unwrap_or(self.started);
        let seconds = since.elapsed().as_secs_f64();
        crate::metrics::get().phase(name, seconds);
        laps.phases.push((name.to_string(), seconds));
        if let Some(mb) = peak_rss_mb() {
            laps.peaks.push((name.to_string(), mb));
        }
        reset_peak_rss();
        laps.since = Some(Instant::now());
    }
}

/// One table's share of the run.
#[derive(Serialize)]
pub struct TableSummary {
    pub table: String,
    /// Where its rows land, when this process applied them.
    pub target: Option<String>,
    /// Rows applied (a sink, or `migrate`) or copied (a source alone).
    pub rows: u64,
    /// COPY text read from the source.
    pub copy_bytes: u64,
}

/// The DDL a sink applied: the server it was written for, and what became of the schema's objects
/// (`passerelle plan` writes the report that names each, with its reason).
#[derive(Serialize)]
pub struct DdlSummary {
    pub written_for: String,
    pub migrated: usize,
    pub translated: usize,
    pub not_migrated: usize,
}

impl DdlSummary {
    pub fn new(report: &passerelle_ddl::report::Report) -> DdlSummary {
        use passerelle_ddl::report::Outcome;
        DdlSummary {
            written_for: report.server.clone(),
            migrated: report.count(Outcome::Migrated),
            translated: report.count(Outcome::Translated),
            not_migrated: report.count(Outcome::NotMigrated),
        }
    }
}

#[derive(Serialize)]
pub struct RunSummary {
    pub migration: String,
    pub run_id: String,
    /// Wall time of each phase, in seconds, in the order they ran.
    pub phases: Vec<(String, f64)>,
    /// Peak resident memory of each phase, in MB.
    pub phase_peak_rss_mb: Vec<(String, f64)>,
    pub tables: Vec<TableSummary>,
    pub rows: u64,
    /// Changes streamed after the snapshot (online runs).
    pub changes: u64,
    /// How the snapshot entered the target (`load-data` or `insert`), when this process applied it.
    pub load_path: Option<&'static str>,
    /// The DDL this process applied, when it did.
    pub ddl: Option<DdlSummary>,
    pub copy_bytes: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub peak_rss_mb: Option<f64>,
    /// CPU time of this process, user and system.
    pub cpu_seconds: Option<f64>,
    /// Steps tried again after a transient failure (a broker or server restarting, a lost
    /// connection), every step counted.
    pub retries: u64,
}

impl RunSummary {
    pub fn new(migration: String, run_id: String, clock: PhaseClock, tables: Vec<TableSummary>) -> RunSummary {
        let seconds = clock.started.elapsed().as_secs_f64();
        let laps = clock.laps.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        let rows = tables.iter().map(|table| table.rows).sum();
        RunSummary {
            migration,
            run_id,
            peak_rss_mb: laps.peaks.iter().map(|(_, mb)| *mb).reduce(f64::max),
            phases: laps.phases,
            phase_peak_rss_mb: laps.peaks,
            copy_bytes: tables.iter().map(|table| table.copy_bytes).sum(),
            rows,
            changes: 0,
            load_path: None,
            ddl: None,
            tables,
            seconds,
            rows_per_second: rows as f64 / seconds.max(f64::EPSILON),
            cpu_seconds: cpu_seconds(),
            retries: crate::retry::count(),
        }
    }

    /// `verb`: what happened to the rows, "migrated", "copied" or "applied".
    pub fn render(&self, verb: &str) -> String {
        let mut out = String::new();
        let width = self.tables.iter().map(|t| t.table.len()).max().unwrap_or(5).max(5);
        for table in &self.tables {
            out.push_str(&format!("{:width$}  {:>12} rows {:>9.1} MB", table.table, table.rows, mb(table.copy_bytes)));
            if let Some(target) = &table.target {
                out.push_str(&format!("  -> {target}"));
            }
            out.push('\n');
        }
        let peaks: HashMap<&str, f64> = self.phase_peak_rss_mb.iter().map(|(name, mb)| (name.as_str(), *mb)).collect();
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|(name, seconds)| match peaks.get(name.as_str()) {
                Some(mb) => format!("{name} {} ({mb:.0} MB)", human(*seconds)),
                None => format!("{name} {}", human(*seconds)),
            })
            .collect();
        out.push_str(&format!("phases: {}\n", phases.join(", ")));
        if let Some(ddl) = &self.ddl {
            out.push_str(&format!(
                "DDL written for {}: {} objects migrated, {} translated with changes, {} not migrated (passerelle \
                 plan's report names each, with the reason)\n",
                ddl.written_for, ddl.migrated, ddl.translated, ddl.not_migrated
            ));
        }
        if let Some(load_path) = self.load_path {
            out.push_str(&format!("snapshot load path: {load_path}\n"));
        }
        let changes = if self.changes > 0 { format!(" and {} changes", self.changes) } else { String::new() };
        out.push_str(&format!(
            "{verb} {} rows ({:.1} MB of COPY text){changes} in {}: {:.0} rows/s",
            self.rows,
            mb(self.copy_bytes),
            human(self.seconds),
            self.rows_per_second
        ));
        if let Some(mb) = self.peak_rss_mb {
            out.push_str(&format!(", peak memory {mb:.0} MB"));
        }
        if let Some(seconds) = self.cpu_seconds {
            out.push_str(&format!(", {seconds:.1} CPU seconds"));
        }
        out.push('\n');
        if self.retries > 0 {
            out.push_str(&format!("rode through transient failures: {} retries\n", self.retries));
        }
        out
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn human(seconds: f64) -> String {
    let duration = Duration::from_secs_f64(seconds);
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        format!("{}m{:02}s", (seconds / 60.0) as u64, (seconds % 60.0) as u64)
    }
}

/// CPU seconds this process used, user and system, from /proc (Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux platform Passerelle runs on.
    Some(ticks / 100.0)
}

/// The process's peak resident memory since the last [`reset_peak_rss`], from /proc (Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Starts a new peak: writing 5 to clear_refs resets VmHWM to the current resident size (Linux 4.0+).
/// Where that is not allowed the peak stays the lifetime's, which only overstates a phase.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
