//! The one retry policy: a step that fails with a transient error (each stage crate's
//! `retryable()` says which, like Vector's `RetryLogic`) is tried again with exponential backoff
//! until it succeeds or `--retry-for` has passed since the first failure of the outage; then the
//! command ends (exit 2) with the cause and what to do. Every retry is counted for the summary.
//!
//! What is retried must be safe to repeat: reads, idempotent writes, and target transactions that
//! roll back whole (offsets included) when they fail.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use passerelle_kafka::KafkaError;
use passerelle_mysql::MysqlError;
use passerelle_pg::PgError;
use passerelle_verify::VerifyError;

/// The default of `--retry-for`.
pub const DEFAULT_BOUND: Duration = Duration::from_secs(300);
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(8);

static BOUND: OnceLock<Duration> = OnceLock::new();
static RETRIES: AtomicU64 = AtomicU64::new(0);
/// Where waiting is announced: above the progress bars when they are drawn.
static NOTICES: OnceLock<indicatif::MultiProgress> = OnceLock::new();

/// Sets the bound once, from `--retry-for`.
pub fn configure(bound: Duration) {
    let _ = BOUND.set(bound);
}

/// Announces waits above these bars rather than through them.
pub fn announce_through(bars: &indicatif::MultiProgress) {
    let _ = NOTICES.set(bars.clone());
}

/// Retries of this process so far, every step counted.
pub fn count() -> u64 {
    RETRIES.load(Ordering::Relaxed)
}

pub fn bound() -> Duration {
    BOUND.get().copied().unwrap_or(DEFAULT_BOUND)
}

/// An outage that lasted past the bound: no step around the one that gave up tries again.
#[derive(Debug)]
struct GaveUp(String);

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The system a transient error waits for, or `None` when trying again cannot help.
pub fn waits_for(error: &anyhow::Error) -> Option<&'static str> {
    if error.downcast_ref::<GaveUp>().is_some() {
        return None;
    }
    classify(error).and_then(|(system, retryable)| retryable.then_some(system))
}

/// The system an error comes from, and whether it is transient; `None` for an error of no stage.
fn classify(error: &anyhow::Error) -> Option<(&'static str, bool)> {
    error.chain().find_map(|cause| {
        if let Some(error) = cause.downcast_ref::<KafkaError>() {
            Some(("Kafka", error.retryable()))
        } else if let Some(error) = cause.downcast_ref::<PgError>() {
            Some(("PostgreSQL", error.retryable()))
        } else if let Some(error) = cause.downcast_ref::<MysqlError>() {
            Some(("the target", error.retryable()))
        } else {
            cause.downcast_ref::<VerifyError>().map(|error| ("the databases", error.retryable()))
        }
    })
}

/// The backoff of one step through one outage: [`Backoff::wait`] after each failure.
pub struct Backoff {
    what: &'static str,
    started: Option<Instant>,
    /// When the last retry was counted.
    noted: Option<Instant>,
    attempt: u32,
}

impl Backoff {
    /// `what` names the step in messages: "applying the snapshot".
    pub fn new(what: &'static str) -> Backoff {
        Backoff { what, started: None, noted: None, attempt: 0 }
    }

    /// After a failure: waits before the next attempt when the error is transient and the bound has
    /// not passed, else hands the error back, with what to do.
    pub async fn wait(&mut self, error: impl Into<anyhow::Error>) -> anyhow::Result<()> {
        let waited = self.note(error.into())?;
        let bound = bound();
        let delay = FIRST_DELAY.saturating_mul(1 << self.attempt.min(8)).min(MAX_DELAY);
        tokio::time::sleep(delay.min(bound.saturating_sub(waited)).max(Duration::from_millis(50))).await;
        Ok(())
    }

    /// After a failure that its client retries by itself (librdkafka reconnects on its own, and
    /// queues an error for each attempt): counts and reports it without waiting, and hands it back
    /// once the bound has passed.
    pub fn endure(&mut self, error: impl Into<anyhow::Error>) -> anyhow::Result<()> {
        let error = error.into();
        // One retry a second: librdkafka repeats its error for every broker and every attempt.
        if self.noted.is_some_and(|noted| noted.elapsed() < Duration::from_secs(1)) {
            let over = self.started.is_some_and(|started| started.elapsed() >= bound());
            return if over || waits_for(&error).is_none() { self.note(error).map(|_| ()) } else { Ok(()) };
        }
        self.note(error).map(|_| ())
    }

    /// Counts and reports one retry of a transient error; returns how long the outage has lasted.
    fn note(&mut self, error: anyhow::Error) -> anyhow::Result<Duration> {
        let Some(system) = waits_for(&error) else {
            crate::metrics::get().failed(classify(&error).map_or("passerelle", |(system, _)| system));
            return Err(error);
        };
        let started = *self.started.get_or_insert_with(Instant::now);
        let waited = started.elapsed();
        let bound = bound();
        if waited >= bound {
            crate::metrics::get().failed(system);
            return Err(error.context(GaveUp(format!(
                "{}: gave up after {} retries in {} s waiting for {system} (--retry-for {}); once {system} is back, \
                 run the same command again: it resumes where it stopped",
                self.what,
                self.attempt,
                waited.as_secs(),
                human(bound)
            ))));
        }
        self.attempt += 1;
        self.noted = Some(Instant::now());
        RETRIES.fetch_add(1, Ordering::Relaxed);
        crate::metrics::get().retried(system);
        let line = format!(
            "passerelle: waiting for {system}, retry {}, {} s ({}: {})",
            self.attempt,
            waited.as_secs(),
            self.what,
            one_line(&error)
        );
        match NOTICES.get() {
            Some(bars) if !bars.is_hidden() => {
                let _ = bars.println(&line);
            }
            _ => eprintln!("{line}"),
        }
        Ok(waited)
    }

    /// After a success: the next failure starts a new outage, with the whole bound again.
    pub fn reset(&mut self) {
        self.started = None;
        self.noted = None;
        self.attempt = 0;
    }
}

/// Runs `step` until it succeeds, fails for good, or the bound passes.
pub async fn retry<T, E, F, Fut>(what: &'static str, mut step: F) -> anyhow::Result<T>
where
    E: Into<anyhow::Error>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new(what);
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(error) => backoff.wait(error).await?,
        }
    }
}

/// The stage error's cause without its hint, for the waiting line.
fn one_line(error: &anyhow::Error) -> String {
    error
        .chain()
        .find_map(|cause| {
            let kafka = cause.downcast_ref::<KafkaError>().map(KafkaError::cause);
            let pg = || cause.downcast_ref::<PgError>().map(PgError::cause);
            let mysql = || cause.downcast_ref::<MysqlError>().map(MysqlError::cause);
            kafka.or_else(pg).or_else(mysql)
        })
        .unwrap_or_else(|| error.chain().last().map_or_else(String::new, ToString::to_string))
}

/// `--retry-for`: `90s`, `5m`, `1h`, or seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration: write 90s, 5m or 1h"))?;
    let seconds = match unit {
        "" | "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => return Err(format!("{text:?} is not a duration: write 90s, 5m or 1h")),
    };
    Ok(Duration::from_secs(seconds))
}

fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds.is_multiple_of(60) && seconds > 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5 minutes").is_err());
        assert_eq!(human(Duration::from_secs(300)), "5m");
    }

    #[test]
    fn only_transient_errors_wait() {
        let lost: anyhow::Error = MysqlError::Unreachable { endpoint: "t".into(), cause: "refused".into() }.into();
        assert_eq!(waits_for(&lost.context("applying")), Some("the target"));
        let data: anyhow::Error =
            MysqlError::Data { table: "t".into(), topic: "t".into(), partition: 0, cause: "bad".into() }.into();
        assert_eq!(waits_for(&data), None);
        assert_eq!(waits_for(&anyhow::anyhow!("a bug")), None);
        let lost: anyhow::Error = MysqlError::Unreachable { endpoint: "t".into(), cause: "refused".into() }.into();
        let gave_up = lost.context(GaveUp("gave up".into())).context("applying");
        assert_eq!(waits_for(&gave_up), None, "an outage past the bound is not retried again around it");
    }
}
