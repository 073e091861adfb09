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
//! - `interval`: ISO 8601 text (`IntervalStyle = iso_8601`), or microseconds when held as BIGINT.
//! - `uuid`: lowercase 8-4-4-4-12, whether held as CHAR(36), MariaDB UUID or BINARY(16).
//! - `bit(n)` held as BIT(n): the string of 0 and 1, n long.
//!
//! Some forms cannot be written in SQL that both engines share; their raw text is read and
//! canonicalised here, in Rust ([`Client`]): json, jsonb, arrays, composites and hstore (all JSON on
//! the target: keys sorted, no whitespace, numbers as exact decimals, see [`crate::json`]), `real` and
//! `double precision` (the engines print the same double differently, `1e-05` against `0.00001`: both
//! are parsed and printed again as the shortest round-trip decimal, `-0` as `0`), and the geometric
//! types (PostgreSQL's `(1,2)` against MySQL's `POINT(1 2)`: the coordinates, see [`crate::shape`]).
//!
//! PostgreSQL sessions run with `TimeZone = UTC`, `DateStyle = ISO`, `IntervalStyle = iso_8601` and
//! `extra_float_digits = 1`, MySQL sessions with `time_zone = '+00:00'` and utf8mb4 (see
//! [`crate::session`]).

use passerelle_model::schema::{ColumnType, PgType, Schema};

use crate::target::TargetColumn;

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

/// PostgreSQL's geometric types, as far as their canonical form differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Point, lseg and path: the coordinates in order.
    Open,
    /// Polygon: MySQL repeats the first point at the end of the ring, PostgreSQL does not.
    Ring,
    /// Box: PostgreSQL keeps two corners, MySQL a five-point polygon; both reduce to min and max.
    Box,
}

impl Rendering {
    fn sql(pg: String, my: String) -> Rendering {
        Rendering { pg, my, client: None }
    }

    fn client(pg: String, my: String, client: Client) -> Rendering {
        Rendering { pg, my, client: Some(client) }
    }
}

/// A PostgreSQL identifier in double quotes.
pub fn pg_quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The MySQL numeric types, whose values `CAST(... AS CHAR)` prints as digits.
fn numeric_target(target: &TargetColumn) -> bool {
    ["tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double", "bit", "year"]
        .contains(&target.data_type.as_str())
}

/// `pg` and `my` are the quoted column names on each side.
pub fn render(column_type: &ColumnType, target: &TargetColumn, schema: &Schema, pg: &str, my: &str) -> Rendering {
    if column_type.array_dims > 0 {
        return Rendering::client(format!("to_jsonb({pg})::text"), my.to_string(), Client::Json);
    }
    render_base(&column_type.base, target, schema, pg, my)
}

/// A DECIMAL's text without trailing fractional zeros, as PostgreSQL's `trim_scale` prints it.
fn trimmed_decimal(my: &str) -> String {
    let text = format!("CAST({my} AS CHAR)");
    format!("IF(LOCATE('.', {text}) > 0, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {text})), {text})")
}

const PG_TIMESTAMP: &str = "'YYYY-MM-DD HH24:MI:SS.US'";
const MY_TIMESTAMP: &str = "'%Y-%m-%d %H:%i:%s.%f'";

fn render_base(base: &PgType, target: &TargetColumn, schema: &Schema, pg: &str, my: &str) -> Rendering {
    let as_text = || {
        let my = if numeric_target(target) { format!("CAST({my} AS CHAR)") } else { my.to_string() };
        Rendering::sql(format!("{pg}::text"), my)
    };
    match base {
        PgType::SmallInt | PgType::Integer | PgType::BigInt => {
            Rendering::sql(format!("{pg}::text"), format!("CAST({my} AS CHAR)"))
        }
        PgType::Numeric(_) | PgType::Money if target.data_type == "decimal" => {
            Rendering::sql(format!("trim_scale({pg}::numeric)::text"), trimmed_decimal(my))
        }
        PgType::Real => Rendering::client(format!("{pg}::text"), format!("CAST({my} AS CHAR)"), Client::Float32),
        PgType::Double => Rendering::client(format!("{pg}::text"), format!("CAST({my} AS CHAR)"), Client::Float64),
        PgType::Boolean => Rendering::sql(format!("{pg}::int::text"), format!("CAST({my} AS CHAR)")),
        // PostgreSQL's cast from character(n) to text drops the padding; MySQL drops it when
        // reading a CHAR, not when reading the VARCHAR that holds a character(n) over 255.
        PgType::Char(_) => Rendering::sql(format!("{pg}::text"), format!("TRIM(TRAILING ' ' FROM {my})")),
        PgType::Bytea => Rendering::sql(format!("encode({pg}, 'hex')"), format!("LOWER(HEX({my}))")),
        PgType::Date => {
            Rendering::sql(format!("to_char({pg}, 'YYYY-MM-DD')"), format!("DATE_FORMAT({my}, '%Y-%m-%d')"))
        }
        PgType::Time(_) => Rendering::sql(
            format!("to_char(date '2000-01-01' + {pg}, 'HH24:MI:SS.US')"),
            format!("TIME_FORMAT({my}, '%H:%i:%s.%f')"),
        ),
        PgType::TimeTz(_) => Rendering::sql(
            format!("to_char((date '2000-01-01' + {pg}) at time zone 'UTC', 'HH24:MI:SS.US')"),
            format!("TIME_FORMAT({my}, '%H:%i:%s.%f')"),
        ),
        PgType::Timestamp(_) => {
            Rendering::sql(format!("to_char({pg}, {PG_TIMESTAMP})"), format!("DATE_FORMAT({my}, {MY_TIMESTAMP})"))
        }
        PgType::TimestampTz(_) => Rendering::sql(
            format!("to_char({pg} at time zone 'UTC', {PG_TIMESTAMP})"),
            format!("DATE_FORMAT({my}, {MY_TIMESTAMP})"),
        ),
        // ddl's `IntervalAs::Microseconds`: a month is 30 days and a day 24 hours.
        PgType::Interval(_) if numeric_target(target) => Rendering::sql(
            format!(
                "((extract(year from {pg}) * 360 + extract(month from {pg}) * 30 + extract(day from {pg})) \
                 * 86400000000 + (extract(hour from {pg}) * 3600 + extract(minute from {pg}) * 60) * 1000000 \
                 + extract(microseconds from {pg}))::bigint::text"
            ),
            format!("CAST({my} AS CHAR)"),
        ),
        PgType::Uuid => match target.data_type.as_str() {
            "binary" => Rendering::sql(
                format!("{pg}::text"),
                format!(
                    "LOWER(CONCAT_WS('-', SUBSTR(HEX({my}), 1, 8), SUBSTR(HEX({my}), 9, 4), SUBSTR(HEX({my}), 13, 4), \
                     SUBSTR(HEX({my}), 17, 4), SUBSTR(HEX({my}), 21)))"
                ),
            ),
            _ => Rendering::sql(format!("{pg}::text"), format!("CAST({my} AS CHAR)")),
        },
        PgType::Json | PgType::Jsonb => Rendering::client(format!("{pg}::text"), my.to_string(), Client::Json),
        PgType::Composite(_) => Rendering::client(format!("to_jsonb({pg})::text"), my.to_string(), Client::Json),
        PgType::Hstore => Rendering::client(format!("{pg}::jsonb::text"), my.to_string(), Client::Json),
        PgType::Bit(length) if target.data_type == "bit" => {
            Rendering::sql(format!("{pg}::text"), format!("LPAD(BIN({my}), {}, '0')", length.unwrap_or(1)))
        }
        PgType::Point | PgType::Lseg | PgType::Path | PgType::Polygon | PgType::Box if !target_is_text(target) => {
            let shape = match base {
                PgType::Polygon => Shape::Ring,
                PgType::Box => Shape::Box,
                _ => Shape::Open,
            };
            Rendering::client(format!("{pg}::text"), format!("ST_AsText({my})"), Client::Shape(shape))
        }
        PgType::Domain(name) => match schema.domains.iter().find(|domain| &domain.name == name) {
            Some(domain) => render(&domain.base, target, schema, pg, my),
            None => as_text(),
        },
        _ => as_text(),
    }
}

fn target_is_text(target: &TargetColumn) -> bool {
    ["char", "varchar", "text", "tinytext", "mediumtext", "longtext"].contains(&target.data_type.as_str())
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
pub fn key_order(column_type: &ColumnType, target: &TargetColumn, schema: &Schema, pg: &str) -> Option<KeyOrder> {
    if column_type.array_dims > 0 {
        return None;
    }
    let order = |pg_bound, my_bound| Some(KeyOrder { pg_column: pg.to_string(), pg_bound, my_bound });
    let binary_text = target.collation.as_deref().is_some_and(|c| c.ends_with("_bin") || c == "binary");
    match &column_type.base {
        PgType::SmallInt | PgType::Integer | PgType::BigInt => order("{}::bigint", "CAST(? AS SIGNED)"),
        PgType::Numeric(_) if target.data_type == "decimal" => order("{}::numeric", "CAST(? AS DECIMAL(65,30))"),
        PgType::Date => order("{}::date", "CAST(? AS DATE)"),
        PgType::Timestamp(_) => order("{}::timestamp", "CAST(? AS DATETIME(6))"),
        PgType::TimestampTz(_) => order("{}::timestamptz", "CAST(? AS DATETIME(6))"),
        PgType::Uuid if target.data_type == "char" => order("{}::uuid", "?"),
        PgType::Varchar(_) | PgType::Text | PgType::Char(_) if binary_text => {
            Some(KeyOrder { pg_column: format!("{pg} COLLATE \"C\""), pg_bound: "{}", my_bound: "?" })
        }
        PgType::Domain(name) => {
            let domain = schema.domains.iter().find(|domain| &domain.name == name)?;
            key_order(&domain.base, target, schema, pg)
        }
        _ => None,
    }
}
