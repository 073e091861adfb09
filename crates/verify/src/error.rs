//! Verification errors: a one-line cause naming the server and the table (never a row value or a
//! password), then what to do.

use std::fmt;

use passerelle_mysql::MysqlError;
use passerelle_pg::PgError;

#[derive(Debug)]
pub enum VerifyError {
    /// Connecting to the source.
    Source(PgError),
    /// Connecting to the target.
    Target(MysqlError),
    SourceQuery {
        endpoint: String,
        context: String,
        message: String,
    },
    TargetQuery {
        endpoint: String,
        context: String,
        message: String,
    },
    /// Canonical text is compared as UTF-8 bytes: another server encoding would not match the target.
    SourceEncoding {
        endpoint: String,
        encoding: String,
    },
    /// A checksum query answered something that is not a count and a sum.
    Unreadable {
        context: String,
    },
}

impl VerifyError {
    pub(crate) fn source_query(endpoint: &str, context: String, error: &tokio_postgres::Error) -> VerifyError {
        let message = match error.as_db_error() {
            Some(db_error) => db_error.message().to_string(),
            None => error.to_string(),
        };
        VerifyError::SourceQuery { endpoint: endpoint.to_string(), context, message }
    }

    pub(crate) fn target_query(endpoint: &str, context: String, error: mysql_async::Error) -> VerifyError {
        let message = match error {
            mysql_async::Error::Server(server) => format!("error {}: {}", server.code, server.message),
            other => other.to_string(),
        };
        VerifyError::TargetQuery { endpoint: endpoint.to_string(), context, message }
    }

    /// What went wrong, in one line.
    pub fn cause(&self) -> String {
        match self {
            VerifyError::Source(error) => error.cause(),
            VerifyError::Target(error) => error.cause(),
            VerifyError::SourceQuery { endpoint, context, message } => {
                format!("PostgreSQL at {endpoint}: {context}: {message}")
            }
            VerifyError::TargetQuery { endpoint, context, message } => {
                format!("the target at {endpoint}: {context}: {message}")
            }
            VerifyError::SourceEncoding { endpoint, encoding } => {
                format!("PostgreSQL at {endpoint} stores text as {encoding}, and verify compares UTF-8")
            }
            VerifyError::Unreadable { context } => format!("{context}: the server answered no count and sum"),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            VerifyError::Source(error) => error.hint(),
            VerifyError::Target(error) => error.hint(),
            VerifyError::SourceQuery { .. } => "see the PostgreSQL server log for details",
            VerifyError::TargetQuery { .. } => "see the target server's error log for details",
            VerifyError::SourceEncoding { .. } => "verify a UTF8 database (Passerelle migrates into utf8mb4)",
            VerifyError::Unreadable { .. } => "run verify again; if it persists, report it with the server versions",
        }
    }

    /// True when running verify again may succeed: a lost connection, a deadlock, a busy server.
    pub fn retryable(&self) -> bool {
        match self {
            VerifyError::Source(error) => error.retryable(),
            VerifyError::Target(error) => error.retryable(),
            VerifyError::SourceQuery { .. } | VerifyError::TargetQuery { .. } | VerifyError::Unreadable { .. } => true,
            VerifyError::SourceEncoding { .. } => false,
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.cause(), self.hint())
    }
}

impl std::error::Error for VerifyError {}
