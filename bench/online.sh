#!/usr/bin/env bash
# The online mode's cutover, measured: `passerelle migrate --online` of bench_<SCALE> (loaded by
# bench/run.py) while 20 transactions update 1,000 bookings each, one a second; once the snapshot is in
# Kafka and the target has caught up, `passerelle cutover`. Prints the cutover's JSON report (how long
# the stream took to drain and the target to be ready) and the migration's phases.
#
#   bench/online.sh [SCALE]        # small by default; the local stack (stack/stack.sh up)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scale=${1:-small}
bin=${CARGO_TARGET_DIR:-$HOME/.cache/passerelle/target}/release/passerelle
eval "$("$root/stack/stack.sh" env)"
export PASSERELLE_SOURCE="${PASSERELLE_SOURCE%/*}/bench_$scale" PASSERELLE_TARGET="${PASSERELLE_TARGET%/*}/bench_passerelle"
prefix=passerelle_online
work=$(mktemp -d "${TMPDIR:-/tmp}/passerelle-bench-online.XXXXXX")
(cd "$root" && cargo build --release --locked -q -p passerelle-cli)
"$bin" cleanup --topic-prefix $prefix >/dev/null 2>&1 || true
"$root/stack/stack.sh" recreate-target-db bench_passerelle >/dev/null
"$bin" migrate --online --json --schema bookings --topic-prefix $prefix >"$work/migrate.json" 2>"$work/migrate.err" &
pid=$!
cleanup() {
  kill $pid 2>/dev/null || true
  "$bin" cleanup --topic-prefix $prefix >/dev/null 2>&1 ||
    echo "bench/online.sh: passerelle cleanup --topic-prefix $prefix failed; run it by hand" >&2
}
trap cleanup EXIT
for i in $(seq 1 20); do
  psql -Xq "$PASSERELLE_SOURCE" -c "update bookings.bookings set total_amount = total_amount + 1
    where book_ref in (select book_ref from bookings.bookings order by book_ref offset $((i * 1000)) limit 1000)"
  sleep 1
done
until "$bin" status --json --topic-prefix $prefix | grep -q '"snapshot_in_kafka": true'; do sleep 1; done
sleep 5
"$bin" cutover --json --topic-prefix $prefix | tee "$work/cutover.json" | python3 -c '
import json, sys; r = json.load(sys.stdin)
print(json.dumps({k: r[k] for k in ("lsn", "stream_drained_seconds", "target_ready_seconds", "verified")}))'
wait $pid
python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(json.dumps({"phases": s["phases"], "changes": s["changes"], "verified": s["verified"]}))' "$work/migrate.json"
echo "logs in $work" >&2
