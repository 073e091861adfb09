//! The source schema as Passerelle understands it: what `pg::catalog` reads and `ddl` translates.
//!
//! Plain data, no IO. Names are PostgreSQL's, unquoted; expressions are PostgreSQL's own text as
//! `pg_get_expr`, `pg_get_constraintdef` and `pg_get_viewdef` print it, so that whatever cannot be
//! translated can still be shown to the user exactly as written.

use serde::{Deserialize, Serialize};

/// Every object of the selected schemas.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub tables: Vec<Table>,
    pub sequences: Vec<Sequence>,
    pub enums: Vec<EnumType>,
    pub domains: Vec<Domain>,
    pub composites: Vec<CompositeType>,
    pub views: Vec<View>,
    /// Functions and procedures: listed in the report, never migrated.
    pub routines: Vec<Routine>,
    pub triggers: Vec<Trigger>,
    /// Extensions installed in the source database, whichever schema they live in.
    pub extensions: Vec<Extension>,
    /// Tables and views of the selected schemas left out of the migration (`--include`,
    /// `--exclude`): a foreign key or a view that refers to one is reported as not migrated.
    #[serde(default)]
    pub left_out: Vec<QualifiedName>,
    /// Columns left out of the migration (`--exclude-column`), `schema.table.column`.
    #[serde(default)]
    pub left_out_columns: Vec<String>,
}

/// A schema-qualified name, as PostgreSQL spells it (unquoted).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: QualifiedName,
    pub kind: TableKind,
    /// `UNLOGGED` in PostgreSQL: not crash-safe there, always logged in InnoDB.
    pub unlogged: bool,
    pub columns: Vec<Column>,
    pub primary_key: Option<Key>,
    pub uniques: Vec<Key>,
    pub foreign_keys: Vec<ForeignKey>,
    pub checks: Vec<Check>,
    /// Indexes that do not back a primary key or unique constraint.
    pub indexes: Vec<Index>,
    pub comment: Option<String>,
    /// What PostgreSQL logs of a row an update or delete changed (`REPLICA IDENTITY`), which is all
    /// the change stream can tell rows apart by. Absent from announcements of older Passerelles,
    /// which streamed keyed tables only: the default identity.
    #[serde(default)]
    pub replica_identity: ReplicaIdentity,
}

impl Table {
    /// Positions in `columns` of the columns that identify a row in the change stream: the replica
    /// identity's index, else the primary key; empty when the table has neither (its old rows are
    /// whole, `REPLICA IDENTITY FULL`, or it cannot be streamed).
    pub fn key_positions(&self) -> Vec<usize> {
        let columns = match (&self.replica_identity, &self.primary_key) {
            (ReplicaIdentity::Index { columns, .. }, _) => columns,
            (_, Some(key)) => &key.columns,
            (_, None) => return Vec::new(),
        };
        columns.iter().filter_map(|name| self.columns.iter().position(|c| &c.name == name)).collect()
    }

    /// Whether the change stream tells this table's rows apart, so that its updates and deletes can
    /// be carried: by a primary key, by a unique index named as its replica identity, or by whole old
    /// rows (`REPLICA IDENTITY FULL`). Publishing a table that has none makes its updates and deletes
    /// fail on the source.
    pub fn identifies_rows(&self) -> bool {
        match self.replica_identity {
            ReplicaIdentity::Full | ReplicaIdentity::Index { .. } => true,
            ReplicaIdentity::Default => self.primary_key.is_some(),
            ReplicaIdentity::Nothing => false,
        }
    }
}

/// `pg_class.relreplident`: what an update or delete logs of the old row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaIdentity {
    /// The primary key's columns, when the table has one; nothing otherwise.
    #[default]
    Default,
    /// Every column (`REPLICA IDENTITY FULL`).
    Full,
    /// The columns of a unique index (`REPLICA IDENTITY USING INDEX name`), not null by rule.
    Index { name: String, columns: Vec<String> },
    /// Nothing (`REPLICA IDENTITY NOTHING`).
    Nothing,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TableKind {
    Ordinary,
    /// A partitioned parent: `strategy` is `range`, `list` or `hash`, `key` the `PARTITION BY` text.
    Partitioned {
        strategy: String,
        key: String,
    },
    /// One partition of `parent`, with its `FOR VALUES ...` bound text.
    Partition {
        parent: QualifiedName,
        bound: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub data_type: ColumnType,
    pub not_null: bool,
    /// The `DEFAULT` expression text, when there is one (not for generated columns).
    pub default: Option<String>,
    pub identity: Option<Identity>,
    /// The expression of a `GENERATED ALWAYS AS (...) STORED` column.
    pub generated: Option<String>,
    /// A collation other than the type's default, e.g. `"C"` or `"de-DE-x-icu"`.
    pub collation: Option<String>,
    pub comment: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    Always,
    ByDefault,
}

/// A column's type: the element type and how many array dimensions were declared around it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnType {
    pub base: PgType,
    /// 0 for a scalar. PostgreSQL does not enforce the count, so any non-zero value means "an array".
    pub array_dims: u32,
    /// The type as PostgreSQL prints it, e.g. `numeric(10,2)[]`: for the report.
    pub display: String,
}

/// A PostgreSQL type with its modifiers resolved (`varchar(20)` is `Varchar { length: Some(20) }`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PgType {
    SmallInt,
    Integer,
    BigInt,
    /// `numeric(p,s)`; `None` for unconstrained `numeric`.
    Numeric(Option<(u32, i32)>),
    Real,
    Double,
    Money,
    Boolean,
    /// `char(n)` (`bpchar`); `None` for bare `bpchar`.
    Char(Option<u32>),
    Varchar(Option<u32>),
    Text,
    /// The internal 63-byte identifier type.
    Name,
    /// The internal one-byte `"char"`.
    InternalChar,
    Bytea,
    Date,
    /// Fractional-second precision when declared.
    Time(Option<u32>),
    TimeTz(Option<u32>),
    Timestamp(Option<u32>),
    TimestampTz(Option<u32>),
    Interval(Option<u32>),
    Uuid,
    Json,
    Jsonb,
    Xml,
    Inet,
    Cidr,
    MacAddr,
    MacAddr8,
    Bit(Option<u32>),
    VarBit(Option<u32>),
    Point,
    Line,
    Lseg,
    Box,
    Path,
    Polygon,
    Circle,
    TsVector,
    TsQuery,
    /// A range type such as `int4range`; `multi` for its multirange (`int4multirange`).
    Range {
        name: String,
        multi: bool,
    },
    /// `oid` and the `reg*` aliases (`regclass`, `regtype`, ...): the name says which.
    Oid(String),
    /// System identifiers that are not object references: `xid`, `xid8`, `cid`, `tid`, `pg_lsn`.
    SystemId(String),
    Enum(QualifiedName),
    Domain(QualifiedName),
    Composite(QualifiedName),
    /// `hstore`, from the extension of that name.
    Hstore,
    /// `citext`, from the extension of that name.
    Citext,
    /// Anything else (an extension's type such as PostGIS `geometry`): kept by name.
    Other(QualifiedName),
}

/// A primary key or unique constraint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Key {
    pub name: String,
    pub columns: Vec<String>,
    pub deferrable: Deferrable,
    /// PostgreSQL 15's `NULLS NOT DISTINCT`.
    pub nulls_not_distinct: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Deferrable {
    No,
    InitiallyImmediate,
    InitiallyDeferred,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub referenced_table: QualifiedName,
    pub referenced_columns: Vec<String>,
    pub on_delete: FkAction,
    pub on_update: FkAction,
    pub match_type: FkMatch,
    pub deferrable: Deferrable,
    /// `NOT VALID`: existing rows were never checked.
    pub validated: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FkAction {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FkMatch {
    Simple,
    Full,
    Partial,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// The expression, without the `CHECK (...)` around it.
    pub expression: String,
    pub validated: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    pub unique: bool,
    /// `btree`, `hash`, `gin`, `gist`, `brin`, `spgist`, ...
    pub method: String,
    pub keys: Vec<IndexKey>,
    /// The `WHERE` predicate of a partial index.
    pub predicate: Option<String>,
    /// The whole `CREATE INDEX` statement, for the report when the index cannot be carried over.
    pub definition: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexKey {
    pub target: IndexTarget,
    /// The key's type, needed when an expression key becomes a generated column.
    pub data_type: ColumnType,
    pub descending: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IndexTarget {
    Column(String),
    Expression(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    pub name: QualifiedName,
    /// The column this sequence belongs to: a `serial` or identity column, or `OWNED BY`.
    pub owned_by: Option<(QualifiedName, String)>,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cycle: bool,
    /// The last value handed out, `None` when `nextval` was never called.
    pub last_value: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnumType {
    pub name: QualifiedName,
    /// In sort order, which is also declaration order unless values were added `BEFORE` others.
    pub labels: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    pub name: QualifiedName,
    pub base: ColumnType,
    pub not_null: bool,
    pub default: Option<String>,
    /// Check expressions, written in terms of `VALUE`.
    pub checks: Vec<Check>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompositeType {
    pub name: QualifiedName,
    pub fields: Vec<(String, ColumnType)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct View {
    pub name: QualifiedName,
    pub materialized: bool,
    /// The `SELECT` as `pg_get_viewdef` prints it.
    pub definition: String,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Routine {
    pub name: QualifiedName,
    /// `function`, `procedure`, `aggregate` or `window`.
    pub kind: String,
    /// The argument list, e.g. `integer, text`.
    pub arguments: String,
    pub language: String,
    /// The source text (`pg_proc.prosrc`) of a function in SQL; `None` for other languages, and in a
    /// run announced by a release that did not read it.
    #[serde(default)]
    pub body: Option<String>,
    /// An aggregate's definition (`pg_aggregate`).
    #[serde(default)]
    pub aggregate: Option<Aggregate>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The state transition function (`SFUNC`), schema-qualified.
    pub transition: QualifiedName,
    /// The final function (`FINALFUNC`), when there is one.
    pub final_function: Option<String>,
    /// `INITCOND`, when given.
    pub initial: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub name: String,
    pub table: QualifiedName,
    /// The whole `CREATE TRIGGER` statement.
    pub definition: String,
    /// When and on what it fires (`pg_trigger.tgtype`); `None` in a run announced by a release that
    /// did not read it.
    #[serde(default)]
    pub firing: Option<TriggerFiring>,
    /// The function it executes, with its body.
    #[serde(default)]
    pub function: Option<TriggerFunction>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerFiring {
    /// `BEFORE`; else `AFTER` or `INSTEAD OF`.
    pub before: bool,
    /// `FOR EACH ROW`; else `FOR EACH STATEMENT`.
    pub for_each_row: bool,
    /// `INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`, in that order.
    pub events: Vec<String>,
    /// The columns of `UPDATE OF ...`; empty when any update fires it.
    pub update_of: Vec<String>,
    /// A `WHEN (...)` condition.
    pub has_when: bool,
    /// Arguments passed to the function (`TG_ARGV`).
    pub n_arguments: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerFunction {
    pub name: QualifiedName,
    pub language: String,
    /// The source text (`pg_proc.prosrc`): for PL/pgSQL the block between the dollar quotes.
    pub body: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    pub name: String,
    pub version: String,
    pub schema: String,
}
