#!/usr/bin/env bash
# The physical limit: the source schema copied straight into the target, no Kafka.
#
#   bench/direct.sh SOURCE_DB TARGET_DB
#
# 1. drops TARGET_DB and applies Passerelle's own pre-data DDL to it (passerelle plan --apply pre);
# 2. for every table of schema bookings (BENCH_SCHEMA), PostgreSQL `COPY (SELECT ...) TO STDOUT` in CSV
#    piped into `LOAD DATA LOCAL INFILE '/dev/stdin'` (MariaDB, or MySQL with local_infile ON), BENCH_JOBS tables at a time (2),
#    biggest first, each in the session Passerelle's sink uses (strict, UTC, no foreign-key checks);
#    values rendered so that the content is equal: timestamptz in UTC without offset, point as WKT
#    through ST_GeomFromText, boolean as 0/1, bytea as hex through UNHEX;
# 3. applies the post-data DDL that step 1 wrote, with foreign_key_checks = 0 as `passerelle migrate` does;
# 4. checks row counts per table and, unless BENCH_VERIFY=0, runs `passerelle verify` (not timed).
#
# Prints one JSON line on stdout at the end; progress and the log directory on stderr.
# Connections: PASSERELLE_SOURCE and PASSERELLE_TARGET (their database part is replaced), or the
# local stack's when unset. Time limits: BENCH_TABLE_TIMEOUT seconds per table (default 1800).
set -euo pipefail

bench_name=direct
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -eq 2 ] || die "usage: bench/direct.sh SOURCE_DB TARGET_DB"
source_db=$1 target_db=$2
check_names "$source_db" "$target_db"
schema=${BENCH_SCHEMA:-bookings}
jobs=${BENCH_JOBS:-2}
table_timeout=${BENCH_TABLE_TIMEOUT:-1800}
verify=${BENCH_VERIFY:-1}

for tool in psql mariadb timeout awk; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
load_env
work=$(mktemp -d "${TMPDIR:-/tmp}/passerelle-bench-direct.XXXXXX")
log "logs in $work"

cleanup() {
  local rc=$?
  # Loads still running (an error or a signal): end them, they are this script's children.
  local pid
  for pid in $(jobs -p); do
    pkill -TERM -P "$pid" 2>/dev/null || true # its timeout processes, which pass the signal on
    kill "$pid" 2>/dev/null || true
  done
  rm -f "$work/client.cnf"
  [ $rc -eq 0 ] || log "failed (exit $rc); logs in $work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

setup_clients "$source_db" "$target_db" "$work"
bin=$(passerelle_bin)

pg -Atc "select 1" >/dev/null 2>"$work/connect.log" ||
  die "cannot connect to source database $source_db: $(head -c 300 "$work/connect.log")"
my -e "select 1" >/dev/null 2>"$work/connect.log" ||
  die "cannot connect to the target: $(head -c 300 "$work/connect.log")"

# --- the source: tables, exact row counts and sizes (not timed) ---
source_tables "$schema" >"$work/tables.txt"
[ -s "$work/tables.txt" ] || die "schema $schema of database $source_db has no table"
total_rows=$(awk '{ s += $2 } END { print s }' "$work/tables.txt")
total_bytes=$(awk '{ s += $3 } END { print s }' "$work/tables.txt")
log "$(wc -l <"$work/tables.txt") tables, $total_rows rows in $source_db.$schema"

# select_list TABLE: the SELECT rendering each column, the LOAD DATA field list and its SET clause,
# one per line, from the column types.
select_parts() {
  pg -At -F $'\t' -v schema="$schema" -v tbl="$1" <<'EOF'
select string_agg(
         case
           when t.typname = 'timestamptz' then format('(%I AT TIME ZONE ''UTC'')', a.attname)
           when t.typname = 'point' then format('''POINT('' || %1$I[0] || '' '' || %1$I[1] || '')''', a.attname)
           when t.typname = 'bool' then format('%I::int', a.attname)
           when t.typname = 'bytea' then format('encode(%I, ''hex'')', a.attname)
           else quote_ident(a.attname)
         end, ', ' order by a.attnum),
       string_agg(
         case when t.typname in ('point', 'bytea') then '@c' || a.attnum
              else '`' || replace(a.attname, '`', '``') || '`' end, ', ' order by a.attnum),
       coalesce(string_agg(
         case when t.typname = 'point' then format('`%s` = ST_GeomFromText(@c%s)', replace(a.attname, '`', '``'), a.attnum)
              when t.typname = 'bytea' then format('`%s` = UNHEX(@c%s)', replace(a.attname, '`', '``'), a.attnum)
         end, ', ' order by a.attnum), '')
  from pg_attribute a
  join pg_type t on t.oid = a.atttypid
 where a.attrelid = format('%I.%I', :'schema', :'tbl')::regclass
   and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
EOF
}

session="SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', \
time_zone = '+00:00', foreign_key_checks = 0, character_set_client = utf8mb4"

for t in $(awk '{ print $1 }' "$work/tables.txt"); do
  IFS=$'\t' read -r select fields sets < <(select_parts "$t")
  [ -n "$select" ] || die "no columns found for $schema.$t"
  printf 'COPY (SELECT %s FROM %s) TO STDOUT WITH (FORMAT csv, NULL %s)\n' \
    "$select" "\"$schema\".\"$t\"" "'NULL'" >"$work/$t.copy.sql"
  load="LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE \`$target_db\`.\`$t\` CHARACTER SET utf8mb4
FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\n' ($fields)"
  [ -z "$sets" ] || load+=" SET $sets"
  printf '%s;\n%s;\nSHOW COUNT(*) WARNINGS;\nSHOW WARNINGS LIMIT 3;\n' "$session" "$load" >"$work/$t.load.sql"
done

# load_table TABLE: one table, COPY piped into LOAD DATA; writes TABLE.status (0 on success).
load_table() {
  local t=$1 start end
  start=$(now)
  PGOPTIONS='-c TimeZone=UTC -c DateStyle=ISO,YMD -c extra_float_digits=1' \
    timeout "$table_timeout" psql -X -q -v ON_ERROR_STOP=1 -f "$work/$t.copy.sql" 2>"$work/$t.copy.log" |
    timeout "$table_timeout" mariadb --defaults-file="$my_cnf" --local-infile=1 -N -B \
      -e "$(cat "$work/$t.load.sql")" >"$work/$t.load.out" 2>"$work/$t.load.log"
  end=$(now)
  local warnings
  warnings=$(head -n 1 "$work/$t.load.out")
  if [ "$warnings" != 0 ]; then
    printf 'LOAD DATA reported %s warning(s): %s\n' "$warnings" "$(tail -n +2 "$work/$t.load.out" | tr '\n\t' '; ')" \
      >>"$work/$t.load.log"
    echo 1 >"$work/$t.status"
    return 1
  fi
  printf '%s %s\n' "$t" "$(elapsed "$start" "$end")" >"$work/$t.time"
  echo 0 >"$work/$t.status"
}

# --- pre-data ---
log "dropping target database $target_db and applying the pre-data DDL"
my -e "DROP DATABASE IF EXISTS \`$target_db\`"
t0=$(now)
timeout 300 "$bin" plan --schema "$schema" --out "$work/plan" --apply pre --force >"$work/plan-pre.log" 2>&1 ||
  { tail -n 5 "$work/plan-pre.log" >&2; die "passerelle plan --apply pre failed; see $work/plan-pre.log"; }
t1=$(now)

# --- load, BENCH_JOBS tables at a time ---
log "loading, $jobs tables at a time"
for t in $(awk '{ print $1 }' "$work/tables.txt"); do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n 2>/dev/null || true; done
  load_table "$t" &
done
wait || true
t2=$(now)
failed=()
for t in $(awk '{ print $1 }' "$work/tables.txt"); do
  [ "$(cat "$work/$t.status" 2>/dev/null)" = 0 ] || failed+=("$t")
done
if [ ${#failed[@]} -gt 0 ]; then
  for t in "${failed[@]}"; do
    log "table $t failed: $(cat "$work/$t.copy.log" "$work/$t.load.log" 2>/dev/null | head -c 400)"
  done
  die "${#failed[@]} table(s) failed to load; logs in $work"
fi
log "loaded $total_rows rows in $(elapsed "$t1" "$t2") s"

# --- post-data ---
# The post-data DDL the pre-data step wrote, applied as `passerelle migrate` applies it: foreign keys
# added without re-checking every row, since the rows come from one consistent snapshot.
{ echo "SET SESSION foreign_key_checks = 0;"; cat "$work/plan/post-data.sql"; } |
  timeout 1800 mariadb --defaults-file="$my_cnf" "$target_db" >"$work/plan-post.log" 2>&1 ||
  { tail -n 5 "$work/plan-post.log" >&2; die "the post-data DDL failed; see $work/plan-post.log"; }
t3=$(now)
log "post-data in $(elapsed "$t2" "$t3") s"

# --- checks (not timed) ---
while read -r t rows _; do
  got=$(my -N -B -e "SELECT COUNT(*) FROM \`$target_db\`.\`$t\`")
  [ "$got" = "$rows" ] || die "table $t: $got rows in the target, $rows in the source"
done <"$work/tables.txt"
verified=null
if [ "$verify" != 0 ]; then
  log "verifying the content (passerelle verify, not timed)"
  if timeout 1800 "$bin" verify --schema "$schema" >"$work/verify.log" 2>&1; then verified=true; else
    verified=false
    log "passerelle verify found differences or failed; see $work/verify.log"
  fi
fi

load_s=$(elapsed "$t1" "$t2")
table_s=$(cat "$work"/*.time | awk '{ printf "%s\"%s\":%s", (NR > 1 ? "," : ""), $1, $2 }')
printf '{"baseline":"direct","source_db":"%s","target_db":"%s","schema":"%s","tables":%d,"rows":%d,"source_mb":%.1f,"jobs":%d,"pre_data_s":%s,"load_s":%s,"post_data_s":%s,"total_s":%s,"rows_per_s":%s,"mb_per_s":%s,"table_load_s":{%s},"verified":%s,"logs":"%s"}\n' \
  "$source_db" "$target_db" "$schema" "$(wc -l <"$work/tables.txt")" "$total_rows" \
  "$(awk -v b="$total_bytes" 'BEGIN { print b / 1048576 }')" "$jobs" \
  "$(elapsed "$t0" "$t1")" "$load_s" "$(elapsed "$t2" "$t3")" "$(elapsed "$t0" "$t3")" \
  "$(ratio "$total_rows" "$load_s")" "$(awk -v b="$total_bytes" -v s="$load_s" 'BEGIN { printf "%.1f", b / 1048576 / s }')" \
  "$table_s" "$verified" "$work"
