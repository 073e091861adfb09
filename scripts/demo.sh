#!/usr/bin/env bash
# The demo, end to end: starts the stack and runs the preflight against it.
# (With the snapshot issue it generates the airline dataset and migrates it.)
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
install_build_prerequisites
stack_up
cd "$root"
cargo build --release --locked -p passerelle-cli
"$CARGO_TARGET_DIR/release/passerelle" check
