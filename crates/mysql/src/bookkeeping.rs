//! Passerelle's own tables, in a database of their own on the target server (`passerelle` unless
//! the user names another): how far each migration got, each Kafka partition's next offset to apply
//! (written in the same transaction as the rows, see `sink`: InnoDB transactions span the databases
//! of one server), and the objects each migration created, which are the only ones it ever drops.
//! The user's databases hold only migrated tables. Every table here has a primary key, as MySQL's
//! `sql_require_primary_key` demands.

use std::collections::HashMap;
use std::fmt;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use passerelle_ddl::ident::quote;

use crate::MysqlError;

/// The next offset to apply, per topic partition.
pub const OFFSETS_TABLE: &str = "passerelle_offsets";
/// One row per migration: its phase and the run that owns its topics.
pub const RUNS_TABLE: &str = "passerelle_runs";
/// The tables, views and sequences each migration created in the target.
pub const OBJECTS_TABLE: &str = "passerelle_objects";

/// An object in a target database: a table, a view or a sequence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetObject {
    pub database: String,
    pub name: String,
    /// `TABLE`, `VIEW` or `SEQUENCE`: what DROP takes.
    pub kind: String,
}

impl fmt::Display for TargetObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.database, self.name)
    }
}

/// How far a migration got. Each phase is recorded when it has completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Topics, slot and target tables exist; the snapshot may be partly applied.
    Snapshot,
    /// Every snapshot row is in the target.
    SnapshotApplied,
    /// Keys, indexes, foreign keys, AUTO_INCREMENT and views are in place.
    PostData,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Snapshot => "snapshot",
            Phase::SnapshotApplied => "snapshot-applied",
            Phase::PostData => "post-data",
        }
    }

    fn parse(text: &str) -> Option<Phase> {
        [Phase::Snapshot, Phase::SnapshotApplied, Phase::PostData].into_iter().find(|phase| phase.as_str() == text)
    }
}

/// A migration's row in the runs table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunState {
    /// Identifies one attempt: a fresh start gets a new one, and with it a new consumer group.
    pub run_id: String,
    pub phase: Phase,
}

/// Creates `database` and the bookkeeping tables in it if they are missing.
pub async fn ensure_tables(conn: &mut Conn, endpoint: &impl fmt::Display, database: &str) -> Result<(), MysqlError> {
    let db = quote(database);
    let statements = [
        format!("CREATE DATABASE IF NOT EXISTS {db}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{OFFSETS_TABLE} (
               topic VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
               kafka_partition INT NOT NULL,
               next_offset BIGINT NOT NULL,
               PRIMARY KEY (topic, kafka_partition)
             ) ENGINE=InnoDB COMMENT 'Passerelle: the next Kafka offset to apply, written with the rows'"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{RUNS_TABLE} (
               migration VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
               run_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
               phase VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
               updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
             ) ENGINE=InnoDB COMMENT 'Passerelle: how far each migration got'"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{OBJECTS_TABLE} (
               migration VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
               database_name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
               object_name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
               kind VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
               PRIMARY KEY (migration, database_name, object_name)
             ) ENGINE=InnoDB COMMENT 'Passerelle: what each migration created, the only objects it drops'"
        ),
    ];
    for statement in statements {
        conn.query_drop(statement)
            .await
            .map_err(|error| MysqlError::query(endpoint, "creating the bookkeeping tables", error))?;
    }
    Ok(())
}

pub async fn run_state(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    database: &str,
    migration: &str,
) -> Result<Option<RunState>, MysqlError> {
    let row: Option<(String, String)> = conn
        .exec_first(
            format!("SELECT run_id, phase FROM {}.{RUNS_TABLE} WHERE migration = ?", quote(database)),
            (migration,),
        )
        .await
        .map_err(|error| MysqlError::query(endpoint, "reading the migration's state", error))?;
    Ok(row.and_then(|(run_id, phase)| Phase::parse(&phase).map(|phase| RunState { run_id, phase })))
}

pub async fn set_run_state(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    database: &str,
    migration: &str,
    state: &RunState,
) -> Result<(), MysqlError> {
    conn.exec_drop(
        format!(
            "INSERT INTO {}.{RUNS_TABLE} (migration, run_id, phase) VALUES (?, ?, ?)
             ON DUPLICATE KEY UPDATE run_id = VALUES(run_id), phase = VALUES(phase)",
            quote(database)
        ),
        (migration, &state.run_id, state.phase.as_str()),
    )
    .await
    .map_err(|error| MysqlError::query(endpoint, "recording the migration's state", error))
}

/// Records objects as created by `migration`.
pub async fn record_objects(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    database: &str,
    migration: &str,
    objects: &[TargetObject],
) -> Result<(), MysqlError> {
    for object in objects {
        conn.exec_drop(
            format!(
                "INSERT IGNORE INTO {}.{OBJECTS_TABLE} (migration, database_name, object_name, kind) VALUES (?, ?, ?, ?)",
                quote(database)
            ),
            (migration, &object.database, &object.name, &object.kind),
        )
        .await
        .map_err(|error| MysqlError::query(endpoint, "recording what the migration created", error))?;
    }
    Ok(())
}

/// The objects `migration` created.
pub async fn created_objects(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    database: &str,
    migration: &str,
) -> Result<Vec<TargetObject>, MysqlError> {
    let rows: Vec<(String, String, String)> = conn
        .exec(
            format!(
                "SELECT database_name, object_name, kind FROM {}.{OBJECTS_TABLE} WHERE migration = ?
                 ORDER BY database_name, object_name",
                quote(database)
            ),
            (migration,),
        )
        .await
        .map_err(|error| MysqlError::query(endpoint, "reading what the migration created", error))?;
    Ok(rows.into_iter().map(|(database, name, kind)| TargetObject { database, name, kind }).collect())
}

/// Forgets a migration: its run, the offsets of its topics and the objects it created (which stay).
pub async fn forget(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    database: &str,
    migration: &str,
    topics: &[String],
) -> Result<(), MysqlError> {
    let db = quote(database);
    let context = |error| MysqlError::query(endpoint, "clearing the migration's bookkeeping", error);
    for table in [RUNS_TABLE, OBJECTS_TABLE] {
        conn.exec_drop(format!("DELETE FROM {db}.{table} WHERE migration = ?"), (migration,)).await.map_err(context)?;
    }
    for topic in topics {
        conn.exec_drop(format!("DELETE FROM {db}.{OFFSETS_TABLE} WHERE topic = ?"), (topic,)).await.map_err(context)?;
    }
    Ok(())
}

/// Moves a run from one phase to the next, unless another sink process did it first or the run
/// changed meanwhile. Returns whether this call moved it.
pub async fn advance_phase(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    database: &str,
    migration: &str,
    run_id: &str,
    from: Phase,
    to: Phase,
) -> Result<bool, MysqlError> {
    conn.exec_drop(
        format!(
            "UPDATE {}.{RUNS_TABLE} SET phase = ? WHERE migration = ? AND run_id = ? AND phase = ?",
            quote(database)
        ),
        (to.as_str(), migration, run_id, from.as_str()),
    )
    .await
    .map_err(|error| MysqlError::query(endpoint, "recording the migration's state", error))?;
    Ok(conn.affected_rows() == 1)
}

/// The next offset to apply of every partition of `topics` that has one.
pub async fn offsets(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    database: &str,
    topics: &[String],
) -> Result<HashMap<(String, i32), i64>, MysqlError> {
    let mut offsets = HashMap::new();
    for topic in topics {
        let rows: Vec<(i32, i64)> = conn
            .exec(
                format!("SELECT kafka_partition, next_offset FROM {}.{OFFSETS_TABLE} WHERE topic = ?", quote(database)),
                (topic,),
            )
            .await
            .map_err(|error| MysqlError::query(endpoint, "reading the applied offsets", error))?;
        offsets.extend(rows.into_iter().map(|(partition, next)| ((topic.clone(), partition), next)));
    }
    Ok(offsets)
}

/// The lock's name, within the 64 characters a lock name may have. SHA2: MySQL 9 has no SHA1 or MD5.
const LOCK_NAME: &str = "CONCAT('passerelle:', LEFT(SHA2(?, 256), 40))";

/// Serialises the phase changes of one migration across sink processes: a named lock of the target
/// server, held by this connection until [`unlock`] or until it closes. Waits for it as long as it
/// takes another process to apply the pre-data or post-data DDL.
pub async fn lock(conn: &mut Conn, endpoint: &impl fmt::Display, migration: &str) -> Result<(), MysqlError> {
    loop {
        let got: Option<Option<i64>> = conn
            .exec_first(format!("SELECT GET_LOCK({LOCK_NAME}, 60)"), (migration,))
            .await
            .map_err(|error| MysqlError::query(endpoint, "taking the migration's lock", error))?;
        if got.flatten() == Some(1) {
            return Ok(());
        }
        tracing::info!("another sink process holds the lock of {migration}; waiting");
    }
}

pub async fn unlock(conn: &mut Conn, endpoint: &impl fmt::Display, migration: &str) -> Result<(), MysqlError> {
    conn.exec_drop(format!("DO RELEASE_LOCK({LOCK_NAME})"), (migration,))
        .await
        .map_err(|error| MysqlError::query(endpoint, "releasing the migration's lock", error))
}
