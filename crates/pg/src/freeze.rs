//! Making the source database read-only for a cutover, and read-write again.
//!
//! `ALTER DATABASE ... SET default_transaction_read_only = on` applies to sessions that start
//! afterwards; a session already open keeps the default it started with, so every other client
//! session of that database is then ended (its open transaction rolls back). Only that database's
//! sessions: another database of the cluster is never touched. Passerelle's own sessions are spared
//! (`application_name` `passerelle`, and its walsenders, which are not client backends) and start
//! with `default_transaction_read_only = off` (`connect`), so the stream, the verification and the
//! publication's removal go on. A client may still ask for a read-write transaction explicitly
//! (`BEGIN READ WRITE`): the freeze stops an application, it does not lock out an administrator.

use std::fmt;

use tokio_postgres::Client;

use crate::slot::quote_ident;
use crate::PgError;

/// How long `pg_terminate_backend` waits for each ended session to be gone, in milliseconds.
const TERMINATE_WAIT_MS: i64 = 5_000;

/// What a freeze did.
#[derive(Clone, Debug)]
pub struct Frozen {
    /// The frozen database.
    pub database: String,
    /// The client sessions it ended.
    pub n_ended: u64,
}

/// Makes the client's database read-only for new sessions, then ends its other client sessions and
/// waits until they are gone, so that nothing commits on it afterwards.
pub async fn freeze(client: &Client, endpoint: &impl fmt::Display) -> Result<Frozen, PgError> {
    let database: String = client
        .query_one("select current_database()::text", &[])
        .await
        .map_err(|error| PgError::query(endpoint, "reading the database's name", error))?
        .get(0);
    let quoted = quote_ident(&database);
    client
        .batch_execute(&format!("ALTER DATABASE {quoted} SET default_transaction_read_only = on"))
        .await
        .map_err(|error| PgError::query(endpoint, "making the source database read-only", error))?;
    let ended = client
        .query(
            "select pg_terminate_backend(pid, $1) from pg_stat_activity
             where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
               and application_name not like 'passerelle%'",
            &[&TERMINATE_WAIT_MS],
        )
        .await
        .map_err(|error| PgError::query(endpoint, "ending the source database's sessions", error))?;
    Ok(Frozen { database, n_ended: ended.len() as u64 })
}

/// Makes `database` read-write again for new sessions (sessions opened while it was frozen stay
/// read-only by default until they reconnect).
pub async fn thaw(client: &Client, endpoint: &impl fmt::Display, database: &str) -> Result<(), PgError> {
    let quoted = quote_ident(database);
    client
        .batch_execute(&format!("ALTER DATABASE {quoted} RESET default_transaction_read_only"))
        .await
        .map_err(|error| PgError::query(endpoint, "making the source database read-write again", error))
}
