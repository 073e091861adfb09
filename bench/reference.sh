#!/usr/bin/env bash
# The reference stack: Kafka Connect standalone with the Debezium PostgreSQL source connector and one
# Debezium JDBC sink connector per table into MariaDB, as in the reference write-up (one sink per table).
#
#   bench/reference.sh SOURCE_DB TARGET_DB
#
# 1. resolves the jars from Maven Central (bench/reference/pom.xml, through stack/fetch-connect-jars.sh) into
#    ~/.cache/passerelle/reference-libs (PASSERELLE_CACHE_DIR), once per pom version;
# 2. drops and recreates TARGET_DB, empty: the sinks create the tables themselves (schema.evolution=basic,
#    primary keys from the record keys), as the reference's sink connectors did; the reference added
#    the other constraints afterwards by hand, which is not timed here;
# 3. starts Kafka Connect standalone with the source (pgoutput, snapshot.mode=initial, a slot, a
#    publication and a topic prefix of its own) and one sink per table (insert.mode=upsert,
#    primary.key.mode=record_key, batch.size BENCH_SINK_BATCH with the consumer's max.poll.records
#    raised to match, as the sink's documentation says), JSON with schemas on the wire (Connect's
#    default converter; there is no schema registry);
# 4. polls the target's row counts every BENCH_POLL seconds (5) until every table holds every source
#    row: the wall time runs from starting Connect to that moment;
# 5. stops Connect, drops the slot, the publication and the topics it created (also on failure).
#
# Prints one JSON line on stdout at the end; progress and the log directory on stderr.
# Connections: PASSERELLE_SOURCE, PASSERELLE_TARGET, PASSERELLE_KAFKA, or the local stack's when unset.
# BENCH_TIMEOUT (3600) bounds the wait in seconds.
set -euo pipefail

bench_name=reference
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -eq 2 ] || die "usage: bench/reference.sh SOURCE_DB TARGET_DB"
source_db=$1 target_db=$2
check_names "$source_db" "$target_db"
schema=${BENCH_SCHEMA:-bookings}
poll=${BENCH_POLL:-5}
limit=${BENCH_TIMEOUT:-3600}
sink_batch=${BENCH_SINK_BATCH:-10000}
snapshot_threads=${BENCH_SNAPSHOT_THREADS:-2}
cache=${PASSERELLE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/passerelle}
libs=$cache/reference-libs

for tool in psql mariadb java mvn curl timeout awk python3; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
load_env
[ -n "${PASSERELLE_KAFKA:-}" ] || eval "$("$bench_root/stack/stack.sh" env)"
work=$(mktemp -d "${TMPDIR:-/tmp}/passerelle-bench-reference.XXXXXX")
log "logs in $work"

# A name of this run for the slot, the publication, the topic prefix and the connectors.
run_id=benchref_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
connect_pid=
cleanup() {
  local rc=$? i
  set +e
  if [ -n "$connect_pid" ] && kill -0 "$connect_pid" 2>/dev/null; then
    log "stopping Kafka Connect"
    kill -TERM "$connect_pid" 2>/dev/null # timeout passes TERM on to the JVM
    for i in $(seq 1 60); do kill -0 "$connect_pid" 2>/dev/null || break; sleep 1; done
    pkill -KILL -P "$connect_pid" 2>/dev/null
    kill -KILL "$connect_pid" 2>/dev/null
    wait "$connect_pid" 2>/dev/null
  fi
  if [ -n "${PGHOST:-}" ]; then
    # The walsender may take a moment to go once the JVM is gone.
    for i in $(seq 1 30); do
      [ "$(pg -Atc "select count(*) from pg_replication_slots where slot_name = '$run_id' and active" 2>/dev/null)" = 0 ] && break
      sleep 1
    done
    pg -Atc "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '$run_id'" \
      >>"$work/cleanup.log" 2>&1 || log "could not drop replication slot $run_id; see $work/cleanup.log"
    pg -c "drop publication if exists $run_id" >>"$work/cleanup.log" 2>&1 ||
      log "could not drop publication $run_id; see $work/cleanup.log"
  fi
  if [ -n "${PASSERELLE_KAFKA:-}" ] && ls "$cache"/kafka-libs/kafka-tools-*.jar >/dev/null 2>&1; then
    timeout 120 java -cp "$cache/kafka-libs/*" -Dlog4j2.configurationFile="$work/log4j2-tools.properties" \
      org.apache.kafka.tools.TopicCommand --bootstrap-server "$PASSERELLE_KAFKA" --delete --if-exists \
      --topic "$run_id\\..*" >>"$work/cleanup.log" 2>&1 || log "could not delete topics $run_id.*; see $work/cleanup.log"
    if [ -s "$work/tables.txt" ]; then
      local groups=()
      for i in $(awk '{ print $1 }' "$work/tables.txt"); do groups+=(--group "connect-$run_id-sink-$i"); done
      timeout 120 java -cp "$cache/kafka-libs/*" -Dlog4j2.configurationFile="$work/log4j2-tools.properties" \
        org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$PASSERELLE_KAFKA" --delete \
        "${groups[@]}" >>"$work/cleanup.log" 2>&1 || log "could not delete consumer groups connect-$run_id-*; see $work/cleanup.log"
    fi
  fi
  rm -f "$work"/*.properties.secret "$work/client.cnf"
  [ $rc -eq 0 ] || log "failed (exit $rc); logs in $work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

setup_clients "$source_db" "$target_db" "$work"
printf 'status = error\nrootLogger.level = error\n' >"$work/log4j2-tools.properties"

pg -Atc "select 1" >/dev/null 2>"$work/connect-check.log" ||
  die "cannot connect to source database $source_db: $(head -c 300 "$work/connect-check.log")"
my -e "select 1" >/dev/null 2>"$work/connect-check.log" ||
  die "cannot connect to the target: $(head -c 300 "$work/connect-check.log")"

# --- the jars ---
log "resolving Kafka Connect and Debezium jars from Maven Central into $libs (once)"
"$bench_root/stack/fetch-connect-jars.sh" >/dev/null || die "the Kafka Connect and Debezium jars could not be resolved"
versions=$(cd "$libs" && ls runtime/connect-runtime-*.jar plugins/debezium-postgres/debezium-connector-postgres-*.jar \
  plugins/debezium-jdbc/debezium-connector-jdbc-*.jar plugins/debezium-jdbc/mariadb-java-client-*.jar |
  sed 's#.*/##; s#\.jar$##' | tr '\n' ' ')
log "using ${versions% }"

# --- the source: tables and exact row counts (not timed) ---
source_tables "$schema" >"$work/tables.txt"
[ -s "$work/tables.txt" ] || die "schema $schema of database $source_db has no table"
total_rows=$(awk '{ s += $2 } END { print s }' "$work/tables.txt")
log "$(wc -l <"$work/tables.txt") tables, $total_rows rows in $source_db.$schema"
[ "$(pg -Atc "select count(*) from pg_replication_slots where slot_name = '$run_id'")" = 0 ] ||
  die "replication slot $run_id exists already"

# --- the target: an empty database; the sinks create the tables ---
my -e "DROP DATABASE IF EXISTS \`$target_db\`; CREATE DATABASE \`$target_db\` CHARACTER SET utf8mb4"

# json_columns TABLE: "column:string,..." for the table's json and jsonb columns.
json_columns() {
  pg -At -v schema="$schema" -v tbl="$1" <<'EOF'
select coalesce(string_agg(a.attname || ':string', ',' order by a.attnum), '')
  from pg_attribute a join pg_type t on t.oid = a.atttypid
 where a.attrelid = format('%I.%I', :'schema', :'tbl')::regclass and a.attnum > 0 and not a.attisdropped
   and t.typname in ('json', 'jsonb')
EOF
}

# --- Kafka Connect configuration ---
rest_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/worker.properties" <<EOF
bootstrap.servers=$PASSERELLE_KAFKA
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename=$work/connect.offsets
offset.flush.interval.ms=10000
plugin.path=$libs/plugins
plugin.discovery=service_load
listeners=http://127.0.0.1:$rest_port
connector.client.config.override.policy=All
EOF
(
  umask 077
  cat >"$work/source.properties.secret" <<EOF
name=$run_id-source
connector.class=io.debezium.connector.postgresql.PostgresConnector
tasks.max=1
plugin.name=pgoutput
database.hostname=$PGHOST
database.port=$PGPORT
database.user=$PGUSER
database.password=$PGPASSWORD
database.dbname=$source_db
topic.prefix=$run_id
schema.include.list=$schema
slot.name=$run_id
publication.name=$run_id
publication.autocreate.mode=filtered
snapshot.mode=initial
snapshot.max.threads=$snapshot_threads
transforms=unwrap
transforms.unwrap.type=io.debezium.transforms.ExtractNewRecordState
EOF
  while read -r t _; do
    json_cast=$(json_columns "$t")
    cat >"$work/sink-$t.properties.secret" <<EOF
name=$run_id-sink-$t
connector.class=io.debezium.connector.jdbc.JdbcSinkConnector
tasks.max=1
topics=$run_id.$schema.$t
connection.url=jdbc:mariadb://$tgt_host:${tgt_port:-3306}/$target_db?nullDatabaseMeansCurrent=true
connection.username=$tgt_user
connection.password=$tgt_password
insert.mode=upsert
primary.key.mode=record_key
delete.enabled=true
schema.evolution=basic
collection.name.format=$t
quote.identifiers=true
batch.size=$sink_batch
consumer.override.max.poll.records=$sink_batch
consumer.override.max.partition.fetch.bytes=67108864
consumer.override.fetch.max.bytes=67108864
consumer.override.auto.offset.reset=earliest
EOF
    if [ -n "$json_cast" ]; then
      printf 'transforms=jsontext\ntransforms.jsontext.type=org.apache.kafka.connect.transforms.Cast$Value\ntransforms.jsontext.spec=%s\n' \
        "$json_cast" >>"$work/sink-$t.properties.secret"
    fi
  done <"$work/tables.txt"
)
cat >"$work/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $work/connect.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
EOF

# target_counts: "table count" for every table the sinks have created so far.
target_counts() {
  local existing q=
  existing=$(my -N -B -e "SELECT table_name FROM information_schema.tables WHERE table_schema = '$target_db'")
  for t in $existing; do
    q+="${q:+ UNION ALL }SELECT '$t', COUNT(*) FROM \`$target_db\`.\`$t\`"
  done
  [ -z "$q" ] || my -N -B -e "$q"
}

# --- run ---
log "starting Kafka Connect: 1 source, $(wc -l <"$work/tables.txt") sinks (run $run_id, REST on 127.0.0.1:$rest_port)"
t0=$(now)
timeout --kill-after=30 $((limit + 120)) java -Xms512m -Xmx2g -XX:+UseG1GC -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$work/log4j2.properties" -cp "$libs/runtime/*" \
  org.apache.kafka.connect.cli.ConnectStandalone "$work/worker.properties" \
  "$work/source.properties.secret" "$work"/sink-*.properties.secret >"$work/connect.stdout" 2>&1 &
connect_pid=$!

snapshot_s=null
while :; do
  sleep "$poll"
  now_s=$(now)
  kill -0 "$connect_pid" 2>/dev/null ||
    die "Kafka Connect exited; see $work/connect.log and $work/connect.stdout: $(tail -n 3 "$work/connect.stdout" | head -c 300)"
  if curl -fsS --max-time 5 "http://127.0.0.1:$rest_port/connectors?expand=status" >"$work/status.json" 2>/dev/null &&
    grep -q '"FAILED"' "$work/status.json"; then
    die "a connector failed; see $work/status.json and $work/connect.log: $(grep -a 'Caused by' "$work/connect.log" | tail -n 1 | cut -c 1-400)"
  fi
  if [ "$snapshot_s" = null ] && grep -q -E 'Snapshot completed|Snapshot ended with SnapshotResult \[status=COMPLETED' "$work/connect.log" 2>/dev/null; then
    snapshot_s=$(elapsed "$t0" "$now_s")
    log "source snapshot completed after about $snapshot_s s"
  fi
  target_counts >"$work/counts.txt"
  done_rows=$(awk '{ s += $2 } END { print s + 0 }' "$work/counts.txt")
  missing=$(awk 'FILENAME == ARGV[1] { got[$1] = $2; next } got[$1] + 0 < $2 + 0 { n++ } END { print n + 0 }' \
    "$work/counts.txt" "$work/tables.txt")
  [ "$missing" = 0 ] && break
  printf '%s %s\n' "$(elapsed "$t0" "$now_s")" "$done_rows" >>"$work/progress.txt"
  if awk -v a="$(elapsed "$t0" "$now_s")" -v l="$limit" 'BEGIN { exit !(a > l) }'; then
    die "the target holds $done_rows of $total_rows rows after ${limit}s (BENCH_TIMEOUT); see $work/connect.log"
  fi
done
t1=$now_s
wall=$(elapsed "$t0" "$t1")
log "the target holds all $total_rows rows after $wall s"
awk 'FILENAME == ARGV[1] { got[$1] = $2; next } got[$1] + 0 != $2 + 0 { print "reference: table " $1 ": " got[$1] " rows in the target, " $2 " in the source" > "/dev/stderr" }' \
  "$work/counts.txt" "$work/tables.txt"
my -N -B -e "SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = '$target_db' AND table_name = 'flights' ORDER BY ordinal_position" \
  >"$work/flights-columns.txt" 2>/dev/null || true

printf '{"baseline":"reference","source_db":"%s","target_db":"%s","schema":"%s","tables":%d,"rows":%d,"wall_s":%s,"source_snapshot_s":%s,"rows_per_s":%s,"tables_created_by":"sink (schema.evolution=basic)","sinks":%d,"sink_batch_size":%d,"snapshot_threads":%d,"versions":"%s","poll_s":%s,"logs":"%s"}\n' \
  "$source_db" "$target_db" "$schema" "$(wc -l <"$work/tables.txt")" "$total_rows" "$wall" "$snapshot_s" \
  "$(ratio "$total_rows" "$wall")" "$(wc -l <"$work/tables.txt")" "$sink_batch" "$snapshot_threads" \
  "${versions% }" "$poll" "$work"
