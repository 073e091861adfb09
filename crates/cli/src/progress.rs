//! Progress on stderr: one bar per table and a total, each with rows copied from the source, rows
//! applied to the target, the COPY rate in MB/s and an ETA against the expected rows. Drawn only on
//! a terminal; the counts also feed the final summary and the Prometheus metrics (`metrics`).
//!
//! The tables become known only once the run is announced (by this process or, through Kafka,
//! another), so the bars are created then, by whichever side learns them first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the bars measure: a source alone sees rows copied, a sink (or both in one process) rows applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    Copied,
    Applied,
}

pub struct Progress {
    track: Track,
    multi: MultiProgress,
    tables: OnceLock<Tables>,
    started: Instant,
    /// Changes streamed after the snapshot and applied.
    changes: AtomicU64,
}

struct Tables {
    bars: Vec<ProgressBar>,
    total: ProgressBar,
    copied: Vec<AtomicU64>,
    copied_bytes: Vec<AtomicU64>,
    applied: Vec<AtomicU64>,
    /// When each table's first rows were copied: its rate counts from there.
    copy_started: Vec<OnceLock<Instant>>,
    metrics: Vec<crate::metrics::TableMetrics>,
}

impl Progress {
    pub fn new(track: Track) -> Progress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        crate::retry::announce_through(&multi);
        Progress { track, multi, tables: OnceLock::new(), started: Instant::now(), changes: AtomicU64::new(0) }
    }

    /// Sets up the bars: `tables` are display names in table index order, `expected` their
    /// estimated rows. Later calls change nothing.
    pub fn tables(&self, tables: &[String], expected: &[Option<u64>]) {
        self.tables.get_or_init(|| {
            let width = tables.iter().map(String::len).max().unwrap_or(0).max(5);
            let style = ProgressStyle::with_template("{prefix} {wide_bar:.cyan/blue} {msg} {eta:>4}")
                .expect("a valid template")
                .progress_chars("=> ");
            let bars: Vec<ProgressBar> = tables
                .iter()
                .zip(expected.iter().chain(std::iter::repeat(&None)))
                .map(|(name, expected)| {
                    let bar = self.multi.add(ProgressBar::new(expected.unwrap_or(0)).with_style(style.clone()));
                    bar.set_prefix(format!("{name:width$}"));
                    bar
                })
                .collect();
            let total_style = ProgressStyle::with_template("{prefix} {wide_bar:.green/blue} {msg} {elapsed} ETA {eta}")
                .expect("a valid template")
                .progress_chars("=> ");
            let total_expected = expected.iter().map(|rows| rows.unwrap_or(0)).sum();
            let total = self.multi.add(ProgressBar::new(total_expected).with_style(total_style));
            total.set_prefix(format!("{:width$}", "total"));
            total.enable_steady_tick(Duration::from_millis(250));
            let counters = || tables.iter().map(|_| AtomicU64::new(0)).collect();
            Tables {
                bars,
                total,
                copied: counters(),
                copied_bytes: counters(),
                applied: counters(),
                copy_started: tables.iter().map(|_| OnceLock::new()).collect(),
                metrics: tables.iter().map(|table| crate::metrics::get().table(table)).collect(),
            }
        });
    }

    /// The exact row counts, once the snapshot is complete: the bars end where the rows do.
    pub fn expect_exactly(&self, rows: &[u64]) {
        let Some(tables) = self.tables.get() else { return };
        for (bar, rows) in tables.bars.iter().zip(rows) {
            bar.set_length(*rows);
        }
        tables.total.set_length(rows.iter().sum());
    }

    /// The snapshot starts over as a new run: what the last attempt copied and applied no longer counts.
    pub fn restart(&self) {
        crate::metrics::get().restart();
        let Some(tables) = self.tables.get() else { return };
        for counter in [&tables.copied, &tables.copied_bytes, &tables.applied].into_iter().flatten() {
            counter.store(0, Ordering::Relaxed);
        }
        for bar in &tables.bars {
            bar.set_position(0);
        }
        tables.total.set_position(0);
    }

    pub fn copied(&self, table_idx: usize, n_rows: u64, n_bytes: u64) {
        let Some(tables) = self.tables.get() else { return };
        tables.copy_started[table_idx].get_or_init(Instant::now);
        tables.copied[table_idx].fetch_add(n_rows, Ordering::Relaxed);
        tables.copied_bytes[table_idx].fetch_add(n_bytes, Ordering::Relaxed);
        tables.metrics[table_idx].copied(n_rows, n_bytes);
        if self.track == Track::Copied {
            tables.bars[table_idx].inc(n_rows);
            tables.total.inc(n_rows);
        }
        self.redraw(tables, table_idx);
    }

    pub fn applied(&self, table_idx: usize, n_rows: u64) {
        let Some(tables) = self.tables.get() else { return };
        tables.applied[table_idx].fetch_add(n_rows, Ordering::Relaxed);
        tables.metrics[table_idx].applied(n_rows);
        if self.track == Track::Applied {
            tables.bars[table_idx].inc(n_rows);
            tables.total.inc(n_rows);
        }
        self.redraw(tables, table_idx);
    }

    /// Changes applied after the snapshot: shown on the total line.
    pub fn changed(&self, n_changes: u64) {
        self.changes.fetch_add(n_changes, Ordering::Relaxed);
        crate::metrics::get().changes_applied(n_changes);
        if let Some(tables) = self.tables.get() {
            self.redraw(tables, 0);
        }
    }

    pub fn n_applied(&self, table_idx: usize) -> u64 {
        self.tables.get().map_or(0, |tables| tables.applied[table_idx].load(Ordering::Relaxed))
    }

    pub fn n_copied_bytes(&self, table_idx: usize) -> u64 {
        self.tables.get().map_or(0, |tables| tables.copied_bytes[table_idx].load(Ordering::Relaxed))
    }

    fn redraw(&self, tables: &Tables, table_idx: usize) {
        let copied = tables.copied[table_idx].load(Ordering::Relaxed);
        let applied = tables.applied[table_idx].load(Ordering::Relaxed);
        let mb_per_second = |bytes: u64, since: Option<&Instant>| {
            let seconds = since.map_or(0.0, |since| since.elapsed().as_secs_f64());
            if seconds > 0.0 {
                bytes as f64 / 1e6 / seconds
            } else {
                0.0
            }
        };
        let bytes = tables.copied_bytes[table_idx].load(Ordering::Relaxed);
        let rate = mb_per_second(bytes, tables.copy_started[table_idx].get());
        tables.bars[table_idx].set_message(format!("{copied:>10} copied {applied:>10} applied {rate:>6.1} MB/s"));
        let total_bytes = tables.copied_bytes.iter().map(|bytes| bytes.load(Ordering::Relaxed)).sum();
        let total_rate = mb_per_second(total_bytes, Some(&self.started));
        let changes = self.changes.load(Ordering::Relaxed);
        let streamed = if changes > 0 { format!(", {changes} changes") } else { String::new() };
        tables.total.set_message(format!("{} rows, {total_rate:.1} MB/s{streamed}", tables.total.position()));
    }

    pub fn finish(&self) {
        if let Some(tables) = self.tables.get() {
            for bar in &tables.bars {
                bar.finish();
            }
            tables.total.finish();
        }
    }
}
