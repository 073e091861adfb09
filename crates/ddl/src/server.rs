//! The server the DDL is written for: MySQL or MariaDB, and which release. What a release has or
//! lacks is asked here by name (`has_md5`), so the plan never compares version numbers itself.
//!
//! The version comes from the target (`SELECT VERSION()`), or from `plan --target-version` when no
//! target is asked. A version given without its patch level (`mysql-8.4`) stands for the newest
//! release of that line, and one without its minor (`mysql-9`) for the newest of the major.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The target's SQL family. The two differ in sequences, collations, JSON and UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Mysql,
    Mariadb,
}

/// A target server: its family and version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    pub dialect: Dialect,
    pub major: u32,
    /// `None`: the newest release of the major version.
    pub minor: Option<u32>,
    /// `None`: the newest release of the minor version.
    pub patch: Option<u32>,
}

/// The oldest servers whose DDL Passerelle writes. MySQL 8.0.23 brought INVISIBLE columns, which
/// hold expression index keys and the key of a keyless table (and everything older that the DDL
/// uses: expression defaults 8.0.13, enforced CHECK constraints 8.0.16, `utf8mb4_0900_bin` 8.0.17);
/// MariaDB 10.6 is the oldest maintained release with CHECK constraints, SEQUENCEs and JSON functions.
const MYSQL_OLDEST: (u32, u32, u32) = (8, 0, 23);
const MARIADB_OLDEST: (u32, u32, u32) = (10, 6, 0);

/// The release of MySQL that removed `MD5()` and `SHA1()` (deprecated in 9.4, moved to the optional
/// `component_classic_hashing`). <https://dev.mysql.com/doc/refman/9.6/en/legacy-hashing-component.html>
const MYSQL_WITHOUT_MD5: (u32, u32, u32) = (9, 6, 0);

impl Server {
    /// The server that `SELECT VERSION()` describes: `9.7.4-2`, `8.0.36`, `10.11.19-MariaDB-0+deb12u1`.
    pub fn from_version(text: &str) -> Option<Server> {
        let dialect = if text.to_ascii_lowercase().contains("mariadb") { Dialect::Mariadb } else { Dialect::Mysql };
        let release = text.split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?;
        let mut numbers = release.split('.').map(str::parse::<u32>);
        let major = numbers.next()?.ok()?;
        let minor = numbers.next()?.ok()?;
        let patch = numbers.next().and_then(Result::ok).unwrap_or(0);
        Some(Server { dialect, major, minor: Some(minor), patch: Some(patch) })
    }

    /// Compares with a release; a missing minor or patch is the newest one.
    fn cmp_release(&self, (major, minor, patch): (u32, u32, u32)) -> Ordering {
        let newest = u32::MAX;
        (self.major, self.minor.unwrap_or(newest), self.patch.unwrap_or(newest)).cmp(&(major, minor, patch))
    }

    fn at_least(&self, release: (u32, u32, u32)) -> bool {
        self.cmp_release(release) != Ordering::Less
    }

    /// Whether Passerelle writes DDL for this server (see [`Server::oldest`]).
    pub fn supported(&self) -> bool {
        self.at_least(self.oldest())
    }

    fn oldest(&self) -> (u32, u32, u32) {
        match self.dialect {
            Dialect::Mysql => MYSQL_OLDEST,
            Dialect::Mariadb => MARIADB_OLDEST,
        }
    }

    /// The oldest supported releases, for a message.
    pub fn oldest_supported() -> String {
        let release = |(major, minor, patch): (u32, u32, u32)| format!("{major}.{minor}.{patch}");
        format!("MySQL {} or later, or MariaDB {} or later", release(MYSQL_OLDEST), release(MARIADB_OLDEST))
    }

    /// The name the golden files and the report's `dialect` use: `mysql8`, `mysql9`, `mariadb`.
    pub fn label(&self) -> String {
        match self.dialect {
            Dialect::Mysql => format!("mysql{}", self.major),
            Dialect::Mariadb => "mariadb".into(),
        }
    }

    /// `MD5()`: in MariaDB and in MySQL before 9.6.
    pub(crate) fn has_md5(&self) -> bool {
        self.dialect == Dialect::Mariadb || !self.at_least(MYSQL_WITHOUT_MD5)
    }

    /// A `UUID` column type: MariaDB 10.7 and later; MySQL has none.
    /// <https://mariadb.com/kb/en/uuid-data-type/>
    pub(crate) fn has_uuid_type(&self) -> bool {
        self.dialect == Dialect::Mariadb && self.at_least((10, 7, 0))
    }

    /// The Unicode collations that tell case and accents apart, or ignore case but not accents
    /// (`_as_cs`, `_as_ci`): MySQL's `utf8mb4_0900_*` (8.0), MariaDB's `utf8mb4_uca1400_*` (10.10).
    /// `case_sensitive` picks which; `None` on a MariaDB without them, whose older Unicode
    /// collations ignore accents, which would merge values PostgreSQL keeps apart.
    pub(crate) fn accent_sensitive_collation(&self, case_sensitive: bool) -> Option<&'static str> {
        match (self.dialect, case_sensitive) {
            (Dialect::Mysql, true) => Some("utf8mb4_0900_as_cs"),
            (Dialect::Mysql, false) => Some("utf8mb4_0900_as_ci"),
            (Dialect::Mariadb, _) if !self.at_least((10, 10, 0)) => None,
            (Dialect::Mariadb, true) => Some("utf8mb4_uca1400_nopad_as_cs"),
            (Dialect::Mariadb, false) => Some("utf8mb4_uca1400_nopad_as_ci"),
        }
    }
}

/// `--target-version`: `mysql-8.0`, `mysql-8.4`, `mysql-9`, `mysql-9.7.4`, `mariadb-10.11`.
impl FromStr for Server {
    type Err = String;

    fn from_str(text: &str) -> Result<Server, String> {
        let usage = || {
            format!("{text:?} is not a target version; write it like mysql-8.0, mysql-8.4, mysql-9.7 or mariadb-10.11")
        };
        let (family, release) = text.split_once('-').ok_or_else(usage)?;
        let dialect = match family.to_ascii_lowercase().as_str() {
            "mysql" => Dialect::Mysql,
            "mariadb" => Dialect::Mariadb,
            _ => return Err(usage()),
        };
        let numbers =
            release.split('.').map(|n| n.parse::<u32>().map_err(|_| usage())).collect::<Result<Vec<_>, _>>()?;
        let server = match numbers.as_slice() {
            [major] => Server { dialect, major: *major, minor: None, patch: None },
            [major, minor] => Server { dialect, major: *major, minor: Some(*minor), patch: None },
            [major, minor, patch] => Server { dialect, major: *major, minor: Some(*minor), patch: Some(*patch) },
            _ => return Err(usage()),
        };
        if !server.supported() {
            return Err(format!("{server} is older than Passerelle supports: use {}", Server::oldest_supported()));
        }
        Ok(server)
    }
}

/// `MySQL 9.7.4`, `MySQL 8.4`, `MariaDB 10.11.19`.
impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = match self.dialect {
            Dialect::Mysql => "MySQL",
            Dialect::Mariadb => "MariaDB",
        };
        write!(f, "{family} {}", self.major)?;
        if let Some(minor) = self.minor {
            write!(f, ".{minor}")?;
            if let Some(patch) = self.patch {
                write!(f, ".{patch}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(text: &str) -> Server {
        text.parse().unwrap()
    }

    #[test]
    fn versions_from_the_server() {
        let mariadb = Server::from_version("10.11.19-MariaDB-0+deb12u1").unwrap();
        assert_eq!(mariadb, Server { dialect: Dialect::Mariadb, major: 10, minor: Some(11), patch: Some(19) });
        assert_eq!(mariadb.to_string(), "MariaDB 10.11.19");
        let mysql = Server::from_version("9.7.4-2").unwrap();
        assert_eq!((mysql.to_string(), mysql.label()), ("MySQL 9.7.4".to_string(), "mysql9".to_string()));
        assert!(Server::from_version("8.0.36").unwrap().supported());
        assert!(!Server::from_version("8.0.22").unwrap().supported());
        assert!(!Server::from_version("5.7.44-log").unwrap().supported());
        assert!(!Server::from_version("10.5.2-MariaDB").unwrap().supported());
        assert_eq!(Server::from_version("garbage"), None);
    }

    #[test]
    fn versions_given_by_hand() {
        assert_eq!(server("mysql-8.0").to_string(), "MySQL 8.0");
        assert_eq!(server("mysql-9").label(), "mysql9");
        assert_eq!(server("mariadb-10.11").label(), "mariadb");
        assert!(server("mysql-8.0").supported(), "8.0 stands for its newest release");
        for bad in ["mysql", "postgres-15", "mysql-8.x", "mysql-8.0.1.2", "mysql-5.7", "mysql-8.0.22"] {
            assert!(bad.parse::<Server>().is_err(), "{bad}");
        }
    }

    #[test]
    fn md5_went_in_mysql_9_6() {
        for (version, has) in
            [("mysql-8.0", true), ("mysql-8.4", true), ("mysql-9.5", true), ("mysql-9.6.0", false), ("mysql-9", false)]
        {
            assert_eq!(server(version).has_md5(), has, "{version}");
        }
        assert!(server("mariadb-11.4").has_md5());
    }

    #[test]
    fn mariadb_types_and_collations_by_release() {
        assert!(!server("mariadb-10.6").has_uuid_type());
        assert!(server("mariadb-10.7").has_uuid_type());
        assert!(!server("mysql-9.7").has_uuid_type());
        assert_eq!(server("mariadb-10.9").accent_sensitive_collation(true), None);
        assert_eq!(server("mariadb-10.11").accent_sensitive_collation(false), Some("utf8mb4_uca1400_nopad_as_ci"));
        assert_eq!(server("mysql-8.0").accent_sensitive_collation(true), Some("utf8mb4_0900_as_cs"));
    }
}
