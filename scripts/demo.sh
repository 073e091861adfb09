#!/usr/bin/env bash
# The demo, end to end: starts the stack, generates the airline database (small scale, 2.3 M rows)
# in PostgreSQL if it is not there, then checks, migrates it through Kafka into MySQL and verifies.
# Each run starts the target afresh. SCALE=medium or SCALE=big for the larger editions; TARGET=mariadb
# migrates into MariaDB instead (and so does a stack that could not install MySQL, saying why).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
install_build_prerequisites
stack_up
target=${TARGET:-mysql}
case $target in
  mysql)
    if [ -n "${PASSERELLE_MYSQL_UNAVAILABLE:-}" ]; then
      echo "demo: MySQL is not available ($PASSERELLE_MYSQL_UNAVAILABLE); migrating into MariaDB instead" >&2
      target=mariadb
    else
      export PASSERELLE_TARGET=$PASSERELLE_TARGET_MYSQL
    fi ;;
  mariadb) export PASSERELLE_TARGET=$PASSERELLE_TARGET_MARIADB ;;
  *) echo "error: TARGET is mysql or mariadb, not $target" >&2; exit 2 ;;
esac
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
"$root/stack/stack.sh" recreate-target-db demo "$target"
"$bin/passerelle" migrate --schema bookings --topic-prefix passerelle_demo
