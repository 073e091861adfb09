//! `passerelle status --watch`: the status read every second, with each table's rates (messages
//! reaching Kafka and applied per second, over the last 10 s) and the ETA at the apply rate; one
//! screen redrawn in place, or with `--json` one JSON object a line per refresh (JSON lines).
//!
//! A refresh that fails (a broker or server restarting) does not end the watch: the last numbers
//! stay, with the error, and the next refresh reads again. It runs until interrupted.

use std::collections::VecDeque;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::status::{render, Reader, Retrying, Status};

const EVERY: Duration = Duration::from_secs(1);
/// Rates are taken over this many refreshes.
const WINDOW: usize = 10;

/// Each table's counts at one refresh: (in Kafka, applied).
type Sample = (Instant, Vec<(i64, i64)>);

pub async fn run(reader: &Reader, json: bool) -> anyhow::Result<ExitCode> {
    let mut samples: VecDeque<Sample> = VecDeque::new();
    let mut last: Option<Status> = None;
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match reader.read(Retrying::No).await {
            Ok(mut status) => {
                let counts = status.tables.iter().map(|table| (table.in_kafka, table.applied)).collect();
                // A new run (the snapshot started over) counts from zero: its rates too.
                if samples.back().is_some_and(|(_, back): &Sample| back.len() != status.tables.len()) {
                    samples.clear();
                }
                samples.push_back((Instant::now(), counts));
                if samples.len() > WINDOW {
                    samples.pop_front();
                }
                rates(&mut status, &samples);
                last = Some(status);
            }
            Err(error) => match &mut last {
                Some(status) => status.last_error = Some(format!("{error:#}")),
                None => {
                    // Nothing read yet: say so, and try again.
                    eprintln!("passerelle: {error:#}");
                    continue;
                }
            },
        }
        let Some(status) = &last else { continue };
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string(status)?)?;
        } else {
            // Clear the screen and draw from its top.
            write!(out, "\x1b[2J\x1b[H{}", render(status))?;
        }
        out.flush()?;
    }
}

/// Each table's rates over the window and its ETA at the apply rate.
fn rates(status: &mut Status, samples: &VecDeque<Sample>) {
    let (Some((first_at, first)), Some((last_at, _))) = (samples.front(), samples.back()) else { return };
    let seconds = last_at.duration_since(*first_at).as_secs_f64();
    if seconds <= 0.0 {
        return;
    }
    for (table, (kafka_then, applied_then)) in status.tables.iter_mut().zip(first) {
        let applied_rate = (table.applied - applied_then).max(0) as f64 / seconds;
        table.in_kafka_per_second = Some((table.in_kafka - kafka_then).max(0) as f64 / seconds);
        table.applied_per_second = Some(applied_rate);
        let expected = table.expected_rows.map_or(0, |rows| i64::try_from(rows).unwrap_or(i64::MAX));
        let remaining = expected.max(table.in_kafka) - table.applied;
        table.eta_seconds = match remaining {
            ..=0 => Some(0.0),
            _ if applied_rate > 0.0 => Some(remaining as f64 / applied_rate),
            _ => None,
        };
    }
}
