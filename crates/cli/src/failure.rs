//! A run whose source failed says so on the control topic, so that nobody waits for it.
//!
//! Only what ends the source's process with an error is a failure of the run: a step that Passerelle
//! retries by itself (`retry`) is not, until it gives up. The process that holds the run (it announced
//! it, or its change stream started from the run's slot) records the failure with its cause and the
//! way out; `cutover`, `status` and the sinks stop at once with them (exit 2) instead of waiting for a
//! source that is gone. A source that takes the run up again withdraws the record.

use std::sync::Mutex;

use passerelle_kafka::control::{self, ControlState, Failed};
use passerelle_kafka::producer::Producer;
use passerelle_kafka::topic::control_topic;
use passerelle_model::endpoint::KafkaEndpoint;
use passerelle_pg::PgError;

/// How long recording a failure may take before the process ends without it.
const RECORDING: std::time::Duration = std::time::Duration::from_secs(10);

/// The run this process is the source of, once it holds it. A process that never held one (refused
/// up front, or waiting for a slot another process streams from) records nothing: the run may well
/// be going on elsewhere.
#[derive(Default)]
pub struct Holder(Mutex<Option<String>>);

impl Holder {
    pub fn hold(&self, run_id: &str) {
        if let Ok(mut held) = self.0.lock() {
            *held = Some(run_id.to_string());
        }
    }

    fn held(&self) -> Option<String> {
        self.0.lock().ok().and_then(|held| held.clone())
    }
}

/// An error after which the run cannot go on: only a new run, from a new snapshot, can.
#[derive(Debug)]
pub struct StartOver(pub String);

impl std::fmt::Display for StartOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartOver {}

/// Hands `result` back; an error first goes on the control topic as the failure of the run this
/// process holds, if it holds one. Recording is best effort, within [`RECORDING`]: Kafka may be what
/// failed.
pub async fn recorded<T>(
    kafka: &KafkaEndpoint,
    migration: &str,
    holder: &Holder,
    result: anyhow::Result<T>,
) -> anyhow::Result<T> {
    let error = match result {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let Some(run_id) = holder.held() else { return Err(error) };
    // A process asked to stop has not failed: the same command resumes the run.
    if crate::shutdown::requested() {
        return Err(error);
    }
    let failed = Failed { run_id: run_id.clone(), cause: one_line(&error), way_out: way_out(&error, migration) };
    let topic = control_topic(migration);
    let published = async {
        // Kafka may be what failed: the record is given up after RECORDING, not another --retry-for.
        let producer = Producer::for_control(kafka, RECORDING)?.for_run(&run_id);
        control::announce_failed(&producer, &topic, &failed).await
    };
    if let Err(record_error) = published.await {
        tracing::warn!(error = %record_error, "the run's failure could not be recorded on the control topic");
    }
    Err(error)
}

/// This process takes up `run_id` again, a run it did not announce (the snapshot was complete in
/// Kafka, or its slot streams here): it holds the run from now on, and withdraws the run's failure if
/// one is recorded, before a sink of this process reads the control topic and stops at it.
pub async fn take_up(
    holder: &Holder,
    kafka: &KafkaEndpoint,
    state: &ControlState,
    topic: &str,
    run_id: &str,
) -> anyhow::Result<()> {
    holder.hold(run_id);
    if let Some(failed) = &state.failed {
        eprintln!("passerelle: run {} had failed ({}); taking it up again", failed.run_id, failed.cause);
        let producer = Producer::for_control(kafka, crate::retry::bound())?.for_run(run_id);
        control::clear_failed(&producer, topic).await?;
    }
    Ok(())
}

/// Stops a command that waits for the run when the control topic records that it failed.
pub fn refuse_failed(state: &ControlState, migration: &str) -> anyhow::Result<()> {
    match &state.failed {
        Some(failed) => Err(anyhow::anyhow!("{}", describe(failed, migration))),
        None => Ok(()),
    }
}

/// `run R of M failed: CAUSE; WAY OUT`.
pub fn describe(failed: &Failed, migration: &str) -> String {
    format!("run {} of {migration} failed: {}; {}", failed.run_id, failed.cause, failed.way_out)
}

/// The error as `main` prints it, on one line.
fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}").split_whitespace().collect::<Vec<_>>().join(" ")
}

fn way_out(error: &anyhow::Error, migration: &str) -> String {
    let starts_over = error.chain().any(|cause| {
        cause.is::<StartOver>()
            || cause.downcast_ref::<PgError>().is_some_and(|error| {
                matches!(
                    error,
                    PgError::SlotMissing { .. }
                        | PgError::SlotInvalidated { .. }
                        | PgError::PublicationMissing { .. }
                        | PgError::TableChanged { .. }
                        | PgError::UnexpectedTable { .. }
                )
            })
    });
    if starts_over {
        format!("start the migration over: passerelle cleanup --topic-prefix {migration}, then passerelle migrate")
    } else {
        "fix the cause, then run the source again (passerelle migrate or passerelle source, as before): it resumes \
         where it stopped; then run the sinks again"
            .to_string()
    }
}
