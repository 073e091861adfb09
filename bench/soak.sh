#!/usr/bin/env bash
# The soak: an online migration of the airline database under a write workload for DURATION seconds,
# while a randomly chosen component is killed every INTERVAL seconds or so: passerelle itself (SIGKILL,
# then started again, the one kind of fault that needs a rerun), the Kafka broker or the target server
# (SIGKILL, started again 5 s later), or the source sessions of the migration (pg_terminate_backend).
# Then the writes stop, `passerelle cutover` drains the stream, and the target must verify.
#
#   bench/soak.sh                      # 30 minutes, a kill every 2-4 minutes, into MySQL
#   DURATION=300 INTERVAL=60 TARGET=mariadb bench/soak.sh
#
# Kafka and the target are private servers (PASSERELLE_STACK_DIR=/var/tmp/passerelle-soak, ports
# 594xx/536xx), so killing them disturbs nothing else; the source is the shared stack's PostgreSQL,
# whose server is never killed (only the migration's own sessions are). Prints one JSON line: the
# duration, the kills of each kind, the reruns, the cutover's figures and whether it verified.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
duration=${DURATION:-1800}
interval=${INTERVAL:-180}
target_kind=${TARGET:-mysql}
scale=${SCALE:-small}
prefix=passerelle_soak
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/passerelle/target}
bin=$CARGO_TARGET_DIR/release
work=$(mktemp -d "${TMPDIR:-/tmp}/passerelle-soak.XXXXXX")
say() { printf 'soak %s: %s\n' "$(date +%T)" "$*" | tee -a "$work/events.log" >&2; }

# The private services: their own data directory and ports, the stack's script and credentials.
private=(env PASSERELLE_STACK_DIR=/var/tmp/passerelle-soak PASSERELLE_KAFKA_PORT=59492
  PASSERELLE_MARIADB_PORT=53606 PASSERELLE_MYSQL_PORT=53607)
stack() { "${private[@]}" "$root/stack/stack.sh" "$@"; }
case $target_kind in
  mysql) target_variable=PASSERELLE_TARGET_MYSQL ;;
  mariadb) target_variable=PASSERELLE_TARGET_MARIADB ;;
  *) echo "soak: TARGET is mysql or mariadb, not $target_kind" >&2; exit 2 ;;
esac

source "$root/bench/private.sh"
private_airline "soak_$scale" soak 59492
cd "$work" # the reports to hand over land beside the logs
"$bin/passerelle" cleanup --topic-prefix $prefix >/dev/null 2>&1 || true
stack recreate-target-db soak "$target_kind" >/dev/null

migrate_pid=
start_migrate() {
  "$bin/passerelle" migrate --online --json --schema bookings --map bookings=soak --topic-prefix $prefix \
    >"$work/migrate.json" 2>>"$work/migrate.err" &
  migrate_pid=$!
}
writer_pid=
finish() {
  [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null || true
  [ -n "$migrate_pid" ] && kill "$migrate_pid" 2>/dev/null || true
  say "logs in $work"
}
trap finish EXIT

# The workload: one transaction a second that changes 200 bookings and adds a booking with a ticket.
(
  i=0
  while true; do
    i=$((i + 1))
    PGAPPNAME=soak-writer psql -Xq "$PASSERELLE_SOURCE" >/dev/null 2>&1 <<SQL || true
begin;
update bookings.bookings set total_amount = total_amount + 1
  where book_ref in (select book_ref from bookings.bookings order by book_ref offset $(((i * 200) % 200000)) limit 200);
insert into bookings.bookings values (upper(substr(md5('soak$i'), 1, 6)), now(), 100) on conflict do nothing;
commit;
SQL
    sleep 1
  done
) &
writer_pid=$!

start_migrate
declare -A kills=([passerelle]=0 [kafka]=0 [target]=0 [pg-sessions]=0)
reruns=0
started=$(date +%s)
while [ $(($(date +%s) - started)) -lt "$duration" ]; do
  sleep $((interval / 2 + RANDOM % interval))
  [ $(($(date +%s) - started)) -lt "$duration" ] || break
  if ! kill -0 "$migrate_pid" 2>/dev/null; then
    say "migrate exited by itself ($(tail -n 1 "$work/migrate.err")); starting it again"
    reruns=$((reruns + 1))
    start_migrate
    continue
  fi
  case $((RANDOM % 4)) in
    0)
      say "SIGKILL passerelle (pid $migrate_pid), then started again"
      kill -9 "$migrate_pid"; wait "$migrate_pid" 2>/dev/null || true
      kills[passerelle]=$((kills[passerelle] + 1)); reruns=$((reruns + 1))
      start_migrate ;;
    1)
      say "SIGKILL the Kafka broker, started again 5 s later"
      stack service-kill kafka; sleep 5; stack service-up kafka >/dev/null
      kills[kafka]=$((kills[kafka] + 1)) ;;
    2)
      say "SIGKILL the $target_kind target, started again 5 s later"
      stack service-kill "$target_kind"; sleep 5; stack service-up "$target_kind" >/dev/null
      kills[target]=$((kills[target] + 1)) ;;
    3)
      n=$(psql -XAtq "$source_admin" -c "select count(pg_terminate_backend(pid)) from pg_stat_activity
            where datname = 'soak_$scale' and usename = 'passerelle' and application_name <> 'soak-writer'")
      say "pg_terminate_backend of the migration's $n source session(s)"
      kills[pg-sessions]=$((kills[pg-sessions] + 1)) ;;
  esac
done

say "stopping the writes; cutover"
kill "$writer_pid" 2>/dev/null || true
writer_pid=
if ! kill -0 "$migrate_pid" 2>/dev/null; then
  reruns=$((reruns + 1))
  start_migrate
fi
until "$bin/passerelle" status --json --topic-prefix $prefix 2>/dev/null | grep -q '"snapshot_in_kafka": true'; do
  sleep 2
done
"$bin/passerelle" cutover --json --topic-prefix $prefix --map bookings=soak >"$work/cutover.json" || true
wait "$migrate_pid" || true
migrate_pid=
verified=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("verified", False))' "$work/cutover.json" 2>/dev/null || echo False)
python3 - "$work/cutover.json" <<PY
import json, sys
try:
    cutover = json.load(open(sys.argv[1]))
except Exception:
    cutover = {}
print(json.dumps({
    "duration_s": $duration, "target": "$target_kind", "scale": "$scale",
    "kills": {"passerelle": ${kills[passerelle]}, "kafka": ${kills[kafka]}, "target": ${kills[target]},
              "pg_sessions": ${kills[pg-sessions]}},
    "reruns": $reruns,
    "stream_drained_seconds": cutover.get("stream_drained_seconds"),
    "target_ready_seconds": cutover.get("target_ready_seconds"),
    "verified": cutover.get("verified", False),
}))
PY
"$bin/passerelle" cleanup --topic-prefix $prefix >/dev/null 2>&1 || true
[ "$verified" = True ]
