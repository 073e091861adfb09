//! Passerelle's only user of librdkafka (through rdkafka): the preflight checks and, with the issues
//! that add them, topics, the producer and the consumer group.
//!
//! Architecture invariant: this crate knows nothing of PostgreSQL or MySQL.

mod client;
pub mod preflight;
