//! Target errors: a one-line cause that names the server (never its password), then what to do.

use std::fmt;

/// MySQL/MariaDB server error codes that Passerelle tells apart.
/// <https://mariadb.com/kb/en/mariadb-error-code-reference/>
const ER_ACCESS_DENIED: u16 = 1045;
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_LOCK_DEADLOCK: u16 = 1213;
const ER_CON_COUNT: u16 = 1040;

#[derive(Debug)]
pub enum MysqlError {
    Unreachable {
        endpoint: String,
        cause: String,
    },
    AuthFailed {
        endpoint: String,
        user: String,
    },
    Query {
        endpoint: String,
        context: &'static str,
        code: Option<u16>,
        message: String,
    },
    /// A value the target type cannot hold, found while converting a batch.
    Data {
        table: String,
        topic: String,
        partition: i32,
        cause: String,
    },
    /// The target refused or changed rows of a load.
    Rejected {
        table: String,
        topic: String,
        partition: i32,
        detail: String,
    },
}

impl MysqlError {
    pub(crate) fn from_connect(endpoint: String, user: &str, error: mysql_async::Error) -> MysqlError {
        match error {
            mysql_async::Error::Server(server) if server.code == ER_ACCESS_DENIED => {
                MysqlError::AuthFailed { endpoint, user: user.to_string() }
            }
            mysql_async::Error::Server(server) => {
                MysqlError::Query { endpoint, context: "connecting", code: Some(server.code), message: server.message }
            }
            other => MysqlError::Unreachable { endpoint, cause: innermost(&other) },
        }
    }

    pub(crate) fn query(endpoint: &impl fmt::Display, context: &'static str, error: mysql_async::Error) -> MysqlError {
        let (code, message) = match error {
            mysql_async::Error::Server(server) => (Some(server.code), server.message),
            other => (None, other.to_string()),
        };
        MysqlError::Query { endpoint: endpoint.to_string(), context, code, message }
    }

    /// What went wrong, in one line.
    pub fn cause(&self) -> String {
        match self {
            MysqlError::Unreachable { endpoint, cause } => format!("cannot reach the target at {endpoint}: {cause}"),
            MysqlError::AuthFailed { endpoint, user } => {
                format!("the target at {endpoint} rejected the password of user {user:?}")
            }
            MysqlError::Query { endpoint, context, code: Some(code), message } => {
                format!("the target at {endpoint}: {context}: error {code}: {message}")
            }
            MysqlError::Query { endpoint, context, code: None, message } => {
                format!("the target at {endpoint}: {context}: {message}")
            }
            MysqlError::Data { table, topic, partition, cause } => {
                format!("a value for {table} from {topic}/{partition} cannot be converted: {cause}")
            }
            MysqlError::Rejected { table, topic, partition, detail } => {
                format!("the target did not take every row for {table} from {topic}/{partition}: {detail}")
            }
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            MysqlError::Unreachable { .. } => "check the host and port in the target URL and that the server is up",
            MysqlError::AuthFailed { .. } => "check the user and password in the target URL",
            MysqlError::Query { .. } => "see the target server's error log for details",
            MysqlError::Data { .. } => {
                "see the mapping report for this column's type; change the source value or the mapping option"
            }
            MysqlError::Rejected { .. } => {
                "check that the target tables were created by this plan and are empty, then run again"
            }
        }
    }

    /// True when trying again may succeed: lost connections, deadlocks, lock wait timeouts, too
    /// many connections. Bad data and bad DDL are not retryable.
    pub fn retryable(&self) -> bool {
        match self {
            MysqlError::Unreachable { .. } => true,
            MysqlError::Query { code: Some(code), .. } => {
                [ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK, ER_CON_COUNT].contains(code)
            }
            MysqlError::Query { code: None, .. } => true,
            MysqlError::AuthFailed { .. } | MysqlError::Data { .. } | MysqlError::Rejected { .. } => false,
        }
    }
}

/// The driver wraps an IO error in two layers that repeat each other; the innermost one says it all.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

impl fmt::Display for MysqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.cause(), self.hint())
    }
}

impl std::error::Error for MysqlError {}
