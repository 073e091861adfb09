//! Who holds a replication slot. A Passerelle process killed while it streams leaves its walsender
//! behind, holding the slot until the server's `wal_sender_timeout`, so a restart right after the
//! crash would find the slot "in use". Passerelle's replication connections therefore name their
//! process in `application_name` (`passerelle <pid>@<host>`): a walsender of a Passerelle process
//! of this host that has ended is recognised and terminated (a role may signal its own backends),
//! and any other holder is reported by name, never taken for dead.

use std::fmt;
use std::time::Duration;

use tokio_postgres::Client;

use crate::PgError;

/// What this process calls itself on a replication connection.
pub(crate) fn application_name() -> String {
    format!("passerelle {}@{}", std::process::id(), hostname())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".to_string(), |h| h.trim().to_string())
}

/// The walsender streaming from a slot, and the client it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub backend_pid: i32,
    pub application_name: String,
}

impl Holder {
    /// The Passerelle process it serves, when that process ran on this host: `Some(pid)`.
    fn local_passerelle(&self) -> Option<u32> {
        let (pid, host) = self.application_name.strip_prefix("passerelle ")?.split_once('@')?;
        (host == hostname()).then(|| pid.parse().ok())?
    }

    /// True when it serves a Passerelle process of this host that has ended.
    fn is_stale(&self) -> bool {
        self.local_passerelle().is_some_and(|pid| pid != std::process::id() && !process_alive(pid))
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.application_name.is_empty() { "an unnamed client" } else { &self.application_name };
        write!(f, "walsender pid {} serving {name}", self.backend_pid)
    }
}

/// A process that exists and is not a zombie (a killed child its parent has not reaped yet).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The walsender holding `slot`, if one does.
pub async fn holder(client: &Client, endpoint: &impl fmt::Display, slot: &str) -> Result<Option<Holder>, PgError> {
    let row = client
        .query_opt(
            "select s.active_pid, coalesce(a.application_name, '')
             from pg_replication_slots s left join pg_stat_activity a on a.pid = s.active_pid
             where s.slot_name = $1 and s.active_pid is not null",
            &[&slot],
        )
        .await
        .map_err(|error| PgError::query(endpoint, "reading who holds the replication slot", error))?;
    Ok(row.map(|row| Holder { backend_pid: row.get(0), application_name: row.get(1) }))
}

/// Frees `slot` from the walsender of a Passerelle process of this host that has ended: terminates
/// it and waits (a few seconds) until the slot is free. Returns the holder that remains: `None`
/// when the slot is free, else one that is alive or not known to be dead, which is left alone.
pub async fn release_stale(
    client: &Client,
    endpoint: &impl fmt::Display,
    slot: &str,
) -> Result<Option<Holder>, PgError> {
    let Some(found) = holder(client, endpoint, slot).await? else { return Ok(None) };
    if !found.is_stale() {
        return Ok(Some(found));
    }
    tracing::warn!("replication slot {slot}: ending the {found}, whose process has ended");
    eprintln!(
        "passerelle: the replication slot {slot} is still held by the {found}, whose process has ended; ending it"
    );
    client
        .execute("select pg_terminate_backend($1)", &[&found.backend_pid])
        .await
        .map_err(|error| PgError::query(endpoint, "ending a dead process's walsender", error))?;
    for _ in 0..50 {
        match holder(client, endpoint, slot).await? {
            Some(still) if still == found => tokio::time::sleep(Duration::from_millis(100)).await,
            other => return Ok(other),
        }
    }
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_ended_local_passerelle_is_stale() {
        let holder = |name: String| Holder { backend_pid: 1, application_name: name };
        assert!(!holder(application_name()).is_stale(), "this process is alive");
        // Pids above the kernel's limit (4194304) never exist.
        assert!(holder(format!("passerelle 9999999@{}", hostname())).is_stale());
        assert!(!holder("passerelle 9999999@elsewhere".to_string()).is_stale());
        assert!(!holder("psql".to_string()).is_stale());
    }
}
