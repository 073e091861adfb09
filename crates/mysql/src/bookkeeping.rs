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
/// Per topic partition, the last change applied by its place in the source's stream (commit LSN,
/// position in the transaction), written with the rows: a change the slot sends again after a crash
/// comes at or before it and is skipped, which a table without a key needs (a second insert would
/// be a second row).
pub const POSITIONS_TABLE: &str = "passerelle_stream_positions";
/// One row per migration: its phase and the run that owns its topics.
pub const RUNS_TABLE: &str = "passerelle_runs";
/// The tables, views and sequences each migration created in the target.
pub const OBJECTS_TABLE: &str = "passerelle_objects";
/// Per topic, where in the source's order its table was last emptied by a `TRUNCATE` the sink
/// applied: changes from before it are dead and skipped (`sink::truncate`).
pub const TRUNCATES_TABLE: &str = "passerelle_truncates";

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

/// The format of the bookkeeping tables this Passerelle writes: a Passerelle that changes what they
/// hold or mean raises it, and one that finds a newer format than it knows refuses to touch them.
pub const BOOKKEEPING_FORMAT: u32 = 1;
/// One row: the bookkeeping's format, and the id of this installation (the target server's identity
/// where the server has no `@@server_uuid`, as MariaDB has not).
pub const INSTALLATION_TABLE: &str = "passerelle_installation";

/// What the installation row says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installation {
    /// A UUID made once, when the bookkeeping was first created on this server.
    pub id: String,
    pub format: u32,
}

/// Creates `database` and the bookkeeping tables in it if they are missing, after checking that their
/// format is one this Passerelle knows. Returns the installation.
pub async fn ensure_tables(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    database: &str,
) -> Result<Installation, MysqlError> {
    let db = quote(database);
    let context = |error| MysqlError::query(endpoint, "creating the bookkeeping tables", error);
    let first = [
        format!("CREATE DATABASE IF NOT EXISTS {db}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{INSTALLATION_TABLE} (
               one_row TINYINT NOT NULL PRIMARY KEY,
               installation_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
               format INT NOT NULL,
               created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
             ) ENGINE=InnoDB COMMENT 'Passerelle: the bookkeeping format, and this installation''s id'"
        ),
    ];
    for statement in first {
        conn.query_drop(statement).await.map_err(context)?;
    }
    // UUID() is evaluated by the server; only the first call of all inserts.
    conn.exec_drop(
        format!(
            "INSERT IGNORE INTO {db}.{INSTALLATION_TABLE} (one_row, installation_id, format) VALUES (1, UUID(), ?)"
        ),
        (BOOKKEEPING_FORMAT,),
    )
    .await
    .map_err(context)?;
    let installation = installation(conn, endpoint, database).await?.ok_or_else(|| MysqlError::Query {
        endpoint: endpoint.to_string(),
        context: "creating the bookkeeping tables",
        code: None,
        message: format!("{database}.{INSTALLATION_TABLE} holds no row after its insert"),
    })?;
    let statements = [
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{OFFSETS_TABLE} (
               topic VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
               kafka_partition INT NOT NULL,
               next_offset BIGINT NOT NULL,
               PRIMARY KEY (topic, kafka_partition)
             ) ENGINE=InnoDB COMMENT 'Passerelle: the next Kafka offset to apply, written with the rows'"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{POSITIONS_TABLE} (
               topic VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
               kafka_partition INT NOT NULL,
               commit_lsn BIGINT UNSIGNED NOT NULL,
               position BIGINT UNSIGNED NOT NULL,
               PRIMARY KEY (topic, kafka_partition)
             ) ENGINE=InnoDB COMMENT 'Passerelle: the last change applied per partition, by its place in the stream'"
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
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{TRUNCATES_TABLE} (
               topic VARCHAR(249) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
               commit_lsn BIGINT UNSIGNED NOT NULL,
               lsn BIGINT UNSIGNED NOT NULL
             ) ENGINE=InnoDB COMMENT 'Passerelle: where each topic''s table was last truncated, written with the rows'"
        ),
    ];
    for statement in statements {
        conn.query_drop(statement).await.map_err(context)?;
    }
    Ok(installation)
}

/// The installation row, without creating anything: `None` where the bookkeeping does not exist.
/// An error when its format is newer than this Passerelle knows.
pub async fn installation(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    database: &str,
) -> Result<Option<Installation>, MysqlError> {
    const NO_DATABASE: u16 = 1049;
    const NO_TABLE: u16 = 1146;
    let row: Option<(String, u32)> = match conn
        .query_first(format!("SELECT installation_id, format FROM {}.{INSTALLATION_TABLE}", quote(database)))
        .await
    {
        Ok(row) => row,
        Err(mysql_async::Error::Server(error)) if [NO_DATABASE, NO_TABLE].contains(&error.code) => return Ok(None),
        Err(error) => return Err(MysqlError::query(endpoint, "reading the bookkeeping's format", error)),
    };
    let Some((id, format)) = row else { return Ok(None) };
    if format > BOOKKEEPING_FORMAT {
        return Err(MysqlError::NewerBookkeeping {
            endpoint: endpoint.to_string(),
            database: database.to_string(),
            found: format,
            known: BOOKKEEPING_FORMAT,
        });
    }
    Ok(Some(Installation { id, format }))
}

/// The target server's identity, which a run's sinks must share: MySQL's `@@server_uuid`, or where
/// the server has none (MariaDB) the installation id of its bookkeeping; `None` for a server without
/// either.
pub async fn server_identity(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    installation: Option<&Installation>,
) -> Result<Option<String>, MysqlError> {
    let uuid: Option<(String, String)> = conn
        .query_first("SHOW GLOBAL VARIABLES LIKE 'server_uuid'")
        .await
        .map_err(|error| MysqlError::query(endpoint, "reading the server's identity", error))?;
    Ok(match (uuid, installation) {
        (Some((_, uuid)), _) => Some(format!("server_uuid {uuid}")),
        (None, Some(installation)) => Some(format!("installation id {}", installation.id)),
        (None, None) => None,
    })
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

/// Forgets a migration: its run, the offsets and truncates of its topics and the objects it created
/// (which stay).
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
        for table in [OFFSETS_TABLE, TRUNCATES_TABLE, POSITIONS_TABLE] {
            conn.exec_drop(format!("DELETE FROM {db}.{table} WHERE topic = ?"), (topic,)).await.map_err(context)?;
        }
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
