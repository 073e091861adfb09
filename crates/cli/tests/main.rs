//! Integration tests of the `passerelle` binary against the real stack (`stack/stack.sh up`); those
//! that move data run on MySQL and on MariaDB.

mod check;
mod config;
mod estimate;
mod existing_topics;
mod fidelity;
mod freeze;
mod graceful;
mod handover;
mod keyless;
mod kills;
mod large_values;
mod load_path;
mod metrics;
mod migrate;
mod online;
mod plan;
mod schema_changes;
mod secrets;
mod secured;
mod selection;
mod settings;
mod split;
mod stops;
mod support;
mod truncate;
mod wal;
