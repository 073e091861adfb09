//! Named pause points, for fault tests whose timing is deterministic: a test makes the process stop
//! at a known moment (after N snapshot rows, before the post-data DDL, ...) and then kills it, or
//! kills a service it talks to and lets it go on, instead of sleeping and hoping to hit a window.
//!
//! `PASSERELLE_PAUSE_AT=point[:count][,point[:count]...]` with `PASSERELLE_PAUSE_FILE=path`: the
//! first time `point` is reached with a running count of at least `count` (default 0), the process
//! writes `point count` to the file and waits while the file exists. Each point listed pauses once,
//! so a test can look at a run at several moments (the metrics test scrapes mid-snapshot, then
//! before post-data). Without the variables a point costs one load of a
//! `OnceLock`. The environment is read here, in `cli`, because no stage crate reads it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

struct PauseAt {
    /// Each point with its threshold, and whether it paused already: the test that paused the
    /// process decides what happens next, and a point passed again does not pause again.
    points: Vec<(String, u64, AtomicBool)>,
    file: PathBuf,
}

static PAUSE_AT: OnceLock<Option<PauseAt>> = OnceLock::new();

/// Rows of the snapshot this process has handed to Kafka, summed over the workers.
pub const SNAPSHOT_ROWS_PRODUCED: &str = "snapshot-rows-produced";
/// Rows this process has applied to the target, committed with their offsets.
pub const ROWS_APPLIED: &str = "rows-applied";
/// Changes this process has applied to the target, committed with their offsets.
pub const CHANGES_APPLIED: &str = "changes-applied";
/// Changes this process has handed to Kafka from the change stream.
pub const CHANGES_PRODUCED: &str = "changes-produced";
/// `TRUNCATE` statements whose markers this process has handed to Kafka from the change stream.
pub const TRUNCATE_PRODUCED: &str = "truncate-produced";
/// Versions of changed tables the run has announced on the control topic so far (`altered`), the
/// last one by this process, before any event that uses it.
pub const TABLE_ALTERED: &str = "table-altered";
/// Versions of changed tables this process has applied to the target, before any event that uses them.
pub const TARGET_ALTERED: &str = "target-altered";
/// `cutover` verified every table while the source still changed; the cutover itself comes next.
pub const FIRST_VERIFIED: &str = "cutover-first-verified";
/// Every snapshot row is in the target; the post-data DDL comes next.
pub const BEFORE_POST_DATA: &str = "before-post-data";

fn configured() -> Option<&'static PauseAt> {
    PAUSE_AT
        .get_or_init(|| {
            let spec = std::env::var("PASSERELLE_PAUSE_AT").ok()?;
            let file = PathBuf::from(std::env::var_os("PASSERELLE_PAUSE_FILE")?);
            let points = spec
                .split(',')
                .map(|point| match point.split_once(':') {
                    Some((point, count)) => Some((point.to_string(), count.parse().ok()?, AtomicBool::new(false))),
                    None => Some((point.to_string(), 0, AtomicBool::new(false))),
                })
                .collect::<Option<Vec<_>>>()?;
            Some(PauseAt { points, file })
        })
        .as_ref()
}

/// Pauses here if the test asked for `point` and `count` has reached its threshold.
pub async fn point(point: &str, count: u64) {
    let Some(pause) = configured() else { return };
    let Some((_, _, paused)) = pause.points.iter().find(|(name, threshold, _)| name == point && count >= *threshold)
    else {
        return;
    };
    if paused.swap(true, Ordering::SeqCst) {
        return;
    }
    if let Err(error) = std::fs::write(&pause.file, format!("{point} {count}\n")) {
        eprintln!("passerelle: cannot write the pause file {}: {error}; not pausing", pause.file.display());
        return;
    }
    eprintln!("passerelle: paused at {point} ({count}) while {} exists", pause.file.display());
    while pause.file.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
