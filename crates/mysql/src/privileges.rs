//! Whether the target user may do what a migration does, read from `SHOW GRANTS` before anything is
//! created anywhere: a user without CREATE is told so by `check` and at the start of `migrate`, not
//! after the slot, the topics and the snapshot exist.
//!
//! Grants are read at the global (`*.*`) and database (`` `db`.* ``, wildcards included) levels;
//! table grants cannot create tables, so they do not count. Privileges that come through roles are
//! not expanded: a shortfall is then a doubt, not a certainty.

use std::fmt;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::MysqlError;

/// What a migration does in each database its tables go to: create it and its tables, views and
/// indexes, load and change rows, compare old rows through temporary tables, and start over.
pub const TARGET_PRIVILEGES: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "REFERENCES",
    "CREATE VIEW",
    "CREATE TEMPORARY TABLES",
];

/// What the bookkeeping needs in its database: create it and its tables, record runs and offsets.
pub const BOOKKEEPING_PRIVILEGES: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE"];

/// The privileges a database lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lacking {
    pub database: String,
    pub privileges: Vec<&'static str>,
}

/// What `SHOW GRANTS` says is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    /// `'user'@'host'`, as the server matched the login.
    pub account: String,
    pub lacking: Vec<Lacking>,
    /// Roles are granted to the account: they may hold what is missing here.
    pub has_roles: bool,
}

impl Shortfall {
    pub fn is_empty(&self) -> bool {
        self.lacking.is_empty()
    }

    /// The GRANT statements that would close the shortfall.
    pub fn fix(&self) -> String {
        let grants: Vec<String> = self
            .lacking
            .iter()
            .map(|lacking| {
                format!(
                    "GRANT {} ON `{}`.* TO {}",
                    lacking.privileges.join(", "),
                    lacking.database.replace('`', "``"),
                    self.account
                )
            })
            .collect();
        let mut fix = format!("as an administrator of the target, run: {}", grants.join("; "));
        if self.has_roles {
            fix.push_str(" (or activate a role that holds them: roles were not looked into)");
        }
        fix
    }
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let each: Vec<String> = self
            .lacking
            .iter()
            .map(|lacking| format!("{} on {}", lacking.privileges.join(", "), lacking.database))
            .collect();
        write!(f, "the target user {} lacks {}", self.account, each.join("; "))
    }
}

/// What the current user lacks of `needs`: each database with the privileges it needs there.
pub async fn shortfall(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    needs: &[(&str, &[&'static str])],
) -> Result<Shortfall, MysqlError> {
    let context = |error| MysqlError::query(endpoint, "reading the target user's privileges", error);
    let account: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.map_err(context)?;
    // MariaDB's lines may carry the password hash (IDENTIFIED BY PASSWORD): they are parsed, never shown.
    let lines: Vec<String> = conn.query("SHOW GRANTS").await.map_err(context)?;
    let grants = Grants::parse(&lines);
    let lacking = needs
        .iter()
        .filter_map(|(database, privileges)| {
            let missing: Vec<&'static str> =
                privileges.iter().copied().filter(|privilege| !grants.allows(database, privilege)).collect();
            (!missing.is_empty()).then(|| Lacking { database: database.to_string(), privileges: missing })
        })
        .collect();
    Ok(Shortfall { account: quote_account(account.as_deref().unwrap_or("?")), lacking, has_roles: grants.has_roles })
}

/// Why the current user may not create triggers in `databases`, and what fixes it; `None` when it
/// may. Creating one needs the TRIGGER privilege, and, where the binary log is on and
/// `log_bin_trust_function_creators` off (MySQL's defaults), SUPER as well (error 1419).
/// <https://dev.mysql.com/doc/refman/8.4/en/stored-programs-logging.html>
pub async fn trigger_refusal(
    conn: &mut Conn,
    endpoint: &impl fmt::Display,
    databases: &[String],
) -> Result<Option<(String, String)>, MysqlError> {
    let needs: Vec<(&str, &[&'static str])> =
        databases.iter().map(|database| (database.as_str(), &["TRIGGER"][..])).collect();
    let lacking = shortfall(conn, endpoint, &needs).await?;
    if !lacking.is_empty() {
        return Ok(Some((lacking.to_string(), lacking.fix())));
    }
    let context = |error| MysqlError::query(endpoint, "reading log_bin", error);
    let logging: Option<(Option<u8>, Option<u8>)> =
        conn.query_first("SELECT @@log_bin, @@log_bin_trust_function_creators").await.map_err(context)?;
    if logging.unwrap_or_default() != (Some(1), Some(0)) {
        return Ok(None);
    }
    let lines: Vec<String> = conn.query("SHOW GRANTS").await.map_err(context)?;
    // SUPER is granted globally only; no database is named `*`.
    if Grants::parse(&lines).allows("*", "SUPER") {
        return Ok(None);
    }
    Ok(Some((
        format!(
            "binary logging is on and log_bin_trust_function_creators is OFF: the target lets only a user with \
             SUPER create triggers, which {} lacks",
            lacking.account
        ),
        "set log_bin_trust_function_creators = ON on the target (managed services offer it as a parameter), or \
         grant the user SUPER; the TRIGGER privilege is there"
            .to_string(),
    )))
}

/// `user@host` as `CURRENT_USER()` gives it, quoted for a GRANT statement.
fn quote_account(account: &str) -> String {
    match account.rsplit_once('@') {
        Some((user, host)) => format!("'{user}'@'{host}'"),
        None => format!("'{account}'"),
    }
}

/// The global and database-level grants of one account.
#[derive(Debug, Default)]
struct Grants {
    /// (database pattern, `None` for `*.*`; privileges; granted, or revoked by a partial revoke).
    entries: Vec<(Option<String>, Vec<String>, bool)>,
    has_roles: bool,
}

impl Grants {
    fn parse(lines: &[String]) -> Grants {
        let mut grants = Grants::default();
        for line in lines {
            let (granted, rest) = if let Some(rest) = line.strip_prefix("GRANT ") {
                (true, rest)
            } else if let Some(rest) = line.strip_prefix("REVOKE ") {
                (false, rest)
            } else {
                continue;
            };
            let Some((privileges, rest)) = rest.split_once(" ON ") else {
                // `GRANT role TO user`: the role's privileges are not listed here.
                grants.has_roles = true;
                continue;
            };
            let Some(scope) = rest.split(" TO ").next().and_then(|scope| scope.split(" FROM ").next()) else {
                continue;
            };
            let database = match scope.trim().strip_suffix(".*") {
                Some("*") => None,
                Some(database) => Some(unquote(database)),
                // A table or routine grant: it creates no table.
                None => continue,
            };
            let privileges = privileges.split(',').map(|privilege| privilege.trim().to_ascii_uppercase()).collect();
            grants.entries.push((database, privileges, granted));
        }
        grants
    }

    fn allows(&self, database: &str, privilege: &str) -> bool {
        let covers = |privileges: &Vec<String>| {
            privileges.iter().any(|held| held == privilege || held == "ALL" || held == "ALL PRIVILEGES")
        };
        let applies = |pattern: &Option<String>| pattern.as_deref().is_none_or(|pattern| like(pattern, database));
        let granted = self
            .entries
            .iter()
            .any(|(pattern, privileges, granted)| *granted && applies(pattern) && covers(privileges));
        let revoked = self.entries.iter().any(|(pattern, privileges, granted)| {
            !*granted && pattern.as_deref() == Some(database) && covers(privileges)
        });
        granted && !revoked
    }
}

/// `` `na``me` `` → ``na`me``.
fn unquote(name: &str) -> String {
    let name = name.trim();
    match name.strip_prefix('`').and_then(|name| name.strip_suffix('`')) {
        Some(inner) => inner.replace("``", "`"),
        None => name.to_string(),
    }
}

/// SQL LIKE as database grants use it: `%` any run, `_` one character, `\` takes the next literally.
fn like(pattern: &str, text: &str) -> bool {
    fn matches(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('%', rest)) => (0..=text.len()).any(|skip| matches(rest, &text[skip..])),
            Some(('_', rest)) => !text.is_empty() && matches(rest, &text[1..]),
            Some(('\\', rest)) if !rest.is_empty() => text.first() == Some(&rest[0]) && matches(&rest[1..], &text[1..]),
            Some((c, rest)) => text.first() == Some(c) && matches(rest, &text[1..]),
        }
    }
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    matches(&pattern, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(lines: &[&str]) -> Grants {
        Grants::parse(&lines.iter().map(|line| line.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn global_and_database_grants() {
        let all = grants(&[
            "GRANT ALL PRIVILEGES ON *.* TO `passerelle`@`127.0.0.1` IDENTIFIED BY PASSWORD '*AB' WITH GRANT OPTION",
        ]);
        assert!(all.allows("demo", "CREATE TEMPORARY TABLES"));
        let mysql = grants(&[
            "GRANT USAGE ON *.* TO `app`@`%`",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON `demo`.* TO `app`@`%`",
            "GRANT CREATE ON `demo\\_%`.* TO `app`@`%`",
            "GRANT DROP ON `demo`.`flights` TO `app`@`%`",
        ]);
        assert!(mysql.allows("demo", "INSERT"));
        assert!(!mysql.allows("demo", "CREATE"), "demo\\_% needs the underscore");
        assert!(mysql.allows("demo_2", "CREATE"));
        assert!(!mysql.allows("demo", "DROP"), "a table grant creates nothing");
        assert!(!mysql.allows("other", "SELECT"));
        assert!(!mysql.has_roles);
    }

    #[test]
    fn partial_revokes_and_roles() {
        let revoked = grants(&[
            "GRANT SELECT, INSERT, CREATE ON *.* TO `u`@`%`",
            "REVOKE CREATE ON `passerelle`.* FROM `u`@`%`",
            "GRANT `loader`@`%` TO `u`@`%`",
        ]);
        assert!(revoked.allows("demo", "CREATE"));
        assert!(!revoked.allows("passerelle", "CREATE"));
        assert!(revoked.has_roles);
    }

    #[test]
    fn the_fix_names_every_grant() {
        let shortfall = Shortfall {
            account: quote_account("app@%"),
            lacking: vec![Lacking { database: "demo".into(), privileges: vec!["CREATE", "DROP"] }],
            has_roles: false,
        };
        assert_eq!(shortfall.to_string(), "the target user 'app'@'%' lacks CREATE, DROP on demo");
        assert_eq!(
            shortfall.fix(),
            "as an administrator of the target, run: GRANT CREATE, DROP ON `demo`.* TO 'app'@'%'"
        );
    }
}
