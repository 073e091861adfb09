//! Graceful stop of the commands that move data (`migrate`, `source`, `sink`, `cutover`): the first
//! SIGINT or SIGTERM asks them to stop taking new work, the second ends the process at once.
//!
//! Asked to stop, the sink's applier commits the round it is applying (its rows with their offsets,
//! in one transaction) and takes no other; the snapshot's copy workers take no further batch; the
//! change stream hands Kafka what it produced, confirms to the slot only what Kafka then holds, and
//! closes. Each returns [`Stopped`], which is not a failure of the run (nothing is recorded on the
//! control topic: the same command run again resumes it). A step that does not reach such a point
//! within [`GRACE`] (a wait for a run, a cutover, an outage) is dropped: a target transaction
//! dropped midway rolls back whole, offsets included, and the slot never passes what Kafka holds, so
//! this is as safe as a kill, which `kills.rs` tests. The exit code is 128 + the signal's number,
//! as shells report a process ended by it: 130 for SIGINT, 143 for SIGTERM.
//!
//! The flag is a process-wide write-once global, like the pause points: signals are the process's.

use std::future::Future;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

/// How long a command asked to stop may take to reach a point where it stops cleanly.
const GRACE: Duration = Duration::from_secs(5);

/// The number of the first signal received, 0 before one.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static ASKED: Notify = Notify::const_new();

/// What a step returns when it stopped because the process was asked to.
#[derive(Debug)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped on request")
    }
}

impl std::error::Error for Stopped {}

/// Whether the process was asked to stop.
pub fn requested() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// `Err(Stopped)` once the process was asked to stop: a step calls it before taking new work.
pub fn check() -> anyhow::Result<()> {
    if requested() {
        return Err(Stopped.into());
    }
    Ok(())
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

fn name(number: i32) -> &'static str {
    if number == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}

/// Runs `command` (one that moves data) so that SIGINT and SIGTERM stop it gracefully; once stopped
/// it prints how to resume and returns the signal's exit code.
pub async fn graceful(command: impl Future<Output = anyhow::Result<ExitCode>>) -> anyhow::Result<ExitCode> {
    let (mut interrupt, mut terminate) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    tokio::spawn(async move {
        loop {
            let number = tokio::select! {
                _ = interrupt.recv() => SIGINT,
                _ = terminate.recv() => SIGTERM,
            };
            if SIGNAL.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                eprintln!(
                    "passerelle: {} received: stopping after the current batch (send it again to exit at once)",
                    name(number)
                );
                ASKED.notify_one();
            } else {
                eprintln!(
                    "passerelle: {} received again: exiting at once; run the same command again to resume from \
                     the last committed batch",
                    name(number)
                );
                std::process::exit(128 + number);
            }
        }
    });
    tokio::pin!(command);
    let result = tokio::select! {
        result = &mut command => result,
        () = ASKED.notified() => match tokio::time::timeout(GRACE, &mut command).await {
            Ok(result) => result,
            Err(_) => Err(Stopped.into()),
        },
    };
    let number = SIGNAL.load(Ordering::SeqCst);
    match result {
        Err(error) if number != 0 => {
            // A step stopped on request, or failed because another did (a channel it fed closed).
            if error.downcast_ref::<Stopped>().is_none() {
                tracing::info!(error = %format!("{error:#}"), "ended by the stop");
            }
            eprintln!(
                "passerelle: stopped by {}: every batch applied is committed with its offsets; run the same command \
                 again to resume (exit {})",
                name(number),
                128 + number
            );
            Ok(ExitCode::from((128 + number) as u8))
        }
        result => result,
    }
}

/// Returns once the process was asked to stop: a step that must clean up before the grace period
/// ends (`cutover --freeze` makes the source read-write again) races its work against it.
pub async fn requested_wait() {
    while !requested() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
