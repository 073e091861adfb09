//! Integration tests of the `passerelle` binary against the real stack (`stack/stack.sh up`).

mod check;
mod migrate;
mod plan;
mod split;
mod support;
