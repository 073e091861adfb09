# Sourced by soak.sh and replay.sh, never run: the runs that kill Kafka and the target do it on private
# servers of their own, beside the shared stack's PostgreSQL (whose server is never killed).
#
# The caller defines `root`, `scale`, `bin`, `target_kind` (mysql or mariadb), `target_variable` (the
# stack's variable of that target's URL), `stack` (stack.sh with the private directory and ports) and `say`.

# private_airline SOURCE_DB TARGET_DB KAFKA_PORT: starts the shared stack and the private Kafka and
# target, exports PASSERELLE_SOURCE, PASSERELLE_KAFKA and PASSERELLE_TARGET pointing at them (and
# source_admin, the source's superuser URL), builds the release binaries, and generates the airline at
# `scale` into SOURCE_DB unless it holds it already.
private_airline() {
  local source_db=$1 target_db=$2 kafka_port=$3 target_url
  "$root/stack/stack.sh" up >/dev/null
  eval "$("$root/stack/stack.sh" env)"
  stack service-up kafka >/dev/null
  stack service-up "$target_kind" >/dev/null
  source_admin=$PASSERELLE_SOURCE_ADMIN
  export PASSERELLE_SOURCE="${PASSERELLE_SOURCE%/*}/$source_db"
  export PASSERELLE_KAFKA=127.0.0.1:$kafka_port
  target_url=$(stack env | sed -n "s/^export $target_variable='\(.*\)'$/\1/p")
  export PASSERELLE_TARGET="${target_url%/*}/$target_db"

  (cd "$root" && cargo build --release --locked -q -p passerelle-cli -p passerelle-demodata)
  if ! psql -XAtq "$PASSERELLE_SOURCE" -c "select 1 from bookings.bookings limit 1" >/dev/null 2>&1; then
    say "generating the airline ($scale) into $source_db"
    psql -Xq "${source_admin%/*}/postgres" -c "create database $source_db owner passerelle" >/dev/null
    "$bin/passerelle-demodata" --scale "$scale" >/dev/null
  fi
}
