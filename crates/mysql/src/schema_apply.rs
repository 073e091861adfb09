//! Applying planned DDL to the target, one statement at a time, stopping at the first failure.
//!
//! DDL commits implicitly in MySQL and MariaDB, so there is no transaction to roll back: a failed
//! apply leaves the statements before it in place, and the error names the one that failed so the
//! user can fix it and re-run into a fresh database.

use std::fmt;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use passerelle_ddl::ident::quote;
use passerelle_ddl::{FkIndex, Server};

use crate::bookkeeping::TargetObject;
use crate::MysqlError;

/// A statement the target refused.
#[derive(Debug)]
pub struct ApplyError {
    /// The statement's first line, e.g. ``CREATE TABLE `demo`.`flights` (``.
    pub statement: String,
    pub error: MysqlError,
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (while running {})", self.error.cause(), self.statement)?;
        f.write_str("; the statements before it were applied: fix the cause, then apply into an empty database")
    }
}

impl std::error::Error for ApplyError {}

/// The target server and its version: what the DDL is written for.
pub async fn server_version(conn: &mut Conn, endpoint: &impl fmt::Display) -> Result<Server, MysqlError> {
    let text: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|error| MysqlError::query(endpoint, "reading the server version", error))?;
    let text = text.unwrap_or_default();
    Server::from_version(&text).ok_or(MysqlError::Query {
        endpoint: endpoint.to_string(),
        context: "reading the server version",
        code: None,
        message: format!("unrecognised version {text:?}"),
    })
}

/// Whether the server refuses tables without a primary key (MySQL's `sql_require_primary_key`, as
/// this session has it; MariaDB has no such setting).
pub async fn requires_primary_key(conn: &mut Conn, endpoint: &impl fmt::Display) -> Result<bool, MysqlError> {
    let setting: Option<(String, String)> = conn
        .query_first("SHOW VARIABLES LIKE 'sql_require_primary_key'")
        .await
        .map_err(|error| MysqlError::query(endpoint, "reading sql_require_primary_key", error))?;
    Ok(setting.is_some_and(|(_, value)| value.eq_ignore_ascii_case("on") || value == "1"))
}

/// Tables, views and sequences in `databases`.
pub async fn objects(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    databases: &[String],
) -> Result<Vec<TargetObject>, MysqlError> {
    let mut found = Vec::new();
    for database in databases {
        let rows: Vec<(String, String)> = conn
            .exec(
                "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name",
                (database,),
            )
            .await
            .map_err(|error| MysqlError::query(endpoint, "listing the target's tables", error))?;
        found.extend(rows.into_iter().map(|(name, kind)| {
            TargetObject {
                database: database.clone(),
                name,
                kind: match kind.as_str() {
                    "VIEW" => "VIEW",
                    "SEQUENCE" => "SEQUENCE",
                    _ => "TABLE",
                }
                .to_string(),
            }
        }));
    }
    Ok(found)
}

/// Runs `statements` in order, and returns the objects in `databases` that they created.
pub async fn apply_creating(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    databases: &[String],
    statements: &[String],
) -> Result<Vec<TargetObject>, ApplyError> {
    let listing = |error| ApplyError { statement: "listing the target's tables".to_string(), error };
    let before = objects(conn, endpoint, databases).await.map_err(listing)?;
    apply(conn, endpoint, statements).await?;
    let after = objects(conn, endpoint, databases).await.map_err(listing)?;
    Ok(after.into_iter().filter(|object| !before.contains(object)).collect())
}

/// Runs `statements` in order.
pub async fn apply(conn: &mut Conn, endpoint: &impl fmt::Display, statements: &[String]) -> Result<(), ApplyError> {
    for statement in statements {
        if let Err(error) = conn.query_drop(statement).await {
            return Err(ApplyError {
                statement: statement.lines().next().unwrap_or_default().trim_end_matches(" (").to_string(),
                error: MysqlError::query(endpoint, "applying DDL", error),
            });
        }
    }
    Ok(())
}

/// Builds each of `indexes` that its table does not have yet (by name), while the sinks go on
/// writing (InnoDB builds a secondary index online); returns how many it built.
pub async fn build_fk_indexes(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    indexes: &[FkIndex],
) -> Result<usize, MysqlError> {
    let context = |error| MysqlError::query(endpoint, "building an index a foreign key needs", error);
    let mut built = 0;
    for index in indexes {
        let exists: Option<u8> = conn
            .exec_first(
                "SELECT 1 FROM information_schema.statistics WHERE table_schema = ? AND table_name = ? \
                 AND index_name = ? LIMIT 1",
                (&index.database, &index.table, &index.name),
            )
            .await
            .map_err(context)?;
        if exists.is_none() {
            conn.query_drop(index.sql()).await.map_err(context)?;
            built += 1;
        }
    }
    Ok(built)
}

/// Whether `database`.`table` has `column`: an online run's `ADD COLUMN` runs only where it does not.
pub async fn has_column(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    database: &str,
    table: &str,
    column: &str,
) -> Result<bool, MysqlError> {
    let found: Option<u8> = conn
        .exec_first(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?",
            (database, table, column),
        )
        .await
        .map_err(|error| MysqlError::query(endpoint, "looking for a column", error))?;
    Ok(found.is_some())
}

/// Has the server recompute the index statistics of `tables` (`database`, `name`) after a bulk
/// load, so that the application's first queries get good plans; MySQL samples them lazily.
pub async fn analyze(conn: &mut Conn, endpoint: &impl fmt::Display, tables: &[(&str, &str)]) -> Result<(), MysqlError> {
    if tables.is_empty() {
        return Ok(());
    }
    let names: Vec<String> =
        tables.iter().map(|(database, name)| format!("{}.{}", quote(database), quote(name))).collect();
    // One statement: its result set holds a status row per table, which nothing needs.
    conn.query_drop(format!("ANALYZE TABLE {}", names.join(", ")))
        .await
        .map_err(|error| MysqlError::query(endpoint, "analyzing the loaded tables", error))
}

/// Drops `objects`, in any order: foreign keys are not checked while dropping.
pub async fn drop_objects(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    objects: &[TargetObject],
) -> Result<(), MysqlError> {
    let context = |error| MysqlError::query(endpoint, "dropping what the migration created", error);
    conn.query_drop("SET SESSION foreign_key_checks = 0").await.map_err(context)?;
    for object in objects {
        // Only a keyword DROP takes reaches the statement, whatever the bookkeeping row holds.
        let kind = if ["VIEW", "SEQUENCE"].contains(&object.kind.as_str()) { object.kind.as_str() } else { "TABLE" };
        conn.query_drop(format!("DROP {kind} IF EXISTS {}.{}", quote(&object.database), quote(&object.name)))
            .await
            .map_err(context)?;
    }
    conn.query_drop("SET SESSION foreign_key_checks = 1").await.map_err(context)
}
