//! The change stream: every change committed after the slot's consistent point, read from the slot
//! with pgoutput (protocol version 1) and decoded into [`ChangeEvent`]s.
//!
//! The walsender renders each value with its type's output function under the replication
//! connection's session settings, which are pinned like the copy workers' ([`crate::session`]): a
//! streamed value's text is the snapshot's COPY text for the same value.
//! Formats: <https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html> and
//! <https://www.postgresql.org/docs/current/protocol-replication.html#PROTOCOL-REPLICATION-START-REPLICATION>.
//!
//! Without the `streaming` option pgoutput sends a transaction only once it has committed, whole,
//! between Begin and Commit; Begin names the commit's LSN, so every change carries it unbuffered.
//!
//! The slot advances only through [`ChangeStream::confirm`]: PostgreSQL keeps everything after the
//! confirmed position and sends it again to the next reader, so a caller that confirms only what its
//! destination has made safe repeats changes after a crash instead of losing them.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::event::{ChangeEvent, Lsn, Op, Row};
use passerelle_model::schema::{PgType, QualifiedName, Table};
use postgres_protocol::message::{backend, frontend};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::slot::{error_fields, publication_exists, quote_ident, validate_slot_name, ReplicationConnection};
use crate::{walsender, PgError};

/// How often the server hears the confirmed position even when it does not ask: well within the
/// default `wal_sender_timeout` (60 s), after which the server drops a silent client. Each update asks
/// for a keepalive back, whose WAL end tells an idle stream within a second that it has passed an LSN
/// (a cutover's) that no published change follows.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Items decoded ahead of the caller. Few, for one may hold a TOASTed value of up to 1 GB.
const QUEUED_ITEMS: usize = 64;

const STREAMING: &str = "streaming changes";

/// What [`ChangeStream::next`] hands over, in the order the source committed it.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamItem {
    /// One row changed.
    Change(ChangeEvent),
    /// The end of the transaction whose changes came just before. Confirming `end_lsn` once they
    /// are safe means the slot never sends them again.
    Commit { commit_lsn: Lsn, end_lsn: Lsn },
    /// `TRUNCATE` emptied `tables` (one statement: those it names and, with `CASCADE`, those whose
    /// foreign keys reference them) in the transaction committing at `commit_lsn`, at `lsn` in it.
    Truncate(Truncate),
    /// The server has sent everything it has for now: its WAL ends at `wal_end`. Once every item
    /// before is safe, confirming `wal_end` lets the slot skip WAL that held nothing published
    /// (transactions still open then are sent whole when they commit, later).
    Idle { wal_end: Lsn },
    /// A marker [`emit_marker`] wrote at `lsn`: every transaction that committed before it came
    /// before it. Only from PostgreSQL 14 on, whose pgoutput sends logical decoding messages.
    Marker { lsn: Lsn, content: String },
    /// `table` gained columns at its end, lost some or has new type modifiers, which no version the
    /// stream was given has; `sent` names the columns its changes carry from now on. From the next
    /// item on, its rows have a value for each column of the last version, then each new one, in the
    /// order of `sent`; none for the columns no longer sent. The caller reads the table's new
    /// definition and decides whether the target can follow.
    Altered { table: QualifiedName, sent: Vec<String> },
}

/// The prefix of the logical decoding messages Passerelle writes as markers in the WAL.
const MARKER_PREFIX: &str = "passerelle";

/// Writes `content` in the source's WAL as a logical decoding message outside any transaction (also
/// in a database made read-only), which every stream of the database then sees as a
/// [`StreamItem::Marker`] at its place in the WAL; returns where it was written.
pub async fn emit_marker(client: &Client, endpoint: &impl fmt::Display, content: &str) -> Result<Lsn, PgError> {
    let row = client
        .query_one(
            "select (pg_logical_emit_message(false, $1::text, $2::text) - '0/0'::pg_lsn)::bigint",
            &[&MARKER_PREFIX, &content],
        )
        .await
        .map_err(|error| PgError::query(endpoint, "writing a marker in the WAL", error))?;
    Ok(Lsn(row.get::<_, i64>(0).unsigned_abs()))
}

/// One `TRUNCATE` statement as pgoutput sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct Truncate {
    /// Every table it emptied: with `CASCADE`, pgoutput lists the referencing tables too.
    pub tables: Vec<QualifiedName>,
    pub cascade: bool,
    /// `RESTART IDENTITY`: the tables' owned sequences started over.
    pub restart_identity: bool,
    pub commit_lsn: Lsn,
    /// The statement's own WAL position within its transaction.
    pub lsn: Lsn,
}

/// A slot streaming to Passerelle over a replication connection.
///
/// A task of its own drives the connection: it decodes ahead of the caller into a bounded queue, and
/// keeps telling the server the confirmed position while the caller is busy, for the server drops a
/// client that is silent for `wal_sender_timeout` (60 s by default). Dropping the stream ends it like
/// [`ChangeStream::close`], without waiting.
#[derive(Debug)]
pub struct ChangeStream {
    endpoint: String,
    items: mpsc::Receiver<Result<StreamItem, PgError>>,
    confirmed: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    driver: JoinHandle<Result<(), PgError>>,
}

/// The task behind a [`ChangeStream`], which owns the connection.
#[derive(Debug)]
struct Driver {
    conn: ReplicationConnection,
    publication: String,
    decoder: Decoder,
    confirmed: Arc<AtomicU64>,
    last_status: Instant,
}

/// What decoding needs to remember between messages.
#[derive(Debug)]
struct Decoder {
    /// Each migrated table's versions, oldest first: its columns when the run began, then after each
    /// change the caller accepted. Rows are decoded into the last one's columns.
    tables: HashMap<QualifiedName, Vec<Vec<ExpectedColumn>>>,
    /// Relation messages by relation OID, resolved against `tables`.
    relations: HashMap<u32, Relation>,
    /// Relation messages of tables the migration does not copy, by relation OID.
    unknown: HashMap<u32, QualifiedName>,
    /// The commit LSN of the transaction being received, from its Begin.
    commit_lsn: Option<Lsn>,
    /// The changes of that transaction received so far: the next one's position.
    n_changes: u64,
}

/// A column of a migrated table as the stream must find it.
#[derive(Clone, Debug, PartialEq)]
struct ExpectedColumn {
    name: String,
    /// What Relation messages carry for the column's type.
    type_oid: u32,
    /// The type's modifier as Relation messages carry it, where Passerelle can tell it from the
    /// type (`None`: not compared).
    typmod: Option<i32>,
    generated: bool,
}

/// A Relation message, resolved against the migrated table it describes.
#[derive(Debug, PartialEq)]
struct Relation {
    table: QualifiedName,
    n_columns: usize,
    /// For each column the stream sends, in its order, the column's position in the table.
    positions: Vec<usize>,
    /// Columns the stream does not send, which rows leave unchanged: generated ones, which pgoutput
    /// before PostgreSQL 18 leaves out (the target computes them), columns dropped, and, for a table
    /// described as it was before a change the run carried, the columns added since (the target's
    /// default fills them).
    not_sent: Vec<usize>,
}

/// How a Relation message stands to the versions of its table the stream knows.
#[derive(Debug, PartialEq)]
enum Resolved {
    /// One of them.
    Known(Relation),
    /// The last one with columns added at its end, columns no longer sent or new type modifiers: a
    /// new version.
    Altered(Relation, Vec<ExpectedColumn>),
}

impl ChangeStream {
    /// Streams `slot` from `from` (or from where the slot was last confirmed, if that is later),
    /// decoding the changes that `publication` publishes of `tables`, which must be every table the
    /// publication holds, with the columns they had when the migration read them.
    ///
    /// `altered` are the later versions of some of those tables, in the order they were met: a
    /// Relation message that matches any version of its table is no news (a stream that starts
    /// again before a change sends the older ones first).
    pub async fn start(
        endpoint: &DbEndpoint,
        slot: &str,
        publication: &str,
        from: Lsn,
        tables: &[Table],
        altered: &[Table],
    ) -> Result<ChangeStream, PgError> {
        validate_slot_name(slot)?;
        let expected = expected_columns(endpoint, publication, tables, altered).await?;
        // publication_names is a string holding a list of identifiers: the name is quoted twice.
        let names = quote_ident(publication).replace('\'', "''");
        let mut released = false;
        let conn = loop {
            let mut conn = ReplicationConnection::open(endpoint).await?;
            // Markers (`emit_marker`) travel as messages, which pgoutput sends from PostgreSQL 14 on.
            let messages = if conn.server_major >= 14 { ", messages 'true'" } else { "" };
            let command = format!(
                "START_REPLICATION SLOT {slot} LOGICAL {from} (proto_version '1', publication_names '{names}'{messages})"
            );
            let Err(error) = conn.start_copy_both(&command, "starting the change stream").await else { break conn };
            conn.terminate().await;
            let (endpoint_name, slot_name) = (endpoint.to_string(), slot.to_string());
            return Err(match error {
                PgError::Replication { code, .. } if code == SqlState::UNDEFINED_OBJECT.code() => {
                    PgError::SlotMissing { endpoint: endpoint_name, slot: slot_name }
                }
                PgError::Replication { code, .. } if code == SqlState::OBJECT_IN_USE.code() => {
                    // A walsender left by a Passerelle process that died is ended, once; any other
                    // holder is named.
                    let client = crate::connect(endpoint).await?;
                    let holder = walsender::release_stale(&client, &endpoint_name, slot).await?;
                    match holder {
                        None if !released => {
                            released = true;
                            continue;
                        }
                        holder => PgError::SlotInUse {
                            endpoint: endpoint_name,
                            slot: slot_name,
                            holder: holder.map_or_else(|| "a walsender that just ended".to_string(), |h| h.to_string()),
                        },
                    }
                }
                // An invalidated slot answers 55000, "can no longer get changes from replication slot".
                error @ PgError::Replication { .. } => {
                    let client = crate::connect(endpoint).await?;
                    match crate::slot::slot_info(&client, &endpoint_name, slot).await? {
                        Some(info) if info.lost => {
                            PgError::SlotInvalidated { endpoint: endpoint_name, slot: slot_name }
                        }
                        _ => error,
                    }
                }
                error => error,
            });
        };
        tracing::info!(slot, lsn = %from, "streaming changes");
        let confirmed = Arc::new(AtomicU64::new(0));
        let driver = Driver {
            conn,
            publication: publication.to_string(),
            decoder: Decoder {
                tables: expected,
                relations: HashMap::new(),
                unknown: HashMap::new(),
                commit_lsn: None,
                n_changes: 0,
            },
            confirmed: confirmed.clone(),
            last_status: Instant::now(),
        };
        let (sender, items) = mpsc::channel(QUEUED_ITEMS);
        let (stop, stopped) = oneshot::channel();
        Ok(ChangeStream {
            endpoint: endpoint.to_string(),
            items,
            confirmed,
            stop: Some(stop),
            driver: tokio::spawn(driver.run(sender, stopped)),
        })
    }

    /// The next item, or `None` when nothing arrived within `wait`. After an error the stream is
    /// over: close it, and start another to go on.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<StreamItem>, PgError> {
        match tokio::time::timeout(wait, self.items.recv()).await {
            Err(_) => Ok(None),
            Ok(Some(item)) => item.map(Some),
            Ok(None) => Err(PgError::ConnectionLost {
                endpoint: self.endpoint.clone(),
                context: STREAMING,
                cause: "the stream has ended".to_string(),
            }),
        }
    }

    /// Lets the slot forget everything up to `lsn`: a [`StreamItem::Commit`]'s `end_lsn` once that
    /// transaction and all before it are safe at the destination, or a [`StreamItem::Idle`]'s
    /// `wal_end` once every item before it is (and none of a transaction whose commit is to come). Never moves back. The server hears
    /// of it within a second, and on [`ChangeStream::close`].
    pub fn confirm(&self, lsn: Lsn) {
        self.confirmed.fetch_max(lsn.0, Ordering::Relaxed);
    }

    /// Tells the server the confirmed position, ends the stream and the connection.
    pub async fn close(mut self) -> Result<(), PgError> {
        if let Some(stop) = self.stop.take() {
            // Fails only when the task has already ended, which is what is wanted.
            let _ = stop.send(());
        }
        match (&mut self.driver).await {
            Ok(result) => result,
            Err(error) => Err(PgError::ConnectionLost {
                endpoint: self.endpoint.clone(),
                context: "ending the change stream",
                cause: error.to_string(),
            }),
        }
    }
}

impl Driver {
    /// Streams until stopped (or until nobody receives), then ends the stream politely; after an
    /// error, hands it over and ends the connection.
    async fn run(
        mut self,
        items: mpsc::Sender<Result<StreamItem, PgError>>,
        mut stop: oneshot::Receiver<()>,
    ) -> Result<(), PgError> {
        let error = match self.stream(&items, &mut stop).await {
            Ok(()) => return self.close().await,
            Err(error) => error,
        };
        self.conn.terminate().await;
        tokio::select! {
            permit = items.reserve() => match permit {
                Ok(permit) => {
                    permit.send(Err(error));
                    Ok(())
                }
                Err(_) => Err(error),
            },
            _ = &mut stop => Err(error),
        }
    }

    /// Hands over items while the queue has room, and answers the server in any case.
    async fn stream(
        &mut self,
        items: &mpsc::Sender<Result<StreamItem, PgError>>,
        stop: &mut oneshot::Receiver<()>,
    ) -> Result<(), PgError> {
        loop {
            // Nothing more is read while the queue is full, so the server waits with the rest.
            let permit = tokio::select! {
                _ = &mut *stop => return Ok(()),
                _ = tokio::time::sleep_until(self.last_status + STATUS_INTERVAL) => {
                    self.send_status().await?;
                    continue;
                }
                permit = items.reserve() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return Ok(()),
                },
            };
            let item = loop {
                if let Some(message) = self.conn.parse_buffered(STREAMING)? {
                    match self.handle(message).await? {
                        Some(item) => break item,
                        None => continue,
                    }
                }
                tokio::select! {
                    _ = &mut *stop => return Ok(()),
                    _ = tokio::time::sleep_until(self.last_status + STATUS_INTERVAL) => self.send_status().await?,
                    filled = self.conn.fill(STREAMING) => filled?,
                }
            };
            permit.send(Ok(item));
        }
    }

    /// Tells the server the confirmed position, ends the stream and the connection.
    async fn close(mut self) -> Result<(), PgError> {
        let context = "ending the change stream";
        self.send_status().await?;
        let mut buf = BytesMut::new();
        frontend::copy_done(&mut buf);
        self.conn.send(&buf, context).await?;
        // The server answers with its own CopyDone, then ends the command; changes it was sending
        // meanwhile are dropped, and sent again to the next reader.
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match self.conn.receive(context).await? {
                    backend::Message::ReadyForQuery(_) => return Ok(()),
                    backend::Message::ErrorResponse(body) => {
                        let (code, message) = error_fields(&body);
                        let endpoint = self.conn.endpoint.clone();
                        return Err(PgError::Replication { endpoint, context, code, message });
                    }
                    _ => {}
                }
            }
        })
        .await;
        let result = match drained {
            Ok(result) => result,
            Err(_) => Err(self.conn.lost(context, "the server did not end the stream within 10 s")),
        };
        self.conn.terminate().await;
        result
    }

    async fn handle(&mut self, message: backend::Message) -> Result<Option<StreamItem>, PgError> {
        match message {
            backend::Message::CopyData(body) => {
                let mut reader = Reader { data: body.data(), endpoint: &self.conn.endpoint };
                match reader.u8()? {
                    // XLogData: the WAL start and end and the server's clock, then one pgoutput message.
                    // The start of a change's message is the change's own WAL position (logical
                    // decoding writes each change at its record's LSN, in LSN order within the
                    // transaction), which orders a TRUNCATE among the writes of its transaction.
                    b'w' => {
                        let start = Lsn(reader.u64()?);
                        reader.take(16)?;
                        self.decoder.decode(&mut reader, start)
                    }
                    // Primary keepalive: the server's WAL end, its clock, whether it wants an answer now.
                    b'k' => {
                        let wal_end = Lsn(reader.u64()?);
                        reader.take(8)?;
                        if reader.u8()? == 1 {
                            self.send_status().await?;
                        }
                        Ok(Some(StreamItem::Idle { wal_end }))
                    }
                    kind => Err(reader.invalid(format!("unknown replication message {:?}", char::from(kind)))),
                }
            }
            backend::Message::ErrorResponse(body) => {
                let (code, message) = error_fields(&body);
                let endpoint = self.conn.endpoint.clone();
                // PostgreSQL 15 looks the publication up when it decodes the first change.
                if code == SqlState::UNDEFINED_OBJECT.code() && message.contains("publication") {
                    return Err(PgError::PublicationMissing { endpoint, publication: self.publication.clone() });
                }
                // Class 57, operator intervention: the walsender was terminated or the server shuts down.
                if code.starts_with("57") {
                    return Err(self.conn.lost(STREAMING, message));
                }
                Err(PgError::Replication { endpoint, context: STREAMING, code, message })
            }
            backend::Message::CopyDone => Err(self.conn.lost(STREAMING, "the server ended the stream")),
            backend::Message::NoticeResponse(_) | backend::Message::ParameterStatus(_) => Ok(None),
            _ => Err(self.conn.lost(STREAMING, "unexpected message in the stream")),
        }
    }

    /// A Standby Status Update: everything up to the confirmed position is written, flushed and applied.
    async fn send_status(&mut self) -> Result<(), PgError> {
        let since_unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let clock = i64::try_from(since_unix.as_micros()).unwrap_or(i64::MAX) - PG_EPOCH_MICROS;
        let confirmed = self.confirmed.load(Ordering::Relaxed);
        let mut body = BytesMut::with_capacity(34);
        body.put_u8(b'r');
        for _ in 0..3 {
            body.put_u64(confirmed);
        }
        body.put_i64(clock);
        body.put_u8(1); // a keepalive back, please: see STATUS_INTERVAL
        let mut buf = BytesMut::new();
        frontend::CopyData::new(body.freeze()).map_err(|error| self.conn.lost(STREAMING, error))?.write(&mut buf);
        self.conn.send(&buf, "sending the confirmed position").await?;
        self.last_status = Instant::now();
        Ok(())
    }
}

impl Decoder {
    /// One pgoutput message, which starts at `lsn` in the WAL; a change gets its place in its transaction.
    fn decode(&mut self, reader: &mut Reader, lsn: Lsn) -> Result<Option<StreamItem>, PgError> {
        let mut item = self.decode_message(reader, lsn)?;
        if let Some(StreamItem::Change(change)) = &mut item {
            change.position = Some(self.n_changes);
            self.n_changes += 1;
        }
        Ok(item)
    }

    fn decode_message(&mut self, reader: &mut Reader, lsn: Lsn) -> Result<Option<StreamItem>, PgError> {
        match reader.u8()? {
            b'B' => {
                self.commit_lsn = Some(Lsn(reader.u64()?));
                self.n_changes = 0;
                Ok(None)
            }
            b'C' => {
                reader.u8()?; // flags, unused
                let commit_lsn = Lsn(reader.u64()?);
                let end_lsn = Lsn(reader.u64()?);
                self.commit_lsn = None;
                Ok(Some(StreamItem::Commit { commit_lsn, end_lsn }))
            }
            b'R' => self.relation(reader),
            b'I' => {
                let relation = self.relation_of(reader)?;
                reader.expect(b'N')?;
                let (after, toasted) = read_tuple(reader, relation)?;
                Ok(Some(self.change(relation, Op::Create, None, Some((after, toasted)), lsn, reader)?))
            }
            b'U' => {
                let relation = self.relation_of(reader)?;
                let mut before = None;
                let mut kind = reader.u8()?;
                // 'K': the old key, when the update changed it; 'O': the old row (REPLICA IDENTITY FULL).
                if kind == b'K' || kind == b'O' {
                    before = Some(read_old_tuple(reader, relation)?);
                    kind = reader.u8()?;
                }
                if kind != b'N' {
                    return Err(reader.invalid(format!("an update of {} has no new row", relation.table)));
                }
                let after = read_tuple(reader, relation)?;
                Ok(Some(self.change(relation, Op::Update, before, Some(after), lsn, reader)?))
            }
            b'D' => {
                let relation = self.relation_of(reader)?;
                match reader.u8()? {
                    b'K' | b'O' => {}
                    _ => return Err(reader.invalid(format!("a delete from {} has no old row", relation.table))),
                }
                let before = read_old_tuple(reader, relation)?;
                Ok(Some(self.change(relation, Op::Delete, Some(before), None, lsn, reader)?))
            }
            b'T' => {
                let n_relations = reader.u32()?;
                // Bit 1: CASCADE, bit 2: RESTART IDENTITY.
                let options = reader.u8()?;
                let mut tables = Vec::new();
                for _ in 0..n_relations {
                    tables.push(self.relation_of(reader)?.table.clone());
                }
                Ok(Some(StreamItem::Truncate(Truncate {
                    tables,
                    cascade: options & 1 != 0,
                    restart_identity: options & 2 != 0,
                    commit_lsn: self.commit_lsn(reader)?,
                    lsn,
                })))
            }
            b'M' => {
                let transactional = reader.u8()? & 1 != 0;
                let lsn = Lsn(reader.u64()?);
                let prefix = reader.cstr()?;
                let len = reader.u32()? as usize;
                // Other programs' messages, and transactional ones, which no marker is.
                if transactional || prefix != MARKER_PREFIX {
                    return Ok(None);
                }
                Ok(Some(StreamItem::Marker { lsn, content: reader.text(len)? }))
            }
            // Type (sent before a Relation that uses a non-built-in type) and Origin: nothing a
            // migration carries.
            b'Y' | b'O' => Ok(None),
            kind => Err(reader.invalid(format!("unknown pgoutput message {:?}", char::from(kind)))),
        }
    }

    /// Records a Relation message, which comes before the first change of each table in a session
    /// and again after the table's definition changed.
    fn relation(&mut self, reader: &mut Reader) -> Result<Option<StreamItem>, PgError> {
        let relation_oid = reader.u32()?;
        let schema = reader.cstr()?;
        let name = reader.cstr()?;
        reader.u8()?; // the replica identity, which the old rows show
        let n_columns = reader.u16()?;
        let mut streamed = Vec::with_capacity(usize::from(n_columns));
        for _ in 0..n_columns {
            reader.u8()?; // flags: part of the key
            let name = reader.cstr()?;
            let type_oid = reader.u32()?;
            let typmod = reader.u32()? as i32;
            streamed.push(StreamedColumn { name, type_oid, typmod });
        }
        // pgoutput sends an empty schema for pg_catalog.
        let schema = if schema.is_empty() { "pg_catalog".to_string() } else { schema };
        let table = QualifiedName { schema, name };
        let endpoint = reader.endpoint.to_string();
        let Some(versions) = self.tables.get_mut(&table) else {
            // Not a failure yet: before the root's changes, PostgreSQL 13 to 15 also describe the
            // partition they happened in (`publish_via_partition_root`). A change of it is one.
            self.unknown.insert(relation_oid, table);
            return Ok(None);
        };
        let resolved = resolve(&table, versions, &streamed).map_err(|detail| PgError::TableChanged {
            endpoint,
            table: table.to_string(),
            detail,
        })?;
        self.unknown.remove(&relation_oid);
        let (relation, item) = match resolved {
            Resolved::Known(relation) => (relation, None),
            Resolved::Altered(relation, version) => {
                versions.push(version);
                let sent = streamed.into_iter().map(|column| column.name).collect();
                (relation, Some(StreamItem::Altered { table, sent }))
            }
        };
        self.relations.insert(relation_oid, relation);
        Ok(item)
    }

    fn relation_of(&self, reader: &mut Reader) -> Result<&Relation, PgError> {
        let relation_oid = reader.u32()?;
        if let Some(table) = self.unknown.get(&relation_oid) {
            let endpoint = reader.endpoint.to_string();
            return Err(PgError::UnexpectedTable { endpoint, table: table.to_string() });
        }
        self.relations
            .get(&relation_oid)
            .ok_or_else(|| reader.invalid(format!("a change of relation {relation_oid} before its Relation message")))
    }

    fn commit_lsn(&self, reader: &Reader) -> Result<Lsn, PgError> {
        self.commit_lsn.ok_or_else(|| reader.invalid("a change outside a transaction".to_string()))
    }

    fn change(
        &self,
        relation: &Relation,
        op: Op,
        before: Option<Row>,
        after: Option<(Row, Vec<usize>)>,
        lsn: Lsn,
        reader: &Reader,
    ) -> Result<StreamItem, PgError> {
        let mut unchanged = Vec::new();
        let after = after.map(|(row, toasted)| {
            unchanged = [toasted, relation.not_sent.clone()].concat();
            unchanged.sort_unstable();
            row
        });
        Ok(StreamItem::Change(ChangeEvent {
            table: relation.table.clone(),
            op,
            before,
            after,
            unchanged,
            commit_lsn: self.commit_lsn(reader)?,
            lsn,
            position: None,
        }))
    }
}

/// The migrated tables as the stream must find them, each column's type resolved to the OID that
/// Relation messages carry. Also checks that the publication exists, which PostgreSQL 15 would
/// report only when it decodes the first change.
async fn expected_columns(
    endpoint: &DbEndpoint,
    publication: &str,
    tables: &[Table],
    altered: &[Table],
) -> Result<HashMap<QualifiedName, Vec<Vec<ExpectedColumn>>>, PgError> {
    let client = crate::connect(endpoint).await?;
    let error = |context: &'static str| move |source| PgError::query(endpoint, context, source);
    if !publication_exists(&client, endpoint, publication).await? {
        return Err(PgError::PublicationMissing {
            endpoint: endpoint.to_string(),
            publication: publication.to_string(),
        });
    }
    // The catalog read each type as format_type printed it, which reads back as the same type.
    let versions = || tables.iter().chain(altered);
    let displays: Vec<&str> =
        versions().flat_map(|table| &table.columns).map(|column| column.data_type.display.as_str()).collect();
    let rows = client
        .query("select t::regtype::oid from unnest($1::text[]) with ordinality as d(t, n) order by n", &[&displays])
        .await
        .map_err(error("resolving the tables' column types"))?;
    let mut type_oids = rows.iter().map(|row| row.get::<_, u32>(0));
    let mut expected: HashMap<QualifiedName, Vec<Vec<ExpectedColumn>>> = HashMap::new();
    for table in versions() {
        let columns = table
            .columns
            .iter()
            .zip(type_oids.by_ref())
            .map(|(column, type_oid)| ExpectedColumn {
                name: column.name.clone(),
                type_oid,
                typmod: typmod(&column.data_type.base),
                generated: column.generated.is_some(),
            })
            .collect();
        expected.entry(table.name.clone()).or_default().push(columns);
    }
    Ok(expected)
}

/// A column as a Relation message describes it.
#[derive(Debug)]
struct StreamedColumn {
    name: String,
    type_oid: u32,
    /// `atttypmod`: a length, a precision and scale, or -1 for none.
    typmod: i32,
}

/// The type modifier PostgreSQL stores for a type the catalog parsed: `varchar(10)` is 14 (the
/// length plus the 4-byte varlena header), `numeric(8,2)` is `(8 << 16 | 2) + 4`, `timestamp(3)`
/// is 3; -1 without one. `None` where Passerelle does not model the modifier (an interval's fields).
fn typmod(base: &PgType) -> Option<i32> {
    const VARHDRSZ: i32 = 4;
    let n = |n: &Option<u32>| n.map_or(-1, |n| n as i32);
    Some(match base {
        PgType::Varchar(length) | PgType::Char(length) => length.map_or(-1, |length| length as i32 + VARHDRSZ),
        PgType::Numeric(scale) => {
            scale.map_or(-1, |(precision, scale)| ((precision as i32) << 16 | (scale & 0x7ff)) + VARHDRSZ)
        }
        PgType::Time(precision) | PgType::TimeTz(precision) | PgType::Timestamp(precision) => n(precision),
        PgType::TimestampTz(precision) | PgType::Bit(precision) | PgType::VarBit(precision) => n(precision),
        PgType::Interval(_) | PgType::Domain(_) | PgType::Other(_) | PgType::Range { .. } => return None,
        _ => -1,
    })
}

/// Maps the streamed columns onto the table's last version by name: as a version the stream knows,
/// or as a new one (columns added at the end or no longer sent, type modifiers changed: its columns
/// not sent stay, for the caller to tell a dropped column from a renamed one), or says how the table
/// changed that the stream cannot follow (a column's type).
///
/// A stream that starts again before a change describes the table as it was: the columns added since
/// are not sent (the target's default fills them in a new row), and each type modifier is one that
/// some version had.
fn resolve(
    table: &QualifiedName,
    versions: &[Vec<ExpectedColumn>],
    streamed: &[StreamedColumn],
) -> Result<Resolved, String> {
    let last = versions.last().expect("a table has the version the run began with");
    let n_original = versions[0].len();
    let mut next = last.clone();
    let mut positions = Vec::with_capacity(streamed.len());
    let mut known = true;
    for column in streamed {
        let name = &column.name;
        let position = match next.iter().position(|expected| &expected.name == name) {
            Some(position) => {
                let was = &mut next[position];
                if was.type_oid != column.type_oid {
                    return Err(format!("column {name:?} has a new type"));
                }
                let had = |version: &Vec<ExpectedColumn>| {
                    version.get(position).is_some_and(|c| c.typmod.is_none_or(|typmod| typmod == column.typmod))
                };
                known &= versions.iter().any(had);
                if was.typmod.is_some() {
                    was.typmod = Some(column.typmod);
                }
                position
            }
            None => {
                known = false;
                let typmod = Some(column.typmod);
                next.push(ExpectedColumn { name: name.clone(), type_oid: column.type_oid, typmod, generated: false });
                next.len() - 1
            }
        };
        positions.push(position);
    }
    // Columns not sent that the run began with, or that a known version had: dropped, or renamed.
    let gone = last.iter().enumerate().any(|(position, column)| !column.generated && !positions.contains(&position));
    let added_since = |position: usize| position >= n_original;
    known &= !gone || (0..last.len()).all(|p| positions.contains(&p) || last[p].generated || added_since(p));
    let n_columns = if known { last.len() } else { next.len() };
    let relation = Relation {
        table: table.clone(),
        n_columns,
        not_sent: (0..n_columns).filter(|position| !positions.contains(position)).collect(),
        positions,
    };
    Ok(if known { Resolved::Known(relation) } else { Resolved::Altered(relation, next) })
}

/// A row (TupleData) in table column order, and the positions of unchanged TOASTed values it left out.
fn read_tuple(reader: &mut Reader, relation: &Relation) -> Result<(Row, Vec<usize>), PgError> {
    let n_streamed = usize::from(reader.u16()?);
    if n_streamed != relation.positions.len() {
        let n_expected = relation.positions.len();
        return Err(reader.invalid(format!("a row of {} has {n_streamed} columns, not {n_expected}", relation.table)));
    }
    let mut row = vec![None; relation.n_columns];
    let mut toasted = Vec::new();
    for &position in &relation.positions {
        match reader.u8()? {
            b'n' => {}
            b'u' => toasted.push(position),
            b't' => {
                let len = reader.u32()? as usize;
                row[position] = Some(reader.text(len)?);
            }
            kind => return Err(reader.invalid(format!("unknown value kind {:?}", char::from(kind)))),
        }
    }
    Ok((row, toasted))
}

/// An old row: the replica identity's columns (the others `None`), or every column. PostgreSQL logs
/// them detoasted, so none may be left out.
fn read_old_tuple(reader: &mut Reader, relation: &Relation) -> Result<Row, PgError> {
    let (row, toasted) = read_tuple(reader, relation)?;
    if !toasted.is_empty() {
        return Err(reader.invalid(format!("an old row of {} leaves a value out", relation.table)));
    }
    Ok(row)
}

/// Reads the big-endian fields of one message.
struct Reader<'a> {
    data: &'a [u8],
    endpoint: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], PgError> {
        if self.data.len() < len {
            return Err(self.invalid(format!("a message ends {} bytes early", len - self.data.len())));
        }
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PgError> {
        let mut bytes = [0; N];
        bytes.copy_from_slice(self.take(N)?);
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, PgError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PgError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, PgError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, PgError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn expect(&mut self, kind: u8) -> Result<(), PgError> {
        match self.u8()? {
            found if found == kind => Ok(()),
            found => Err(self.invalid(format!("expected {:?}, found {:?}", char::from(kind), char::from(found)))),
        }
    }

    fn text(&mut self, len: usize) -> Result<String, PgError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.invalid("a value is not UTF-8".to_string()))
    }

    /// A NUL-terminated string.
    fn cstr(&mut self) -> Result<String, PgError> {
        let Some(len) = memchr::memchr(0, self.data) else {
            return Err(self.invalid("a name has no terminating NUL".to_string()));
        };
        let text = self.text(len)?;
        self.take(1)?;
        Ok(text)
    }

    fn invalid(&self, detail: String) -> PgError {
        PgError::StreamFormat { endpoint: self.endpoint.to_string(), detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, type_oid: u32, base: PgType, generated: bool) -> ExpectedColumn {
        ExpectedColumn { name: name.to_string(), type_oid, typmod: typmod(&base), generated }
    }

    fn original() -> Vec<ExpectedColumn> {
        vec![
            column("id", 23, PgType::Integer, false),
            column("twice", 23, PgType::Integer, true),
            column("note", 1043, PgType::Varchar(Some(10)), false),
            column("amount", 1700, PgType::Numeric(Some((8, 2))), false),
        ]
    }

    fn check(versions: &[Vec<ExpectedColumn>], streamed: &[(&str, u32, i32)]) -> Result<Resolved, String> {
        let table = QualifiedName { schema: "public".to_string(), name: "t".to_string() };
        let streamed: Vec<StreamedColumn> = streamed
            .iter()
            .map(|&(name, type_oid, typmod)| StreamedColumn { name: name.to_string(), type_oid, typmod })
            .collect();
        resolve(&table, versions, &streamed)
    }

    fn known(n_columns: usize, positions: &[usize], not_sent: &[usize]) -> Result<Resolved, String> {
        let table = QualifiedName { schema: "public".to_string(), name: "t".to_string() };
        Ok(Resolved::Known(Relation { table, n_columns, positions: positions.to_vec(), not_sent: not_sent.to_vec() }))
    }

    const ID: (&str, u32, i32) = ("id", 23, -1);
    const NOTE: (&str, u32, i32) = ("note", 1043, 14);
    const AMOUNT: (&str, u32, i32) = ("amount", 1700, (8 << 16 | 2) + 4);

    #[test]
    fn streamed_columns_map_to_the_table_by_name() {
        let versions = [original()];
        assert_eq!(check(&versions, &[NOTE, ID, AMOUNT]), known(4, &[2, 0, 3], &[1]));
        assert_eq!(check(&versions, &[ID, ("twice", 23, -1), NOTE, AMOUNT]), known(4, &[0, 1, 2, 3], &[]));
        assert_eq!(check(&versions, &[("id", 20, -1), NOTE, AMOUNT]), Err("column \"id\" has a new type".to_string()));
    }

    /// A column no longer sent (dropped, or renamed: the caller tells which) keeps its place, empty.
    #[test]
    fn columns_no_longer_sent_make_a_new_version_that_keeps_them() {
        let Ok(Resolved::Altered(relation, version)) = check(&[original()], &[ID, AMOUNT]) else {
            panic!("not altered")
        };
        assert_eq!((relation.n_columns, relation.positions, relation.not_sent), (4, vec![0, 3], vec![1, 2]));
        assert_eq!(version, original());
        let Ok(Resolved::Altered(relation, version)) = check(&[original()], &[ID, ("remark", 1043, 14), AMOUNT]) else {
            panic!("not altered")
        };
        assert_eq!((relation.n_columns, relation.positions, relation.not_sent), (5, vec![0, 4, 3], vec![1, 2]));
        assert_eq!(version[4].name, "remark");
    }

    /// Columns added at the end and new modifiers make a new version; a stream that starts over before
    /// the change describes the table as it was, which decodes into the new version's columns.
    #[test]
    fn added_columns_and_new_modifiers_are_a_new_version_and_older_ones_stay_known() {
        let Ok(Resolved::Altered(relation, version)) =
            check(&[original()], &[ID, ("note", 1043, 104), AMOUNT, ("extra", 25, -1)])
        else {
            panic!("not a new version")
        };
        assert_eq!((relation.n_columns, relation.positions, relation.not_sent), (5, vec![0, 2, 3, 4], vec![1]));
        assert_eq!(version[2].typmod, Some(104));
        assert_eq!((version[4].name.as_str(), version[4].type_oid, version[4].typmod), ("extra", 25, Some(-1)));
        let versions = [original(), version];
        assert_eq!(check(&versions, &[ID, NOTE, AMOUNT]), known(5, &[0, 2, 3], &[1, 4]));
        assert_eq!(
            check(&versions, &[ID, ("note", 1043, 104), AMOUNT, ("extra", 25, -1)]),
            known(5, &[0, 2, 3, 4], &[1])
        );
        // Neither version: the length changed again.
        assert!(matches!(
            check(&versions, &[ID, ("note", 1043, 24), AMOUNT, ("extra", 25, -1)]),
            Ok(Resolved::Altered(..))
        ));
        assert_eq!(typmod(&PgType::Numeric(Some((5, -2)))), Some((5 << 16 | 0x7fe) + 4));
    }
}
