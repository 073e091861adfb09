//! Who holds the lock that a statement of Passerelle's waited for in vain ([`crate::LOCK_TIMEOUT`]).

use passerelle_model::endpoint::DbEndpoint;
use tokio_postgres::error::SqlState;

use crate::PgError;

/// Turns a lock timeout into [`PgError::LockTimeout`], naming the sessions that hold a lock on a
/// table of `schemas` strong enough to have stopped Passerelle (any but the row-level ones, which no
/// read or publication waits for); any other error comes back as it was.
pub async fn explain(error: PgError, endpoint: &DbEndpoint, schemas: &[String]) -> PgError {
    let context = match &error {
        PgError::Query { context, source, .. } if source.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => *context,
        _ => return error,
    };
    let holders = match holders(endpoint, schemas).await {
        Ok(holders) if holders.is_empty() => "the lock was released meanwhile".to_string(),
        Ok(holders) => holders.join("; "),
        Err(_) => "its holder could not be read".to_string(),
    };
    PgError::LockTimeout { endpoint: endpoint.to_string(), context, holders }
}

/// `public.items: AccessExclusiveLock held by pid 123 (psql, idle in transaction, transaction open 14 s)`.
async fn holders(endpoint: &DbEndpoint, schemas: &[String]) -> Result<Vec<String>, PgError> {
    let client = crate::connect(endpoint).await?;
    let rows = client
        .query(
            "select n.nspname || '.' || c.relname, l.mode, l.pid,
                    coalesce(nullif(a.application_name, ''), a.usename::text, 'unknown client'),
                    coalesce(a.state, 'state not visible'),
                    coalesce(extract(epoch from now() - a.xact_start)::bigint, 0)
             from pg_locks l
             join pg_class c on c.oid = l.relation
             join pg_namespace n on n.oid = c.relnamespace
             left join pg_stat_activity a on a.pid = l.pid
             where l.locktype = 'relation' and l.granted and l.pid <> pg_backend_pid()
               and l.mode not in ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock')
               and n.nspname = any($1)
             order by a.xact_start nulls last, l.pid
             limit 3",
            &[&schemas],
        )
        .await
        .map_err(|source| PgError::query(endpoint, "reading pg_locks", source))?;
    Ok(rows
        .iter()
        .map(|row| {
            format!(
                "{}: {} held by pid {} ({}, {}, transaction open {} s)",
                row.get::<_, String>(0),
                row.get::<_, String>(1),
                row.get::<_, i32>(2),
                row.get::<_, String>(3),
                row.get::<_, String>(4),
                row.get::<_, i64>(5)
            )
        })
        .collect())
}
