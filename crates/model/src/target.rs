//! The target side of the mapping: where each source table lands and how each of its values, as
//! PostgreSQL text (see [`crate::event`]), becomes a target value.
//!
//! `ddl` decides it along with the column types; `mysql` carries it out when it loads rows; `verify`
//! reads it to render both sides alike. Keeping the decision in one type keeps the three in step.

use serde::Serialize;

use crate::schema::QualifiedName;

/// A source table as the target holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetTable {
    pub source: QualifiedName,
    pub database: String,
    /// The target table name (shortened to 64 characters when PostgreSQL's was longer).
    pub name: String,
    /// In source column order; every source column has one.
    pub columns: Vec<TargetColumn>,
    /// Positions in `columns` of the columns that identify a row in the change stream (the primary
    /// key, or the replica identity's unique index: `Table::key_positions`); empty when old rows are
    /// matched on every column.
    pub key: Vec<usize>,
}

impl TargetTable {
    /// A row's primary key as PostgreSQL writes it in its errors, `(flight_id, seq)=(5, 2)`, from
    /// the text of each column: the one part of a row an error may show, so that the user finds it.
    pub fn key_text<'a>(&self, value: impl Fn(usize) -> Option<&'a str>) -> String {
        if self.key.is_empty() {
            return "a row without a primary key".to_string();
        }
        let names: Vec<&str> = self.key.iter().map(|&i| self.columns[i].name.as_str()).collect();
        let values: Vec<&str> = self.key.iter().map(|&i| value(i).unwrap_or("NULL")).collect();
        format!("({})=({})", names.join(", "), values.join(", "))
    }
}

impl Conversion {
    /// Whether some source text may have no target value (NaN, a BC date, a malformed array).
    pub fn may_refuse(&self) -> bool {
        !matches!(self, Conversion::Text | Conversion::Bits)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetColumn {
    pub name: String,
    pub conversion: Conversion,
    /// The target computes it (`GENERATED ALWAYS AS ... STORED`): loads skip it, verify compares it.
    pub generated: bool,
}

/// How one PostgreSQL text value becomes the target's value. Values that the target type cannot
/// hold (NaN in a DECIMAL, a BC date) are refused with the column named, never altered silently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conversion {
    /// The text as it is: integers, text types, json, enums, inet, ranges, uuid as CHAR(36), ...
    Text,
    /// numeric, real, double precision: `NaN` and `±Infinity` are refused.
    Number,
    /// `t`/`f` to 1/0.
    Boolean,
    /// money under `lc_monetary = C`: `-$1,234.56` to `-1234.56`.
    Money,
    /// bytea's `\x…` hex to the raw bytes.
    Bytes,
    /// date, timestamp and timestamptz (already in UTC): BC dates and `±infinity` are refused and a
    /// timestamptz's `+00` offset is dropped.
    DateTime,
    /// timetz, `12:00:00+03`, to the UTC time of day, `09:00:00`.
    TimeUtc,
    /// uuid to its 16 bytes, for BINARY(16).
    UuidBytes,
    /// interval (IntervalStyle `iso_8601`) to microseconds, counted as `EXTRACT(EPOCH)` counts them:
    /// whole years of months as 365.25 days, other months as 30 days.
    IntervalMicros,
    /// bit(n) of at most 64 bits: `0101` to the BIT value.
    Bits,
    /// point, lseg, path, polygon, box: PostgreSQL's text to WKT for `ST_GeomFromText`.
    Geometry(Shape),
    /// An array, `{1,2,"a b"}`, to a JSON array (nested for more dimensions).
    Array(ArrayElement),
    /// A composite value, `(1,"a b",)`, to a JSON object of these field names, every value a string.
    Record { fields: Vec<String> },
    /// An hstore, `"a"=>"1", "b"=>NULL`, to a JSON object of strings.
    Hstore,
}

/// The geometry a PostgreSQL geometric type becomes; its text alone cannot tell a closed path from a
/// polygon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// point
    Point,
    /// lseg and path: their points in order
    LineString,
    /// polygon: its ring, closed
    Polygon,
    /// box: the rectangle of its two corners
    Box,
}

/// How the elements of an array are written in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrayElement {
    /// As JSON numbers; NaN and ±Infinity are refused.
    Number,
    /// `t`/`f` as `true`/`false`.
    Boolean,
    /// As JSON strings.
    Text,
}
