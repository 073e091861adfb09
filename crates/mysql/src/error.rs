//! Target errors: a one-line cause that names the server (never its password), then what to do.

use std::fmt;

/// MySQL/MariaDB server error codes that Passerelle tells apart.
/// <https://mariadb.com/kb/en/mariadb-error-code-reference/>
const ER_ACCESS_DENIED: u16 = 1045;
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_LOCK_DEADLOCK: u16 = 1213;
/// A transaction read a table whose definition changed since it began (an online run's `ADD COLUMN`
/// by another connection): MySQL asks to retry it.
const ER_TABLE_DEF_CHANGED: u16 = 1412;
const ER_CON_COUNT: u16 = 1040;
/// The server is shutting down, or killed this connection (MariaDB's ER_CONNECTION_KILLED, MySQL's
/// idle-timeout disconnect); the client's own codes for a server gone away or lost mid-query.
const CONNECTION_ENDED: [u16; 6] = [1053, 1927, 4031, 2006, 2013, 2055];
/// Errors of a statement that wrote a value the column cannot hold (strict mode makes them errors):
/// NULL into NOT NULL, a duplicate key, out of range, truncated, wrong for the type, too long, no
/// default for a column left out, bad geometry or JSON, a failed CHECK (MySQL's and MariaDB's codes).
const REFUSED_VALUE: [u16; 15] =
    [1048, 1062, 1264, 1265, 1292, 1364, 1366, 1406, 1411, 1416, 1690, 3037, 3140, 3819, 4025];

#[derive(Debug)]
pub enum MysqlError {
    Unreachable {
        endpoint: String,
        cause: String,
    },
    AuthFailed {
        endpoint: String,
        user: String,
        /// Over TLS: else a user who must use TLS (`REQUIRE SSL`) is refused the same way.
        encrypted: bool,
    },
    Tls {
        endpoint: String,
        cause: String,
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
    /// A change event the target cannot apply as it stands.
    Unappliable {
        table: String,
        topic: String,
        partition: i32,
        offset: i64,
        cause: String,
    },
    /// The bookkeeping was written by a newer Passerelle, in a format this one does not know.
    NewerBookkeeping {
        endpoint: String,
        database: String,
        found: u32,
        known: u32,
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
    pub(crate) fn from_connect(endpoint: String, user: &str, encrypted: bool, error: mysql_async::Error) -> MysqlError {
        match error {
            mysql_async::Error::Server(server) if server.code == ER_ACCESS_DENIED => {
                MysqlError::AuthFailed { endpoint, user: user.to_string(), encrypted }
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

    /// A statement that wrote the changes at `offsets` failed: a value the target refused becomes a
    /// [`MysqlError::Data`] naming the column (the server's words, without the value they quote),
    /// anything else a [`MysqlError::Query`].
    pub(crate) fn writing(
        endpoint: &impl fmt::Display,
        context: &'static str,
        table: &str,
        (topic, partition): (&str, i32),
        offsets: &str,
        error: mysql_async::Error,
    ) -> MysqlError {
        match error {
            mysql_async::Error::Server(server) if REFUSED_VALUE.contains(&server.code) => {
                // Its row number counts rows of the statement; the offsets say it better.
                let message = without_value(&server.message);
                let message = message.split(" at row ").next().unwrap_or_default();
                MysqlError::Data {
                    table: table.to_string(),
                    topic: topic.to_string(),
                    partition,
                    cause: format!("{offsets}: the target refused it: error {}: {message}", server.code),
                }
            }
            other => MysqlError::query(endpoint, context, other),
        }
    }

    /// Whether this is a value the target refused, which a smaller statement can pin down.
    pub(crate) fn is_refused_value(&self) -> bool {
        matches!(self, MysqlError::Data { .. })
    }

    /// What went wrong, in one line.
    pub fn cause(&self) -> String {
        match self {
            MysqlError::Unreachable { endpoint, cause } => format!("cannot reach the target at {endpoint}: {cause}"),
            MysqlError::Tls { endpoint, cause } => format!("no TLS session with the target at {endpoint}: {cause}"),
            MysqlError::AuthFailed { endpoint, user, encrypted: true } => {
                format!("the target at {endpoint} rejected the password of user {user:?}")
            }
            MysqlError::AuthFailed { endpoint, user, encrypted: false } => {
                format!("the target at {endpoint} rejected the password of user {user:?} on an unencrypted connection")
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
            MysqlError::Unappliable { table, topic, partition, offset, cause } => {
                format!("the change at {topic}/{partition} offset {offset} cannot be applied to {table}: {cause}")
            }
            MysqlError::Rejected { table, topic, partition, detail } => {
                format!("the target did not take every row for {table} from {topic}/{partition}: {detail}")
            }
            MysqlError::NewerBookkeeping { endpoint, database, found, known } => format!(
                "the bookkeeping in database {database} on the target at {endpoint} is of format {found}, \
                 this Passerelle knows formats up to {known}"
            ),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            MysqlError::Unreachable { .. } => "check the host and port in the target URL and that the server is up",
            MysqlError::AuthFailed { encrypted: true, .. } => "check the user and password in the target URL",
            MysqlError::AuthFailed { encrypted: false, .. } => {
                "check the user and password in the target URL; a user that must use TLS (REQUIRE SSL) needs \
                 ssl-mode=REQUIRED or stronger"
            }
            MysqlError::Tls { .. } => {
                "check ssl-mode, and that ssl-ca is the CA that signed the server's certificate and the URL's \
                 host one that the certificate names"
            }
            MysqlError::Query { .. } => "see the target server's error log for details",
            MysqlError::Data { .. } => {
                "see the mapping report for this column's type; change the source value or the mapping option"
            }
            MysqlError::Unappliable { .. } => {
                "a table without a primary key needs REPLICA IDENTITY FULL on the source so that its updates and \
                 deletes carry the old row"
            }
            MysqlError::Rejected { .. } => {
                "check that the target tables were created by this plan and are empty, then run again"
            }
            MysqlError::NewerBookkeeping { .. } => {
                "run the newer Passerelle that wrote it, or give this one a bookkeeping of its own (--bookkeeping-db)"
            }
        }
    }

    /// True when trying again may succeed (Vector's `RetryLogic`): an unreachable or restarting
    /// server, a lost connection, deadlocks, lock wait timeouts, a table altered under a transaction,
    /// too many connections. Bad data and
    /// bad DDL are not retryable.
    pub fn retryable(&self) -> bool {
        match self {
            MysqlError::Unreachable { .. } => true,
            MysqlError::Query { code: Some(code), .. } => {
                [ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK, ER_TABLE_DEF_CHANGED, ER_CON_COUNT].contains(code)
                    || CONNECTION_ENDED.contains(code)
            }
            // No server code: the connection broke (IO), which a new connection may not.
            MysqlError::Query { code: None, .. } => true,
            MysqlError::AuthFailed { .. }
            | MysqlError::Tls { .. }
            | MysqlError::Data { .. }
            | MysqlError::Unappliable { .. }
            | MysqlError::Rejected { .. }
            | MysqlError::NewerBookkeeping { .. } => false,
        }
    }
}

impl MysqlError {
    /// True when the connection that failed cannot be used again: a new one is needed (a deadlock
    /// or a lock wait leaves the connection fine).
    pub fn connection_lost(&self) -> bool {
        match self {
            MysqlError::Unreachable { .. } | MysqlError::Query { code: None, .. } => true,
            MysqlError::Query { code: Some(code), .. } => CONNECTION_ENDED.contains(code),
            _ => false,
        }
    }
}

/// The server's message without the value it quotes: `Incorrect integer value: '…' for column`,
/// `Duplicate entry '…' for key`.
pub(crate) fn without_value(message: &str) -> String {
    let mut message = message.to_string();
    for marker in ["value: '", "entry '"] {
        let Some(start) = message.find(marker).map(|at| at + marker.len()) else { continue };
        if let Some(length) = message[start..].find("' for ") {
            message.replace_range(start..start + length, "…");
        }
    }
    message
}

/// The driver wraps an IO error in two layers that repeat each other; the innermost one says it all.
pub(crate) fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_leave_values_out() {
        assert_eq!(
            without_value("Incorrect datetime value: '2020-13-01 x' for column `d`.`t`.`c` at row 12"),
            "Incorrect datetime value: '…' for column `d`.`t`.`c` at row 12"
        );
        assert_eq!(without_value("Duplicate entry '5-a' for key 'PRIMARY'"), "Duplicate entry '…' for key 'PRIMARY'");
        assert_eq!(without_value("Data too long for column 'c' at row 1"), "Data too long for column 'c' at row 1");
    }
}
