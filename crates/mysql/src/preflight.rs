//! The target's part of `passerelle check`: which server is it, and is it ready to be loaded?
//!
//! Read-only: it creates nothing on the server.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use passerelle_ddl::Server;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::preflight::{clear_text_password, Finding, System};

use crate::privileges::{shortfall, trigger_refusal, BOOKKEEPING_PRIVILEGES, TARGET_PRIVILEGES};
use crate::{connect, MysqlError};

const TARGET: System = System::Target;

/// Whether `@@GLOBAL.local_infile` lets clients `LOAD DATA LOCAL`: the sink loads that way then,
/// and by multi-row INSERT otherwise.
pub(crate) fn local_infile_allowed(setting: &str) -> bool {
    setting == "1" || setting.eq_ignore_ascii_case("on")
}

/// Runs every target check: `databases` are where the migration's tables would go (the URL's when
/// empty), `bookkeeping_db` where its bookkeeping would live. A failed connection ends the list:
/// nothing else can be asked.
pub async fn run(endpoint: &DbEndpoint, databases: &[String], bookkeeping_db: &str) -> Vec<Finding> {
    let mut conn = match connect(endpoint).await {
        Ok(conn) => conn,
        Err(error) => return vec![Finding::fail(TARGET, "connection", error.cause(), error.hint())],
    };
    let version: Option<(String, String)> = match conn.query_first("SHOW SESSION STATUS LIKE 'Ssl_version'").await {
        Ok(row) => row,
        Err(error) => {
            let error = MysqlError::query(endpoint, "reading Ssl_version", error);
            return vec![Finding::fail(TARGET, "connection", error.cause(), error.hint())];
        }
    };
    let version = version.map(|(_, version)| version).filter(|version| !version.is_empty());
    let session = endpoint.tls.describe_session(version.as_deref());
    let mut findings = vec![Finding::pass(TARGET, "connection", format!("connected to {endpoint}, {session}"))];
    let setting = format!("ssl-mode={}", endpoint.tls.mode.mysql_name());
    findings.extend(clear_text_password(
        TARGET,
        endpoint,
        version.is_some(),
        &setting,
        "add ssl-mode=VERIFY_IDENTITY&ssl-ca=CA.pem to the target URL (the server's CA certificate, PEM)",
    ));
    if let Err(error) = checks(endpoint, &mut conn, databases, bookkeeping_db, &mut findings).await {
        findings.push(Finding::fail(TARGET, "server query", error.cause(), error.hint()));
    }
    // Dropping a connection without saying goodbye leaves an "aborted connection" in the server log.
    let _ = conn.disconnect().await;
    findings
}

async fn checks(
    endpoint: &DbEndpoint,
    conn: &mut Conn,
    databases: &[String],
    bookkeeping_db: &str,
    findings: &mut Vec<Finding>,
) -> Result<(), MysqlError> {
    let settings: Option<(String, String, String, String)> = conn
        .query_first("SELECT VERSION(), @@GLOBAL.local_infile, @@GLOBAL.sql_mode, @@GLOBAL.character_set_server")
        .await
        .map_err(|error| MysqlError::query(endpoint, "reading server settings", error))?;
    let Some((version_text, local_infile, sql_mode, charset)) = settings else {
        return Ok(());
    };

    findings.push(match Server::from_version(&version_text) {
        Some(server) if server.supported() => Finding::pass(TARGET, "version", server.to_string()),
        Some(server) => Finding::fail(
            TARGET,
            "version",
            format!("{server} is older than Passerelle supports"),
            format!("use {}", Server::oldest_supported()),
        ),
        None => Finding::fail(
            TARGET,
            "version",
            format!("unrecognised server version {version_text:?}"),
            format!("use {}", Server::oldest_supported()),
        ),
    });
    findings.push(if local_infile_allowed(&local_infile) {
        Finding::pass(TARGET, "local_infile", "LOAD DATA LOCAL allowed")
    } else {
        Finding::warn(
            TARGET,
            "local_infile",
            "local_infile is OFF: the snapshot loads with multi-row INSERT instead of LOAD DATA LOCAL",
            "SET GLOBAL local_infile = ON (or local-infile=1 in the server configuration)",
        )
    });
    // Passerelle sets its own session sql_mode; the global one matters to other clients only.
    findings.push(Finding::pass(TARGET, "sql_mode", format!("global sql_mode = {sql_mode:?}")));
    findings.push(if charset == "utf8mb4" {
        Finding::pass(TARGET, "character set", "character_set_server = utf8mb4")
    } else {
        Finding::warn(
            TARGET,
            "character set",
            format!("character_set_server = {charset}; Passerelle declares utf8mb4 on every table it creates"),
            "set character-set-server = utf8mb4 so that other clients of the target agree",
        )
    });

    let Some(database) = &endpoint.database else {
        findings.push(Finding::fail(
            TARGET,
            "target database",
            "the target URL names no database",
            "add the database to the URL: mysql://user@host:3306/database",
        ));
        return Ok(());
    };
    let n_tables: Option<(Option<u64>, u64)> = conn
        .exec_first(
            "SELECT (SELECT 1 FROM information_schema.schemata WHERE schema_name = ?),
                    (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?)",
            (database, database),
        )
        .await
        .map_err(|error| MysqlError::query(endpoint, "looking for the target database", error))?;
    findings.push(match n_tables {
        Some((None, _)) | None => {
            Finding::pass(TARGET, "target database", format!("{database} does not exist yet; plan creates it"))
        }
        Some((Some(_), 0)) => Finding::pass(TARGET, "target database", format!("{database} exists and is empty")),
        Some((Some(_), n)) => Finding::warn(
            TARGET,
            "target database",
            format!("{database} already holds {n} tables"),
            "migrate into an empty database, or resume the migration that filled it",
        ),
    });
    let databases = if databases.is_empty() { std::slice::from_ref(database) } else { databases };
    let mut needs: Vec<(&str, &[&'static str])> =
        databases.iter().map(|database| (database.as_str(), TARGET_PRIVILEGES)).collect();
    needs.push((bookkeeping_db, BOOKKEEPING_PRIVILEGES));
    let shortfall = shortfall(conn, endpoint, &needs).await?;
    findings.push(if shortfall.is_empty() {
        Finding::pass(
            TARGET,
            "privileges",
            format!("may create and load {}, and keep the bookkeeping in {bookkeeping_db}", databases.join(", ")),
        )
    } else if shortfall.has_roles {
        Finding::warn(TARGET, "privileges", shortfall.to_string(), shortfall.fix())
    } else {
        Finding::fail(TARGET, "privileges", shortfall.to_string(), shortfall.fix())
    });
    // Only schemas with translatable triggers need it: the plan reports those as not migrated then.
    findings.push(match trigger_refusal(conn, endpoint, databases).await? {
        None => Finding::pass(TARGET, "triggers", "may create the triggers the plan translates"),
        Some((cause, fix)) => Finding::warn(
            TARGET,
            "triggers",
            format!("{cause}: triggers the plan could translate are reported as not migrated"),
            format!("{fix} (the TRIGGER privilege is needed to create them)"),
        ),
    });
    Ok(())
}
