#!/usr/bin/env bash
# The demo, end to end: starts the stack, generates the airline database (small scale, 2.3 M rows)
# in PostgreSQL if it is not there, then checks, migrates it through Kafka into MariaDB and verifies.
# Each run starts the target afresh. SCALE=medium or SCALE=big for the larger editions.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
install_build_prerequisites
stack_up
cd "$root"
cargo build --release --locked -p passerelle-cli -p passerelle-demodata
bin=$CARGO_TARGET_DIR/release
scale=${SCALE:-small}

loaded=$(psql "$PASSERELLE_SOURCE" -XAtc "select coalesce(obj_description('bookings.bookings'::regclass), '')" 2>/dev/null || true)
if [ -z "$loaded" ] || [ "$(cat "$PASSERELLE_CACHE_DIR/demo-scale" 2>/dev/null)" != "$scale" ]; then
  "$bin/passerelle-demodata" --scale "$scale"
  echo "$scale" >"$PASSERELLE_CACHE_DIR/demo-scale"
fi

"$bin/passerelle" check
# A fresh target for every demo: forget the last demo's slot, topics and bookkeeping, empty the database.
"$bin/passerelle" cleanup --topic-prefix passerelle_demo >/dev/null
"$root/stack/stack.sh" recreate-target-db demo
"$bin/passerelle" migrate --schema bookings --topic-prefix passerelle_demo
