//! The wire format: Debezium's change-event envelope, so that Kafka Connect and Debezium's sinks can
//! read Passerelle's topics, in one of two encodings (docs/wire-format.md):
//!
//! - `json-compact` (the default, here): Kafka Connect JSON with schemas off. Key: a JSON object of
//!   the primary-key columns, `{"flight_id":"1"}`; no key for tables without one. Value:
//!   `{"before":…,"after":…,"source":{…,"lsn":…,"snapshot":"true"},"op":"r","ts_ms":…}`. Every
//!   column value is PostgreSQL's text output (see `model::event`) or JSON null, which keeps
//!   numerics, times, geometry and arrays exact; the sink converts them to the target's types.
//! - `json` (`connect_json`): the same envelope with its Kafka Connect schema embedded and each
//!   value in Debezium's representation for its PostgreSQL type, what a Debezium JDBC sink reads.
//!
//! [`decode`] reads both, telling them apart by the event's first key. The snapshot may travel in a
//! compact form instead, batches of rows as COPY text (`copy_batch`).
//!
//! This is the only module that knows the wire format (architecture invariant).

mod connect_json;
pub mod copy_batch;
mod pg_text;

/// Dates from days since 1970: also what `cli` stamps its reports with, rather than a second copy.
pub use pg_text::Civil;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use passerelle_model::event::{Lsn, Op, Row};
use passerelle_model::schema::{ColumnType, EnumType, QualifiedName};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `source.version` of every event Passerelle writes.
pub const FORMAT_VERSION: &str = concat!("passerelle-", env!("CARGO_PKG_VERSION"));

/// How events are written to Kafka; [`decode`] reads either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// Debezium's envelope, schemas off, every value PostgreSQL's text.
    #[default]
    JsonCompact,
    /// Debezium's envelope with its schema embedded, values in Debezium's representations.
    Json,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::JsonCompact => "json-compact",
            Encoding::Json => "json",
        })
    }
}

impl FromStr for Encoding {
    type Err = String;

    fn from_str(text: &str) -> Result<Encoding, String> {
        match text {
            "json-compact" => Ok(Encoding::JsonCompact),
            "json" => Ok(Encoding::Json),
            _ => Err(format!("unknown encoding {text:?}: expected json-compact or json")),
        }
    }
}

/// What the encoder and decoder know about one table and its topic.
#[derive(Clone, Debug)]
pub struct TableLayout {
    pub schema: String,
    pub table: String,
    pub topic: String,
    pub columns: Vec<String>,
    /// Positions in `columns` of the primary key; empty when the table has none.
    pub key: Vec<usize>,
    positions: HashMap<String, usize>,
    /// Positions of the columns an event may lack: added during the run (events written before lack
    /// them) or dropped (events written after).
    optional: Vec<usize>,
    /// The columns' types, in column order; empty unless [`TableLayout::with_encoding`] gave them.
    types: Vec<ColumnType>,
    enum_labels: HashMap<QualifiedName, Vec<String>>,
    /// Present for the `json` encoding.
    connect: Option<connect_json::ConnectLayout>,
}

impl TableLayout {
    pub fn new(schema: String, table: String, topic: String, columns: Vec<String>, key: Vec<usize>) -> TableLayout {
        let positions = columns.iter().enumerate().map(|(i, name)| (name.clone(), i)).collect();
        TableLayout {
            schema,
            table,
            topic,
            optional: Vec::new(),
            columns,
            key,
            positions,
            types: Vec::new(),
            enum_labels: HashMap::new(),
            connect: None,
        }
    }

    /// Chooses the encoding [`try_encode`] writes. `types` are the columns' types in column order
    /// (with domains resolved to their base type, which Debezium represents them by); `json` needs
    /// them, and [`decode`] uses them to read foreign `json` events exactly (money).
    ///
    /// # Panics
    /// When `types` does not have one type per column.
    pub fn with_encoding(mut self, encoding: Encoding, types: Vec<ColumnType>) -> TableLayout {
        assert_eq!(types.len(), self.columns.len(), "one type per column of {}.{}", self.schema, self.table);
        self.types = types;
        self.connect = (encoding == Encoding::Json).then(|| connect_json::ConnectLayout::new(&self));
        self
    }

    /// The labels of the enum types among the columns, which `json` declares as Debezium does
    /// (`io.debezium.data.Enum`'s `allowed` parameter).
    pub fn with_enum_labels(mut self, enums: &[EnumType]) -> TableLayout {
        self.enum_labels = enums.iter().map(|e| (e.name.clone(), e.labels.clone())).collect();
        if self.connect.is_some() {
            self.connect = Some(connect_json::ConnectLayout::new(&self));
        }
        self
    }

    /// Says which columns were added or dropped during the run (`cli::altered`), by position:
    /// [`decode`] reads an event that lacks them as leaving them unchanged.
    pub fn with_optional_columns(mut self, optional: Vec<usize>) -> TableLayout {
        self.optional = optional;
        self
    }

    /// The partition every event of the table goes to, when the key does not choose: a table without
    /// a key has no per-key order to keep, so one partition keeps all its events in order.
    pub fn fixed_partition(&self) -> Option<i32> {
        self.key.is_empty().then_some(0)
    }

    pub fn encoding(&self) -> Encoding {
        if self.connect.is_some() {
            Encoding::Json
        } else {
            Encoding::JsonCompact
        }
    }
}

/// Where an event comes from: Debezium's `source` block.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// Debezium's logical server name: the topic prefix.
    pub server: &'a str,
    pub database: &'a str,
    /// The commit LSN of the change's transaction (the snapshot's for its rows).
    pub lsn: Lsn,
    /// The change's own WAL position within its transaction (0 for snapshot rows), written with `lsn`
    /// as `source.sequence`: together they order a `TRUNCATE` among its transaction's writes.
    pub change_lsn: Lsn,
    /// A streamed change's place among its transaction's events, written as a third element of
    /// `source.sequence`: with `lsn` it increases along each partition as the stream writes it, so a
    /// sink skips what the slot sent again. `None` for snapshot rows.
    pub position: Option<u64>,
    /// True for rows read by the snapshot.
    pub snapshot: bool,
    pub ts_ms: i64,
}

/// One event, ready to produce.
pub struct Encoded {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// A row's values, borrowed: each column's text or `None` for NULL, in table column order.
pub type Values<'a> = [Option<&'a str>];

struct RowRef<'a> {
    columns: &'a [String],
    values: &'a Values<'a>,
    /// The positions to write: every column, or the key's.
    only: Option<&'a [usize]>,
    /// Positions left out: an update's unchanged TOASTed values, which the stream did not send.
    skip: &'a [usize],
}

impl Serialize for RowRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self.only {
            Some(positions) => {
                for &i in positions {
                    map.serialize_entry(&self.columns[i], &self.values[i])?;
                }
            }
            None => {
                for (i, (name, value)) in self.columns.iter().zip(self.values).enumerate() {
                    if !self.skip.contains(&i) {
                        map.serialize_entry(name, value)?;
                    }
                }
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
struct WireSource<'a> {
    version: &'static str,
    connector: &'static str,
    name: &'a str,
    ts_ms: i64,
    snapshot: &'static str,
    db: &'a str,
    schema: &'a str,
    table: &'a str,
    /// Debezium's `["<lsn>","<lsn>"]` as a string: here the commit LSN, then the change's own.
    sequence: String,
    lsn: u64,
}

#[derive(Serialize)]
struct WireEvent<'a> {
    before: Option<RowRef<'a>>,
    after: Option<RowRef<'a>>,
    source: WireSource<'a>,
    op: &'static str,
    ts_ms: i64,
}

impl<'a> WireSource<'a> {
    fn new(layout: &'a TableLayout, origin: &Origin<'a>) -> WireSource<'a> {
        WireSource {
            version: FORMAT_VERSION,
            connector: "postgresql",
            name: origin.server,
            ts_ms: origin.ts_ms,
            snapshot: if origin.snapshot { "true" } else { "false" },
            db: origin.database,
            schema: &layout.schema,
            table: &layout.table,
            sequence: match origin.position {
                Some(n) => format!(r#"["{}","{}","{n}"]"#, origin.lsn.0, origin.change_lsn.0),
                None => format!(r#"["{}","{}"]"#, origin.lsn.0, origin.change_lsn.0),
            },
            lsn: origin.lsn.0,
        }
    }
}

fn op_from_code(code: &str) -> Option<Op> {
    match code {
        "r" => Some(Op::Read),
        "c" => Some(Op::Create),
        "u" => Some(Op::Update),
        "d" => Some(Op::Delete),
        "t" => Some(Op::Truncate),
        _ => None,
    }
}

fn op_code(op: Op) -> &'static str {
    match op {
        Op::Read => "r",
        Op::Create => "c",
        Op::Update => "u",
        Op::Delete => "d",
        Op::Truncate => "t",
    }
}

/// Encodes one event in the layout's encoding. The key comes from `after`, or from `before` for a
/// delete; a truncate (`Op::Truncate`, neither row) has none, as Debezium writes it. Only `json` can fail: a value its column's representation cannot hold exactly (a
/// timestamp after 294246 AD) is refused, naming the table and column.
pub fn try_encode(
    layout: &TableLayout,
    op: Op,
    before: Option<&Values>,
    after: Option<&Values>,
    origin: &Origin,
) -> Result<Encoded, String> {
    try_encode_change(layout, op, before, after, &[], origin)
}

/// [`try_encode`] for a streamed change, whose `after` may lack `unchanged` columns (TOASTed values an
/// update left alone, which pgoutput does not send). `json-compact` leaves them out of `after`, which
/// [`decode`] reads back as unchanged; `json` has no way to say "unchanged" and refuses them.
pub fn try_encode_change(
    layout: &TableLayout,
    op: Op,
    before: Option<&Values>,
    after: Option<&Values>,
    unchanged: &[usize],
    origin: &Origin,
) -> Result<Encoded, String> {
    match &layout.connect {
        Some(_) if !unchanged.is_empty() => Err(format!(
            "{}.{} column {}: an update left this TOASTed value unchanged and PostgreSQL did not send it, which \
             --encoding json cannot express; use json-compact, or ALTER TABLE ... REPLICA IDENTITY FULL",
            layout.schema, layout.table, layout.columns[unchanged[0]]
        )),
        Some(connect) => connect_json::encode(layout, connect, op, before, after, origin),
        None => Ok(encode_compact(layout, op, before, after, unchanged, origin)),
    }
}

fn encode_compact(
    layout: &TableLayout,
    op: Op,
    before: Option<&Values>,
    after: Option<&Values>,
    unchanged: &[usize],
    origin: &Origin,
) -> Encoded {
    let row_ref = |values, skip| RowRef { columns: &layout.columns, values, only: None, skip };
    let event = WireEvent {
        before: before.map(|values| row_ref(values, &[])),
        after: after.map(|values| row_ref(values, unchanged)),
        source: WireSource::new(layout, origin),
        op: op_code(op),
        ts_ms: origin.ts_ms,
    };
    let key = after.or(before).filter(|_| !layout.key.is_empty()).map(|values| {
        let key = RowRef { columns: &layout.columns, values, only: Some(&layout.key), skip: &[] };
        serde_json::to_vec(&key).expect("a map of strings serializes")
    });
    // Sized for the values up front: an event of 10 MB values is not copied over and over as its
    // buffer doubles (escapes may still grow it once).
    let values_len =
        |values: Option<&Values>| values.map_or(0, |values| values.iter().flatten().map(|v| v.len()).sum());
    let mut value = Vec::with_capacity(values_len(before) + values_len(after) + 64 * layout.columns.len() + 256);
    serde_json::to_writer(&mut value, &event).expect("an event of strings serializes");
    Encoded { key, value }
}

/// One decoded event, its rows in the table's column order.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    pub op: Op,
    pub before: Option<Row>,
    pub after: Option<Row>,
    /// Positions of an update's `after` that it left unchanged (not sent): the target keeps them.
    pub unchanged: Vec<usize>,
    pub lsn: Lsn,
    /// The change's own WAL position from `source.sequence`; 0 where the event has none.
    pub change_lsn: Lsn,
    /// The position `source.sequence` gives, in events Passerelle wrote (Debezium's own sequence
    /// holds other LSNs, which do not increase along a partition).
    pub position: Option<u64>,
}

/// True for a record that carries no event: a tombstone, which Debezium writes after each delete for
/// log compaction (no value, or `{"schema":null,"payload":null}` through JsonConverter). Skip it.
pub fn is_tombstone(value: &[u8]) -> bool {
    value.trim_ascii().is_empty() || (connect_json::is_connect_json(value) && connect_json::is_null_payload(value))
}

/// Decodes one event value in either encoding, written by [`try_encode`] or by Debezium: with
/// schemas off only string-valued columns; with schemas on, Debezium's representations.
pub fn decode(layout: &TableLayout, value: &[u8]) -> Result<Decoded, String> {
    if connect_json::is_connect_json(value) {
        return connect_json::decode(layout, value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(value);
    let decoded = EventSeed(layout).deserialize(&mut deserializer).map_err(|error| error.to_string())?;
    deserializer.end().map_err(|error| error.to_string())?;
    Ok(decoded)
}

struct EventSeed<'a>(&'a TableLayout);

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = Decoded;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Decoded, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// What the sink reads of the `source` block: where the change stands.
#[derive(Deserialize)]
struct SourceLsn {
    lsn: Option<u64>,
    version: Option<String>,
    sequence: Option<String>,
}

impl SourceLsn {
    /// The commit LSN and the change's own (the second of `sequence`, `["<lsn>","<lsn>"]`).
    fn positions(source: Option<SourceLsn>) -> (Lsn, Lsn) {
        let Some(source) = source else { return (Lsn(0), Lsn(0)) };
        let own = source
            .sequence
            .and_then(|sequence| serde_json::from_str::<Vec<Option<String>>>(&sequence).ok())
            .and_then(|lsns| lsns.get(1).cloned().flatten())
            .and_then(|lsn| lsn.parse().ok());
        (Lsn(source.lsn.unwrap_or(0)), Lsn(own.unwrap_or(0)))
    }

    /// The event's place in its transaction, the third element of `sequence`, when Passerelle wrote
    /// the event (Debezium's own sequence holds LSNs only).
    fn position(source: Option<&SourceLsn>) -> Option<u64> {
        let source = source?;
        if !source.version.as_deref().is_some_and(|version| version.starts_with("passerelle-")) {
            return None;
        }
        let sequence: Vec<String> = serde_json::from_str(source.sequence.as_deref()?).ok()?;
        sequence.get(2)?.parse().ok()
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = Decoded;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a change-event envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decoded, A::Error> {
        use serde::de::Error;
        let (mut before, mut after, mut op, mut source) = (None, None, None, None);
        while let Some(field) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match field.as_ref() {
                "before" => before = map.next_value_seed(OptionalRowSeed(self.0))?,
                "after" => after = map.next_value_seed(OptionalRowSeed(self.0))?,
                "op" => {
                    let code = map.next_value::<std::borrow::Cow<'de, str>>()?;
                    op = Some(op_from_code(&code).ok_or_else(|| A::Error::custom(format!("unknown op {code:?}")))?);
                }
                "source" => source = Some(map.next_value::<SourceLsn>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let op = op.ok_or_else(|| A::Error::missing_field("op"))?;
        // A row may leave values out: an update its unchanged TOASTed values, and any event the
        // columns its table gained after it or dropped before it (`cli::altered`), which the target's
        // default fills in a new row and an update leaves as they are.
        let layout = self.0;
        let missing_error =
            |missing: &[usize]| A::Error::custom(format!("column {:?} is missing", layout.columns[missing[0]]));
        let optional = |missing: &[usize]| missing.iter().all(|position| layout.optional.contains(position));
        let before = match before {
            Some(PartialRow { missing, .. }) if !optional(&missing) => return Err(missing_error(&missing)),
            before => before.map(|before| before.row),
        };
        let (after, unchanged) = match after {
            Some(PartialRow { missing, .. }) if op != Op::Update && !optional(&missing) => {
                return Err(missing_error(&missing))
            }
            Some(PartialRow { row, missing }) => (Some(row), missing),
            None => (None, Vec::new()),
        };
        let position = SourceLsn::position(source.as_ref());
        let (lsn, change_lsn) = SourceLsn::positions(source);
        Ok(Decoded { op, before, after, unchanged, lsn, change_lsn, position })
    }
}

/// A row object as read: the columns it lacks are `None` in `row` and listed in `missing`.
struct PartialRow {
    row: Row,
    missing: Vec<usize>,
}

/// `null` or a row object.
struct OptionalRowSeed<'a>(&'a TableLayout);

impl<'de> DeserializeSeed<'de> for OptionalRowSeed<'_> {
    type Value = Option<PartialRow>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<PartialRow>, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalRowSeed<'_> {
    type Value = Option<PartialRow>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null or a row object")
    }

    fn visit_none<E>(self) -> Result<Option<PartialRow>, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Option<PartialRow>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<PartialRow>, D::Error> {
        deserializer.deserialize_map(RowVisitor(self.0)).map(Some)
    }
}

/// Fills a row in the table's column order; each column present at most once.
struct RowVisitor<'a>(&'a TableLayout);

impl<'de> Visitor<'de> for RowVisitor<'_> {
    type Value = PartialRow;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a row of table {}.{}", self.0.schema, self.0.table)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PartialRow, A::Error> {
        use serde::de::Error;
        let layout = self.0;
        let mut row: Row = vec![None; layout.columns.len()];
        let mut seen = vec![false; layout.columns.len()];
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some(&i) = layout.positions.get(name.as_ref()) else {
                return Err(A::Error::custom(format!("column {name:?} is not in {}.{}", layout.schema, layout.table)));
            };
            row[i] = map.next_value()?;
            seen[i] = true;
        }
        let missing = seen.iter().enumerate().filter(|(_, seen)| !**seen).map(|(i, _)| i).collect();
        Ok(PartialRow { row, missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> TableLayout {
        let columns = ["ticket_no", "flight_id", "note"].map(String::from).to_vec();
        TableLayout::new(
            "bookings".into(),
            "ticket_flights".into(),
            "p.bookings.ticket_flights".into(),
            columns,
            vec![0, 1],
        )
    }

    fn values(row: &Row) -> Vec<Option<&str>> {
        row.iter().map(Option::as_deref).collect()
    }

    fn origin() -> Origin<'static> {
        Origin {
            server: "p",
            database: "demo",
            lsn: Lsn(42),
            change_lsn: Lsn(0),
            position: None,
            snapshot: true,
            ts_ms: 7,
        }
    }

    #[test]
    fn snapshot_read_is_a_debezium_envelope() {
        let row: Row = vec![Some("0005432000987".into()), Some("1".into()), None];
        let encoded = try_encode(&layout(), Op::Read, None, Some(&values(&row)), &origin()).unwrap();
        assert_eq!(
            String::from_utf8(encoded.key.unwrap()).unwrap(),
            r#"{"ticket_no":"0005432000987","flight_id":"1"}"#
        );
        assert_eq!(
            String::from_utf8(encoded.value.clone()).unwrap(),
            format!(
                r#"{{"before":null,"after":{{"ticket_no":"0005432000987","flight_id":"1","note":null}},"source":{{"version":"{FORMAT_VERSION}","connector":"postgresql","name":"p","ts_ms":7,"snapshot":"true","db":"demo","schema":"bookings","table":"ticket_flights","sequence":"[\"42\",\"0\"]","lsn":42}},"op":"r","ts_ms":7}}"#
            )
        );
        let decoded = decode(&layout(), &encoded.value).unwrap();
        let expected = Decoded {
            op: Op::Read,
            before: None,
            after: Some(row),
            unchanged: vec![],
            lsn: Lsn(42),
            change_lsn: Lsn(0),
            position: None,
        };
        assert_eq!(decoded, expected);
    }

    #[test]
    fn an_update_leaves_unchanged_values_out_and_reads_them_back_as_unchanged() {
        let before: Row = vec![Some("1".into()), Some("2".into()), None];
        let after: Row = vec![Some("1".into()), Some("2".into()), None];
        let (before, after) = (values(&before), values(&after));
        let encoded = try_encode_change(&layout(), Op::Update, Some(&before), Some(&after), &[2], &origin()).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&encoded.value).unwrap();
        assert!(value["after"].get("note").is_none() && value["before"].get("note").is_some(), "{value}");
        let decoded = decode(&layout(), &encoded.value).unwrap();
        assert_eq!((decoded.op, decoded.unchanged), (Op::Update, vec![2]));
        // Another event may leave out only a column added or dropped during the run.
        let encoded = try_encode_change(&layout(), Op::Create, None, Some(&after), &[2], &origin()).unwrap();
        assert!(decode(&layout(), &encoded.value).unwrap_err().contains("column \"note\" is missing"));
        let added = layout().with_optional_columns(vec![2]);
        assert_eq!(decode(&added, &encoded.value).unwrap().unchanged, vec![2]);
        let encoded = try_encode_change(&layout(), Op::Create, None, Some(&after), &[1, 2], &origin()).unwrap();
        assert!(decode(&added, &encoded.value).unwrap_err().contains("column \"flight_id\" is missing"));
    }

    #[test]
    fn a_truncate_has_neither_key_nor_rows_and_keeps_its_place_in_the_transaction() {
        let origin = Origin { lsn: Lsn(42), change_lsn: Lsn(40), snapshot: false, ..origin() };
        let encoded = try_encode(&layout(), Op::Truncate, None, None, &origin).unwrap();
        assert!(encoded.key.is_none());
        let value: serde_json::Value = serde_json::from_slice(&encoded.value).unwrap();
        let null = serde_json::Value::Null;
        assert_eq!((&value["op"], &value["before"], &value["after"]), (&"t".into(), &null, &null));
        assert_eq!(value["source"]["sequence"], r#"["42","40"]"#);
        let decoded = decode(&layout(), &encoded.value).unwrap();
        let expected = Decoded {
            op: Op::Truncate,
            before: None,
            after: None,
            unchanged: vec![],
            lsn: Lsn(42),
            change_lsn: Lsn(40),
            position: None,
        };
        assert_eq!(decoded, expected);
        // Debezium's own truncate event, whose sequence starts with the previous commit's LSN.
        let debezium = br#"{"before":null,"after":null,"source":{"version":"2.7.0.Final","connector":"postgresql",
            "name":"p","ts_ms":1,"snapshot":"false","db":"demo","sequence":"[\"24023119\",\"24023128\"]",
            "schema":"bookings","table":"ticket_flights","txId":1,"lsn":24023128,"xmin":null},"op":"t","ts_ms":2}"#;
        let decoded = decode(&layout(), debezium).unwrap();
        assert_eq!((decoded.op, decoded.lsn, decoded.change_lsn), (Op::Truncate, Lsn(24023128), Lsn(24023128)));
    }

    #[test]
    fn awkward_text_round_trips() {
        let row: Row = vec![Some("\"quoted\" \\ tab\t nl\n".into()), Some("".into()), Some("𝄞 \u{0} é".into())];
        let encoded = try_encode(&layout(), Op::Update, Some(&values(&row)), Some(&values(&row)), &origin()).unwrap();
        let decoded = decode(&layout(), &encoded.value).unwrap();
        assert_eq!((decoded.op, decoded.before.as_ref(), decoded.after.as_ref()), (Op::Update, Some(&row), Some(&row)));
    }

    #[test]
    fn keyless_tables_have_no_key_and_bad_rows_are_refused() {
        let keyless = TableLayout::new("s".into(), "t".into(), "p.s.t".into(), vec!["a".into()], vec![]);
        assert!(try_encode(&keyless, Op::Create, None, Some(&[Some("1")]), &origin()).unwrap().key.is_none());
        let error = decode(&layout(), br#"{"after":{"ticket_no":"1","flight_id":"2"},"op":"c"}"#).unwrap_err();
        assert!(error.contains("column \"note\" is missing"), "{error}");
        let error = decode(&layout(), br#"{"after":{"x":"1"},"op":"c"}"#).unwrap_err();
        assert!(error.contains("column \"x\" is not in bookings.ticket_flights"), "{error}");
    }
}
