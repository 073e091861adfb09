//! The consistent start point of a migration: a publication, then a logical replication slot
//! (pgoutput) whose creation exports a snapshot.
//!
//! The slot's consistent point and the exported snapshot describe the same instant: every copy
//! worker imports the snapshot, so the snapshot holds exactly the transactions that committed
//! before the consistent point, and the change stream read from the slot holds exactly those that
//! commit after it. No gap, no overlap
//! (<https://www.postgresql.org/docs/current/protocol-replication.html#PROTOCOL-REPLICATION-CREATE-REPLICATION-SLOT>).
//!
//! The snapshot can be imported only while the connection that created the slot stays open and
//! runs no other command, so [`create_slot`] returns an [`ExportedSnapshot`] that owns that
//! connection. Keep it until every copy worker has imported the snapshot; keeping it until the
//! whole copy ends lets a failed worker be replaced.
//!
//! The slot outlives the snapshot: the online mode streams from it, and `cleanup` drops it with
//! [`drop_slot`].

use std::fmt;
use std::time::Duration;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::event::Lsn;
use passerelle_model::schema::QualifiedName;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256, SCRAM_SHA_256_PLUS};
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::tls::Tls;
use crate::{session, PgError};

/// The slot and the snapshot exported with it. Dropping it closes the replication connection,
/// after which the snapshot can no longer be imported; the slot itself stays.
#[derive(Debug)]
pub struct ExportedSnapshot {
    slot: String,
    consistent_point: Lsn,
    snapshot_name: String,
    conn: ReplicationConnection,
}

impl ExportedSnapshot {
    pub fn slot(&self) -> &str {
        &self.slot
    }

    /// The LSN from which the slot's change stream starts: the snapshot holds everything before it.
    pub fn consistent_point(&self) -> Lsn {
        self.consistent_point
    }

    /// What copy workers pass to `SET TRANSACTION SNAPSHOT`.
    pub fn snapshot_name(&self) -> &str {
        &self.snapshot_name
    }

    /// Ends the replication connection politely. The snapshot can no longer be imported.
    pub async fn close(self) {
        self.conn.terminate().await;
    }
}

/// What `pg_replication_slots` says about a slot, to tell a resumed run from a stranger's slot.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotInfo {
    pub database: Option<String>,
    pub plugin: Option<String>,
    /// A walsender is streaming from it right now.
    pub active: bool,
    /// How far a consumer has confirmed the stream; `None` for a physical slot.
    pub confirmed_flush: Option<Lsn>,
    /// WAL the slot keeps on the source's disk, from its restart point to the current position.
    pub retained_wal_bytes: Option<u64>,
    /// The slot has lost WAL it needed (`wal_status = 'lost'`, past `max_slot_wal_keep_size`): it can
    /// stream no more.
    pub lost: bool,
    /// WAL from the confirmed position to the current one: what the consumer has yet to confirm.
    pub lag_bytes: Option<u64>,
    /// The streaming walsender's `flush_lag` (pg_stat_replication), in seconds: how long ago the WAL
    /// last confirmed was written; `None` while nothing streams, or once it has caught up.
    pub lag_seconds: Option<f64>,
}

/// Creates `slot` (logical, pgoutput) on the database of `endpoint` and exports its snapshot.
///
/// Create the publication first ([`create_publication`]): pgoutput looks publications up in the
/// catalog as of each decoded change, so changes from before the publication existed fail to decode.
/// A slot that already exists is [`PgError::SlotExists`], never reused silently.
///
/// PostgreSQL answers only once every transaction open at the time of the call has ended (the
/// consistent point needs them decided), so a long-running transaction in the source delays it.
pub async fn create_slot(endpoint: &DbEndpoint, slot: &str) -> Result<ExportedSnapshot, PgError> {
    validate_slot_name(slot)?;
    let mut conn = ReplicationConnection::open(endpoint).await?;
    // PostgreSQL 15 replaced `EXPORT_SNAPSHOT` with an option list; both spellings work in 15-17,
    // only the old one before 15.
    let command = if conn.server_major >= 15 {
        format!("CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput (SNAPSHOT 'export')")
    } else {
        format!("CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput EXPORT_SNAPSHOT")
    };
    let rows = match conn.simple_query(&command, "creating the replication slot").await {
        Ok(rows) => rows,
        Err(PgError::Replication { code, .. }) if code == SqlState::DUPLICATE_OBJECT.code() => {
            conn.terminate().await;
            return Err(PgError::SlotExists { endpoint: endpoint.to_string(), slot: slot.to_string() });
        }
        Err(error) => return Err(error),
    };
    // One row: slot_name, consistent_point, snapshot_name, output_plugin.
    let unexpected = |detail: &str| PgError::ConnectionLost {
        endpoint: endpoint.to_string(),
        context: "reading CREATE_REPLICATION_SLOT's answer",
        cause: detail.to_string(),
    };
    let row = match rows.as_slice() {
        [row] if row.len() >= 3 => row,
        _ => return Err(unexpected("expected one row of at least three columns")),
    };
    let consistent_point = row[1].as_deref().ok_or_else(|| unexpected("no consistent point"))?;
    let consistent_point = consistent_point.parse::<Lsn>().map_err(|error| unexpected(&error.to_string()))?;
    let snapshot_name = row[2].clone().ok_or_else(|| unexpected("no snapshot name"))?;
    tracing::info!(slot, lsn = %consistent_point, "created the replication slot and exported its snapshot");
    Ok(ExportedSnapshot { slot: slot.to_string(), consistent_point, snapshot_name, conn })
}

/// [`session::SETTINGS`] as a replication connection sees them, to prove that the walsender will
/// render values exactly like the copy workers. Also proves that the role may open a replication
/// connection at all (the REPLICATION attribute and a `replication` line in pg_hba.conf).
pub async fn replication_session_settings(endpoint: &DbEndpoint) -> Result<Vec<(String, String)>, PgError> {
    let mut conn = ReplicationConnection::open(endpoint).await?;
    let mut settings = Vec::new();
    for (name, _) in session::SETTINGS {
        let rows = conn.simple_query(&format!("SHOW {name}"), "reading a session setting").await?;
        let value = rows.first().and_then(|row| row.first().cloned().flatten()).unwrap_or_default();
        settings.push((name.to_string(), value));
    }
    conn.terminate().await;
    Ok(settings)
}

/// The SASL mechanism a replication connection's password goes through (`SCRAM-SHA-256-PLUS` over
/// TLS where the server offers it); `None` when the server asks for no SASL exchange.
pub async fn replication_authentication(endpoint: &DbEndpoint) -> Result<Option<&'static str>, PgError> {
    let conn = ReplicationConnection::open(endpoint).await?;
    let mechanism = conn.mechanism;
    conn.terminate().await;
    Ok(mechanism)
}

/// The slot named `slot`, if the cluster has one (slots are cluster-wide, not per database).
pub async fn slot_info(client: &Client, endpoint: &impl fmt::Display, slot: &str) -> Result<Option<SlotInfo>, PgError> {
    let row = client
        .query_opt(
            "select s.database::text, s.plugin::text, s.active, s.confirmed_flush_lsn::text,
                    pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint, s.wal_status = 'lost',
                    pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,
                    extract(epoch from r.flush_lag)::float8
             from pg_replication_slots s left join pg_stat_replication r on r.pid = s.active_pid
             where s.slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|error| PgError::query(endpoint, "reading pg_replication_slots", error))?;
    Ok(row.map(|row| SlotInfo {
        database: row.get(0),
        plugin: row.get(1),
        active: row.get(2),
        confirmed_flush: row.get::<_, Option<String>>(3).and_then(|lsn| lsn.parse().ok()),
        retained_wal_bytes: row.get::<_, Option<i64>>(4).and_then(|bytes| u64::try_from(bytes).ok()),
        lost: row.get::<_, Option<bool>>(5).unwrap_or(false),
        lag_bytes: row.get::<_, Option<i64>>(6).and_then(|bytes| u64::try_from(bytes).ok()),
        lag_seconds: row.get(7),
    }))
}

/// Drops `slot`; false when there was none. A slot that a walsender is streaming from cannot be
/// dropped: PostgreSQL answers `object in use` (55006).
///
/// The walsender of a process that just ended may hold the slot a moment longer: an `object in use`
/// answer is retried for a few seconds before it is reported.
pub async fn drop_slot(client: &Client, endpoint: &impl fmt::Display, slot: &str) -> Result<bool, PgError> {
    const ATTEMPTS: u32 = 10;
    let mut attempt = 1;
    loop {
        let dropped = client
            .execute(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1",
                &[&slot],
            )
            .await;
        match dropped {
            Ok(n_dropped) => return Ok(n_dropped > 0),
            Err(error) if error.code() == Some(&SqlState::OBJECT_IN_USE) && attempt < ATTEMPTS => {
                crate::walsender::release_stale(client, endpoint, slot).await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                attempt += 1;
            }
            Err(error) => return Err(PgError::query(endpoint, "dropping the replication slot", error)),
        }
    }
}

/// Creates `publication` for exactly `tables`, publishing inserts, updates, deletes and truncates,
/// a partitioned table's under its own name.
///
/// Refuses a table that has neither a primary key nor a replica identity: once it is published,
/// PostgreSQL rejects every `UPDATE` and `DELETE` on it, which would break the source's
/// applications (<https://www.postgresql.org/docs/current/logical-replication-publication.html>).
pub async fn create_publication(
    client: &Client,
    endpoint: &impl fmt::Display,
    publication: &str,
    tables: &[QualifiedName],
) -> Result<(), PgError> {
    validate_identifier("publication", publication)?;
    let error = |context: &'static str| move |source| PgError::query(endpoint, context, source);
    if publication_exists(client, endpoint, publication).await? {
        return Err(PgError::PublicationExists {
            endpoint: endpoint.to_string(),
            publication: publication.to_string(),
        });
    }
    let schemas: Vec<&str> = tables.iter().map(|table| table.schema.as_str()).collect();
    let names: Vec<&str> = tables.iter().map(|table| table.name.as_str()).collect();
    // relreplident: d(efault, the primary key), n(othing), f(ull), i(ndex). Partitioned parents
    // are skipped: their partitions carry the identity.
    let unidentified = client
        .query(
            "select n.nspname::text, c.relname::text
             from unnest($1::text[], $2::text[]) as t(schema_name, table_name)
             join pg_namespace n on n.nspname = t.schema_name
             join pg_class c on c.relnamespace = n.oid and c.relname = t.table_name
             where c.relkind = 'r'
               and (c.relreplident = 'n'
                    or (c.relreplident = 'd'
                        and not exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary)))
             order by 1, 2",
            &[&schemas, &names],
        )
        .await
        .map_err(error("reading the tables' replica identities"))?;
    if let Some(row) = unidentified.first() {
        let table = QualifiedName { schema: row.get(0), name: row.get(1) };
        return Err(PgError::NoReplicaIdentity { endpoint: endpoint.to_string(), table: table.to_string() });
    }
    let mut sql = format!("CREATE PUBLICATION {}", quote_ident(publication));
    if !tables.is_empty() {
        let list: Vec<String> = tables.iter().map(quote_qualified).collect();
        sql.push_str(" FOR TABLE ");
        sql.push_str(&list.join(", "));
    }
    // A partitioned table's changes are published under its name rather than its partitions' (the
    // migration gives the root one topic and one target table), so a partition attached or created
    // during the run needs nothing. PostgreSQL 13 brought the option; before, a publication cannot
    // hold a partitioned table at all.
    let version: i32 = client
        .query_one("select current_setting('server_version_num')::int", &[])
        .await
        .map_err(error("reading the server's version"))?
        .get(0);
    if version >= 130_000 {
        sql.push_str(" WITH (publish_via_partition_root = true)");
    }
    match client.batch_execute(&sql).await {
        Ok(()) => Ok(()),
        Err(source) if source.code() == Some(&SqlState::DUPLICATE_OBJECT) => {
            Err(PgError::PublicationExists { endpoint: endpoint.to_string(), publication: publication.to_string() })
        }
        Err(source) => Err(PgError::query(endpoint, "creating the publication", source)),
    }
}

/// Drops `publication`; false when there was none.
pub async fn drop_publication(
    client: &Client,
    endpoint: &impl fmt::Display,
    publication: &str,
) -> Result<bool, PgError> {
    let error = |context: &'static str| move |source| PgError::query(endpoint, context, source);
    let exists = client
        .query_opt("select 1 from pg_publication where pubname = $1", &[&publication])
        .await
        .map_err(error("reading pg_publication"))?;
    if exists.is_none() {
        return Ok(false);
    }
    client
        .batch_execute(&format!("DROP PUBLICATION IF EXISTS {}", quote_ident(publication)))
        .await
        .map_err(error("dropping the publication"))?;
    Ok(true)
}

/// `"name"`, with embedded double quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`.
/// Publishes only `columns` of `table` in `publication` (PostgreSQL 15's column lists), for a table
/// whose other columns are left out of the migration: pgoutput then sends none of theirs.
pub async fn publish_columns(
    client: &Client,
    endpoint: &impl fmt::Display,
    publication: &str,
    table: &QualifiedName,
    columns: &[String],
) -> Result<(), PgError> {
    validate_identifier("publication", publication)?;
    let list: Vec<String> = columns.iter().map(|column| quote_ident(column)).collect();
    let (publication, table) = (quote_ident(publication), quote_qualified(table));
    let sql = format!(
        "ALTER PUBLICATION {publication} DROP TABLE {table}; ALTER PUBLICATION {publication} ADD TABLE {table} ({})",
        list.join(", ")
    );
    client.batch_execute(&sql).await.map_err(|source| PgError::query(endpoint, "publishing the columns", source))
}

pub(crate) fn quote_qualified(name: &QualifiedName) -> String {
    format!("{}.{}", quote_ident(&name.schema), quote_ident(&name.name))
}

/// PostgreSQL's own rule for slot names (`ReplicationSlotValidateName`): they go unquoted into a
/// replication command, so nothing else may get through.
pub(crate) fn validate_slot_name(slot: &str) -> Result<(), PgError> {
    let invalid = |reason| Err(PgError::InvalidName { what: "replication slot", name: slot.to_string(), reason });
    if slot.is_empty() || slot.len() > 63 {
        return invalid("it must have 1 to 63 characters");
    }
    if !slot.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return invalid("it may contain only lower-case letters, digits and underscores");
    }
    Ok(())
}

fn validate_identifier(what: &'static str, name: &str) -> Result<(), PgError> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(PgError::InvalidName {
            what,
            name: name.to_string(),
            reason: "it must have 1 to 63 bytes, no NUL",
        });
    }
    Ok(())
}

/// A `replication=database` connection, spoken by hand, under [`session::SETTINGS`]: the slot's
/// creation here, the change stream in `stream.rs`.
///
/// tokio-postgres cannot open replication connections. The alternatives were `pg_walstream` (its
/// pure-Rust transport pulls in aws-lc-sys, slow to build, and the other one links libpq) and
/// `pgwire-replication` (a second driver for one command). A slot needs only the startup, the
/// password exchange (`postgres-protocol`, already under tokio-postgres, does SCRAM and MD5) and
/// the simple query protocol: about a hundred lines that we control. TLS as libpq does it: an
/// SSLRequest, then OpenSSL's handshake (`tls.rs`) when the server accepts, before the startup.
pub(crate) struct ReplicationConnection {
    stream: Box<dyn Io>,
    read_buf: BytesMut,
    pub(crate) endpoint: String,
    pub(crate) server_major: u32,
    /// The SASL mechanism the password went through, if any: `SCRAM-SHA-256-PLUS` binds the
    /// exchange to the TLS session, which the server verifies against its own certificate.
    pub(crate) mechanism: Option<&'static str>,
}

/// A plain or a TLS socket.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

impl fmt::Debug for ReplicationConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicationConnection").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// The SSLRequest message: its length, then the code 1234.5679.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Asks the server for TLS and runs the handshake if it agrees; plain if it declines and TLS is not
/// required. Returns the session's channel binding too (`None`: plain).
async fn secure(mut tcp: TcpStream, endpoint: &DbEndpoint) -> Result<(Box<dyn Io>, Option<Vec<u8>>), PgError> {
    let Some(tls) = Tls::for_endpoint(endpoint)? else { return Ok((Box::new(tcp), None)) };
    let unreachable = |cause: String| PgError::Unreachable { endpoint: endpoint.to_string(), cause };
    tcp.write_all(&SSL_REQUEST).await.map_err(|error| unreachable(error.to_string()))?;
    let answer = tcp.read_u8().await.map_err(|error| unreachable(error.to_string()))?;
    if answer != b'S' {
        if endpoint.tls.required() {
            return Err(tls.failed(format!("the server does not accept TLS (sslmode={})", endpoint.tls.mode.name())));
        }
        return Ok((Box::new(tcp), None));
    }
    let mut stream = SslStream::new(tls.ssl(&endpoint.host)?, tcp).map_err(|error| tls.failed(error))?;
    std::pin::Pin::new(&mut stream).connect().await.map_err(|error| tls.failed(error))?;
    let binding = crate::tls::server_end_point(stream.ssl());
    Ok((Box::new(stream), binding))
}

type SimpleRow = Vec<Option<String>>;

impl ReplicationConnection {
    pub(crate) async fn open(endpoint: &DbEndpoint) -> Result<ReplicationConnection, PgError> {
        let database = endpoint.database.clone().unwrap_or_else(|| endpoint.user.clone());
        let unreachable = |cause: String| PgError::Unreachable { endpoint: endpoint.to_string(), cause };
        let host = endpoint.host_addr.map_or_else(|| endpoint.host.clone(), |address| address.to_string());
        let address = (host.as_str(), endpoint.port);
        let stream = match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(unreachable(error.to_string())),
            Err(_) => return Err(unreachable("no answer within 10 s".to_string())),
        };
        stream.set_nodelay(true).map_err(|error| unreachable(error.to_string()))?;
        let (stream, binding) = secure(stream, endpoint).await?;
        let mut conn = ReplicationConnection {
            stream,
            read_buf: BytesMut::with_capacity(8192),
            endpoint: endpoint.to_string(),
            server_major: 0,
            mechanism: None,
        };

        let options = session::startup_options();
        // Names this process, so that a restart can tell a walsender it left behind (`walsender`).
        let application_name = crate::walsender::application_name();
        let parameters = [
            ("user", endpoint.user.as_str()),
            ("database", database.as_str()),
            ("replication", "database"),
            ("application_name", application_name.as_str()),
            ("client_encoding", "UTF8"),
            ("options", options.as_str()),
        ];
        let mut buf = BytesMut::new();
        frontend::startup_message(parameters.iter().copied(), &mut buf)
            .map_err(|error| unreachable(error.to_string()))?;
        conn.send(&buf, "sending the startup message").await?;

        let context = "authenticating";
        let password = endpoint.password.as_ref().map(|secret| secret.expose().as_bytes());
        let auth_failed = || PgError::AuthFailed { endpoint: endpoint.to_string(), user: endpoint.user.clone() };
        let mut scram: Option<ScramSha256> = None;
        loop {
            let message = conn.receive(context).await?;
            let mut buf = BytesMut::new();
            match message {
                backend::Message::AuthenticationOk => break,
                backend::Message::AuthenticationCleartextPassword => {
                    let password = password.ok_or_else(auth_failed)?;
                    frontend::password_message(password, &mut buf).map_err(|e| conn.lost(context, e))?;
                }
                backend::Message::AuthenticationMd5Password(body) => {
                    let password = password.ok_or_else(auth_failed)?;
                    let hash =
                        postgres_protocol::authentication::md5_hash(endpoint.user.as_bytes(), password, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut buf).map_err(|e| conn.lost(context, e))?;
                }
                backend::Message::AuthenticationSasl(body) => {
                    let password = password.ok_or_else(auth_failed)?;
                    let mut mechanisms = body.mechanisms();
                    let (mut plain, mut plus) = (false, false);
                    while let Some(mechanism) = mechanisms.next().map_err(|e| conn.lost(context, e))? {
                        plain |= mechanism == SCRAM_SHA_256;
                        plus |= mechanism == SCRAM_SHA_256_PLUS;
                    }
                    // Channel binding where the server offers it over TLS (libpq's channel_binding=prefer);
                    // over TLS without it, the client says it could have (a downgrade then fails).
                    let (mechanism, binding) = match binding.clone() {
                        Some(binding) if plus => (SCRAM_SHA_256_PLUS, ChannelBinding::tls_server_end_point(binding)),
                        Some(_) if plain => (SCRAM_SHA_256, ChannelBinding::unrequested()),
                        None if plain => (SCRAM_SHA_256, ChannelBinding::unsupported()),
                        _ => {
                            return Err(PgError::Refused {
                                endpoint: endpoint.to_string(),
                                message: "the server offers no SASL mechanism Passerelle knows (SCRAM-SHA-256)"
                                    .to_string(),
                            })
                        }
                    };
                    let state = ScramSha256::new(password, binding);
                    frontend::sasl_initial_response(mechanism, state.message(), &mut buf)
                        .map_err(|e| conn.lost(context, e))?;
                    conn.mechanism = Some(mechanism);
                    scram = Some(state);
                }
                backend::Message::AuthenticationSaslContinue(body) => {
                    let state = scram.as_mut().ok_or_else(|| conn.lost(context, "SASL continue before SASL start"))?;
                    state.update(body.data()).map_err(|e| conn.lost(context, e))?;
                    frontend::sasl_response(state.message(), &mut buf).map_err(|e| conn.lost(context, e))?;
                }
                backend::Message::AuthenticationSaslFinal(body) => {
                    let state = scram.as_mut().ok_or_else(|| conn.lost(context, "SASL final before SASL start"))?;
                    state.finish(body.data()).map_err(|e| conn.lost(context, e))?;
                    continue;
                }
                backend::Message::ErrorResponse(body) => {
                    let (code, message) = error_fields(&body);
                    return Err(match code.as_str() {
                        "28P01" => auth_failed(),
                        "3D000" => PgError::NoDatabase { endpoint: endpoint.to_string(), database },
                        _ => PgError::Refused { endpoint: endpoint.to_string(), message },
                    });
                }
                _ => return Err(conn.lost(context, "unexpected message during authentication")),
            }
            conn.send(&buf, context).await?;
        }

        // Parameter statuses and the backend key, until the server is ready for a command.
        loop {
            match conn.receive("starting the session").await? {
                backend::Message::ReadyForQuery(_) => break,
                backend::Message::ParameterStatus(body) if body.name().ok() == Some("server_version") => {
                    let version = body.value().unwrap_or("0");
                    conn.server_major = version
                        .split(|c: char| !c.is_ascii_digit())
                        .next()
                        .and_then(|major| major.parse().ok())
                        .unwrap_or(0);
                }
                backend::Message::ErrorResponse(body) => {
                    let (_, message) = error_fields(&body);
                    return Err(PgError::Refused { endpoint: endpoint.to_string(), message });
                }
                _ => {}
            }
        }
        Ok(conn)
    }

    /// Runs one command with the simple query protocol and returns its rows as text.
    pub(crate) async fn simple_query(&mut self, sql: &str, context: &'static str) -> Result<Vec<SimpleRow>, PgError> {
        let mut buf = BytesMut::new();
        frontend::query(sql, &mut buf).map_err(|e| self.lost(context, e))?;
        self.send(&buf, context).await?;
        let mut rows = Vec::new();
        let mut failure = None;
        loop {
            match self.receive(context).await? {
                backend::Message::DataRow(body) => {
                    let mut row = Vec::new();
                    let mut ranges = body.ranges();
                    while let Some(range) = ranges.next().map_err(|e| self.lost(context, e))? {
                        let value = range.map(|range| String::from_utf8_lossy(&body.buffer()[range]).into_owned());
                        row.push(value);
                    }
                    rows.push(row);
                }
                backend::Message::ErrorResponse(body) => {
                    let (code, message) = error_fields(&body);
                    failure = Some(PgError::Replication { endpoint: self.endpoint.clone(), context, code, message });
                }
                backend::Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(rows),
        }
    }

    pub(crate) async fn terminate(mut self) {
        let mut buf = BytesMut::new();
        frontend::terminate(&mut buf);
        // The server may already be gone; closing the socket is all that matters.
        let _ = self.stream.write_all(&buf).await;
        let _ = self.stream.shutdown().await;
    }

    /// Sends `command` (`START_REPLICATION`) and waits for the server to enter COPY BOTH mode, after
    /// which both sides exchange CopyData messages.
    pub(crate) async fn start_copy_both(&mut self, command: &str, context: &'static str) -> Result<(), PgError> {
        let mut buf = BytesMut::new();
        frontend::query(command, &mut buf).map_err(|e| self.lost(context, e))?;
        self.send(&buf, context).await?;
        loop {
            // postgres-protocol does not know CopyBothResponse ('W'), so it is consumed here.
            if let Some(header) = backend::Header::parse(&self.read_buf).map_err(|e| self.lost(context, e))? {
                let total_len = header.len() as usize + 1;
                if header.tag() == b'W' && self.read_buf.len() >= total_len {
                    let _ = self.read_buf.split_to(total_len);
                    return Ok(());
                }
            }
            match self.parse_buffered(context)? {
                Some(backend::Message::ErrorResponse(body)) => {
                    let (code, message) = error_fields(&body);
                    return Err(PgError::Replication { endpoint: self.endpoint.clone(), context, code, message });
                }
                Some(_) => {}
                None => self.fill(context).await?,
            }
        }
    }

    pub(crate) async fn send(&mut self, buf: &[u8], context: &'static str) -> Result<(), PgError> {
        self.stream.write_all(buf).await.map_err(|error| self.lost(context, error))
    }

    pub(crate) async fn receive(&mut self, context: &'static str) -> Result<backend::Message, PgError> {
        loop {
            if let Some(message) = self.parse_buffered(context)? {
                return Ok(message);
            }
            self.fill(context).await?;
        }
    }

    /// The next message if the buffer holds all of it.
    pub(crate) fn parse_buffered(&mut self, context: &'static str) -> Result<Option<backend::Message>, PgError> {
        backend::Message::parse(&mut self.read_buf).map_err(|e| self.lost(context, e))
    }

    /// Reads what the server sent next. Cancel-safe: bytes are buffered only once read.
    pub(crate) async fn fill(&mut self, context: &'static str) -> Result<(), PgError> {
        let n_read = self.stream.read_buf(&mut self.read_buf).await.map_err(|error| self.lost(context, error))?;
        if n_read == 0 {
            return Err(self.lost(context, "the server closed the connection"));
        }
        Ok(())
    }

    pub(crate) fn lost(&self, context: &'static str, cause: impl fmt::Display) -> PgError {
        PgError::ConnectionLost { endpoint: self.endpoint.clone(), context, cause: cause.to_string() }
    }
}

/// The SQLSTATE and the message of an error response.
pub(crate) fn error_fields(body: &backend::ErrorResponseBody) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        match field.type_() {
            b'C' => code = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            _ => {}
        }
    }
    (code, message)
}

/// Where the source's write-ahead log ends now: a cutover streams up to here.
pub async fn current_wal_lsn(client: &Client, endpoint: &impl fmt::Display) -> Result<Lsn, PgError> {
    let row = client
        .query_one("select (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", &[])
        .await
        .map_err(|error| PgError::query(endpoint, "reading the current WAL position", error))?;
    Ok(Lsn(row.get::<_, i64>(0).unsigned_abs()))
}

/// Whether the source has a publication of that name.
pub(crate) async fn publication_exists(
    client: &Client,
    endpoint: &impl fmt::Display,
    publication: &str,
) -> Result<bool, PgError> {
    let row = client
        .query_opt("select 1 from pg_publication where pubname = $1", &[&publication])
        .await
        .map_err(|error| PgError::query(endpoint, "reading pg_publication", error))?;
    Ok(row.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_follow_postgres_rules() {
        assert!(validate_slot_name("passerelle_0a1b2c").is_ok());
        assert!(validate_slot_name("").is_err());
        assert!(validate_slot_name("Upper").is_err());
        assert!(validate_slot_name("x; DROP TABLE t").is_err());
        assert!(validate_slot_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn identifiers_are_quoted() {
        let name = QualifiedName { schema: "public".to_string(), name: "we\"ird".to_string() };
        assert_eq!(quote_qualified(&name), "\"public\".\"we\"\"ird\"");
    }
}
