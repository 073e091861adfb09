//! `json`: Kafka Connect JSON with the schema embedded in every key and value (what `JsonConverter`
//! writes and reads with `schemas.enable=true`), shaped as Debezium's PostgreSQL connector shapes its
//! events, each column in Debezium's representation for its PostgreSQL type (docs/wire-format.md
//! has the table).
//!
//! A layout's schemas are serialised once; each event appends its payload to them. Decoding reads
//! Passerelle's events and those of Debezium's own PostgreSQL connector, by the schema each event
//! carries; an event whose schema is byte-for-byte the layout's skips parsing it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use passerelle_model::event::{Op, Row};
use passerelle_model::schema::{ColumnType, PgType};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::pg_text::{
    self, DateTime, DATE_INFINITY, DATE_MINUS_INFINITY, DEBEZIUM_DATE_INFINITY, DEBEZIUM_DATE_MINUS_INFINITY,
    TIMESTAMP_INFINITY, TIMESTAMP_MINUS_INFINITY,
};
use super::{op_code, op_from_code, Decoded, Encoded, Origin, SourceLsn, TableLayout, Values, WireSource};

/// The schema name of columns that travel as PostgreSQL's text output because Debezium has no
/// exact representation for them; the `type` parameter says which PostgreSQL type it is.
const PG_TEXT: &str = "passerelle.PgText";

/// How one column's value travels. The first group is what Passerelle writes; the rest are
/// Debezium's default representations and Kafka Connect's logical types, which it only reads.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Repr {
    /// int16, int32, int64.
    Integer,
    /// float or double. NaN and ±Infinity are read as the strings Jackson writes for them, never
    /// written (see `write_float`).
    Float {
        single: bool,
    },
    Boolean,
    /// A string that is PostgreSQL's text as it is.
    Text,
    /// money as a plain decimal string, `-1234.56`.
    Money,
    /// bytea as bytes (base64 in JSON).
    Bytes,
    /// io.debezium.time.Date, Kafka Connect's Date: days since 1970-01-01.
    Date,
    /// io.debezium.time.Time, MicroTime, NanoTime, Kafka Connect's Time.
    Time(Unit),
    /// io.debezium.time.Timestamp, MicroTimestamp, NanoTimestamp, Kafka Connect's Timestamp.
    Timestamp(Unit),
    /// io.debezium.time.ZonedTimestamp: ISO 8601 in UTC.
    ZonedTimestamp,
    /// io.debezium.time.ZonedTime: ISO 8601 with an offset.
    ZonedTime,
    /// io.debezium.data.geometry.Point: `{x, y, wkb, srid}`.
    Point,
    /// Kafka Connect's Decimal (`scale` given) or io.debezium.data.VariableScaleDecimal.
    Decimal {
        scale: Option<i32>,
        money: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Unit {
    Milli,
    Micro,
    Nano,
}

impl Unit {
    fn micros(self, n: i64) -> Result<i64, String> {
        match self {
            Unit::Milli => n.checked_mul(1000).ok_or_else(|| "a time beyond PostgreSQL's range".to_string()),
            Unit::Micro => Ok(n),
            Unit::Nano if n % 1000 != 0 => Err("a time finer than PostgreSQL's microseconds".to_string()),
            Unit::Nano => Ok(n / 1000),
        }
    }
}

/// A Kafka Connect schema as `JsonConverter` writes it; fields it also knows (`doc`, `items`,
/// `keys`, `values`) are ignored when reading.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ConnectSchema {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    fields: Vec<ConnectSchema>,
    #[serde(default)]
    optional: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    doc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parameters: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ConnectSchema {
    fn of(kind: &str) -> ConnectSchema {
        ConnectSchema { kind: kind.to_string(), ..ConnectSchema::default() }
    }

    /// A Debezium semantic type: a name and version 1.
    fn semantic(kind: &str, name: &str) -> ConnectSchema {
        ConnectSchema { name: Some(name.to_string()), version: Some(1), ..ConnectSchema::of(kind) }
    }

    fn field(self, field: &str, optional: bool) -> ConnectSchema {
        ConnectSchema { field: Some(field.to_string()), optional, ..self }
    }

    fn structure(name: &str, fields: Vec<ConnectSchema>) -> ConnectSchema {
        ConnectSchema { fields, name: Some(name.to_string()), ..ConnectSchema::of("struct") }
    }
}

/// Debezium's representation of a column type, or PostgreSQL's text under [`PG_TEXT`] where
/// Debezium has none that keeps every value exact.
fn representation(column_type: &ColumnType, enum_labels: Option<&[String]>) -> (Repr, ConnectSchema) {
    let pg_text = || {
        let parameters = BTreeMap::from([("type".to_string(), column_type.display.clone())]);
        (Repr::Text, ConnectSchema { parameters: Some(parameters), ..ConnectSchema::semantic("string", PG_TEXT) })
    };
    if column_type.array_dims > 0 {
        return pg_text();
    }
    let plain = |repr, kind| (repr, ConnectSchema::of(kind));
    let semantic = |repr, kind, name| (repr, ConnectSchema::semantic(kind, name));
    match &column_type.base {
        PgType::SmallInt => plain(Repr::Integer, "int16"),
        PgType::Integer => plain(Repr::Integer, "int32"),
        PgType::BigInt => plain(Repr::Integer, "int64"),
        PgType::Oid(name) if name == "oid" => plain(Repr::Integer, "int64"),
        PgType::Real => plain(Repr::Float { single: true }, "float"),
        PgType::Double => plain(Repr::Float { single: false }, "double"),
        // decimal.handling.mode=string: every digit, and NaN.
        PgType::Numeric(_) => plain(Repr::Text, "string"),
        PgType::Money => plain(Repr::Money, "string"),
        PgType::Boolean => plain(Repr::Boolean, "boolean"),
        PgType::Char(_)
        | PgType::Varchar(_)
        | PgType::Text
        | PgType::Name
        | PgType::InternalChar
        | PgType::Citext
        | PgType::Inet
        | PgType::Cidr
        | PgType::MacAddr
        | PgType::MacAddr8
        | PgType::Range { .. } => plain(Repr::Text, "string"),
        PgType::Bytea => plain(Repr::Bytes, "bytes"),
        PgType::Date => semantic(Repr::Date, "int32", "io.debezium.time.Date"),
        PgType::Time(_) => semantic(Repr::Time(Unit::Micro), "int64", "io.debezium.time.MicroTime"),
        PgType::Timestamp(_) => semantic(Repr::Timestamp(Unit::Micro), "int64", "io.debezium.time.MicroTimestamp"),
        PgType::TimestampTz(_) => semantic(Repr::ZonedTimestamp, "string", "io.debezium.time.ZonedTimestamp"),
        PgType::TimeTz(_) => semantic(Repr::ZonedTime, "string", "io.debezium.time.ZonedTime"),
        // interval.handling.mode=string: PostgreSQL's iso_8601 text is Debezium's format.
        PgType::Interval(_) => semantic(Repr::Text, "string", "io.debezium.time.Interval"),
        PgType::Uuid => semantic(Repr::Text, "string", "io.debezium.data.Uuid"),
        PgType::Json | PgType::Jsonb => semantic(Repr::Text, "string", "io.debezium.data.Json"),
        PgType::Xml => semantic(Repr::Text, "string", "io.debezium.data.Xml"),
        PgType::TsVector => semantic(Repr::Text, "string", "io.debezium.data.TsVector"),
        PgType::Enum(_) => {
            let mut schema = ConnectSchema::semantic("string", "io.debezium.data.Enum");
            schema.parameters = enum_labels.map(|labels| BTreeMap::from([("allowed".to_string(), labels.join(","))]));
            (Repr::Text, schema)
        }
        PgType::Point => {
            let fields = vec![
                ConnectSchema::of("double").field("x", false),
                ConnectSchema::of("double").field("y", false),
                ConnectSchema::of("bytes").field("wkb", true),
                ConnectSchema::of("int32").field("srid", true),
            ];
            let schema = ConnectSchema {
                version: Some(1),
                doc: Some("Geometry (POINT)".to_string()),
                ..ConnectSchema::structure("io.debezium.data.geometry.Point", fields)
            };
            (Repr::Point, schema)
        }
        _ => pg_text(),
    }
}

/// What a layout needs to write and read `json`, computed once.
#[derive(Clone, Debug)]
pub(super) struct ConnectLayout {
    reprs: Vec<Repr>,
    /// The Envelope schema's text, to recognise this layout's events.
    value_schema: String,
    /// `{"schema":<Envelope>,"payload":` and `{"schema":<Key>,"payload":`.
    value_prefix: String,
    key_prefix: String,
}

impl ConnectLayout {
    pub(super) fn new(layout: &TableLayout) -> ConnectLayout {
        let mut reprs = Vec::with_capacity(layout.columns.len());
        let mut fields = Vec::with_capacity(layout.columns.len());
        for (i, (name, column_type)) in layout.columns.iter().zip(&layout.types).enumerate() {
            let labels = match &column_type.base {
                PgType::Enum(enum_name) => layout.enum_labels.get(enum_name).map(Vec::as_slice),
                _ => None,
            };
            let (repr, schema) = representation(column_type, labels);
            reprs.push(repr);
            fields.push(schema.field(name, !layout.key.contains(&i)));
        }
        let topic = &layout.topic;
        let key_fields = layout.key.iter().map(|&i| fields[i].clone()).collect();
        let key_schema = ConnectSchema::structure(&format!("{topic}.Key"), key_fields);
        let row = ConnectSchema::structure(&format!("{topic}.Value"), fields);
        let value_schema = serde_json::to_string(&envelope_schema(topic, row)).expect("a schema serializes");
        let key_schema = serde_json::to_string(&key_schema).expect("a schema serializes");
        ConnectLayout {
            reprs,
            value_prefix: format!(r#"{{"schema":{value_schema},"payload":"#),
            key_prefix: format!(r#"{{"schema":{key_schema},"payload":"#),
            value_schema,
        }
    }
}

/// Debezium's `<topic>.Envelope` around the table's `<topic>.Value` rows, with its PostgreSQL
/// `source` block.
fn envelope_schema(topic: &str, row: ConnectSchema) -> ConnectSchema {
    let required = |kind, field| ConnectSchema::of(kind).field(field, false);
    let optional = |kind, field| ConnectSchema::of(kind).field(field, true);
    let snapshot = ConnectSchema {
        parameters: Some(BTreeMap::from([(
            "allowed".to_string(),
            "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental".to_string(),
        )])),
        default: Some("false".into()),
        ..ConnectSchema::semantic("string", "io.debezium.data.Enum").field("snapshot", true)
    };
    let source_fields = vec![
        required("string", "version"),
        required("string", "connector"),
        required("string", "name"),
        required("int64", "ts_ms"),
        snapshot,
        required("string", "db"),
        optional("string", "sequence"),
        optional("int64", "ts_us"),
        optional("int64", "ts_ns"),
        required("string", "schema"),
        required("string", "table"),
        optional("int64", "txId"),
        optional("int64", "lsn"),
        optional("int64", "xmin"),
        // Debezium 3.5 added the replication origin of a change (none here: left null).
        optional("string", "origin"),
        optional("int64", "origin_lsn"),
    ];
    let source = ConnectSchema {
        version: Some(1),
        ..ConnectSchema::structure("io.debezium.connector.postgresql.Source", source_fields)
    };
    let transaction = ConnectSchema {
        version: Some(1),
        ..ConnectSchema::structure(
            "event.block",
            vec![
                required("string", "id"),
                required("int64", "total_order"),
                required("int64", "data_collection_order"),
            ],
        )
    };
    let fields = vec![
        row.clone().field("before", true),
        row.field("after", true),
        source.field("source", false),
        transaction.field("transaction", true),
        required("string", "op"),
        optional("int64", "ts_ms"),
        optional("int64", "ts_us"),
        optional("int64", "ts_ns"),
    ];
    ConnectSchema { version: Some(2), ..ConnectSchema::structure(&format!("{topic}.Envelope"), fields) }
}

pub(super) fn encode(
    layout: &TableLayout,
    connect: &ConnectLayout,
    op: Op,
    before: Option<&Values>,
    after: Option<&Values>,
    origin: &Origin,
) -> Result<Encoded, String> {
    let all = 0..layout.columns.len();
    let mut value = Vec::with_capacity(connect.value_prefix.len() + 256);
    value.extend_from_slice(connect.value_prefix.as_bytes());
    value.extend_from_slice(br#"{"before":"#);
    write_row(&mut value, layout, connect, before, all.clone())?;
    value.extend_from_slice(br#","after":"#);
    write_row(&mut value, layout, connect, after, all)?;
    value.extend_from_slice(br#","source":"#);
    serde_json::to_writer(&mut value, &WireSource::new(layout, origin)).expect("a source block serializes");
    value.extend_from_slice(format!(r#","op":"{}","ts_ms":{}}}}}"#, op_code(op), origin.ts_ms).as_bytes());
    let key = match after.or(before) {
        Some(values) if !layout.key.is_empty() => {
            let mut key = Vec::with_capacity(connect.key_prefix.len() + 32);
            key.extend_from_slice(connect.key_prefix.as_bytes());
            write_row(&mut key, layout, connect, Some(values), layout.key.iter().copied())?;
            key.push(b'}');
            Some(key)
        }
        _ => None,
    };
    Ok(Encoded { key, value })
}

fn write_row(
    out: &mut Vec<u8>,
    layout: &TableLayout,
    connect: &ConnectLayout,
    values: Option<&Values>,
    positions: impl Iterator<Item = usize>,
) -> Result<(), String> {
    let Some(values) = values else {
        out.extend_from_slice(b"null");
        return Ok(());
    };
    out.push(b'{');
    for (n, i) in positions.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_string(out, &layout.columns[i]);
        out.push(b':');
        match values[i] {
            None => out.extend_from_slice(b"null"),
            Some(text) => connect.reprs[i].write(text, out).map_err(|reason| column_error(layout, i, &reason))?,
        }
    }
    out.push(b'}');
    Ok(())
}

fn column_error(layout: &TableLayout, i: usize, reason: &str) -> String {
    format!("column {:?} of {}.{}: {reason}", layout.columns[i], layout.schema, layout.table)
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("a string serializes");
}

/// A float's PostgreSQL text, which is already a JSON number. NaN and ±Infinity are refused: JSON
/// has no number for them, and the strings Jackson writes instead (`"NaN"`) are read back by Kafka
/// Connect's JsonConverter as 0, which a JDBC sink would then store without a word.
fn write_float(out: &mut Vec<u8>, text: &str) -> Result<(), String> {
    match text {
        "NaN" | "Infinity" | "-Infinity" => {
            Err(format!("{text} has no JSON number, and Kafka Connect would read it as 0"))
        }
        _ if serde_json::from_str::<f64>(text).is_ok() => {
            out.extend_from_slice(text.as_bytes());
            Ok(())
        }
        _ => Err("not a float".to_string()),
    }
}

fn read_float(raw: &RawValue, single: bool) -> Result<f64, String> {
    let text = raw.get();
    let bad = || "not a float".to_string();
    if text.starts_with('"') {
        return match serde_json::from_str::<&str>(text).map_err(|_| bad())? {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(bad()),
        };
    }
    // Parsed at the column's own width: a float4 read as a double and narrowed could round twice.
    if single {
        text.parse::<f32>().map(f64::from).map_err(|_| bad())
    } else {
        text.parse::<f64>().map_err(|_| bad())
    }
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl Repr {
    /// Writes PostgreSQL's `text` as this representation's JSON.
    fn write(self, text: &str, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            Repr::Integer if is_integer(text) => out.extend_from_slice(text.as_bytes()),
            Repr::Integer => return Err("not an integer".to_string()),
            Repr::Float { .. } => write_float(out, text)?,
            Repr::Boolean => out.extend_from_slice(match text {
                "t" => b"true",
                "f" => b"false",
                _ => return Err("not a boolean".to_string()),
            }),
            Repr::Text => write_string(out, text),
            Repr::Money => write_string(out, &pg_text::money_to_decimal(text)?),
            Repr::Bytes => {
                out.push(b'"');
                pg_text::base64_encode(&pg_text::bytea_to_bytes(text)?, out);
                out.push(b'"');
            }
            Repr::Date => {
                let days = match text {
                    "infinity" => DATE_INFINITY,
                    "-infinity" => DATE_MINUS_INFINITY,
                    _ => pg_text::parse_date(text)?.days() as i32,
                };
                out.extend_from_slice(days.to_string().as_bytes());
            }
            Repr::Time(Unit::Micro) => out.extend_from_slice(pg_text::parse_clock(text)?.to_string().as_bytes()),
            Repr::Timestamp(Unit::Micro) => {
                let micros = match text {
                    "infinity" => TIMESTAMP_INFINITY,
                    "-infinity" => TIMESTAMP_MINUS_INFINITY,
                    _ => {
                        let micros = pg_text::parse_timestamp(text, false)?.micros();
                        // Past year 294246 the count reaches Debezium's infinity and then overflows int64.
                        if micros >= i128::from(TIMESTAMP_INFINITY) {
                            return Err(
                                "a timestamp after 294246 AD has no io.debezium.time.MicroTimestamp".to_string()
                            );
                        }
                        micros as i64
                    }
                };
                out.extend_from_slice(micros.to_string().as_bytes());
            }
            Repr::ZonedTimestamp => match text {
                "infinity" | "-infinity" => write_string(out, text),
                _ => write_string(out, &pg_text::parse_timestamp(text, true)?.iso()),
            },
            Repr::ZonedTime => write_string(out, &pg_text::timetz_to_iso(text)?),
            Repr::Point => {
                let bad = || "not a point".to_string();
                let (x, y) = text
                    .strip_prefix('(')
                    .and_then(|t| t.strip_suffix(')'))
                    .and_then(|t| t.split_once(','))
                    .ok_or_else(bad)?;
                let (x_value, y_value) = (x.parse::<f64>().map_err(|_| bad())?, y.parse::<f64>().map_err(|_| bad())?);
                out.extend_from_slice(br#"{"x":"#);
                write_float(out, x)?;
                out.extend_from_slice(br#","y":"#);
                write_float(out, y)?;
                // Well-known binary, little-endian, as Debezium adds it for sinks that write geometry.
                let mut wkb = Vec::with_capacity(21);
                wkb.push(1);
                wkb.extend_from_slice(&1u32.to_le_bytes());
                wkb.extend_from_slice(&x_value.to_le_bytes());
                wkb.extend_from_slice(&y_value.to_le_bytes());
                out.extend_from_slice(br#","wkb":""#);
                pg_text::base64_encode(&wkb, out);
                out.extend_from_slice(br#"","srid":null}"#);
            }
            Repr::Time(_) | Repr::Timestamp(_) | Repr::Decimal { .. } => {
                return Err("a representation Passerelle reads but does not write".to_string())
            }
        }
        Ok(())
    }

    /// Reads this representation's JSON back to PostgreSQL's text; JSON null is SQL NULL.
    fn read(self, raw: &RawValue) -> Result<Option<String>, String> {
        let text = raw.get();
        if text == "null" {
            return Ok(None);
        }
        let string = || serde_json::from_str::<Cow<str>>(text).map_err(|_| "not a string".to_string());
        let integer = || serde_json::from_str::<i64>(text).map_err(|_| "not an integer".to_string());
        let pg = match self {
            Repr::Integer if is_integer(text) => text.to_string(),
            Repr::Integer => return Err("not an integer".to_string()),
            Repr::Float { single } => pg_text::pg_float(read_float(raw, single)?, single),
            Repr::Boolean => match text {
                "true" => "t".to_string(),
                "false" => "f".to_string(),
                _ => return Err("not a boolean".to_string()),
            },
            Repr::Text => string()?.into_owned(),
            Repr::Money => pg_text::decimal_to_money(&string()?)?,
            Repr::Bytes => pg_text::bytes_to_bytea(&pg_text::base64_decode(&string()?)?),
            Repr::Date => match integer()? {
                days if days == i64::from(DATE_INFINITY) || days == DEBEZIUM_DATE_INFINITY => "infinity".to_string(),
                days if days == i64::from(DATE_MINUS_INFINITY) || days == DEBEZIUM_DATE_MINUS_INFINITY => {
                    "-infinity".to_string()
                }
                days => pg_text::pg_date(pg_text::date_from_days(days)?),
            },
            Repr::Time(unit) => pg_text::pg_time(unit.micros(integer()?)?)?,
            // Debezium writes ±infinity as the driver's sentinels in microseconds, divided for milliseconds.
            Repr::Timestamp(unit) => match unit.micros(integer()?)? {
                TIMESTAMP_INFINITY => "infinity".to_string(),
                TIMESTAMP_MINUS_INFINITY => "-infinity".to_string(),
                micros => DateTime::from_micros(i128::from(micros))?.pg_text(false),
            },
            Repr::ZonedTimestamp => match string()?.as_ref() {
                text @ ("infinity" | "-infinity") => text.to_string(),
                text => DateTime::parse_iso(text)?.pg_text(true),
            },
            Repr::ZonedTime => pg_text::iso_to_timetz(&string()?)?,
            Repr::Point => {
                #[derive(Deserialize)]
                struct Point<'a> {
                    #[serde(borrow)]
                    x: &'a RawValue,
                    #[serde(borrow)]
                    y: &'a RawValue,
                }
                let point: Point = serde_json::from_str(text).map_err(|_| "not a point".to_string())?;
                let x = pg_text::pg_float(read_float(point.x, false)?, false);
                format!("({x},{})", pg_text::pg_float(read_float(point.y, false)?, false))
            }
            Repr::Decimal { scale, money } => {
                let decimal = match scale {
                    Some(scale) => pg_text::unscaled_to_decimal(&pg_text::base64_decode(&string()?)?, scale)?,
                    None => {
                        #[derive(Deserialize)]
                        struct VariableScale {
                            scale: i32,
                            value: String,
                        }
                        let variable: VariableScale =
                            serde_json::from_str(text).map_err(|_| "not a VariableScaleDecimal".to_string())?;
                        pg_text::unscaled_to_decimal(&pg_text::base64_decode(&variable.value)?, variable.scale)?
                    }
                };
                if money {
                    pg_text::decimal_to_money(&decimal)?
                } else {
                    decimal
                }
            }
        };
        Ok(Some(pg))
    }

    /// The representation a foreign schema field declares, for a column of `column_type` when the
    /// layout knows it (money's text differs from a plain decimal's).
    fn of_schema(field: &ConnectSchema, column_type: Option<&ColumnType>) -> Result<Repr, String> {
        let money = column_type.is_some_and(|t| t.array_dims == 0 && t.base == PgType::Money);
        Ok(match (field.name.as_deref(), field.kind.as_str()) {
            (Some("io.debezium.time.Date" | "org.apache.kafka.connect.data.Date"), _) => Repr::Date,
            (Some("io.debezium.time.Time" | "org.apache.kafka.connect.data.Time"), _) => Repr::Time(Unit::Milli),
            (Some("io.debezium.time.MicroTime"), _) => Repr::Time(Unit::Micro),
            (Some("io.debezium.time.NanoTime"), _) => Repr::Time(Unit::Nano),
            (Some("io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp"), _) => {
                Repr::Timestamp(Unit::Milli)
            }
            (Some("io.debezium.time.MicroTimestamp"), _) => Repr::Timestamp(Unit::Micro),
            (Some("io.debezium.time.NanoTimestamp"), _) => Repr::Timestamp(Unit::Nano),
            (Some("io.debezium.time.ZonedTimestamp"), _) => Repr::ZonedTimestamp,
            (Some("io.debezium.time.ZonedTime"), _) => Repr::ZonedTime,
            (Some("io.debezium.data.geometry.Point"), _) => Repr::Point,
            (Some("org.apache.kafka.connect.data.Decimal"), _) => {
                let scale = field.parameters.as_ref().and_then(|p| p.get("scale")).and_then(|s| s.parse().ok());
                Repr::Decimal { scale: Some(scale.ok_or("a Decimal without its scale")?), money }
            }
            (Some("io.debezium.data.VariableScaleDecimal"), _) => Repr::Decimal { scale: None, money },
            (_, "int8" | "int16" | "int32" | "int64") => Repr::Integer,
            (_, "float") => Repr::Float { single: true },
            (_, "double") => Repr::Float { single: false },
            (_, "boolean") => Repr::Boolean,
            (None, "bytes") => Repr::Bytes,
            (_, "string") if money => Repr::Money,
            (_, "string") => Repr::Text,
            (name, kind) => {
                let name = name.map_or(String::new(), |name| format!(" named {name}"));
                return Err(format!(
                    "Passerelle cannot read a {kind}{name}: configure the writer to send it as a string"
                ));
            }
        })
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    schema: Option<&'a RawValue>,
    #[serde(borrow)]
    payload: &'a RawValue,
}

type RawRow<'a> = HashMap<Cow<'a, str>, &'a RawValue>;

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow, default)]
    before: Option<RawRow<'a>>,
    #[serde(borrow, default)]
    after: Option<RawRow<'a>>,
    #[serde(borrow)]
    op: Cow<'a, str>,
    #[serde(default)]
    source: Option<SourceLsn>,
}

/// True when `value` is `{"schema":…,"payload":…}` rather than a bare envelope: its first key says.
pub(super) fn is_connect_json(value: &[u8]) -> bool {
    let mut rest = value.trim_ascii_start();
    let Some(after_brace) = rest.strip_prefix(b"{") else { return false };
    rest = after_brace.trim_ascii_start();
    rest.starts_with(br#""schema""#) || rest.starts_with(br#""payload""#)
}

/// True for `{"schema":null,"payload":null}`, what JsonConverter makes of a tombstone.
pub(super) fn is_null_payload(value: &[u8]) -> bool {
    serde_json::from_slice::<Message>(value).is_ok_and(|message| message.payload.get() == "null")
}

pub(super) fn decode(layout: &TableLayout, value: &[u8]) -> Result<Decoded, String> {
    let message: Message = serde_json::from_slice(value).map_err(|error| error.to_string())?;
    let schema = message.schema.ok_or("a json event without its schema")?;
    let parsed;
    let (reprs, foreign) = match &layout.connect {
        Some(connect) if schema.get() == connect.value_schema => (&connect.reprs, false),
        _ => {
            parsed = reprs_of_schema(layout, schema)?;
            (&parsed, true)
        }
    };
    let payload: Payload = serde_json::from_str(message.payload.get()).map_err(|error| error.to_string())?;
    let op = op_from_code(&payload.op).ok_or_else(|| format!("unknown op {:?}", payload.op))?;
    let position = SourceLsn::position(payload.source.as_ref());
    let (lsn, change_lsn) = SourceLsn::positions(payload.source);
    Ok(Decoded {
        op,
        before: read_row(layout, reprs, payload.before, foreign)?,
        after: read_row(layout, reprs, payload.after, foreign)?,
        unchanged: Vec::new(),
        lsn,
        change_lsn,
        position,
    })
}

/// Each column's representation, from the `after` (or `before`) row schema of a foreign event.
fn reprs_of_schema(layout: &TableLayout, schema: &RawValue) -> Result<Vec<Repr>, String> {
    let envelope: ConnectSchema = serde_json::from_str(schema.get()).map_err(|error| error.to_string())?;
    let row = ["after", "before"]
        .iter()
        .find_map(|name| envelope.fields.iter().find(|f| f.field.as_deref() == Some(name) && f.kind == "struct"))
        .ok_or("an event schema without a before or after row")?;
    layout
        .columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let field = row
                .fields
                .iter()
                .find(|f| f.field.as_deref() == Some(name))
                .ok_or_else(|| column_error(layout, i, "missing from the event's schema"))?;
            Repr::of_schema(field, layout.types.get(i)).map_err(|reason| column_error(layout, i, &reason))
        })
        .collect()
}

/// Debezium's default `unavailable.value.placeholder`, as a string and as bytes: what it sends for a
/// TOASTed value an update left unchanged, which the table's replica identity did not log.
const UNAVAILABLE: [&str; 2] = [r#""__debezium_unavailable_value""#, r#""X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==""#];

/// Reads a row in the table's column order. In `foreign` events (not written by this layout),
/// Debezium's placeholder is refused rather than taken for the value.
fn read_row(layout: &TableLayout, reprs: &[Repr], row: Option<RawRow>, foreign: bool) -> Result<Option<Row>, String> {
    let Some(row) = row else { return Ok(None) };
    if let Some(name) = row.keys().find(|name| !layout.positions.contains_key(name.as_ref())) {
        return Err(format!("column {name:?} is not in {}.{}", layout.schema, layout.table));
    }
    let values = layout.columns.iter().enumerate().map(|(i, name)| {
        let raw = row.get(name.as_str()).ok_or_else(|| format!("column {name:?} is missing"))?;
        if foreign && UNAVAILABLE.contains(&raw.get()) {
            let reason =
                "Debezium's placeholder for an unchanged TOASTed value: give the source table REPLICA IDENTITY FULL";
            return Err(column_error(layout, i, reason));
        }
        reprs[i].read(raw).map_err(|reason| column_error(layout, i, &reason))
    });
    values.collect::<Result<Row, String>>().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_model::event::Lsn;
    use serde_json::Value::Null;

    use crate::envelope::{decode, try_encode, Encoding};

    fn scalar(base: PgType) -> ColumnType {
        ColumnType { base, array_dims: 0, display: String::new() }
    }

    /// A table `s.t (id integer primary key, v <column_type>)` on topic `p.s.t`.
    fn layout(column_type: ColumnType) -> TableLayout {
        TableLayout::new("s".into(), "t".into(), "p.s.t".into(), vec!["id".into(), "v".into()], vec![0])
            .with_encoding(Encoding::Json, vec![scalar(PgType::Integer), column_type])
    }

    fn origin() -> Origin<'static> {
        Origin {
            server: "p",
            database: "db",
            lsn: Lsn(42),
            change_lsn: Lsn(41),
            position: Some(3),
            snapshot: false,
            ts_ms: 7,
        }
    }

    /// Encodes `text` as column `v`, returning the JSON of `v` in `after` and the text decoded back.
    fn round_trip(layout: &TableLayout, text: Option<&str>) -> Result<(String, Option<String>), String> {
        let encoded = try_encode(layout, Op::Create, None, Some(&[Some("1"), text]), &origin())?;
        let message: Message = serde_json::from_slice(&encoded.value).unwrap();
        let payload: Payload = serde_json::from_str(message.payload.get()).unwrap();
        let json = payload.after.unwrap()["v"].get().to_string();
        let decoded = decode(layout, &encoded.value)?;
        assert_eq!((decoded.op, decoded.lsn, decoded.position, decoded.before), (Op::Create, Lsn(42), Some(3), None));
        let row = decoded.after.unwrap();
        assert_eq!(row[0].as_deref(), Some("1"));
        Ok((json, row[1].clone()))
    }

    #[test]
    fn a_truncate_is_debeziums_t_event_with_its_place_in_the_transaction() {
        let layout = layout(scalar(PgType::Text));
        let encoded = try_encode(&layout, Op::Truncate, None, None, &Origin { position: None, ..origin() }).unwrap();
        assert!(encoded.key.is_none());
        let value: serde_json::Value = serde_json::from_slice(&encoded.value).unwrap();
        let payload = &value["payload"];
        assert_eq!((&payload["op"], &payload["before"], &payload["after"]), (&"t".into(), &Null, &Null));
        assert_eq!(payload["source"]["sequence"], r#"["42","41"]"#);
        let decoded = decode(&layout, &encoded.value).unwrap();
        assert_eq!((decoded.op, decoded.before, decoded.after), (Op::Truncate, None, None));
        assert_eq!((decoded.lsn, decoded.change_lsn), (Lsn(42), Lsn(41)));
    }

    /// Each case: PostgreSQL's text, the value's JSON, and the text decoded back when it is not
    /// byte-identical (only where PostgreSQL's own text cannot be recovered, noted at the case).
    fn check(column_type: ColumnType, cases: &[(&str, &str)]) {
        let layout = layout(column_type);
        for &(text, json) in cases {
            let (encoded, back) = round_trip(&layout, Some(text)).unwrap_or_else(|error| panic!("{text:?}: {error}"));
            assert_eq!(encoded, json, "JSON of {text:?}");
            assert_eq!(back.as_deref(), Some(text), "{text:?} back from {json}");
        }
        assert_eq!(round_trip(&layout, None).unwrap(), ("null".to_string(), None), "NULL");
    }

    #[test]
    fn integers_booleans_and_floats() {
        check(scalar(PgType::SmallInt), &[("-32768", "-32768"), ("0", "0")]);
        check(scalar(PgType::Integer), &[("2147483647", "2147483647")]);
        check(scalar(PgType::BigInt), &[("-9223372036854775808", "-9223372036854775808")]);
        check(scalar(PgType::Boolean), &[("t", "true"), ("f", "false")]);
        check(
            scalar(PgType::Double),
            &[
                ("0.1", "0.1"),
                ("-0", "-0"),
                ("1e-308", "1e-308"),
                ("5e-324", "5e-324"),
                ("2.2250738585072014e-308", "2.2250738585072014e-308"),
                ("1.7976931348623157e+308", "1.7976931348623157e+308"),
                ("123456789012345", "123456789012345"),
                ("1e+15", "1e+15"),
                ("0.0001", "0.0001"),
                ("1e-05", "1e-05"),
            ],
        );
        check(
            scalar(PgType::Real),
            &[
                ("1e-45", "1e-45"),
                ("1.1754944e-38", "1.1754944e-38"),
                ("3.4028235e+38", "3.4028235e+38"),
                ("0.1", "0.1"),
                ("123456", "123456"),
                ("1e+06", "1e+06"),
            ],
        );
    }

    #[test]
    fn float_nan_and_infinities_are_refused_naming_the_column() {
        for (column_type, text, word) in [
            (PgType::Double, "NaN", "NaN"),
            (PgType::Double, "-Infinity", "-Infinity"),
            (PgType::Real, "Infinity", "Infinity"),
            (PgType::Point, "(1,NaN)", "NaN"),
        ] {
            let error = round_trip(&layout(scalar(column_type)), Some(text)).unwrap_err();
            let expected = format!("column \"v\" of s.t: {word} has no JSON number");
            assert!(error.starts_with(&expected), "{error}");
        }
    }

    #[test]
    fn numerics_and_money_keep_every_digit() {
        check(
            scalar(PgType::Numeric(None)),
            &[
                ("1234567890123456789012345678.0123456789", r#""1234567890123456789012345678.0123456789""#),
                ("-0.000001", r#""-0.000001""#),
                ("NaN", r#""NaN""#),
                ("Infinity", r#""Infinity""#),
            ],
        );
        check(
            scalar(PgType::Money),
            &[
                ("-$1,234,567.50", r#""-1234567.50""#),
                ("$0.00", r#""0.00""#),
                ("$92,233,720,368,547,758.07", r#""92233720368547758.07""#),
                ("-$0.50", r#""-0.50""#),
            ],
        );
    }

    #[test]
    fn text_and_binary() {
        check(
            scalar(PgType::Text),
            &[("", r#""""#), ("𝄞 é \"q\" \\ \t\n", r#""𝄞 é \"q\" \\ \t\n""#), ("NULL", r#""NULL""#)],
        );
        check(scalar(PgType::Bytea), &[("\\x", r#""""#), ("\\x00ff00", r#""AP8A""#), ("\\x5c0000", r#""XAAA""#)]);
        check(
            scalar(PgType::Jsonb),
            &[(r#"{"a": {"ü": "𝄞\u0000", "n": [1, null]}}"#, r#""{\"a\": {\"ü\": \"𝄞\\u0000\", \"n\": [1, null]}}""#)],
        );
        check(
            scalar(PgType::Uuid),
            &[("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380b11", r#""a0eebc99-9c0b-4ef8-bb6d-6bb9bd380b11""#)],
        );
    }

    #[test]
    fn dates_and_timestamps_over_postgres_range() {
        check(
            scalar(PgType::Date),
            &[
                ("1970-01-01", "0"),
                ("2017-08-15", "17393"),
                ("1900-01-01", "-25567"),
                ("2038-01-19", "24855"),
                ("9999-12-31", "2932896"),
                ("10000-01-01", "2932897"),
                ("0044-03-15 BC", "-735160"),
                ("0001-01-01 BC", "-719528"),
                ("4714-11-24 BC", "-2440588"),
                ("5874897-12-31", "2145042905"),
                ("infinity", "2147483647"),
                ("-infinity", "-2147483648"),
            ],
        );
        check(
            scalar(PgType::Timestamp(None)),
            &[
                ("1970-01-01 00:00:00", "0"),
                ("1969-12-31 23:59:59.999999", "-1"),
                ("2038-01-19 03:14:08", "2147483648000000"),
                ("9999-12-31 23:59:59.999999", "253402300799999999"),
                ("0044-03-15 12:00:00.5 BC", "-63517780799500000"),
                ("4714-11-24 00:00:00 BC", "-210866803200000000"),
                ("infinity", "9223372036825200000"),
                ("-infinity", "-9223372036832400000"),
            ],
        );
        check(
            scalar(PgType::TimestampTz(None)),
            &[
                ("2017-08-15 15:00:00+00", r#""2017-08-15T15:00:00Z""#),
                ("1900-01-01 00:00:00.000001+00", r#""1900-01-01T00:00:00.000001Z""#),
                ("0044-03-15 12:00:00.5+00 BC", r#""-0043-03-15T12:00:00.5Z""#),
                ("0001-01-01 00:00:00+00 BC", r#""0000-01-01T00:00:00Z""#),
                ("10000-01-01 00:00:00+00", r#""+10000-01-01T00:00:00Z""#),
                ("294276-12-31 23:59:59.999999+00", r#""+294276-12-31T23:59:59.999999Z""#),
                ("infinity", r#""infinity""#),
                ("-infinity", r#""-infinity""#),
            ],
        );
    }

    #[test]
    fn a_timestamp_past_microtimestamp_is_refused_naming_the_column() {
        let layout = layout(scalar(PgType::Timestamp(None)));
        let error = round_trip(&layout, Some("294276-12-31 23:59:59.999999")).unwrap_err();
        assert_eq!(error, r#"column "v" of s.t: a timestamp after 294246 AD has no io.debezium.time.MicroTimestamp"#);
        let error = round_trip(&layout, Some("yesterday")).unwrap_err();
        assert!(error.starts_with(r#"column "v" of s.t: not a timestamp"#), "{error}");
    }

    #[test]
    fn times_intervals_and_points() {
        check(
            scalar(PgType::Time(None)),
            &[
                ("00:00:00", "0"),
                ("24:00:00", "86400000000"),
                ("12:34:56.789012", "45296789012"),
                ("23:59:59.5", "86399500000"),
            ],
        );
        check(
            scalar(PgType::TimeTz(None)),
            &[
                ("24:00:00+03", r#""24:00:00+03:00""#),
                ("12:00:00-01:02:03", r#""12:00:00-01:02:03""#),
                ("12:00:00.123+05:30", r#""12:00:00.123+05:30""#),
                ("00:00:00+00", r#""00:00:00Z""#),
            ],
        );
        check(
            scalar(PgType::Interval(None)),
            &[("P1Y2M-3DT4H5M6.5S", r#""P1Y2M-3DT4H5M6.5S""#), ("P-1M", r#""P-1M""#), ("PT0S", r#""PT0S""#)],
        );
        check(
            scalar(PgType::Point),
            &[
                ("(1.5,-2)", r#"{"x":1.5,"y":-2,"wkb":"AQEAAAAAAAAAAAD4PwAAAAAAAADA","srid":null}"#),
                ("(1e-308,-0)", r#"{"x":1e-308,"y":-0,"wkb":"AQEAAADS6Bl41jAHAAAAAAAAAACA","srid":null}"#),
            ],
        );
    }

    #[test]
    fn types_without_an_exact_debezium_form_travel_as_postgres_text() {
        let with_display = |base, array_dims, display: &str| ColumnType { base, array_dims, display: display.into() };
        check(with_display(PgType::Integer, 1, "integer[]"), &[("{1,NULL,3}", r#""{1,NULL,3}""#)]);
        check(
            with_display(PgType::Text, 2, "text[]"),
            &[(r#"[0:1]={{"a b",NULL},{"𝄞","\"q\""}}"#, r#""[0:1]={{\"a b\",NULL},{\"𝄞\",\"\\\"q\\\"\"}}""#)],
        );
        check(with_display(PgType::Box, 0, "box"), &[("(3,4),(1,2)", r#""(3,4),(1,2)""#)]);
        check(with_display(PgType::Bit(Some(4)), 0, "bit(4)"), &[("0101", r#""0101""#)]);
        check(
            with_display(PgType::Hstore, 0, "hstore"),
            &[(r#""a"=>"1", "b"=>NULL"#, r#""\"a\"=>\"1\", \"b\"=>NULL""#)],
        );
        check(scalar(PgType::Inet), &[("192.168.0.1/24", r#""192.168.0.1/24""#)]);
        let schema = field_schema(&layout(with_display(PgType::Box, 0, "box")), "v");
        assert_eq!(
            schema,
            serde_json::json!({"type": "string", "optional": true, "name": "passerelle.PgText", "version": 1,
                               "parameters": {"type": "box"}, "field": "v"})
        );
    }

    fn field_schema(layout: &TableLayout, name: &str) -> serde_json::Value {
        let connect = layout.connect.as_ref().unwrap();
        let envelope: serde_json::Value = serde_json::from_str(&connect.value_schema).unwrap();
        let after = envelope["fields"].as_array().unwrap().iter().find(|f| f["field"] == "after").unwrap().clone();
        after["fields"].as_array().unwrap().iter().find(|f| f["field"] == name).unwrap().clone()
    }

    #[test]
    fn schemas_are_debeziums() {
        let mood = passerelle_model::schema::QualifiedName { schema: "public".into(), name: "mood".into() };
        let layout = TableLayout::new(
            "public".into(),
            "t".into(),
            "p.public.t".into(),
            vec!["id".into(), "m".into(), "at".into()],
            vec![0],
        )
        .with_encoding(
            Encoding::Json,
            vec![scalar(PgType::BigInt), scalar(PgType::Enum(mood.clone())), scalar(PgType::TimestampTz(None))],
        )
        .with_enum_labels(&[passerelle_model::schema::EnumType {
            name: mood,
            labels: vec!["sad".into(), "ok".into()],
        }]);
        let encoded = try_encode(&layout, Op::Read, None, Some(&[Some("1"), Some("ok"), None]), &origin()).unwrap();
        let key: serde_json::Value = serde_json::from_slice(&encoded.key.unwrap()).unwrap();
        assert_eq!(
            key,
            serde_json::json!({
                "schema": {"type": "struct", "optional": false, "name": "p.public.t.Key",
                           "fields": [{"type": "int64", "optional": false, "field": "id"}]},
                "payload": {"id": 1}
            })
        );
        let value: serde_json::Value = serde_json::from_slice(&encoded.value).unwrap();
        assert_eq!(value["schema"]["name"], "p.public.t.Envelope");
        let fields: Vec<_> = value["schema"]["fields"].as_array().unwrap().iter().map(|f| f["field"].clone()).collect();
        assert_eq!(fields, ["before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"]);
        assert_eq!(value["schema"]["fields"][1]["name"], "p.public.t.Value");
        assert_eq!(value["schema"]["fields"][2]["name"], "io.debezium.connector.postgresql.Source");
        assert_eq!(
            field_schema(&layout, "m"),
            serde_json::json!({"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
                               "parameters": {"allowed": "sad,ok"}, "field": "m"})
        );
        assert_eq!(
            field_schema(&layout, "at"),
            serde_json::json!({"type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp",
                               "version": 1, "field": "at"})
        );
        assert_eq!(value["payload"]["source"]["snapshot"], "false");
        assert_eq!((&value["payload"]["op"], &value["payload"]["ts_ms"]), (&"r".into(), &7.into()));
    }

    #[test]
    fn debeziums_default_representations_are_read() {
        // As Debezium's PostgreSQL connector writes them with decimal.handling.mode=precise and
        // time.precision.mode=adaptive: numeric(7,2), numeric, money, timestamp(3), timestamp(6),
        // time(3), timestamptz, timetz, a nanosecond timestamp from another connector, a NaN double,
        // and Debezium's -infinity timestamp(3) and infinity date.
        let types = [
            PgType::Numeric(Some((7, 2))),
            PgType::Numeric(None),
            PgType::Money,
            PgType::Timestamp(Some(3)),
            PgType::Timestamp(Some(6)),
            PgType::Time(Some(3)),
            PgType::TimestampTz(None),
            PgType::TimeTz(None),
            PgType::Timestamp(None),
            PgType::Double,
            PgType::Timestamp(Some(3)),
            PgType::Date,
        ];
        let columns: Vec<String> = (0..types.len()).map(|i| format!("c{i}")).collect();
        let layout = TableLayout::new("s".into(), "t".into(), "p.s.t".into(), columns, vec![])
            .with_encoding(Encoding::JsonCompact, types.into_iter().map(scalar).collect());
        let field = |name: &str, kind: &str, semantic: Option<&str>, parameters: serde_json::Value| serde_json::json!({"type": kind, "optional": true, "name": semantic, "parameters": parameters, "field": name});
        let null = serde_json::Value::Null;
        let row_fields = serde_json::json!([
            field(
                "c0",
                "bytes",
                Some("org.apache.kafka.connect.data.Decimal"),
                serde_json::json!({"scale": "2", "connect.decimal.precision": "7"})
            ),
            field("c1", "struct", Some("io.debezium.data.VariableScaleDecimal"), null.clone()),
            field("c2", "bytes", Some("org.apache.kafka.connect.data.Decimal"), serde_json::json!({"scale": "2"})),
            field("c3", "int64", Some("io.debezium.time.Timestamp"), null.clone()),
            field("c4", "int64", Some("io.debezium.time.MicroTimestamp"), null.clone()),
            field("c5", "int32", Some("io.debezium.time.Time"), null.clone()),
            field("c6", "string", Some("io.debezium.time.ZonedTimestamp"), null.clone()),
            field("c7", "string", Some("io.debezium.time.ZonedTime"), null.clone()),
            field("c8", "int64", Some("io.debezium.time.NanoTimestamp"), null.clone()),
            field("c9", "double", None, null.clone()),
            field("c10", "int64", Some("io.debezium.time.Timestamp"), null.clone()),
            field("c11", "int32", Some("io.debezium.time.Date"), null.clone()),
        ]);
        let row = |field: &str| serde_json::json!({"type": "struct", "optional": true, "name": "p.s.t.Value", "fields": row_fields, "field": field});
        let event = serde_json::json!({
            "schema": {"type": "struct", "name": "p.s.t.Envelope", "optional": false,
                       "fields": [row("before"), row("after")]},
            "payload": {"before": null, "op": "c", "source": {"lsn": 5}, "after": {
                "c0": "z8c=",
                "c1": {"scale": 10, "value": "CjZMmCJ+qN4pAtI="},
                "c2": "zSA=",
                "c3": -1,
                "c4": 1502809200123456i64,
                "c5": 45296789,
                "c6": "2017-08-15T15:00:00.120000Z",
                "c7": "09:00:00.5Z",
                "c8": -1000,
                "c9": "NaN",
                "c10": -9223372036832400i64,
                "c11": -622191234,
            }}
        });
        let decoded = decode(&layout, event.to_string().as_bytes()).unwrap();
        let after: Vec<Option<&str>> = decoded.after.as_ref().unwrap().iter().map(Option::as_deref).collect();
        assert_eq!(
            after,
            [
                Some("-123.45"),
                Some("1234567890123456.1234567890"),
                Some("-$130.24"),
                Some("1969-12-31 23:59:59.999"),
                Some("2017-08-15 15:00:00.123456"),
                Some("12:34:56.789"),
                Some("2017-08-15 15:00:00.12+00"),
                Some("09:00:00.5+00"),
                Some("1969-12-31 23:59:59.999999"),
                Some("NaN"),
                Some("-infinity"),
                Some("infinity"),
            ]
        );
        assert_eq!(decoded.lsn, Lsn(5));

        // An unchanged TOASTed text, which Debezium replaces by its placeholder, is not a value.
        let mut event = event;
        event["payload"]["after"]["c0"] = "__debezium_unavailable_value".into();
        let error = decode(&layout, event.to_string().as_bytes()).unwrap_err();
        assert!(error.starts_with(r#"column "c0" of s.t: Debezium's placeholder"#), "{error}");
    }

    #[test]
    fn tombstones_are_told_apart() {
        assert!(crate::envelope::is_tombstone(b""));
        assert!(crate::envelope::is_tombstone(br#"{"schema":null,"payload":null}"#));
        assert!(!crate::envelope::is_tombstone(br#"{"before":null,"after":null,"op":"d"}"#));
        let layout = layout(scalar(PgType::Text));
        let encoded = try_encode(&layout, Op::Delete, Some(&[Some("1"), None]), None, &origin()).unwrap();
        assert!(!crate::envelope::is_tombstone(&encoded.value));
    }
}
