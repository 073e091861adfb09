//! Source errors: a one-line cause that names the server (never its password), then what to do.

use std::fmt;

use tokio_postgres::error::SqlState;

/// `Replication` is an error response on the replication connection, which Passerelle speaks without
/// tokio-postgres (`slot.rs`), and `ConnectionLost` that connection breaking mid-session.
/// `CopyFormat` is COPY text that does not parse, a bug on one side or the other, and `StreamFormat`
/// the same for the change stream's pgoutput messages.
#[derive(Debug)]
pub enum PgError {
    Unreachable { endpoint: String, cause: String },
    AuthFailed { endpoint: String, user: String },
    NoDatabase { endpoint: String, database: String },
    Refused { endpoint: String, message: String },
    Tls { endpoint: String, cause: String },
    Query { endpoint: String, context: &'static str, source: tokio_postgres::Error },
    NoSchema { endpoint: String, schema: String },
    Replication { endpoint: String, context: &'static str, code: String, message: String },
    ConnectionLost { endpoint: String, context: &'static str, cause: String },
    SlotExists { endpoint: String, slot: String },
    PublicationExists { endpoint: String, publication: String },
    InvalidName { what: &'static str, name: String, reason: &'static str },
    NoReplicaIdentity { endpoint: String, table: String },
    CopyFormat { endpoint: String, table: String, detail: String },
    CopyCancelled { table: String },
    SlotMissing { endpoint: String, slot: String },
    SlotInvalidated { endpoint: String, slot: String },
    LockTimeout { endpoint: String, context: &'static str, holders: String },
    SlotInUse { endpoint: String, slot: String, holder: String },
    PublicationMissing { endpoint: String, publication: String },
    TableChanged { endpoint: String, table: String, detail: String },
    UnexpectedTable { endpoint: String, table: String },
    StreamFormat { endpoint: String, detail: String },
}

impl PgError {
    /// Classifies a failed connection attempt by its SQLSTATE, or as unreachable when the server
    /// never answered.
    pub(crate) fn from_connect(endpoint: String, user: &str, database: &str, error: tokio_postgres::Error) -> PgError {
        let Some(db_error) = error.as_db_error() else {
            let cause = std::error::Error::source(&error).map_or_else(|| error.to_string(), ToString::to_string);
            return PgError::Unreachable { endpoint, cause };
        };
        let code = db_error.code();
        // 28000 is pg_hba.conf's refusal (no TLS, wrong host): its message says which, so it is `Refused`.
        if *code == SqlState::INVALID_PASSWORD {
            return PgError::AuthFailed { endpoint, user: user.to_string() };
        }
        if *code == SqlState::INVALID_CATALOG_NAME {
            return PgError::NoDatabase { endpoint, database: database.to_string() };
        }
        // Starting up, shutting down, or full: the server is there, just not ready yet.
        if TRANSIENT.contains(code) {
            return PgError::Unreachable { endpoint, cause: db_error.message().to_string() };
        }
        PgError::Refused { endpoint, message: db_error.message().to_string() }
    }

    pub(crate) fn query(endpoint: &impl fmt::Display, context: &'static str, source: tokio_postgres::Error) -> PgError {
        PgError::Query { endpoint: endpoint.to_string(), context, source }
    }

    /// What went wrong, in one line.
    pub fn cause(&self) -> String {
        match self {
            PgError::Unreachable { endpoint, cause } => format!("cannot reach PostgreSQL at {endpoint}: {cause}"),
            PgError::AuthFailed { endpoint, user } => {
                format!("PostgreSQL at {endpoint} rejected the password of user {user:?}")
            }
            PgError::NoDatabase { endpoint, database } => {
                format!("PostgreSQL at {endpoint} has no database {database:?}")
            }
            PgError::Refused { endpoint, message } => {
                format!("PostgreSQL at {endpoint} refused the connection: {message}")
            }
            PgError::Tls { endpoint, cause } => format!("no TLS session with PostgreSQL at {endpoint}: {cause}"),
            PgError::NoSchema { endpoint, schema } => format!("PostgreSQL at {endpoint} has no schema {schema:?}"),
            PgError::Replication { endpoint, context, code, message } => {
                format!("PostgreSQL at {endpoint}: {context}: {message} (SQLSTATE {code})")
            }
            PgError::ConnectionLost { endpoint, context, cause } => {
                format!("lost the replication connection to PostgreSQL at {endpoint}: {context}: {cause}")
            }
            PgError::SlotExists { endpoint, slot } => {
                format!("PostgreSQL at {endpoint} already has a replication slot {slot:?}")
            }
            PgError::PublicationExists { endpoint, publication } => {
                format!("PostgreSQL at {endpoint} already has a publication {publication:?}")
            }
            PgError::InvalidName { what, name, reason } => format!("invalid {what} name {name:?}: {reason}"),
            PgError::NoReplicaIdentity { endpoint, table } => format!(
                "table {table} at {endpoint} has no primary key and no replica identity: once published, \
                 every UPDATE and DELETE on it would fail"
            ),
            PgError::CopyFormat { endpoint, table, detail } => {
                format!("PostgreSQL at {endpoint}: COPY of {table} sent unreadable text: {detail}")
            }
            PgError::CopyCancelled { table } => format!("the copy of {table} stopped: nothing receives its rows"),
            PgError::SlotMissing { endpoint, slot } => {
                format!("PostgreSQL at {endpoint} has no replication slot {slot:?} in this database")
            }
            PgError::SlotInvalidated { endpoint, slot } => format!(
                "replication slot {slot:?} at {endpoint} was invalidated: the server removed WAL it still needed \
                 (max_slot_wal_keep_size), so changes since the slot's position are lost"
            ),
            PgError::LockTimeout { endpoint, context, holders } => format!(
                "PostgreSQL at {endpoint}: {context}: no lock on the source's tables within {} s ({holders})",
                crate::connect::LOCK_TIMEOUT.as_secs()
            ),
            PgError::SlotInUse { endpoint, slot, holder } => {
                format!("replication slot {slot:?} at {endpoint} is in use: another process streams from it ({holder})")
            }
            PgError::PublicationMissing { endpoint, publication } => {
                format!("PostgreSQL at {endpoint} has no publication {publication:?}")
            }
            PgError::TableChanged { endpoint, table, detail } => {
                format!("table {table} at {endpoint} changed during the migration: {detail}")
            }
            PgError::UnexpectedTable { endpoint, table } => {
                format!("the change stream at {endpoint} carries table {table}, which this migration does not copy")
            }
            PgError::StreamFormat { endpoint, detail } => {
                format!("PostgreSQL at {endpoint}: the change stream sent an unreadable message: {detail}")
            }
            PgError::Query { endpoint, context, source } => match source.as_db_error() {
                Some(db_error) => format!("PostgreSQL at {endpoint}: {context}: {}", db_error.message()),
                None => format!("PostgreSQL at {endpoint}: {context}: {source}"),
            },
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            PgError::Unreachable { .. } => "check the host and port in the source URL and that the server is up",
            PgError::AuthFailed { .. } => "check the user and password in the source URL",
            PgError::NoDatabase { .. } => "create the database or name another one in the source URL",
            PgError::Refused { .. } => {
                "check pg_hba.conf and that the role has LOGIN (a hostssl line needs sslmode=require or stronger)"
            }
            PgError::Tls { .. } => {
                "check sslmode, and that sslrootcert is the CA that signed the server's certificate and the \
                 URL's host one that the certificate names"
            }
            PgError::Query { .. } => "see the PostgreSQL server log for details",
            PgError::NoSchema { .. } => "check the --schema names (psql's \\dn lists them)",
            PgError::Replication { .. } => "see the PostgreSQL server log for details",
            PgError::ConnectionLost { .. } => "check that the server is up and the network stable, then run again",
            PgError::SlotExists { .. } => {
                "an earlier run of this migration left it: resume that run, or drop it with passerelle cleanup"
            }
            PgError::PublicationExists { .. } => {
                "an earlier run of this migration left it: resume that run, or drop it with passerelle cleanup"
            }
            PgError::InvalidName { .. } => "use lower-case letters, digits and underscores, at most 63 of them",
            PgError::NoReplicaIdentity { .. } => {
                "add a primary key or run ALTER TABLE ... REPLICA IDENTITY FULL on the source, or leave the table out"
            }
            PgError::CopyFormat { .. } => "report this as a Passerelle bug, with the table's column types",
            PgError::CopyCancelled { .. } => "see the error that stopped the receiving side",
            PgError::SlotMissing { .. } => {
                "the slot was dropped, or lost to a failover (a standby promoted without the primary's logical \
                 slots), so changes since the snapshot are lost: start the migration over (passerelle cleanup, \
                 then passerelle migrate)"
            }
            PgError::SlotInvalidated { .. } => {
                "start the migration over (passerelle cleanup, then passerelle migrate); raise max_slot_wal_keep_size \
                 (or set it to -1), or keep the stream running, so that it does not happen again"
            }
            PgError::LockTimeout { .. } => {
                "Passerelle gives up its lock request rather than queue the application behind it, and tries again; \
                 end the long transaction that holds the lock to let it through"
            }
            PgError::SlotInUse { .. } => {
                "stop the other passerelle source of this migration (pg_stat_replication shows its pid); \
                 a Passerelle process of this host that died is recognised and its walsender ended, one of \
                 another host frees the slot within the server's wal_sender_timeout"
            }
            PgError::PublicationMissing { .. } => "the publication was dropped: start the migration over",
            PgError::TableChanged { .. } => {
                "Passerelle carries columns added at a table's end or dropped, and wider types, not a column given \
                 another type: undo the change on the source, or start the migration over"
            }
            PgError::UnexpectedTable { .. } => {
                "a table was renamed, or added to the publication: undo that (ALTER PUBLICATION ... DROP TABLE), \
                 or start the migration over"
            }
            PgError::StreamFormat { .. } => "report this as a Passerelle bug, with the PostgreSQL version",
        }
    }

    /// True when trying again later may succeed (Vector's `RetryLogic`): the server was unreachable
    /// or restarting, the session was terminated (`pg_terminate_backend`, a crash, an admin
    /// shutdown) or its connection broke, a query hit a transient condition (serialization failure,
    /// deadlock, lock not available, too many connections), or the slot is still held by a streamer
    /// that died and that the server has not noticed yet. Bad data, bad names and missing objects are not.
    pub fn retryable(&self) -> bool {
        match self {
            PgError::Unreachable { .. }
            | PgError::ConnectionLost { .. }
            | PgError::SlotInUse { .. }
            | PgError::LockTimeout { .. } => true,
            PgError::Replication { code, .. } => {
                TRANSIENT.iter().any(|state| state.code() == code) || code.starts_with("08")
            }
            PgError::Query { source, .. } => match source.code() {
                Some(code) => TRANSIENT.contains(code) || code.code().starts_with("08"),
                // No SQLSTATE: the connection closed or broke under the query.
                None => {
                    source.is_closed()
                        || std::error::Error::source(source).is_some_and(|cause| cause.is::<std::io::Error>())
                }
            },
            PgError::AuthFailed { .. }
            | PgError::NoDatabase { .. }
            | PgError::Refused { .. }
            | PgError::Tls { .. }
            | PgError::NoSchema { .. }
            | PgError::SlotExists { .. }
            | PgError::PublicationExists { .. }
            | PgError::InvalidName { .. }
            | PgError::NoReplicaIdentity { .. }
            | PgError::CopyFormat { .. }
            | PgError::CopyCancelled { .. }
            | PgError::SlotMissing { .. }
            | PgError::SlotInvalidated { .. }
            | PgError::PublicationMissing { .. }
            | PgError::TableChanged { .. }
            | PgError::UnexpectedTable { .. }
            | PgError::StreamFormat { .. } => false,
        }
    }
}

/// SQLSTATEs that pass (besides class 08, connection exceptions): a terminated or shut-down session,
/// a server starting up, and the transaction conflicts a second attempt resolves.
const TRANSIENT: [SqlState; 8] = [
    SqlState::ADMIN_SHUTDOWN,
    SqlState::CRASH_SHUTDOWN,
    SqlState::CANNOT_CONNECT_NOW,
    SqlState::T_R_SERIALIZATION_FAILURE,
    SqlState::T_R_DEADLOCK_DETECTED,
    SqlState::LOCK_NOT_AVAILABLE,
    SqlState::TOO_MANY_CONNECTIONS,
    SqlState::IDLE_SESSION_TIMEOUT,
];

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.cause(), self.hint())
    }
}

/// No `source()`: [`PgError::cause`] already carries the server's message, and a chain would print it twice.
impl std::error::Error for PgError {}
