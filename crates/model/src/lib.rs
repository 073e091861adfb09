//! Passerelle's shared vocabulary, with no IO: what the pipeline stages say to each other.
//!
//! Every stage crate (`pg`, `kafka`, `mysql`, ...) depends on this one and on nothing of each other's,
//! so the types that cross a stage boundary live here.

pub mod copy_text;
pub mod endpoint;
pub mod event;
pub mod preflight;
pub mod schema;
pub mod target;
