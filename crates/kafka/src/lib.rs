//! Passerelle's only user of librdkafka (through rdkafka): the preflight checks, topics, the wire
//! format, the producer and the consumer group.
//!
//! Architecture invariant: this crate knows nothing of PostgreSQL or MySQL; it moves `model` rows.

mod client;
pub mod consumer;
pub mod control;
pub mod envelope;
mod error;
pub mod preflight;
pub mod producer;
pub mod topic;

pub use error::KafkaError;
