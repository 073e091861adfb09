#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, starts the stack (PostgreSQL,
# MariaDB, Kafka), then formatting, lints and every test against the real services.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
install_build_prerequisites
stack_up
# Kafka Connect and Debezium, for the interoperability test: resolved once, before the clock starts.
"$root/stack/fetch-connect-jars.sh" >/dev/null
cd "$root"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The last line sums every test binary's result.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Every test binary runs even after one fails, and a failure prints its message without a backtrace:
# CI shows only a part of the output, which then holds every failure's cause.
status=0
RUST_BACKTRACE=0 cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
