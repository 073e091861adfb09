//! One connection to each side, under fixed session settings, that returns every value as text.
//!
//! Every statement verify runs selects text (or numbers read as text), so one row type serves both
//! engines, and rows are streamed to a callback so that no result is held whole.

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use mysql_async::prelude::Queryable;
use mysql_async::Value;
use passerelle_model::endpoint::DbEndpoint;
use tokio_postgres::types::ToSql;

use crate::sql::Engine;
use crate::VerifyError;

/// A row: each column's text, `None` for NULL.
pub type TextRow = Vec<Option<String>>;

pub type RowStream<'a> = BoxStream<'a, Result<TextRow, VerifyError>>;

/// Either side, for the code that does the same on both.
pub enum Side<'a> {
    Source(&'a Source),
    Target(&'a mut Target),
}

impl Side<'_> {
    pub fn engine(&self) -> Engine {
        match self {
            Side::Source(_) => Engine::Pg,
            Side::Target(_) => Engine::My,
        }
    }

    /// Runs `sql` with its text parameters and streams the rows; `context` names what for errors.
    pub async fn stream(
        &mut self,
        context: String,
        sql: &str,
        params: &[String],
    ) -> Result<RowStream<'_>, VerifyError> {
        match self {
            Side::Source(source) => source.stream(context, sql, params).await,
            Side::Target(target) => target.stream(context, sql, params).await,
        }
    }

    pub async fn rows(&mut self, context: String, sql: &str, params: &[String]) -> Result<Vec<TextRow>, VerifyError> {
        self.stream(context, sql, params).await?.try_collect().await
    }
}

/// The source, read-only, with the settings the snapshot used, which the canonical forms assume.
pub struct Source {
    client: tokio_postgres::Client,
    endpoint: String,
}

/// On top of `pg::session`'s settings, under which the snapshot rendered what was loaded.
const PG_SETTINGS: &str = "SET statement_timeout = 0; SET default_transaction_read_only = on";

impl Source {
    pub async fn connect(endpoint: &DbEndpoint) -> Result<Source, VerifyError> {
        let client = passerelle_pg::session::connect(endpoint).await.map_err(VerifyError::Source)?;
        let source = Source { client, endpoint: endpoint.to_string() };
        source
            .client
            .batch_execute(PG_SETTINGS)
            .await
            .map_err(|error| source.error("setting up the session", &error))?;
        Ok(source)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn error(&self, context: impl Into<String>, error: &tokio_postgres::Error) -> VerifyError {
        VerifyError::source_query(&self.endpoint, context.into(), error)
    }

    pub async fn rows(&self, context: &str, sql: &str, params: &[String]) -> Result<Vec<TextRow>, VerifyError> {
        self.stream(context.to_string(), sql, params).await?.try_collect().await
    }

    /// Runs `sql` with text parameters `$1...`; rows arrive as the server sends them.
    async fn stream(&self, context: String, sql: &str, params: &[String]) -> Result<RowStream<'static>, VerifyError> {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self.client.query_raw(sql, params).await.map_err(|error| self.error(context.clone(), &error))?;
        let endpoint = self.endpoint.clone();
        Ok(Box::pin(rows.map(move |row| match row {
            Ok(row) => Ok((0..row.len()).map(|idx| row.get::<_, Option<String>>(idx)).collect()),
            Err(error) => Err(VerifyError::source_query(&endpoint, context.clone(), &error)),
        })))
    }
}

/// The target, with UTC and utf8mb4 so that DATETIME and text read back as they were written.
pub struct Target {
    conn: mysql_async::Conn,
    endpoint: String,
}

impl Target {
    pub async fn connect(endpoint: &DbEndpoint) -> Result<Target, VerifyError> {
        let conn = passerelle_mysql::connect(endpoint).await.map_err(VerifyError::Target)?;
        let mut target = Target { conn, endpoint: endpoint.to_string() };
        for settings in ["SET NAMES utf8mb4, time_zone = '+00:00'", "SET SESSION TRANSACTION READ ONLY"] {
            if let Err(error) = target.conn.query_drop(settings).await {
                return Err(VerifyError::target_query(&target.endpoint, "setting up the session".into(), error));
            }
        }
        Ok(target)
    }

    /// Runs `sql` with text parameters `?`; rows arrive as the server sends them.
    async fn stream(&mut self, context: String, sql: &str, params: &[String]) -> Result<RowStream<'_>, VerifyError> {
        let endpoint = self.endpoint.clone();
        let params: Vec<Value> = params.iter().map(|p| Value::from(p.as_str())).collect();
        let rows = self
            .conn
            .exec_stream::<mysql_async::Row, _, _>(sql, params)
            .await
            .map_err(|error| VerifyError::target_query(&endpoint, context.clone(), error))?;
        Ok(Box::pin(rows.map(move |row| match row {
            Ok(mut row) => Ok((0..row.len()).map(|idx| row.take::<Value, _>(idx).and_then(text)).collect()),
            Err(error) => Err(VerifyError::target_query(&endpoint, context.clone(), error)),
        })))
    }

    pub async fn rows(&mut self, context: &str, sql: &str, params: &[String]) -> Result<Vec<TextRow>, VerifyError> {
        self.stream(context.to_string(), sql, params).await?.try_collect().await
    }

    /// Says goodbye, so that the server does not log an aborted connection.
    pub async fn close(self) {
        let _ = self.conn.disconnect().await;
    }
}

/// The binary protocol sends numbers as numbers and strings as bytes: all become text.
fn text(value: Value) -> Option<String> {
    match value {
        Value::NULL => None,
        Value::Bytes(bytes) => {
            Some(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
        }
        Value::Int(n) => Some(n.to_string()),
        Value::UInt(n) => Some(n.to_string()),
        Value::Float(n) => Some(n.to_string()),
        Value::Double(n) => Some(n.to_string()),
        other => Some(other.as_sql(true)),
    }
}
