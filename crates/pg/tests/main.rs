//! Integration tests of `passerelle-pg` against the real stack's PostgreSQL (`stack/stack.sh up`).

mod snapshot;
mod stream;
mod support;
mod tls;
