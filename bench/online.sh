#!/usr/bin/env bash
# The online mode's cutover, measured under load: `passerelle migrate --online` of bench_<SCALE> (loaded
# by bench/run.py) while pgbench runs RATE transactions a second (250 by default; each updates a
# flight and a booking and inserts a booking); once the snapshot is in Kafka and the target has caught
# up, the replication lag is sampled for LAG_SECONDS (20): the slot's unconfirmed WAL (source -> Kafka)
# and a probe row's trip from the source to the target (source -> target), then `passerelle cutover
# --freeze`, which makes the source read-only under the writers, drains, verifies only what changed
# since its first verification, and reports the downtime, freeze -> verified. Prints one JSON line.
#
#   bench/online.sh [SCALE]        # small by default; the local stack (stack/stack.sh up)
#   RATE=400 LAG_SECONDS=30 bench/online.sh big
#   SOURCE_DB=mine TARGET_DB=mine_target PREFIX=mine bench/online.sh tiny
# The freeze makes the source database read-only for everyone: never point SOURCE_DB at a database
# someone else writes to. The script makes it read-write again at its end.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scale=${1:-small}
rate=${RATE:-250}
lag_seconds=${LAG_SECONDS:-20}
bin=${CARGO_TARGET_DIR:-$HOME/.cache/passerelle/target}/release/passerelle
eval "$("$root/stack/stack.sh" env)"
source_db=${SOURCE_DB:-bench_$scale}
target_db=${TARGET_DB:-bench_passerelle}
export PASSERELLE_SOURCE="${PASSERELLE_SOURCE%/*}/$source_db" PASSERELLE_TARGET="${PASSERELLE_TARGET%/*}/$target_db"
prefix=${PREFIX:-passerelle_online}
work=$(mktemp -d "${TMPDIR:-/tmp}/passerelle-bench-online.XXXXXX")
(cd "$root" && cargo build --release --locked -q -p passerelle-cli)
"$bin" cleanup --topic-prefix $prefix >/dev/null 2>&1 || true
"$root/stack/stack.sh" recreate-target-db "$target_db" >/dev/null
# The target's client reads its password from a mode-600 option file, never from a command line.
python3 - "$PASSERELLE_TARGET" "$work/my.cnf" <<'EOF'
import os, sys, urllib.parse
url = urllib.parse.urlparse(sys.argv[1])
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o600)
os.write(fd, f"[client]\nhost={url.hostname}\nport={url.port}\nuser={url.username}\npassword={urllib.parse.unquote(url.password or '')}\ndatabase={url.path.lstrip('/')}\n".encode())
EOF
target_sql() { mysql --defaults-extra-file="$work/my.cnf" -N -B -e "$1"; }
"$bin" migrate --online --json --schema bookings --topic-prefix $prefix >"$work/migrate.json" 2>"$work/migrate.err" &
pid=$!
writers=
cleanup() {
  [ -n "$writers" ] && kill "$writers" 2>/dev/null || true
  kill $pid 2>/dev/null || true
  psql -Xq "$PASSERELLE_SOURCE_ADMIN" -c "alter database $source_db reset default_transaction_read_only" >/dev/null 2>&1 || true
  "$bin" cleanup --topic-prefix $prefix >/dev/null 2>&1 ||
    echo "bench/online.sh: passerelle cleanup --topic-prefix $prefix failed; run it by hand" >&2
}
trap cleanup EXIT

n_flights=$(psql -XAtq "$PASSERELLE_SOURCE" -c "select max(flight_id) from bookings.flights")
probe=$(psql -XAtq "$PASSERELLE_SOURCE" -c "select book_ref from bookings.bookings order by book_ref limit 1")
cat >"$work/workload.sql" <<EOF
\set f random(1, $n_flights)
begin;
update bookings.flights set status = status where flight_id = :f;
update bookings.bookings set total_amount = total_amount + 1
  where book_ref = (select book_ref from bookings.tickets where ticket_no > lpad((:f * 7919)::text, 13, '0') order by ticket_no limit 1);
insert into bookings.bookings (book_ref, book_date, total_amount)
  values (upper(substr(md5(random()::text), 1, 6)), now(), 100) on conflict do nothing;
commit;
EOF
pgbench -n -f "$work/workload.sql" -c 4 -j 2 --rate "$rate" -T 100000 -P 10 "$PASSERELLE_SOURCE" \
  >"$work/pgbench.out" 2>"$work/pgbench.err" &
writers=$!

until "$bin" status --json --topic-prefix $prefix | grep -q '"snapshot_in_kafka": true'; do sleep 1; done
if ! kill -0 "$writers" 2>/dev/null; then
  echo "bench/online.sh: pgbench stopped before the cutover:" >&2
  tail -3 "$work/pgbench.err" >&2
  exit 1
fi
# Caught up: the probe's value reaches the target.
mark=$(date +%s%N)
psql -Xq "$PASSERELLE_SOURCE" -c "update bookings.bookings set total_amount = $mark % 1000000 where book_ref = '$probe'"
until [ "$(target_sql "select cast(total_amount as signed) from bookings where book_ref = '$probe'" 2>/dev/null)" = "$((mark % 1000000))" ]; do sleep 0.2; done

# The lag while streaming: the slot's unconfirmed WAL every second, a probe's trip every 2 s.
slot=$("$bin" status --json --topic-prefix $prefix | python3 -c 'import json, sys; print(json.load(sys.stdin)["slot"]["name"])')
: >"$work/lag_bytes" && : >"$work/lag_seconds"
end=$((SECONDS + lag_seconds))
while [ $SECONDS -lt $end ]; do
  psql -XAtq "$PASSERELLE_SOURCE" -c "select pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
    from pg_replication_slots where slot_name = '$slot'" >>"$work/lag_bytes"
  value=$(( $(date +%s%N) % 1000000 ))
  sent=$(date +%s.%N)
  psql -Xq "$PASSERELLE_SOURCE" -c "update bookings.bookings set total_amount = $value where book_ref = '$probe'"
  until [ "$(target_sql "select cast(total_amount as signed) from bookings where book_ref = '$probe'" 2>/dev/null)" = "$value" ]; do sleep 0.05; done
  python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 3))" "$sent" >>"$work/lag_seconds"
  sleep 1
done

"$bin" cutover --freeze --json --topic-prefix $prefix >"$work/cutover.json" 2>"$work/cutover.err" || true
wait $writers 2>/dev/null || true
writers=
wait $pid || true
python3 - "$work" "$rate" <<'EOF'
import json, re, statistics, sys
work, rate = sys.argv[1], int(sys.argv[2])
cutover = json.load(open(f"{work}/cutover.json"))
lag_bytes = [int(x) for x in open(f"{work}/lag_bytes").read().split()]
lag_seconds = [float(x) for x in open(f"{work}/lag_seconds").read().split()]
tps = [float(x) for x in re.findall(r"progress: [0-9.]+ s, ([0-9.]+) tps", open(f"{work}/pgbench.err").read())]
first = cutover.get("first_verification") or {}
freeze = cutover.get("freeze") or {}
print(json.dumps({
    "rate_asked": rate,
    "tps_while_streaming": statistics.median(tps) if tps else None,
    "lag_wal_bytes": {"median": statistics.median(lag_bytes), "max": max(lag_bytes)},
    "lag_seconds": {"median": statistics.median(lag_seconds), "max": max(lag_seconds)},
    "first_verification_seconds": first.get("seconds"),
    "changes_rechecked": first.get("changes_since"),
    "compared_again_whole": first.get("compared_again_whole"),
    "rows_that_differed": first.get("rows_that_differed"),
    "stream_drained_seconds": cutover["stream_drained_seconds"],
    "target_ready_seconds": cutover["target_ready_seconds"],
    "downtime_seconds": freeze.get("downtime_seconds"),
    "sessions_ended": freeze.get("sessions_ended"),
    "verified": cutover["verified"],
}))
EOF
echo "logs in $work" >&2
