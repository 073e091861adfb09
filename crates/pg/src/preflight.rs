//! The source's part of `passerelle check`: can Passerelle connect, read, create a slot and stream?
//!
//! Read-only: it creates nothing on the server.

use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::preflight::{clear_text_password, Finding, System};
use postgres_protocol::authentication::sasl::SCRAM_SHA_256_PLUS;
use tokio_postgres::Client;

use crate::{connect, PgError};

const SOURCE: System = System::Source;

/// Oldest server with pgoutput and `CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT`.
const MIN_VERSION_NUM: i32 = 100_000;

/// Runs every source check, on the tables of `schemas` (of every schema when empty). A failed
/// connection ends the list: nothing else can be asked.
pub async fn run(endpoint: &DbEndpoint, schemas: &[String]) -> Vec<Finding> {
    let client = match connect(endpoint).await {
        Ok(client) => client,
        Err(error) => return vec![Finding::fail(SOURCE, "connection", error.cause(), error.hint())],
    };
    let version: Option<String> =
        match client.query_opt("select version from pg_stat_ssl where pid = pg_backend_pid() and ssl", &[]).await {
            Ok(row) => row.map(|row| row.get(0)),
            Err(error) => {
                let error = PgError::query(endpoint, "reading pg_stat_ssl", error);
                return vec![Finding::fail(SOURCE, "connection", error.cause(), error.hint())];
            }
        };
    let session = endpoint.tls.describe_session(version.as_deref());
    let mut findings = vec![Finding::pass(SOURCE, "connection", format!("connected to {endpoint}, {session}"))];
    let setting = format!("sslmode={}", endpoint.tls.mode.name());
    findings.extend(clear_text_password(
        SOURCE,
        endpoint,
        version.is_some(),
        &setting,
        "add sslmode=verify-full&sslrootcert=CA.pem to the source URL (the server's CA certificate, PEM)",
    ));
    if let Err(error) = checks(endpoint, &client, schemas, &mut findings).await {
        findings.push(Finding::fail(SOURCE, "catalog query", error.cause(), error.hint()));
    }
    findings
}

/// Opens a replication connection, as the slot's creation and the change stream do (pg_hba.conf has
/// `replication` lines of its own), and says how its password went: SCRAM-SHA-256-PLUS binds the
/// exchange to the TLS session, which the server verifies against its own certificate.
async fn replication_connection(endpoint: &DbEndpoint) -> Finding {
    match crate::slot::replication_authentication(endpoint).await {
        Ok(Some(mechanism)) if mechanism == SCRAM_SHA_256_PLUS => Finding::pass(
            SOURCE,
            "replication connection",
            format!("opened; the password by {mechanism}, bound to the TLS session (channel binding)"),
        ),
        Ok(Some(mechanism)) => {
            Finding::pass(SOURCE, "replication connection", format!("opened; the password by {mechanism}"))
        }
        Ok(None) => {
            Finding::pass(SOURCE, "replication connection", "opened; no SASL exchange (trust, md5 or password)")
        }
        Err(error) => Finding::fail(SOURCE, "replication connection", error.cause(), error.hint()),
    }
}

async fn checks(
    endpoint: &DbEndpoint,
    client: &Client,
    schemas: &[String],
    findings: &mut Vec<Finding>,
) -> Result<(), PgError> {
    let row = client
        .query_one(
            "select current_setting('server_version_num')::int, current_setting('server_version'),
                    current_setting('wal_level'), current_setting('max_replication_slots')::int,
                    (select count(*)::int from pg_replication_slots),
                    current_setting('max_wal_senders')::int,
                    (select count(*)::int from pg_stat_replication),
                    r.rolreplication, r.rolsuper, current_user::text,
                    has_database_privilege(current_database(), 'CREATE'), current_database()::text
             from pg_roles r where r.rolname = current_user",
            &[],
        )
        .await
        .map_err(|error| PgError::query(endpoint, "reading server settings", error))?;
    let (version_num, version): (i32, String) = (row.get(0), row.get(1));
    let wal_level: String = row.get(2);
    let (max_slots, used_slots): (i32, i32) = (row.get(3), row.get(4));
    let (max_senders, used_senders): (i32, i32) = (row.get(5), row.get(6));
    let (can_replicate, is_superuser, user): (bool, bool, String) = (row.get(7), row.get(8), row.get(9));
    let (can_create, database): (bool, String) = (row.get(10), row.get(11));

    findings.push(if version_num >= MIN_VERSION_NUM {
        Finding::pass(SOURCE, "version", format!("PostgreSQL {version}"))
    } else {
        Finding::fail(
            SOURCE,
            "version",
            format!("PostgreSQL {version} has no pgoutput logical decoding"),
            "upgrade the source to PostgreSQL 10 or later",
        )
    });
    findings.push(if wal_level == "logical" {
        Finding::pass(SOURCE, "wal_level", "wal_level = logical")
    } else {
        Finding::fail(
            SOURCE,
            "wal_level",
            format!("wal_level = {wal_level}, logical decoding needs logical"),
            "run ALTER SYSTEM SET wal_level = logical as a superuser, then restart PostgreSQL",
        )
    });
    findings.push(if can_replicate || is_superuser {
        Finding::pass(SOURCE, "replication privilege", format!("role {user} may replicate"))
    } else {
        Finding::fail(
            SOURCE,
            "replication privilege",
            format!("role {user} has no REPLICATION attribute"),
            format!("run ALTER ROLE {user} REPLICATION as a superuser"),
        )
    });
    if can_replicate || is_superuser {
        findings.push(replication_connection(endpoint).await);
    }
    findings.push(if used_slots < max_slots {
        Finding::pass(SOURCE, "replication slots", format!("{} of {max_slots} free", max_slots - used_slots))
    } else {
        Finding::fail(
            SOURCE,
            "replication slots",
            format!("all {max_slots} replication slots are in use"),
            "drop an unused slot (pg_drop_replication_slot) or raise max_replication_slots and restart",
        )
    });
    findings.push(if used_senders < max_senders {
        Finding::pass(SOURCE, "wal senders", format!("{} of {max_senders} free", max_senders - used_senders))
    } else {
        Finding::fail(
            SOURCE,
            "wal senders",
            format!("all {max_senders} wal senders are in use"),
            "raise max_wal_senders and restart PostgreSQL",
        )
    });

    findings.push(if can_create {
        Finding::pass(SOURCE, "publication privilege", format!("role {user} may create publications in {database}"))
    } else {
        Finding::fail(
            SOURCE,
            "publication privilege",
            format!("role {user} has no CREATE privilege on database {database}, which a publication needs"),
            format!("run GRANT CREATE ON DATABASE {database} TO {user} as its owner"),
        )
    });

    table_checks(endpoint, client, schemas, &user, findings).await
}

/// Tables Passerelle cannot read, keyed tables it cannot publish (only their owner may add them to
/// a publication), and tables whose updates and deletes logical replication cannot identify (no
/// primary key and no usable replica identity).
async fn table_checks(
    endpoint: &DbEndpoint,
    client: &Client,
    schemas: &[String],
    user: &str,
    findings: &mut Vec<Finding>,
) -> Result<(), PgError> {
    let rows = client
        .query(
            "select format('%I.%I', n.nspname, c.relname),
                    has_table_privilege(c.oid, 'SELECT'),
                    exists (select from pg_index i where i.indrelid = c.oid and i.indisprimary)
                      or c.relreplident = 'f'
                      or (c.relreplident = 'i' and exists (select from pg_index i
                                                           where i.indrelid = c.oid and i.indisreplident)),
                    pg_has_role(c.relowner, 'USAGE')
                      or not exists (select from pg_index i where i.indrelid = c.oid and i.indisprimary)
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p') and not c.relispartition
               and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
               and n.nspname not like 'pg_temp%'
               and (cardinality($1::text[]) = 0 or n.nspname = any($1))
             order by 1",
            &[&schemas],
        )
        .await
        .map_err(|error| PgError::query(endpoint, "listing tables", error))?;
    let failing = |column: usize| -> Vec<String> {
        rows.iter().filter(|row| !row.get::<_, bool>(column)).map(|row| row.get(0)).collect()
    };
    let (unreadable, keyless, unowned) = (failing(1), failing(2), failing(3));
    findings.push(if unowned.is_empty() {
        Finding::pass(SOURCE, "table ownership", format!("role {user} may publish every table with a primary key"))
    } else {
        Finding::fail(
            SOURCE,
            "table ownership",
            format!("role {user} does not own {}, which a publication needs", name_list(&unowned)),
            format!("make {user} a member of the tables' owner (GRANT owner_role TO {user}), or ALTER TABLE ... OWNER TO {user}"),
        )
    });
    findings.push(if unreadable.is_empty() {
        Finding::pass(SOURCE, "table access", format!("{} tables readable", rows.len()))
    } else {
        Finding::fail(
            SOURCE,
            "table access",
            format!("no SELECT privilege on {}", name_list(&unreadable)),
            "GRANT SELECT on those tables to the source user",
        )
    });
    findings.push(if keyless.is_empty() {
        Finding::pass(SOURCE, "replica identity", "every table has a primary key or a replica identity")
    } else {
        Finding::warn(
            SOURCE,
            "replica identity",
            format!("no primary key nor replica identity: {}", name_list(&keyless)),
            "add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL, before streaming changes; \
             a snapshot alone copies them",
        )
    });
    Ok(())
}

/// At most ten names, then how many more: a finding stays one readable line.
fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut list = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        list.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    list
}
