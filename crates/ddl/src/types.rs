//! Column types: each PostgreSQL type to its nearest MySQL/MariaDB type, with an honest fidelity.
//!
//! `Exact` means every PostgreSQL value round-trips and compares the same way. `Lossy` means some
//! values or behaviours do not survive, and the note says which. `Unsupported` means there is no
//! equivalent: the column still exists, as PostgreSQL's text output, so no row is dropped.

use passerelle_model::schema::{ColumnType, PgType, QualifiedName, Schema};
use serde::Serialize;

use crate::{Dialect, IntervalAs, Server, TypeOptions, UuidAs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fidelity {
    Exact,
    Lossy,
    Unsupported,
}

/// What else the DDL needs to know about a target type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Fits in an index key and takes literal defaults.
    Plain,
    /// TEXT/BLOB: indexable only through a prefix, literal defaults need parentheses on MySQL.
    Long,
    /// JSON and spatial types: no ordinary index at all.
    Unindexable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// The column type, with its character set and collation when it holds text.
    pub sql: String,
    pub fidelity: Fidelity,
    /// What is lost, or how the value is held; empty when there is nothing to say.
    pub note: String,
    pub class: Class,
}

/// InnoDB keys hold at most 3072 bytes, and utf8mb4 counts 4 bytes a character.
/// <https://dev.mysql.com/doc/refman/8.0/en/innodb-limits.html>
pub const KEY_CHARS: u32 = 768;

/// The longest VARCHAR a utf8mb4 row can hold (65,535 bytes, 4 a character, less the length bytes).
pub const VARCHAR_MAX_CHARS: u32 = 16_383;

const RANGE_BOUND: &str = "BC dates, years after 9999 and ±infinity are rejected";

pub(crate) struct TypeMapper<'a> {
    pub server: Server,
    pub options: &'a TypeOptions,
    pub schema: &'a Schema,
}

fn mapped(sql: impl Into<String>, fidelity: Fidelity, note: impl Into<String>, class: Class) -> Mapped {
    Mapped { sql: sql.into(), fidelity, note: note.into(), class }
}

fn exact(sql: impl Into<String>) -> Mapped {
    mapped(sql, Fidelity::Exact, "", Class::Plain)
}

fn lossy(sql: impl Into<String>, note: impl Into<String>) -> Mapped {
    mapped(sql, Fidelity::Lossy, note, Class::Plain)
}

impl TypeMapper<'_> {
    /// The collation of ordinary text columns: binary and NO PAD, because PostgreSQL compares text
    /// byte-wise in the C collation and never ignores trailing spaces; a case-insensitive or PAD
    /// SPACE collation would make unique keys that hold in PostgreSQL fail on the target.
    pub fn text_collation(&self) -> String {
        if let Some(collation) = &self.options.text_collation {
            return collation.clone();
        }
        match self.server.dialect {
            Dialect::Mysql => "utf8mb4_0900_bin".into(),
            Dialect::Mariadb => "utf8mb4_nopad_bin".into(),
        }
    }

    fn text(&self, sql: &str) -> String {
        format!("{sql} CHARACTER SET utf8mb4 COLLATE {}", self.text_collation())
    }

    /// `key_chars`: when the column is part of a primary or unique key, the most characters the key
    /// leaves it (unbounded text must then become a VARCHAR of that length).
    pub fn map(&self, column_type: &ColumnType, key_chars: Option<u32>) -> Mapped {
        if column_type.array_dims > 0 {
            let note = "held as a JSON array (nested for more dimensions): array operators and non-default lower \
                        bounds are lost";
            return mapped("JSON", Fidelity::Lossy, note, Class::Unindexable);
        }
        self.map_base(&column_type.base, key_chars)
    }

    /// Text without a length limit: LONGTEXT, or a VARCHAR when a key needs it.
    fn unbounded_text(&self, key_chars: Option<u32>, collation: Option<&str>) -> Mapped {
        let collation = collation.map_or_else(|| self.text_collation(), str::to_string);
        match key_chars {
            None => {
                mapped(format!("LONGTEXT CHARACTER SET utf8mb4 COLLATE {collation}"), Fidelity::Exact, "", Class::Long)
            }
            Some(chars) => lossy(
                format!("VARCHAR({chars}) CHARACTER SET utf8mb4 COLLATE {collation}"),
                format!("in a key: values over {chars} characters are rejected (InnoDB keys hold 3072 bytes)"),
            ),
        }
    }

    /// LONGTEXT for a column that had a length limit the target cannot keep.
    pub fn long_text(&self, note: String) -> Mapped {
        mapped(self.text("LONGTEXT"), Fidelity::Lossy, note, Class::Long)
    }

    fn map_base(&self, base: &PgType, key_chars: Option<u32>) -> Mapped {
        let datetime = |precision: &Option<u32>| format!("DATETIME({})", precision.unwrap_or(6).min(6));
        match base {
            PgType::SmallInt => exact("SMALLINT"),
            PgType::Integer => exact("INT"),
            PgType::BigInt => exact("BIGINT"),
            PgType::Numeric(Some((precision, scale))) if *precision <= 65 && (0..=30).contains(scale) => mapped(
                format!("DECIMAL({precision},{scale})"),
                Fidelity::Exact,
                "NaN is rejected (DECIMAL has no NaN)",
                Class::Plain,
            ),
            PgType::Numeric(Some((precision, scale))) if *scale < 0 && precision - scale.unsigned_abs() <= 65 => {
                exact(format!("DECIMAL({},0)", precision + scale.unsigned_abs()))
            }
            PgType::Numeric(_) => lossy(
                "DECIMAL(65,30)",
                "at most 35 digits before and 30 after the point; NaN and ±Infinity are rejected",
            ),
            PgType::Real => lossy("FLOAT", "NaN and ±Infinity are rejected"),
            PgType::Double => lossy("DOUBLE", "NaN and ±Infinity are rejected"),
            PgType::Money => lossy("DECIMAL(19,2)", "the currency symbol and lc_monetary's fraction digits are lost"),
            PgType::Boolean => mapped("BOOLEAN", Fidelity::Exact, "held as TINYINT(1): 1 and 0", Class::Plain),
            PgType::Char(Some(length)) if *length <= 255 => mapped(
                format!("CHAR({length}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
                Fidelity::Exact,
                "PAD SPACE collation: trailing blanks are insignificant, as in PostgreSQL's character(n)",
                Class::Plain,
            ),
            PgType::Char(Some(length)) if *length <= VARCHAR_MAX_CHARS => lossy(
                format!("VARCHAR({length}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
                "over 255 characters: not blank-padded to its length",
            ),
            PgType::Varchar(Some(length)) if *length <= key_chars.unwrap_or(VARCHAR_MAX_CHARS) => {
                exact(self.text(&format!("VARCHAR({length})")))
            }
            PgType::Char(Some(length)) | PgType::Varchar(Some(length)) if key_chars.is_none() => {
                self.long_text(format!("LONGTEXT: the limit of {length} characters is not enforced"))
            }
            PgType::Char(_) | PgType::Varchar(_) | PgType::Text => self.unbounded_text(key_chars, None),
            PgType::Name => exact(self.text("VARCHAR(63)")),
            PgType::InternalChar => exact("CHAR(1) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
            PgType::Bytea => match key_chars {
                None => mapped("LONGBLOB", Fidelity::Exact, "", Class::Long),
                Some(_) => lossy("VARBINARY(3072)", "in a key: values over 3072 bytes are rejected"),
            },
            PgType::Date => lossy("DATE", RANGE_BOUND),
            PgType::Time(precision) => exact(format!("TIME({})", precision.unwrap_or(6).min(6))),
            PgType::TimeTz(precision) => lossy(
                format!("TIME({})", precision.unwrap_or(6).min(6)),
                "held in UTC: the UTC offset of each value is lost",
            ),
            PgType::Timestamp(precision) => lossy(datetime(precision), RANGE_BOUND),
            PgType::TimestampTz(precision) => {
                lossy(datetime(precision), format!("held in UTC, not TIMESTAMP (which ends in 2038); {RANGE_BOUND}"))
            }
            PgType::Interval(_) => match self.options.interval {
                IntervalAs::Text => lossy(
                    "VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin",
                    "held as ISO 8601 text (P1Y2M3DT4H5M6S): no interval arithmetic or ordering",
                ),
                IntervalAs::Microseconds => {
                    lossy("BIGINT", "held as microseconds: a month counts as 30 days and a day as 24 hours")
                }
            },
            PgType::Uuid => match self.options.uuid {
                UuidAs::Native if self.server.has_uuid_type() => exact("UUID"),
                UuidAs::Binary16 => mapped(
                    "BINARY(16)",
                    Fidelity::Exact,
                    "held as 16 bytes: read it with BIN_TO_UUID or HEX",
                    Class::Plain,
                ),
                UuidAs::Native | UuidAs::Char36 => mapped(
                    "CHAR(36) CHARACTER SET ascii COLLATE ascii_bin",
                    Fidelity::Exact,
                    "held as its lowercase text",
                    Class::Plain,
                ),
            },
            PgType::Json => match self.server.dialect {
                Dialect::Mysql => mapped(
                    "JSON",
                    Fidelity::Lossy,
                    "MySQL normalises JSON: key order, duplicate keys and whitespace of json text are not kept",
                    Class::Unindexable,
                ),
                Dialect::Mariadb => mapped(
                    "JSON",
                    Fidelity::Exact,
                    "LONGTEXT with a JSON_VALID check: the text is kept as written",
                    Class::Unindexable,
                ),
            },
            PgType::Jsonb => mapped("JSON", Fidelity::Exact, "", Class::Unindexable),
            PgType::Xml => mapped(
                "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                Fidelity::Lossy,
                "held as text: no well-formedness check, no XML functions",
                Class::Long,
            ),
            PgType::Inet | PgType::Cidr => lossy(
                "VARCHAR(43) CHARACTER SET ascii COLLATE ascii_bin",
                "held as text: network operators and address ordering are lost",
            ),
            PgType::MacAddr => {
                lossy("CHAR(17) CHARACTER SET ascii COLLATE ascii_bin", "held as text: ordering is textual")
            }
            PgType::MacAddr8 => {
                lossy("CHAR(23) CHARACTER SET ascii COLLATE ascii_bin", "held as text: ordering is textual")
            }
            PgType::Bit(length) if length.unwrap_or(1) <= 64 => exact(format!("BIT({})", length.unwrap_or(1))),
            PgType::Bit(Some(length)) | PgType::VarBit(Some(length)) if *length <= VARCHAR_MAX_CHARS => lossy(
                format!("VARCHAR({length}) CHARACTER SET ascii COLLATE ascii_bin"),
                "held as a string of 0 and 1: bitwise operators are lost",
            ),
            PgType::Bit(_) | PgType::VarBit(_) => mapped(
                "LONGTEXT CHARACTER SET ascii COLLATE ascii_bin",
                Fidelity::Lossy,
                "held as a string of 0 and 1: bitwise operators are lost",
                Class::Long,
            ),
            PgType::Point => {
                spatial("POINT", "x and y kept; PostgreSQL's geometric operators differ from ST_ functions")
            }
            PgType::Lseg => spatial("LINESTRING", "a two-point LINESTRING"),
            PgType::Path => spatial("LINESTRING", "whether the path is closed is lost"),
            PgType::Polygon => spatial("POLYGON", "PostgreSQL's geometric operators differ from ST_ functions"),
            PgType::Box => spatial("POLYGON", "held as its rectangle"),
            PgType::Line | PgType::Circle => lossy(
                "VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin",
                "no MySQL geometry: held as PostgreSQL's text form",
            ),
            PgType::TsVector | PgType::TsQuery => mapped(
                "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                Fidelity::Lossy,
                "held as text: no text-search semantics (a FULLTEXT index is the nearest thing)",
                Class::Long,
            ),
            PgType::Range { multi: false, .. } => lossy(
                self.text("VARCHAR(255)"),
                "held as text such as [1,10): range operators and exclusion constraints are lost",
            ),
            PgType::Range { multi: true, .. } => mapped(
                self.text("LONGTEXT"),
                Fidelity::Lossy,
                "held as text such as {[1,3),[5,7)}: range operators are lost",
                Class::Long,
            ),
            PgType::Oid(name) if name == "oid" => mapped(
                "INT UNSIGNED",
                Fidelity::Exact,
                "the number; the object it named is not on the target",
                Class::Plain,
            ),
            PgType::Oid(_) => lossy(self.text("VARCHAR(255)"), "held as the object's name: no longer a reference"),
            PgType::SystemId(name) => match name.as_str() {
                "xid" | "cid" => lossy("INT UNSIGNED", "an identifier of the source cluster, kept as a number"),
                "xid8" => lossy("BIGINT UNSIGNED", "an identifier of the source cluster, kept as a number"),
                _ => lossy(
                    "VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin",
                    "an identifier of the source cluster, kept as text",
                ),
            },
            PgType::Enum(name) => self.enumeration(name),
            PgType::Domain(name) => self.domain(name, key_chars),
            PgType::Composite(name) => {
                let fields = self
                    .schema
                    .composites
                    .iter()
                    .find(|c| &c.name == name)
                    .map(|c| c.fields.iter().map(|(field, _)| field.as_str()).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                mapped(
                    "JSON",
                    Fidelity::Lossy,
                    format!("composite {name} held as a JSON object ({fields}): field types are not enforced"),
                    Class::Unindexable,
                )
            }
            PgType::Hstore => mapped(
                "JSON",
                Fidelity::Lossy,
                "held as a JSON object of strings: hstore operators are lost",
                Class::Unindexable,
            ),
            PgType::Citext => {
                let Some(collation) = self.server.accent_sensitive_collation(false) else {
                    let mut text = self.unbounded_text(key_chars, None);
                    let note = format!(
                        "compared case-sensitively: {} has no collation that ignores case but not accents",
                        self.server
                    );
                    text.note = if text.note.is_empty() { note } else { format!("{}; {note}", text.note) };
                    text.fidelity = Fidelity::Lossy;
                    return text;
                };
                let mut text = self.unbounded_text(key_chars, Some(collation));
                if text.fidelity == Fidelity::Exact {
                    text.note = format!("case-insensitive through the {collation} collation");
                }
                text
            }
            PgType::Other(name) => mapped(
                "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                Fidelity::Unsupported,
                format!("no MySQL equivalent for {name}: held as PostgreSQL's text output"),
                Class::Long,
            ),
        }
    }

    fn enumeration(&self, name: &QualifiedName) -> Mapped {
        let Some(found) = self.schema.enums.iter().find(|e| &e.name == name) else {
            return lossy(
                self.text("VARCHAR(255)"),
                format!("enum {name} is outside the selected schemas: held as text"),
            );
        };
        let labels: Vec<String> = found.labels.iter().map(|l| format!("'{}'", l.replace('\'', "''"))).collect();
        mapped(
            format!("ENUM({}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", labels.join(",")),
            Fidelity::Exact,
            format!("enum {name}: labels sort in declaration order, as in PostgreSQL"),
            Class::Plain,
        )
    }

    /// A domain becomes its base type; the plan copies its NOT NULL and checks onto the column.
    fn domain(&self, name: &QualifiedName, key_chars: Option<u32>) -> Mapped {
        let Some(found) = self.schema.domains.iter().find(|d| &d.name == name) else {
            return mapped(
                "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                Fidelity::Unsupported,
                format!("domain {name} is outside the selected schemas: held as text"),
                Class::Long,
            );
        };
        let mut base = self.map(&found.base, key_chars);
        let inlined = format!("domain {name} over {}", found.base.display);
        base.note = if base.note.is_empty() { inlined } else { format!("{inlined}; {}", base.note) };
        base
    }
}

fn spatial(sql: &str, note: &str) -> Mapped {
    mapped(sql, Fidelity::Lossy, format!("a geometry with SRID 0: {note}"), Class::Unindexable)
}
