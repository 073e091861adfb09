#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, starts the stack (PostgreSQL,
# MariaDB, Kafka), then formatting, lints and every test against the real services.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
install_build_prerequisites
stack_up
cd "$root"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
