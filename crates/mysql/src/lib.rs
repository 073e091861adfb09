//! Everything Passerelle says to the target, MySQL 8 or MariaDB: connecting, the preflight checks,
//! and (with the issues that add them) applying DDL and batched, idempotent writes.
//!
//! Architecture invariant: this crate knows nothing of PostgreSQL or Kafka. It speaks `model` types.

pub mod bookkeeping;
mod connect;
mod error;
pub mod preflight;
pub mod privileges;
pub mod sample;
pub mod schema_apply;
pub mod sink;
pub mod value;

pub use connect::connect;
pub use error::MysqlError;
/// The connection type `connect` returns, so that callers need not depend on the driver.
pub use mysql_async::Conn;
