//! The canonical text of a value: one SQL expression per engine, built from the column's PostgreSQL
//! type and the type the target actually holds it in, such that equal data renders byte for byte the
//! same on PostgreSQL and on MySQL/MariaDB. Hashes are taken of these texts, so this file is where
//! "equal" is defined. Per type:
//!
//! - integers, `oid`: decimal digits.
//! - `numeric`, `money`: the number without trailing fractional zeros (`1.50` and `1.5000` are `1.5`),
//!   so a DECIMAL(65,30) holding an unconstrained numeric agrees with PostgreSQL.
//! - `boolean`: `1` or `0` (TINYINT(1) on the target).
//! - `char(n)`: without trailing blanks: blank padding is insignificant in both engines.
//! - other text (`varchar`, `text`, enums, `inet`, ranges, `xml`, ...): PostgreSQL's text output, as is;
//!   a trailing space is a difference.
//! - `bytea`: lowercase hex.
//! - `date`: `YYYY-MM-DD`; `time`: `HH:MM:SS.ffffff`; `timetz`: the same, in UTC.
//! - `timestamp`, `timestamptz`: `YYYY-MM-DD HH:MM:SS.ffffff`, timestamptz in UTC (DATETIME(6) in UTC).
//! - `interval`: PostgreSQL's ISO 8601 text (`IntervalStyle = iso_8601`), or microseconds when held as BIGINT.
//! - `uuid`: lowercase 8-4-4-4-12, whether held as CHAR(36), MariaDB UUID or BINARY(16).
//! - `bit(n)` held as BIT(n): the string of 0 and 1, n long.
//!
//! Some forms cannot be written in SQL that both engines share; their raw text is read and
//! canonicalised here, in Rust ([`Client`]): json, jsonb, arrays, composites and hstore (all JSON on
//! the target: keys sorted, no whitespace, numbers as exact decimals, see [`crate::json`]; array
//! elements, composite fields and hstore values as the load writes them), `real` and
//! `double precision` (the engines print the same double differently, `1e-05` against `0.00001`: both
//! are parsed and printed again as the shortest round-trip decimal, `-0` as `0`), and the geometric
//! types (PostgreSQL's `(1,2)` against MySQL's `POINT(1 2)`: the coordinates, see [`crate::client`]).
//!
//! Which form a column takes follows the [`Conversion`] that `ddl` chose for it, the one the load
//! applied, and the column's type as the target's information_schema shows it. PostgreSQL sessions
//! run under `pg::session`'s settings, the snapshot's (UTC, ISO dates, shortest floats); MySQL
//! sessions with `time_zone = '+00:00'` and utf8mb4 (see [`crate::session`]).

use passerelle_model::schema::{ColumnType, PgType, Schema};
use passerelle_model::target::{ArrayElement, Conversion, Shape};

use crate::target::LiveColumn;

/// One column's canonical text on each engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendering {
    /// A PostgreSQL expression of type text.
    pub pg: String,
    /// A MySQL/MariaDB expression yielding a string.
    pub my: String,
    /// Set when `pg` and `my` yield raw text that Rust canonicalises.
    pub client: Option<Client>,
}

/// A canonical form computed in Rust, from each engine's raw text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Json,
    Float32,
    Float64,
    Shape(Shape),
}

/// A PostgreSQL identifier in double quotes.
pub fn pg_quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The MySQL numeric types, whose values `CAST(... AS CHAR)` prints as digits.
fn numeric_target(target: &LiveColumn) -> bool {
    ["tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double", "bit", "year"]
        .contains(&target.data_type.as_str())
}

/// The type under any domains: what the values really are.
fn resolved<'a>(column_type: &'a ColumnType, schema: &'a Schema) -> &'a ColumnType {
    match &column_type.base {
        PgType::Domain(name) if column_type.array_dims == 0 => {
            match schema.domains.iter().find(|domain| &domain.name == name) {
                Some(domain) => resolved(&domain.base, schema),
                None => column_type,
            }
        }
        _ => column_type,
    }
}

/// A DECIMAL's text without trailing fractional zeros, as PostgreSQL's `trim_scale` prints it.
fn trimmed_decimal(my: &str) -> String {
    let text = format!("CAST({my} AS CHAR)");
    format!("IF(LOCATE('.', {text}) > 0, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {text})), {text})")
}

const PG_TIMESTAMP: &str = "'YYYY-MM-DD HH24:MI:SS.US'";
const MY_TIMESTAMP: &str = "'%Y-%m-%d %H:%i:%s.%f'";

/// `pg` and `my` are the quoted column names on each side; `conversion` is how `ddl` decided the
/// value travels (what the load wrote), `target` what the target's information_schema shows.
pub fn render(
    column_type: &ColumnType,
    conversion: &Conversion,
    target: &LiveColumn,
    schema: &Schema,
    pg: &str,
    my: &str,
) -> Rendering {
    let base = &resolved(column_type, schema).base;
    let sql = |pg: String, my: String| Rendering { pg, my, client: None };
    let client = |pg: String, my: String, client: Client| Rendering { pg, my, client: Some(client) };
    let time = || {
        sql(format!("to_char(date '2000-01-01' + {pg}, 'HH24:MI:SS.US')"), format!("TIME_FORMAT({my}, '%H:%i:%s.%f')"))
    };
    let decimal = || sql(format!("trim_scale({pg}::numeric)::text"), trimmed_decimal(my));
    let digits = || sql(format!("{pg}::text"), format!("CAST({my} AS CHAR)"));
    match conversion {
        // Arrays of text-like elements travel as their elements' text output (`c::text[]` applies
        // it and keeps the dimensions); numbers and booleans as JSON numbers and booleans.
        Conversion::Array(ArrayElement::Text) => {
            client(format!("to_jsonb({pg}::text[])::text"), my.into(), Client::Json)
        }
        Conversion::Array(_) => client(format!("to_jsonb({pg})::text"), my.into(), Client::Json),
        // Every field as its text output, NULL as null. `to_jsonb` tells a NULL composite from one
        // whose fields are all NULL, which `IS NULL` does not.
        Conversion::Record { fields } => {
            let members: Vec<String> = fields
                .iter()
                .map(|field| format!("'{}', ({pg}).{}::text", field.replace('\'', "''"), pg_quote(field)))
                .collect();
            client(
                format!(
                    "CASE WHEN to_jsonb({pg}) IS NOT NULL THEN jsonb_build_object({})::text END",
                    members.join(", ")
                ),
                my.into(),
                Client::Json,
            )
        }
        // hstore's own cast to jsonb keeps every value a string, as the load does.
        Conversion::Hstore => client(format!("{pg}::jsonb::text"), my.into(), Client::Json),
        Conversion::Number => match base {
            PgType::Real => client(format!("{pg}::text"), format!("CAST({my} AS CHAR)"), Client::Float32),
            PgType::Double => client(format!("{pg}::text"), format!("CAST({my} AS CHAR)"), Client::Float64),
            _ => decimal(),
        },
        Conversion::Money => decimal(),
        Conversion::Boolean => sql(format!("{pg}::int::text"), format!("CAST({my} AS CHAR)")),
        Conversion::Bytes => sql(format!("encode({pg}, 'hex')"), format!("LOWER(HEX({my}))")),
        Conversion::DateTime => match base {
            PgType::Date => sql(format!("to_char({pg}, 'YYYY-MM-DD')"), format!("DATE_FORMAT({my}, '%Y-%m-%d')")),
            PgType::TimestampTz(_) => sql(
                format!("to_char({pg} at time zone 'UTC', {PG_TIMESTAMP})"),
                format!("DATE_FORMAT({my}, {MY_TIMESTAMP})"),
            ),
            _ => sql(format!("to_char({pg}, {PG_TIMESTAMP})"), format!("DATE_FORMAT({my}, {MY_TIMESTAMP})")),
        },
        Conversion::TimeUtc => sql(
            format!("to_char((date '2000-01-01' + {pg}) at time zone 'UTC', 'HH24:MI:SS.US')"),
            format!("TIME_FORMAT({my}, '%H:%i:%s.%f')"),
        ),
        Conversion::UuidBytes => sql(
            format!("{pg}::text"),
            format!(
                "LOWER(CONCAT_WS('-', SUBSTR(HEX({my}), 1, 8), SUBSTR(HEX({my}), 9, 4), SUBSTR(HEX({my}), 13, 4), \
                 SUBSTR(HEX({my}), 17, 4), SUBSTR(HEX({my}), 21)))"
            ),
        ),
        // As the load counts them: `EXTRACT(EPOCH)`, exact in PostgreSQL 14 and later.
        Conversion::IntervalMicros => {
            sql(format!("(extract(epoch from {pg}) * 1000000)::bigint::text"), format!("CAST({my} AS CHAR)"))
        }
        Conversion::Bits => {
            let length = match base {
                PgType::Bit(length) => length.unwrap_or(1),
                _ => 1,
            };
            sql(format!("{pg}::text"), format!("LPAD(BIN({my}), {length}, '0')"))
        }
        Conversion::Geometry(shape) => client(format!("{pg}::text"), format!("ST_AsText({my})"), Client::Shape(*shape)),
        Conversion::Text => match base {
            // PostgreSQL's cast from character(n) to text drops the padding; MySQL drops it when
            // reading a CHAR, not when reading the VARCHAR that holds a character(n) over 255.
            PgType::Char(_) => sql(format!("{pg}::text"), format!("TRIM(TRAILING ' ' FROM {my})")),
            PgType::Time(_) => time(),
            PgType::Json | PgType::Jsonb => client(format!("{pg}::text"), my.into(), Client::Json),
            // The cast to text always writes the netmask (`::1/128`); COPY, and so the target, writes
            // inet's output form (`::1`).
            PgType::Inet => sql(format!("textin(inet_out({pg}))"), my.into()),
            PgType::Cidr => sql(format!("textin(cidr_out({pg}))"), my.into()),
            _ if numeric_target(target) || target.data_type == "uuid" => digits(),
            _ => sql(format!("{pg}::text"), my.into()),
        },
    }
}

/// How rows are ordered and bounded by a key column on both engines, for bisection by key ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOrder {
    /// The column as PostgreSQL compares it, e.g. `"code" COLLATE "C"`.
    pub pg_column: String,
    /// A bound as a PostgreSQL expression of the text parameter `$n`, `{}` standing for it.
    pub pg_bound: &'static str,
    /// A bound as a MySQL expression of the text parameter `?`.
    pub my_bound: &'static str,
}

/// The key types whose order is the same on both engines, given the target column: numbers, dates,
/// times, uuids held as text, and text held in a binary collation (byte order, which PostgreSQL gives
/// under `COLLATE "C"`). `None` for anything else: MariaDB's UUID type sorts its segments
/// differently, case-insensitive collations fold what PostgreSQL tells apart.
pub fn key_order(column_type: &ColumnType, target: &LiveColumn, schema: &Schema, pg: &str) -> Option<KeyOrder> {
    if resolved(column_type, schema).array_dims > 0 {
        return None;
    }
    let order = |pg_bound, my_bound| Some(KeyOrder { pg_column: pg.to_string(), pg_bound, my_bound });
    let binary_text = target.collation.as_deref().is_some_and(|c| c.ends_with("_bin") || c == "binary");
    match &resolved(column_type, schema).base {
        PgType::SmallInt | PgType::Integer | PgType::BigInt => order("{}::bigint", "CAST(? AS SIGNED)"),
        PgType::Numeric(_) if target.data_type == "decimal" => order("{}::numeric", "CAST(? AS DECIMAL(65,30))"),
        PgType::Date => order("{}::date", "CAST(? AS DATE)"),
        PgType::Timestamp(_) => order("{}::timestamp", "CAST(? AS DATETIME(6))"),
        PgType::TimestampTz(_) => order("{}::timestamptz", "CAST(? AS DATETIME(6))"),
        PgType::Uuid if target.data_type == "char" => order("{}::uuid", "?"),
        PgType::Varchar(_) | PgType::Text | PgType::Char(_) if binary_text => {
            Some(KeyOrder { pg_column: format!("{pg} COLLATE \"C\""), pg_bound: "{}", my_bound: "?" })
        }
        _ => None,
    }
}
