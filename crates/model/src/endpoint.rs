//! Where the three systems are: parsed from the URLs the user gives, with the password kept in a
//! [`Secret`] so that no `Debug`, `Display` or error message can print it.

use std::fmt;

use url::Url;

/// A password. `Debug` and `Display` redact it; only [`Secret::expose`] gives the text, to the driver.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: String) -> Secret {
        Secret(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A URL that could not be used. The message never repeats the URL: it may hold a password.
#[derive(Debug, thiserror::Error)]
#[error("invalid {what} URL: {reason}; expected {expected}")]
pub struct EndpointError {
    what: &'static str,
    reason: String,
    expected: &'static str,
}

/// A database server: PostgreSQL (the source) or MySQL/MariaDB (the target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbEndpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    /// The database named in the URL's path, if any.
    pub database: Option<String>,
}

const PG_EXPECTED: &str = "postgres://user:password@host:5432/database";
const MYSQL_EXPECTED: &str = "mysql://user:password@host:3306/database";

impl DbEndpoint {
    /// Parses `postgres://` or `postgresql://` URLs.
    pub fn parse_postgres(text: &str) -> Result<DbEndpoint, EndpointError> {
        DbEndpoint::parse(text, "source", &["postgres", "postgresql"], 5432, "postgres", PG_EXPECTED)
    }

    /// Parses `mysql://` or `mariadb://` URLs.
    pub fn parse_mysql(text: &str) -> Result<DbEndpoint, EndpointError> {
        DbEndpoint::parse(text, "target", &["mysql", "mariadb"], 3306, "root", MYSQL_EXPECTED)
    }

    fn parse(
        text: &str,
        what: &'static str,
        schemes: &[&str],
        default_port: u16,
        default_user: &str,
        expected: &'static str,
    ) -> Result<DbEndpoint, EndpointError> {
        let error = |reason: String| EndpointError { what, reason, expected };
        let url = Url::parse(text).map_err(|e| error(e.to_string()))?;
        if !schemes.contains(&url.scheme()) {
            return Err(error(format!("scheme {:?} is not one of {}", url.scheme(), schemes.join(", "))));
        }
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.trim_start_matches('[').trim_end_matches(']').to_string(),
            _ => return Err(error("no host".to_string())),
        };
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let user = match url.username() {
            "" => default_user.to_string(),
            user => decode(user),
        };
        let password = url.password().map(|p| Secret::new(decode(p)));
        let database = Some(decode(url.path().trim_start_matches('/'))).filter(|d| !d.is_empty());
        Ok(DbEndpoint { host, port: url.port().unwrap_or(default_port), user, password, database })
    }
}

impl fmt::Display for DbEndpoint {
    /// `user@host:port/database`: enough to tell which server is meant, never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)?;
        if let Some(database) = &self.database {
            write!(f, "/{database}")?;
        }
        Ok(())
    }
}

/// The Kafka cluster: a comma-separated bootstrap list, `host:port[,host:port...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaEndpoint {
    pub bootstrap_servers: String,
}

impl KafkaEndpoint {
    pub fn parse(text: &str) -> Result<KafkaEndpoint, EndpointError> {
        let error = |reason: String| EndpointError { what: "kafka", reason, expected: "host:9092[,host:9092...]" };
        let list = text.strip_prefix("kafka://").unwrap_or(text);
        for broker in list.split(',') {
            let Some((host, port)) = broker.trim().rsplit_once(':') else {
                return Err(error(format!("broker {broker:?} has no port")));
            };
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(error(format!("broker {broker:?} is not host:port")));
            }
        }
        Ok(KafkaEndpoint { bootstrap_servers: list.to_string() })
    }
}

impl fmt::Display for KafkaEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.bootstrap_servers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_url_keeps_the_password_out_of_debug_and_display() {
        let endpoint = DbEndpoint::parse_postgres("postgres://app:s%40cret@db.example:6543/demo").unwrap();
        assert_eq!(endpoint.user, "app");
        assert_eq!(endpoint.password.as_ref().unwrap().expose(), "s@cret");
        assert_eq!(endpoint.port, 6543);
        assert_eq!(endpoint.database.as_deref(), Some("demo"));
        assert_eq!(endpoint.to_string(), "app@db.example:6543/demo");
        assert!(!format!("{endpoint:?}").contains("s@cret"));
    }

    #[test]
    fn mysql_url_defaults() {
        let endpoint = DbEndpoint::parse_mysql("mysql://127.0.0.1").unwrap();
        assert_eq!((endpoint.user.as_str(), endpoint.port, endpoint.database), ("root", 3306, None));
    }

    #[test]
    fn bad_urls_are_rejected_without_echoing_them() {
        let error = DbEndpoint::parse_postgres("mysql://u:hunter2@h/db").unwrap_err().to_string();
        assert!(error.contains("scheme \"mysql\""), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let error = DbEndpoint::parse_mysql("not a url hunter2").unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn kafka_bootstrap_list() {
        assert_eq!(KafkaEndpoint::parse("kafka://a:1,b:2").unwrap().bootstrap_servers, "a:1,b:2");
        assert!(KafkaEndpoint::parse("a").is_err());
    }
}
