//! Prometheus metrics, served on `--metrics-addr HOST:PORT` at `/metrics` while a command runs.
//!
//! Every metric is defined here and fed by the code that already counts the same thing for people:
//! `progress` (rows and bytes per table, events), `report` (phases), `retry` (retries and errors by
//! system), the apply, snapshot and stream loops (batch latencies) and a watcher of the replication
//! slot (lag, retained WAL). Stage crates know nothing of it, as they know nothing of the progress
//! bars. The registry is one process-wide value, like `retry`'s counters: the retry policy and the
//! progress bars that feed it are themselves process-wide, and passing a handle through every stage
//! call would only thread the same value everywhere. Without `--metrics-addr` the counters still
//! count (an atomic add each) and nobody reads them.
//!
//! The endpoint is a plain HTTP/1.0 responder on tokio: it answers `GET /metrics` with the text
//! exposition format and anything else with 404, one request per connection. contrib/grafana holds a
//! dashboard of these metrics.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use passerelle_model::endpoint::DbEndpoint;
use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How often the slot watcher reads the slot.
const SLOT_EVERY: Duration = Duration::from_secs(2);

pub struct Metrics {
    registry: Registry,
    /// Rows per table and phase: `copy` (read from the source and produced to Kafka), `apply`
    /// (snapshot rows committed to the target with their offsets).
    rows: IntCounterVec,
    /// COPY text read from the source per table (phase `copy`).
    bytes: IntCounterVec,
    /// Events produced to Kafka and applied to the target, by kind (`snapshot` rows, `change`s).
    events: IntCounterVec,
    /// Seconds one batch took, by stage: `produce` (a COPY batch encoded and handed to the
    /// producer), `apply_rows` and `apply_changes` (one partition's segment committed with its
    /// offsets), `flush` (the change stream's events acknowledged by Kafka).
    batch_seconds: HistogramVec,
    /// Wall time of each finished phase.
    phase_seconds: GaugeVec,
    /// WAL between the source's current position and what the slot has confirmed.
    lag_bytes: IntGauge,
    /// The walsender's flush lag: how long ago the WAL now confirmed was written (0 when caught up,
    /// NaN while nothing streams from the slot).
    lag_seconds: Gauge,
    /// WAL the slot keeps on the source's disk.
    retained_wal_bytes: IntGauge,
    /// 1 while a walsender streams from the slot.
    slot_active: IntGauge,
    /// Steps tried again after a transient failure, by the system waited for.
    retries: IntCounterVec,
    /// Errors met by a retried step, by system and whether they are transient.
    errors: IntCounterVec,
}

/// One table's counters, resolved once.
pub struct TableMetrics {
    rows_copied: IntCounter,
    bytes_copied: IntCounter,
    rows_applied: IntCounter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
/// Whether the endpoint is served: the slot watcher runs only then.
static SERVING: AtomicBool = AtomicBool::new(false);
/// Whether a slot watcher runs: one per process.
static WATCHING: AtomicBool = AtomicBool::new(false);

pub fn get() -> &'static Metrics {
    &METRICS
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry.register(Box::new(vec.clone())).expect("metric names are unique");
    vec
}

fn gauge<G: prometheus::core::Collector + Clone + 'static>(registry: &Registry, gauge: G) -> G {
    registry.register(Box::new(gauge.clone())).expect("metric names are unique");
    gauge
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let buckets = vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        let batch_seconds = HistogramVec::new(
            HistogramOpts::new("passerelle_batch_seconds", "Seconds one batch took, by stage").buckets(buckets),
            &["stage"],
        )
        .expect("a valid metric");
        registry.register(Box::new(batch_seconds.clone())).expect("metric names are unique");
        let phase_seconds =
            GaugeVec::new(Opts::new("passerelle_phase_seconds", "Wall time of each finished phase"), &["phase"])
                .expect("a valid metric");
        Metrics {
            rows: counter_vec(
                &registry,
                "passerelle_rows_total",
                "Snapshot rows per table and phase",
                &["table", "phase"],
            ),
            bytes: counter_vec(
                &registry,
                "passerelle_bytes_total",
                "COPY text per table and phase",
                &["table", "phase"],
            ),
            events: counter_vec(
                &registry,
                "passerelle_events_total",
                "Events produced to Kafka and applied to the target",
                &["direction", "kind"],
            ),
            batch_seconds,
            phase_seconds: gauge(&registry, phase_seconds),
            lag_bytes: gauge(
                &registry,
                IntGauge::new("passerelle_replication_lag_bytes", "WAL not yet confirmed by the slot")
                    .expect("a valid metric"),
            ),
            lag_seconds: gauge(
                &registry,
                Gauge::new("passerelle_replication_lag_seconds", "The slot walsender's flush lag")
                    .expect("a valid metric"),
            ),
            retained_wal_bytes: gauge(
                &registry,
                IntGauge::new("passerelle_retained_wal_bytes", "WAL the slot keeps on the source")
                    .expect("a valid metric"),
            ),
            slot_active: gauge(
                &registry,
                IntGauge::new("passerelle_slot_active", "1 while a walsender streams from the slot")
                    .expect("a valid metric"),
            ),
            retries: counter_vec(
                &registry,
                "passerelle_retries_total",
                "Steps tried again after a transient failure",
                &["system"],
            ),
            errors: counter_vec(
                &registry,
                "passerelle_errors_total",
                "Errors met by a retried step",
                &["system", "kind"],
            ),
            registry,
        }
    }

    pub fn table(&self, table: &str) -> TableMetrics {
        TableMetrics {
            rows_copied: self.rows.with_label_values(&[table, "copy"]),
            bytes_copied: self.bytes.with_label_values(&[table, "copy"]),
            rows_applied: self.rows.with_label_values(&[table, "apply"]),
        }
    }

    /// The snapshot starts over as a new run: its rows count from zero again, which Prometheus
    /// reads as a counter reset.
    pub fn restart(&self) {
        self.rows.reset();
        self.bytes.reset();
    }

    pub fn changes_produced(&self, n_changes: u64) {
        self.events.with_label_values(&["produced", "change"]).inc_by(n_changes);
    }

    pub fn changes_applied(&self, n_changes: u64) {
        self.events.with_label_values(&["applied", "change"]).inc_by(n_changes);
    }

    pub fn batch(&self, stage: &str, took: Duration) {
        self.batch_seconds.with_label_values(&[stage]).observe(took.as_secs_f64());
    }

    pub fn phase(&self, phase: &str, seconds: f64) {
        self.phase_seconds.with_label_values(&[phase]).set(seconds);
    }

    /// A step waits for `system` (as `retry` names it) after a transient error.
    pub fn retried(&self, system: &str) {
        self.retries.with_label_values(&[label(system)]).inc();
        self.errors.with_label_values(&[label(system), "transient"]).inc();
    }

    /// A retried step met an error that trying again cannot help, or one past `--retry-for`.
    pub fn failed(&self, system: &str) {
        self.errors.with_label_values(&[label(system), "fatal"]).inc();
    }

    fn slot(&self, info: Option<&passerelle_pg::slot::SlotInfo>) {
        let as_i64 = |bytes: Option<u64>| bytes.map_or(0, |bytes| i64::try_from(bytes).unwrap_or(i64::MAX));
        self.slot_active.set(info.is_some_and(|info| info.active).into());
        self.retained_wal_bytes.set(as_i64(info.and_then(|info| info.retained_wal_bytes)));
        self.lag_bytes.set(as_i64(info.and_then(|info| info.lag_bytes)));
        self.lag_seconds.set(match info {
            Some(info) if info.active => info.lag_seconds.unwrap_or(0.0),
            _ => f64::NAN,
        });
    }

    fn render(&self) -> String {
        TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_else(|error| format!("# {error}\n"))
    }
}

impl TableMetrics {
    pub fn copied(&self, n_rows: u64, n_bytes: u64) {
        self.rows_copied.inc_by(n_rows);
        self.bytes_copied.inc_by(n_bytes);
        METRICS.events.with_label_values(&["produced", "snapshot"]).inc_by(n_rows);
    }

    pub fn applied(&self, n_rows: u64) {
        self.rows_applied.inc_by(n_rows);
        METRICS.events.with_label_values(&["applied", "snapshot"]).inc_by(n_rows);
    }
}

/// A system's label value: `retry` names systems for sentences ("waiting for the target").
fn label(system: &str) -> &str {
    match system {
        "Kafka" => "kafka",
        "PostgreSQL" => "postgresql",
        "the target" => "target",
        "the databases" => "databases",
        other => other,
    }
}

/// Serves the metrics on `addr` until the process ends; returns the address bound (port 0 picks one).
pub async fn serve(addr: &str) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| anyhow::anyhow!("cannot serve metrics on --metrics-addr {addr}: {error}"))?;
    let bound = listener.local_addr()?;
    SERVING.store(true, Ordering::Relaxed);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(answer(stream));
        }
    });
    Ok(bound)
}

/// Answers one request: the metrics for `GET /metrics`, 404 for anything else.
async fn answer(mut stream: tokio::net::TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    // The request line and headers; a client that sends nothing for 5 s is dropped.
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    let line = String::from_utf8_lossy(&request);
    let mut words = line.split_whitespace();
    let (status, body) = match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics")) => ("200 OK", METRICS.render()),
        _ => ("404 Not Found", "passerelle serves /metrics only\n".to_string()),
    };
    let response = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// While the metrics are served, reads the replication slot every 2 s: its lag and retained WAL.
/// A failed read leaves the last values and tries again; nothing here is retried by the policy, for
/// a watcher must never end the command.
pub fn watch_slot(source: &DbEndpoint, slot: &str) {
    if !SERVING.load(Ordering::Relaxed) || WATCHING.swap(true, Ordering::Relaxed) {
        return;
    }
    let (source, slot) = (source.clone(), slot.to_string());
    tokio::spawn(async move {
        let mut client = None;
        loop {
            if client.is_none() {
                client = passerelle_pg::connect(&source).await.ok();
            }
            if let Some(connected) = &client {
                match passerelle_pg::slot::slot_info(connected, &source, &slot).await {
                    Ok(info) => METRICS.slot(info.as_ref()),
                    Err(error) => {
                        tracing::debug!(error = %error, "reading the slot for the metrics");
                        client = None;
                    }
                }
            }
            tokio::time::sleep(SLOT_EVERY).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric the Grafana dashboard queries is one this module serves.
    #[test]
    fn the_dashboard_queries_served_metrics() {
        let metrics = get();
        metrics.table("public.t").copied(1, 1);
        metrics.changes_produced(1);
        metrics.batch("apply_rows", Duration::from_millis(3));
        metrics.phase("plan", 0.1);
        metrics.retried("Kafka");
        let served = metrics.render();
        let dashboard = include_str!("../../../contrib/grafana/passerelle.json");
        let mut n_queried = 0;
        for (i, _) in dashboard.match_indices("passerelle_") {
            let name: String = dashboard[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .fold(name.as_str(), |name, suffix| name.strip_suffix(suffix).unwrap_or(name));
            if family == "passerelle_" {
                continue;
            }
            assert!(
                served.contains(&format!("# TYPE {family} ")),
                "the dashboard queries {name}, not served:\n{served}"
            );
            n_queried += 1;
        }
        assert!(n_queried >= 10, "{n_queried}");
        assert!(served.contains("passerelle_retries_total{system=\"kafka\"} 1"), "{served}");
    }
}
