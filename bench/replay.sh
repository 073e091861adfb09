#!/usr/bin/env bash
# The replay: issue 10's fault cases at full scale, each ending in a verified target. The fault tests
# in the suite run the same faults on reduced data; this script replays them on the airline as a user
# would meet them, and prints one JSON line per case and a Markdown table for RELIABILITY.md.
#
#   bench/replay.sh                          # the airline, small scale, into MySQL
#   SCALE=tiny TARGET=mariadb bench/replay.sh
#   CASES="kill-early broker" bench/replay.sh
#   SOURCE_DB=soak_small bench/replay.sh     # the airline database another script generated
#
# Cases (in this order; `recreated` follows `kill-early`'s finished run):
#   kill-early   SIGKILL of migrate once the target holds rows, early in the snapshot; exactly one rerun.
#                A table of the user's sits in the target database beside the plan's (--force): it must
#                stay, rows and all, and no Passerelle table may join it there.
#   recreated    the target database dropped and created again, then the same migrate: no hang, no rerun.
#   broker       the Kafka broker SIGKILLed mid-snapshot, started again 5 s later: no rerun.
#   target       the target server SIGKILLed mid-snapshot, started again 5 s later: no rerun.
#   copy-session pg_terminate_backend of the COPY sessions mid-snapshot: no rerun.
#   online-kill  migrate --online SIGKILLed while streaming under writes, started again at once;
#                then the writes stop and the cutover verifies.
#
# Kafka and the target are private servers (PASSERELLE_STACK_DIR=/var/tmp/passerelle-replay, ports
# 59592/53706/53707), so killing them disturbs nothing else; the source is the shared stack's
# PostgreSQL, whose server is never killed (only the migration's own sessions are).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scale=${SCALE:-small}
target_kind=${TARGET:-mysql}
cases=${CASES:-kill-early recreated broker target copy-session online-kill}
prefix=passerelle_replay
database=replay
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/passerelle/target}
bin=$CARGO_TARGET_DIR/release
work=$(mktemp -d "${TMPDIR:-/tmp}/passerelle-replay.XXXXXX")
say() { printf 'replay %s: %s\n' "$(date +%T)" "$*" | tee -a "$work/events.log" >&2; }
fail() { say "FAILED: $*"; exit 1; }

private_dir=/var/tmp/passerelle-replay
private=(env PASSERELLE_STACK_DIR=$private_dir PASSERELLE_KAFKA_PORT=59592
  PASSERELLE_MARIADB_PORT=53706 PASSERELLE_MYSQL_PORT=53707)
stack() { "${private[@]}" "$root/stack/stack.sh" "$@"; }
case $target_kind in
  mysql) target_variable=PASSERELLE_TARGET_MYSQL
    target_sql() { stack mysql-sql -N -B -e "$1"; } ;;
  mariadb) target_variable=PASSERELLE_TARGET_MARIADB
    target_sql() { mariadb --no-defaults -S "$private_dir/mariadb/mysqld.sock" -uroot -N -B -e "$1"; } ;;
  *) echo "replay: TARGET is mysql or mariadb, not $target_kind" >&2; exit 2 ;;
esac

source "$root/bench/private.sh"
source_db=${SOURCE_DB:-replay_$scale}
private_airline "$source_db" "$database" 59592
cd "$work" # the reports to hand over land beside the logs
# Exact counts, not the statistics' estimates.
source_rows=$(psql -XAtq "$PASSERELLE_SOURCE" -c "select sum((xpath('/row/c/text()', query_to_xml(
  format('select count(*) as c from %I.%I', schemaname, relname), false, true, '')))[1]::text::bigint)
  from pg_stat_user_tables where schemaname = 'bookings'")
tables=$(psql -XAtq "$PASSERELLE_SOURCE" -c "select string_agg(quote_literal(relname), ',') from pg_stat_user_tables where schemaname = 'bookings'")

# The rows the target's airline tables hold now.
target_rows() {
  local sum=0 table n
  for table in $(target_sql "SELECT table_name FROM information_schema.tables WHERE table_schema = '$database'
                               AND table_name IN ($tables)"); do
    n=$(target_sql "SELECT COUNT(*) FROM \`$database\`.\`$table\`")
    sum=$((sum + n))
  done
  echo "$sum"
}

migrate_pid=
writer_pid=
finish() {
  [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null || true
  [ -n "$migrate_pid" ] && kill -9 "$migrate_pid" 2>/dev/null || true
  rm -f "$work/pause"
  say "logs in $work"
}
trap finish EXIT

# migrate_bg NAME [PAUSE_POINT] [ARG...]: migrate in the background, its output in $work/NAME.*.
migrate_bg() {
  local name=$1 pause=$2
  shift 2
  local pause_env=()
  [ -n "$pause" ] && pause_env=(PASSERELLE_PAUSE_AT="$pause" PASSERELLE_PAUSE_FILE="$work/pause")
  env "${pause_env[@]}" "$bin/passerelle" migrate --json --schema bookings --map bookings=$database \
    --topic-prefix $prefix "$@" >"$work/$name.json" 2>"$work/$name.err" &
  migrate_pid=$!
}

# wait_paused: until the migrate in the background stops at its pause point.
wait_paused() {
  local deadline=$(($(date +%s) + 900))
  until [ -f "$work/pause" ]; do
    kill -0 "$migrate_pid" 2>/dev/null || fail "migrate ended before its pause point: $(tail -n 2 "$work"/*.err | tail -n 1)"
    [ "$(date +%s)" -lt "$deadline" ] || fail "migrate never reached its pause point"
    sleep 0.2
  done
}

# wait_migrate NAME: sets `code` to the exit code of the migrate in the background (at most 30 minutes).
wait_migrate() {
  local name=$1 deadline=$(($(date +%s) + 1800))
  while kill -0 "$migrate_pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { kill -9 "$migrate_pid"; fail "$name: migrate still running after 30 minutes"; }
    sleep 1
  done
  code=0
  wait "$migrate_pid" || code=$?
  migrate_pid=
}

json_field() { python3 -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get(sys.argv[2]))
except Exception: print(None)' "$@"; }

# A partial target: some rows, not all; otherwise the fault struck outside its window.
assert_partial() {
  local held
  held=$(target_rows)
  [ "$held" -gt 0 ] && [ "$held" -lt "$source_rows" ] || fail "$1: the target held $held of $source_rows rows at the fault"
  echo "$held"
}

# Waits until the target holds some rows while migrate waits at its pause point.
await_some_rows() {
  local deadline=$(($(date +%s) + 300))
  until [ "$(target_rows)" -gt 0 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$1: the target took no row while migrate waited"
    sleep 0.5
  done
}

fresh_start() {
  "$bin/passerelle" cleanup --topic-prefix $prefix >/dev/null 2>&1 || true
  stack recreate-target-db $database "$target_kind" >/dev/null
}

results=()
record() { # case fault outcome seconds retries reruns held
  local line
  line=$(printf '{"case": "%s", "fault": "%s", "outcome": "%s", "seconds": %s, "retries": %s, "reruns": %s, "rows_at_fault": %s, "rows": %s}' \
    "$1" "$2" "$3" "$4" "${5:-0}" "$6" "${7:-null}" "$source_rows")
  echo "$line"
  results+=("$line")
}

verify_target() {
  "$bin/passerelle" verify --json --schema bookings --map bookings=$database >"$work/verify-$1.json" 2>"$work/verify-$1.err" ||
    fail "$1: verify found differences ($work/verify-$1.json)"
}

# A run paused at POINT, then FAULT (a function) while it waits, then let go: one process, exit 0.
ride_through() {
  local name=$1 point=$2 fault=$3 started held
  fresh_start
  migrate_bg "$name" "$point"
  wait_paused
  await_some_rows "$name"
  held=$(assert_partial "$name")
  started=$(date +%s.%N)
  $fault
  wait_migrate "$name"
  [ "$code" = 0 ] || fail "$name: migrate exited $code: $(tail -n 1 "$work/$name.err")"
  [ "$(json_field "$work/$name.json" verified)" = True ] || fail "$name: not verified"
  verify_target "$name"
  record "$name" "$4" "one process, exit 0, verified" "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}')" \
    "$(json_field "$work/$name.json" retries)" 0 "$held"
}

kill_broker() { stack service-kill kafka; rm -f "$work/pause"; sleep 5; stack service-up kafka >/dev/null; }
kill_target() { stack service-kill "$target_kind"; rm -f "$work/pause"; sleep 5; stack service-up "$target_kind" >/dev/null; }
end_copy_sessions() {
  local n
  n=$(psql -XAtq "$source_admin" -c "select count(pg_terminate_backend(pid)) from pg_stat_activity
        where datname = '$source_db' and query ilike 'copy %'")
  [ "$n" -gt 0 ] || fail "copy-session: no COPY session to terminate"
  rm -f "$work/pause"
}

tenth=$((source_rows / 10))
for case_name in $cases; do
  say "case $case_name"
  case $case_name in
    kill-early)
      fresh_start
      target_sql "CREATE TABLE \`$database\`.users_own (id INT PRIMARY KEY); INSERT INTO \`$database\`.users_own VALUES (1), (2), (3)"
      migrate_bg kill-early "snapshot-rows-produced:$tenth" --force
      wait_paused
      await_some_rows kill-early
      held=$(assert_partial kill-early)
      kill -9 "$migrate_pid"; wait "$migrate_pid" 2>/dev/null || true; migrate_pid=
      rm -f "$work/pause"
      started=$(date +%s.%N)
      migrate_bg kill-early-rerun "" --force
      wait_migrate kill-early-rerun
      [ "$code" = 0 ] || fail "kill-early: the rerun exited $code: $(tail -n 1 "$work/kill-early-rerun.err")"
      verify_target kill-early
      [ "$(target_sql "SELECT COUNT(*) FROM \`$database\`.users_own")" = 3 ] || fail "kill-early: the user's table lost rows"
      strays=$(target_sql "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$database'
                             AND table_name NOT IN ($tables, 'users_own')")
      [ "$strays" = 0 ] || fail "kill-early: $strays table(s) beside the migrated ones and the user's"
      record kill-early "SIGKILL of migrate early in the snapshot ($tenth rows produced), --force beside a user's table" \
        "one rerun, exit 0, verified; the user's table kept its 3 rows; only migrated tables in the database" \
        "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}')" 0 1 "$held" ;;
    recreated)
      target_sql "DROP DATABASE \`$database\`; CREATE DATABASE \`$database\`"
      started=$(date +%s.%N)
      migrate_bg recreated "" --force
      wait_migrate recreated
      [ "$code" = 0 ] || fail "recreated: migrate exited $code: $(tail -n 1 "$work/recreated.err")"
      verify_target recreated
      record recreated "target database dropped and created again after a complete run, then the same migrate" \
        "one process, exit 0, rebuilt and reloaded, verified" \
        "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}')" "$(json_field "$work/recreated.json" retries)" 0 ;;
    broker)
      ride_through broker "rows-applied:$tenth" kill_broker "Kafka broker SIGKILL mid-snapshot, started again 5 s later" ;;
    target)
      ride_through target "rows-applied:$tenth" kill_target "$target_kind target SIGKILL mid-snapshot, started again 5 s later" ;;
    copy-session)
      ride_through copy-session "snapshot-rows-produced:$tenth" end_copy_sessions "pg_terminate_backend of the COPY sessions mid-snapshot" ;;
    online-kill)
      fresh_start
      (
        i=0
        while true; do
          i=$((i + 1))
          PGAPPNAME=replay-writer psql -Xq "$PASSERELLE_SOURCE" >/dev/null 2>&1 <<SQL || true
update bookings.bookings set total_amount = total_amount + 1
  where book_ref in (select book_ref from bookings.bookings order by book_ref offset $(((i * 100) % 200000)) limit 100);
SQL
          sleep 0.2
        done
      ) &
      writer_pid=$!
      migrate_bg online-kill "changes-applied:1" --online
      wait_paused
      kill -9 "$migrate_pid"; wait "$migrate_pid" 2>/dev/null || true; migrate_pid=
      rm -f "$work/pause"
      started=$(date +%s.%N)
      migrate_bg online-kill-rerun "" --online
      until "$bin/passerelle" status --json --topic-prefix $prefix 2>/dev/null | grep -q '"snapshot_in_kafka": true'; do
        kill -0 "$migrate_pid" 2>/dev/null || fail "online-kill: the restart ended: $(tail -n 1 "$work/online-kill-rerun.err")"
        sleep 2
      done
      sleep 10 # changes keep streaming beside the restarted run for a while
      kill "$writer_pid"; wait "$writer_pid" 2>/dev/null || true; writer_pid=
      "$bin/passerelle" cutover --json --topic-prefix $prefix --map bookings=$database >"$work/cutover.json" 2>"$work/cutover.err" ||
        fail "online-kill: cutover failed: $(tail -n 1 "$work/cutover.err")"
      wait_migrate online-kill-rerun
      [ "$code" = 0 ] || fail "online-kill: the restart exited $code"
      [ "$(json_field "$work/cutover.json" verified)" = True ] || fail "online-kill: the cutover did not verify"
      record online-kill "migrate --online SIGKILLed while streaming under writes (first change applied), started again at once" \
        "the restart took its slot back, exit 0; cutover verified (drain $(printf %.1f "$(json_field "$work/cutover.json" stream_drained_seconds)") s)" \
        "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}')" \
        "$(json_field "$work/online-kill-rerun.json" retries)" 1 ;;
    *) fail "unknown case $case_name" ;;
  esac
done

"$bin/passerelle" cleanup --topic-prefix $prefix >/dev/null 2>&1 || true
echo
echo "| case | fault | outcome | seconds from the fault to the end | retries | reruns by hand |"
echo "| --- | --- | --- | --- | --- | --- |"
for line in "${results[@]}"; do
  python3 -c 'import json, sys
r = json.loads(sys.argv[1])
print("| " + " | ".join(str(r[k]) for k in ("case", "fault", "outcome", "seconds", "retries", "reruns")) + " |")' "$line"
done
