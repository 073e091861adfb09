//! The keys of the rows the source changed between two moments, read from the source's own WAL: a
//! temporary logical slot of its own (`pgoutput`, the migration's publication) records everything
//! committed after it was created, and at the cutover its changes are peeked up to the cutover LSN
//! and only their keys kept. The cutover's verification re-checks those rows: as the keys come from
//! the source, a change lost between the source and the target (in Kafka, or in the target) is
//! caught. The slot is temporary: it ends with its session, also when the process dies.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use passerelle_model::endpoint::DbEndpoint;
use passerelle_model::event::Lsn;
use passerelle_model::schema::QualifiedName;
use tokio_postgres::Client;

use crate::PgError;

/// A temporary slot watching the source's changes from `from` on.
pub struct KeyWatch {
    client: Client,
    endpoint: String,
    slot: String,
    publication: String,
    /// Everything committed after this position is watched.
    pub from: Lsn,
}

/// Changed rows' keys as text (PostgreSQL's output), once each.
pub type KeySet = BTreeSet<Vec<Option<String>>>;

/// The changed rows' keys, per table.
#[derive(Debug, Default)]
pub struct ChangedKeys {
    /// Per table: its key columns' names (the replica identity), and each changed row's key as text
    /// (PostgreSQL's output), once each.
    pub tables: BTreeMap<QualifiedName, (Vec<String>, KeySet)>,
    /// Tables emptied by TRUNCATE: every row changed.
    pub truncated: BTreeSet<QualifiedName>,
    /// Changes read.
    pub n_changes: u64,
}

impl KeyWatch {
    /// Creates the temporary slot `slot` reading `publication`; its session stays open.
    pub async fn start(endpoint: &DbEndpoint, slot: &str, publication: &str) -> Result<KeyWatch, PgError> {
        let client = crate::connect(endpoint).await?;
        // A logical slot starts once every transaction running on the server (any database) has
        // ended: that wait is not a lock on the application's tables, so no lock timeout.
        client
            .batch_execute("SET lock_timeout = 0")
            .await
            .map_err(|error| PgError::query(endpoint, "setting the session's lock timeout", error))?;
        let row = client
            .query_one(
                "select (lsn - '0/0'::pg_lsn)::bigint from pg_create_logical_replication_slot($1, 'pgoutput', true)",
                &[&slot],
            )
            .await
            .map_err(|error| PgError::query(endpoint, "creating the slot that watches the changed keys", error))?;
        let from = Lsn(row.get::<_, i64>(0).unsigned_abs());
        Ok(KeyWatch {
            client,
            endpoint: endpoint.to_string(),
            slot: slot.to_string(),
            publication: publication.to_string(),
            from,
        })
    }

    /// The keys of every row changed by a transaction that committed before `upto` (and after
    /// the last [`KeyWatch::take_keys_until`]).
    pub async fn keys_until(&self, upto: Lsn) -> Result<ChangedKeys, PgError> {
        self.read("pg_logical_slot_peek_binary_changes", upto).await
    }

    /// [`KeyWatch::keys_until`], after which the watch reads on from `upto`.
    pub async fn take_keys_until(&self, upto: Lsn) -> Result<ChangedKeys, PgError> {
        self.read("pg_logical_slot_get_binary_changes", upto).await
    }

    async fn read(&self, function: &str, upto: Lsn) -> Result<ChangedKeys, PgError> {
        let upto = upto.to_string();
        let sql = format!(
            "select data from {function}($1, $2::text::pg_lsn, null, 'proto_version', '1', 'publication_names', $3)"
        );
        let rows = self
            .client
            .query(&sql, &[&self.slot, &upto, &self.publication])
            .await
            .map_err(|error| PgError::query(&self.endpoint, "reading the changed keys", error))?;
        let mut decoder = KeyDecoder::default();
        for row in rows {
            let data: &[u8] = row.get(0);
            decoder
                .message(data)
                .map_err(|detail| PgError::StreamFormat { endpoint: self.endpoint.clone(), detail })?;
        }
        Ok(decoder.keys)
    }
}

impl fmt::Debug for KeyWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyWatch").field("slot", &self.slot).field("from", &self.from).finish()
    }
}

/// A table as pgoutput's Relation message describes it: its name and which columns are its key.
struct Relation {
    table: QualifiedName,
    key: Vec<usize>,
}

#[derive(Default)]
struct KeyDecoder {
    relations: HashMap<u32, Relation>,
    keys: ChangedKeys,
}

impl KeyDecoder {
    /// One pgoutput message (protocol version 1).
    fn message(&mut self, data: &[u8]) -> Result<(), String> {
        let mut reader = Bytes { data, at: 0 };
        match reader.u8()? {
            b'R' => {
                let oid = reader.u32()?;
                let schema = reader.cstr()?;
                let name = reader.cstr()?;
                reader.u8()?; // replica identity
                let n_columns = reader.u16()?;
                let mut names = Vec::new();
                let mut key = Vec::new();
                for position in 0..usize::from(n_columns) {
                    let flags = reader.u8()?;
                    let column = reader.cstr()?;
                    reader.u32()?; // type
                    reader.u32()?; // type modifier
                    if flags & 1 == 1 {
                        key.push(position);
                        names.push(column);
                    }
                }
                let table = QualifiedName { schema, name };
                self.keys.tables.entry(table.clone()).or_default().0 = names;
                self.relations.insert(oid, Relation { table, key });
            }
            b'I' => {
                let oid = reader.u32()?;
                reader.u8()?; // 'N'
                self.row(oid, &mut reader)?;
            }
            b'U' => {
                let oid = reader.u32()?;
                let mut kind = reader.u8()?;
                if kind == b'K' || kind == b'O' {
                    // The old key, when the update changed it: that row changed too (it is gone).
                    self.row(oid, &mut reader)?;
                    kind = reader.u8()?;
                }
                if kind != b'N' {
                    return Err(format!("an update without its new row ({:?})", char::from(kind)));
                }
                self.row(oid, &mut reader)?;
            }
            b'D' => {
                let oid = reader.u32()?;
                reader.u8()?; // 'K' or 'O'
                self.row(oid, &mut reader)?;
            }
            b'T' => {
                let n_relations = reader.u32()?;
                reader.u8()?;
                for _ in 0..n_relations {
                    let oid = reader.u32()?;
                    let relation = self.relations.get(&oid).ok_or_else(|| format!("a truncate of relation {oid}"))?;
                    self.keys.truncated.insert(relation.table.clone());
                }
            }
            // Begin, Commit, Origin, Type, Message: no row.
            _ => {}
        }
        Ok(())
    }

    /// A tuple of relation `oid`: its key's values go to the changed keys. Without a key (a
    /// keyless table's old row) the whole row is its identity, and so its key.
    fn row(&mut self, oid: u32, reader: &mut Bytes<'_>) -> Result<(), String> {
        let relation =
            self.relations.get(&oid).ok_or_else(|| format!("a change of relation {oid} before its Relation"))?;
        let n_columns = usize::from(reader.u16()?);
        let mut values = Vec::with_capacity(n_columns);
        for _ in 0..n_columns {
            values.push(match reader.u8()? {
                b'n' | b'u' => None,
                b't' | b'b' => {
                    let length = reader.u32()? as usize;
                    Some(String::from_utf8_lossy(reader.take(length)?).into_owned())
                }
                kind => return Err(format!("a tuple value of kind {:?}", char::from(kind))),
            });
        }
        let key: Vec<Option<String>> = relation.key.iter().map(|&i| values.get(i).cloned().flatten()).collect();
        self.keys.n_changes += 1;
        self.keys.tables.entry(relation.table.clone()).or_default().1.insert(key);
        Ok(())
    }
}

struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.data.len()).ok_or("a message cut short")?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn cstr(&mut self) -> Result<String, String> {
        let rest = &self.data[self.at..];
        let end = rest.iter().position(|b| *b == 0).ok_or("a name without its end")?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(text)
    }
}
