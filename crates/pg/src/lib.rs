//! Everything Passerelle says to PostgreSQL, the source: connecting, the preflight checks, and (with
//! the issues that add them) the catalog, the replication slot, the exported snapshot, COPY and the change stream.
//!
//! Architecture invariant: this crate knows nothing of Kafka or MySQL. It speaks `model` types.

pub mod catalog;
pub mod changed_keys;
mod connect;
mod error;
pub mod freeze;
pub mod locks;
pub mod preflight;
pub mod scan;
pub mod session;
pub mod slot;
pub mod snapshot;
pub mod stream;
mod tls;
pub mod walsender;

pub use connect::{connect, LOCK_TIMEOUT};
pub use error::PgError;
