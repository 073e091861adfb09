//! PostgreSQL schema → MySQL / MariaDB DDL written for the target's version, and the report of what
//! changed on the way.
//!
//! Architecture invariant: no IO. [`plan`] takes the [`Schema`](passerelle_model::schema::Schema)
//! that `pg::catalog` read and a [`Config`], and returns statements and a report; `mysql` applies
//! them and `cli` writes them out. That keeps the whole translation testable with golden files.
//!
//! The DDL comes in two phases: pre-data creates databases, sequences and tables with their primary
//! keys and checks, so the bulk load goes into tables with one index each; post-data adds unique
//! constraints, secondary indexes, foreign keys, AUTO_INCREMENT positions and views, each built once
//! over the loaded rows.

mod expr;
pub mod ident;
mod plan;
mod plpgsql;
mod print;
pub mod report;
mod server;
mod target;
pub mod types;
mod view;

use std::collections::BTreeMap;

pub use plan::{plan, FkIndex, Plan};
pub use server::{Dialect, Server};
pub use target::conversion;

/// How `uuid` columns are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UuidAs {
    /// MariaDB's UUID type (10.7 and later); on MySQL and older MariaDB, which have none, `Char36`.
    Native,
    Char36,
    Binary16,
}

/// How `interval` columns are held: neither target has an interval type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntervalAs {
    Text,
    Microseconds,
}

/// The choices a user can make about lossy mappings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeOptions {
    pub uuid: UuidAs,
    pub interval: IntervalAs,
    /// The collation of text columns; `None` for the dialect's binary NO PAD collation.
    pub text_collation: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The server the DDL is written for: the target's own, or the one `plan --target-version` names.
    pub server: Server,
    /// Each migrated PostgreSQL schema and the target database that receives it.
    pub databases: BTreeMap<String, String>,
    pub types: TypeOptions,
    /// The target refuses tables without a primary key (MySQL's `sql_require_primary_key`, as
    /// several managed services set it): a keyless table gets an invisible one, [`ROW_ID_COLUMN`].
    pub require_primary_key: bool,
    /// Why the target user may not create triggers (`None`: it may): simple PL/pgSQL row triggers,
    /// which would become MySQL triggers, are then reported as not migrated with this reason.
    pub trigger_refusal: Option<String>,
}

/// The invisible AUTO_INCREMENT key of a keyless table on a target that requires keys: the
/// application's `SELECT *` does not see it, and Passerelle never writes or compares it.
pub const ROW_ID_COLUMN: &str = "passerelle_row_id";
