//! Where the three systems are: parsed from the URLs the user gives, with the password kept in a
//! [`Secret`] so that no `Debug`, `Display` or error message can print it.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

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
    pub tls: Tls,
    /// libpq's `hostaddr`: the address to connect to, `host` then only naming the server for TLS.
    pub host_addr: Option<IpAddr>,
}

/// How far a connection insists on TLS, in libpq's words (`sslmode`); the default is libpq's, `prefer`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    /// Like `prefer` here: the drivers try TLS first, which only ever encrypts more.
    Allow,
    #[default]
    Prefer,
    /// Encrypted, certificate unchecked; checked like `verify-ca` when a root certificate is given (libpq).
    Require,
    /// Encrypted, and the certificate signed by the root certificate.
    VerifyCa,
    /// As `verify-ca`, and the certificate names the host of the URL.
    VerifyFull,
}

impl TlsMode {
    const NAMES: [(&'static str, TlsMode); 6] = [
        ("disable", TlsMode::Disable),
        ("allow", TlsMode::Allow),
        ("prefer", TlsMode::Prefer),
        ("require", TlsMode::Require),
        ("verify-ca", TlsMode::VerifyCa),
        ("verify-full", TlsMode::VerifyFull),
    ];

    /// MySQL's `ssl-mode` names; `allow` has none.
    const MYSQL_NAMES: [(&'static str, TlsMode); 5] = [
        ("DISABLED", TlsMode::Disable),
        ("PREFERRED", TlsMode::Prefer),
        ("REQUIRED", TlsMode::Require),
        ("VERIFY_CA", TlsMode::VerifyCa),
        ("VERIFY_IDENTITY", TlsMode::VerifyFull),
    ];

    /// libpq's name.
    pub fn name(self) -> &'static str {
        TlsMode::NAMES.iter().find(|(_, mode)| *mode == self).map_or("prefer", |(name, _)| name)
    }

    /// MySQL's name.
    pub fn mysql_name(self) -> &'static str {
        TlsMode::MYSQL_NAMES.iter().find(|(_, mode)| *mode == self).map_or("PREFERRED", |(name, _)| name)
    }

    fn parse(
        parameter: &str,
        value: &str,
        names: &[(&'static str, TlsMode)],
        error: impl Fn(String) -> EndpointError,
    ) -> Result<TlsMode, EndpointError> {
        names.iter().find(|(name, _)| name.eq_ignore_ascii_case(value)).map(|(_, mode)| *mode).ok_or_else(|| {
            let names: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
            error(format!("{parameter} {value:?} is not one of {}", names.join(", ")))
        })
    }
}

/// TLS settings from the URL: PEM files as users have them, read by the driver when it connects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    pub mode: TlsMode,
    /// The CA certificates that may sign the server's (`sslrootcert`).
    pub root_cert: Option<PathBuf>,
    /// A client certificate and its key (`sslcert`, `sslkey`).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// The passphrase of an encrypted `sslkey` (libpq's `sslpassword`); never asked on a terminal.
    pub key_password: Option<Secret>,
}

impl Tls {
    /// The server's certificate must chain to a trusted CA: `verify-*`, or `require` with a root certificate.
    pub fn verifies_certificate(&self) -> bool {
        match self.mode {
            TlsMode::VerifyCa | TlsMode::VerifyFull => true,
            TlsMode::Require => self.root_cert.is_some(),
            TlsMode::Disable | TlsMode::Allow | TlsMode::Prefer => false,
        }
    }

    /// How `check` describes a session, given the TLS version the server reports for it (`None`: plain).
    pub fn describe_session(&self, tls_version: Option<&str>) -> String {
        match tls_version {
            None => "unencrypted".to_string(),
            Some(version) if self.mode == TlsMode::VerifyFull => {
                format!("encrypted ({version}), certificate and host name verified")
            }
            Some(version) if self.verifies_certificate() => format!("encrypted ({version}), certificate verified"),
            Some(version) => format!("encrypted ({version}), certificate not verified"),
        }
    }

    /// The connection fails rather than go unencrypted.
    pub fn required(&self) -> bool {
        matches!(self.mode, TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull)
    }
}

/// The query parameters a target URL may carry (MySQL clients' names).
const MYSQL_PARAMETERS: [&str; 4] = ["ssl-mode", "ssl-ca", "ssl-cert", "ssl-key"];

/// The query parameters a source URL may carry (libpq's names).
const PG_PARAMETERS: [&str; 6] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "hostaddr"];

const PG_EXPECTED: &str = "postgres://user:password@host:5432/database";
const MYSQL_EXPECTED: &str = "mysql://user:password@host:3306/database";

impl DbEndpoint {
    /// Parses `postgres://` or `postgresql://` URLs.
    pub fn parse_postgres(text: &str) -> Result<DbEndpoint, EndpointError> {
        let (mut endpoint, url) =
            DbEndpoint::parse(text, "source", &["postgres", "postgresql"], 5432, "postgres", PG_EXPECTED)?;
        let error = |reason: String| EndpointError { what: "source", reason, expected: PG_EXPECTED };
        for (name, value) in url.query_pairs() {
            let path = || Some(PathBuf::from(value.as_ref()));
            match name.as_ref() {
                "sslmode" => endpoint.tls.mode = TlsMode::parse("sslmode", &value, &TlsMode::NAMES, error)?,
                "sslrootcert" => endpoint.tls.root_cert = path(),
                "sslcert" => endpoint.tls.client_cert = path(),
                "sslkey" => endpoint.tls.client_key = path(),
                "sslpassword" => endpoint.tls.key_password = Some(Secret::new(value.into_owned())),
                "hostaddr" => {
                    let address =
                        value.parse().map_err(|_| error(format!("hostaddr {value:?} is not an IP address")))?;
                    endpoint.host_addr = Some(address);
                }
                other => return Err(unknown_parameter(error, other, &PG_PARAMETERS)),
            }
        }
        Ok(endpoint)
    }

    /// Parses `mysql://` or `mariadb://` URLs.
    pub fn parse_mysql(text: &str) -> Result<DbEndpoint, EndpointError> {
        let (mut endpoint, url) =
            DbEndpoint::parse(text, "target", &["mysql", "mariadb"], 3306, "root", MYSQL_EXPECTED)?;
        let error = |reason: String| EndpointError { what: "target", reason, expected: MYSQL_EXPECTED };
        for (name, value) in url.query_pairs() {
            let path = || Some(PathBuf::from(value.as_ref()));
            match name.as_ref() {
                "ssl-mode" => endpoint.tls.mode = TlsMode::parse("ssl-mode", &value, &TlsMode::MYSQL_NAMES, error)?,
                "ssl-ca" => endpoint.tls.root_cert = path(),
                "ssl-cert" => endpoint.tls.client_cert = path(),
                "ssl-key" => endpoint.tls.client_key = path(),
                other => return Err(unknown_parameter(error, other, &MYSQL_PARAMETERS)),
            }
        }
        Ok(endpoint)
    }

    fn parse(
        text: &str,
        what: &'static str,
        schemes: &[&str],
        default_port: u16,
        default_user: &str,
        expected: &'static str,
    ) -> Result<(DbEndpoint, Url), EndpointError> {
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
        let port = url.port().unwrap_or(default_port);
        Ok((DbEndpoint { host, port, user, password, database, tls: Tls::default(), host_addr: None }, url))
    }
}

/// Whether `host` is this machine's loopback: `localhost`, or an address in 127.0.0.0/8 or `::1`.
/// A name is not resolved (no IO here): any other name counts as another machine.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl DbEndpoint {
    /// The URL's password would cross the network unencrypted: the session is not encrypted
    /// (`disable`, or `prefer`/`allow` that fell back to plain) and the server is not this machine
    /// (`hostaddr`, when given, is where the connection goes).
    pub fn password_in_clear(&self, encrypted: bool) -> bool {
        let loopback = match self.host_addr {
            Some(address) => address.is_loopback(),
            None => is_loopback(&self.host),
        };
        self.password.is_some() && !encrypted && !loopback
    }
}

/// A database URL as it may be shown (`passerelle config`): its password and secret parameters
/// (`sslpassword`) replaced by `***`. A text that does not parse as a URL is not shown at all, since
/// its password could be anywhere in it.
pub fn masked_url(text: &str) -> String {
    let hidden = || "(not a URL: not shown)".to_string();
    let Ok(mut url) = Url::parse(text) else { return hidden() };
    // `user:password@host` without a scheme parses as the scheme `user`: nothing to mask in it.
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return hidden();
    }
    if url.password().is_some() {
        // Only a URL that cannot have a password refuses one, and this one has one.
        let _ = url.set_password(Some("***"));
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(name, value)| {
            let value = if is_secret_property(&name) { "***".to_string() } else { value.into_owned() };
            (name.into_owned(), value)
        })
        .collect();
    if !pairs.is_empty() {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Whether a connection property (a URL parameter, a librdkafka property) holds a secret by its
/// name: `sasl.password`, `ssl.key.password`, `sasl.oauthbearer.client.secret`, `sasl.jaas.config`,
/// `ssl.key.pem`, `sslpassword`, ...
pub fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "jaas", "token", ".pem", "credential"].iter().any(|word| key.contains(word))
}

/// A URL parameter Passerelle does not know: refused, lest the user believe it took effect.
fn unknown_parameter(error: impl Fn(String) -> EndpointError, name: &str, known: &[&str]) -> EndpointError {
    error(format!("unknown parameter {name:?}: the known ones are {}", known.join(", ")))
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

/// The Kafka cluster: a comma-separated bootstrap list, `host:port[,host:port...]`, and the client
/// properties the user gives (`security.protocol`, `sasl.*`, `ssl.*`, ...), every value a [`Secret`]
/// since any may be one (`sasl.password`, `ssl.key.password`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaEndpoint {
    pub bootstrap_servers: String,
    pub properties: Vec<(String, Secret)>,
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
        Ok(KafkaEndpoint { bootstrap_servers: list.to_string(), properties: Vec::new() })
    }

    /// The value of a property, if set; the first of `keys` that is (librdkafka's aliases).
    pub fn property(&self, keys: &[&str]) -> Option<&Secret> {
        keys.iter().find_map(|key| self.properties.iter().find(|(known, _)| known == key).map(|(_, value)| value))
    }

    /// The brokers' host names or addresses.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.bootstrap_servers.split(',').filter_map(|broker| broker.trim().rsplit_once(':').map(|(host, _)| host))
    }

    /// Sets a librdkafka property, replacing an earlier value of the same key.
    pub fn set(&mut self, key: &str, value: Secret) {
        self.properties.retain(|(known, _)| known != key);
        self.properties.push((key.to_string(), value));
    }

    /// Sets the properties of a Java-style properties file (`key=value` lines, `#` comments), as
    /// Kafka's tools take with `--command-config`.
    pub fn set_from_properties(&mut self, text: &str) -> Result<(), EndpointError> {
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
                return Err(EndpointError {
                    what: "kafka",
                    reason: format!("line {} of the properties is not key=value", number + 1),
                    expected: "security.protocol=SASL_SSL",
                });
            };
            self.set(key.trim(), Secret::new(value.trim().to_string()));
        }
        Ok(())
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
    fn a_masked_url_shows_no_password_nor_secret_parameter() {
        let masked = masked_url("postgres://app:s%40cret@db.example:6543/demo?sslmode=verify-full&sslpassword=k3y");
        assert!(!masked.contains("s%40cret") && !masked.contains("k3y"), "{masked}");
        assert!(masked.contains("app:") && masked.contains("sslmode=verify-full"), "{masked}");
        assert_eq!(masked_url("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(masked_url("app:secret@nowhere"), "(not a URL: not shown)");
    }

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
    fn postgres_tls_parameters() {
        let endpoint = DbEndpoint::parse_postgres("postgres://u:p@h/db").unwrap();
        assert_eq!(endpoint.tls, Tls::default());
        assert_eq!(endpoint.tls.mode, TlsMode::Prefer);
        let url = "postgres://u:p@h/db?sslmode=verify-full&sslrootcert=/ca.pem&sslcert=/c.pem&sslkey=/k.pem";
        let tls = DbEndpoint::parse_postgres(url).unwrap().tls;
        assert_eq!(tls.mode, TlsMode::VerifyFull);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/ca.pem")));
        assert!(tls.verifies_certificate() && tls.required());
        assert_eq!((tls.client_cert.unwrap(), tls.client_key.unwrap()), ("/c.pem".into(), "/k.pem".into()));
        let endpoint = DbEndpoint::parse_postgres("postgres://u@h/db?sslkey=/k.pem&sslpassword=Key%20Pass").unwrap();
        assert_eq!(endpoint.tls.key_password.as_ref().map(Secret::expose), Some("Key Pass"));
        assert!(!format!("{endpoint:?}").contains("Key Pass"));
        let require = DbEndpoint::parse_postgres("postgres://h/db?sslmode=require").unwrap().tls;
        assert!(require.required() && !require.verifies_certificate());
    }

    #[test]
    fn unknown_url_parameters_are_refused_by_name() {
        let error = DbEndpoint::parse_postgres("postgres://u:hunter2@h/db?ssl=true").unwrap_err().to_string();
        assert!(error.contains("unknown parameter \"ssl\": the known ones are sslmode, sslrootcert"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let error = DbEndpoint::parse_postgres("postgres://h/db?sslmode=on").unwrap_err().to_string();
        assert!(error.contains("sslmode \"on\" is not one of disable, allow, prefer"), "{error}");
        let error = DbEndpoint::parse_mysql("mysql://h/db?sslmode=require").unwrap_err().to_string();
        assert!(error.contains("unknown parameter \"sslmode\": the known ones are ssl-mode, ssl-ca"), "{error}");
        let error = DbEndpoint::parse_mysql("mysql://h/db?ssl-mode=verify-full").unwrap_err().to_string();
        assert!(error.contains("is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"), "{error}");
        let tls = DbEndpoint::parse_mysql("mysql://h/db?ssl-mode=verify_identity&ssl-ca=/ca.pem").unwrap().tls;
        assert_eq!((tls.mode, tls.root_cert.unwrap()), (TlsMode::VerifyFull, PathBuf::from("/ca.pem")));
    }

    #[test]
    fn a_password_travels_in_clear_only_unencrypted_to_another_machine() {
        let remote = DbEndpoint::parse_postgres("postgres://u:p@db.example.com/db?sslmode=disable").unwrap();
        assert!(remote.password_in_clear(false));
        assert!(!remote.password_in_clear(true), "encrypted");
        let no_password = DbEndpoint::parse_postgres("postgres://u@db.example.com/db").unwrap();
        assert!(!no_password.password_in_clear(false));
        for url in ["postgres://u:p@localhost/db", "postgres://u:p@127.0.0.2/db", "postgres://u:p@[::1]/db"] {
            assert!(!DbEndpoint::parse_postgres(url).unwrap().password_in_clear(false), "{url}");
        }
        let named_loopback = DbEndpoint::parse_postgres("postgres://u:p@db.example.com/db?hostaddr=127.0.0.1").unwrap();
        assert!(!named_loopback.password_in_clear(false), "hostaddr is where the password goes");
        let remote_mysql = DbEndpoint::parse_mysql("mysql://u:p@10.1.2.3/db?ssl-mode=PREFERRED").unwrap();
        assert!(remote_mysql.password_in_clear(false));
        assert!(is_loopback("LOCALHOST") && is_loopback("a.localhost") && !is_loopback("localhost.example.com"));
    }

    #[test]
    fn kafka_bootstrap_list() {
        assert_eq!(KafkaEndpoint::parse("kafka://a:1,b:2").unwrap().bootstrap_servers, "a:1,b:2");
        assert!(KafkaEndpoint::parse("a").is_err());
        let mut endpoint = KafkaEndpoint::parse("a:1").unwrap();
        endpoint.set_from_properties("# hosted\nsecurity.protocol=SASL_SSL\nsasl.password = hunter2\n").unwrap();
        endpoint.set("security.protocol", Secret::new("SSL".to_string()));
        let keys: Vec<&str> = endpoint.properties.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["sasl.password", "security.protocol"]);
        assert_eq!(endpoint.properties[0].1.expose(), "hunter2");
        assert!(!format!("{endpoint:?}").contains("hunter2"));
        assert!(endpoint.set_from_properties("no separator here").unwrap_err().to_string().contains("line 1"));
        endpoint.set("sasl.mechanisms", Secret::new("PLAIN".to_string()));
        let mechanism = endpoint.property(&["sasl.mechanism", "sasl.mechanisms"]).map(Secret::expose);
        assert_eq!(mechanism, Some("PLAIN"));
        let endpoint = KafkaEndpoint::parse("a:1, [::1]:2").unwrap();
        assert_eq!(endpoint.hosts().collect::<Vec<_>>(), ["a", "[::1]"]);
    }
}
