//! Progress on stderr: one line per table (rows copied from the source, rows applied to the target,
//! rate) and a total. Drawn only on a terminal; the counts also feed the final summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bars: Vec<ProgressBar>,
    total: ProgressBar,
    copied: Vec<AtomicU64>,
    applied: Vec<AtomicU64>,
}

impl Progress {
    /// `tables`: display names, in table index order.
    pub fn new(tables: &[String]) -> Progress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        let width = tables.iter().map(String::len).max().unwrap_or(0);
        let style = ProgressStyle::with_template("{prefix} {msg} {per_sec:>12}").expect("a valid template");
        let bars = tables
            .iter()
            .map(|name| {
                let bar = multi.add(ProgressBar::no_length().with_style(style.clone()));
                bar.set_prefix(format!("{name:width$}"));
                bar
            })
            .collect();
        let total_style = ProgressStyle::with_template("{prefix} {human_pos} rows applied, {per_sec}, {elapsed}")
            .expect("a valid template");
        let total = multi.add(ProgressBar::no_length().with_style(total_style));
        total.set_prefix(format!("{:width$}", "total"));
        total.enable_steady_tick(Duration::from_millis(250));
        let counters = || tables.iter().map(|_| AtomicU64::new(0)).collect();
        Progress { bars, total, copied: counters(), applied: counters() }
    }

    pub fn copied(&self, table_idx: usize, n_rows: u64) {
        self.copied[table_idx].fetch_add(n_rows, Ordering::Relaxed);
        self.redraw(table_idx);
    }

    pub fn applied(&self, table_idx: usize, n_rows: u64) {
        self.applied[table_idx].fetch_add(n_rows, Ordering::Relaxed);
        self.bars[table_idx].inc(n_rows);
        self.total.inc(n_rows);
        self.redraw(table_idx);
    }

    pub fn n_applied(&self, table_idx: usize) -> u64 {
        self.applied[table_idx].load(Ordering::Relaxed)
    }

    fn redraw(&self, table_idx: usize) {
        let copied = self.copied[table_idx].load(Ordering::Relaxed);
        let applied = self.applied[table_idx].load(Ordering::Relaxed);
        self.bars[table_idx].set_message(format!("{copied:>11} copied {applied:>11} applied"));
    }

    pub fn finish(&self) {
        for bar in &self.bars {
            bar.finish();
        }
        self.total.finish();
    }
}
