#!/usr/bin/env bash
# The local stack Passerelle runs and is tested against: PostgreSQL 15 (logical replication on),
# MySQL 9.7, MariaDB 10.11 and Apache Kafka 4 (KRaft, one combined broker/controller), all real, all on 127.0.0.1.
# MySQL comes from Debian's unstable suite, installed once into a minimal root (debootstrap) cached in
# $PASSERELLE_CACHE_DIR/mysql-root; if it cannot be installed, `up` says why and goes on without it.
#
#   stack/stack.sh up       install what is missing, start what is not running (idempotent, fast when up)
#   stack/stack.sh down     stop everything
#   stack/stack.sh status   one line per service
#   stack/stack.sh reset    down, wipe the data directories, up
#   stack/stack.sh env      print the PASSERELLE_* exports: eval "$(stack/stack.sh env)"
#   stack/stack.sh recreate-target-db NAME [mysql|mariadb]   drop and create an empty target database (demo)
#   stack/stack.sh mysql-down|mysql-sql ARGS...    stop MySQL alone, or run its client as root; with
#     service-up mysql and a PASSERELLE_STACK_DIR and PASSERELLE_MYSQL_PORT of its own, a private server
#     (bench/run.py --target mysql runs one on 53327, whose local_infile it switches)
#   stack/stack.sh service-up|service-kill kafka|mariadb|mysql   start one service, or SIGKILL it (fault
#                           tests, on private ports and data directories: see crates/testkit)
#   stack/stack.sh service-up postgres   a private source cluster (PASSERELLE_STACK_DIR and PASSERELLE_PG_PORT
#                           of its own), for tests that change server settings (crates/cli/tests/stops.rs)
#   stack/stack.sh kafka-tool CLASS ARGS...   one of Kafka's command-line tools, what bin/kafka-*.sh run:
#                           kafka-tool DeleteRecordsCommand --bootstrap-server … --offset-json-file …
#
# Data lives outside the source tree, in $PASSERELLE_STACK_DIR (default /var/tmp/passerelle-stack).
# Ports (defaults chosen not to collide with system services):
#   PASSERELLE_PG_PORT=55432        the source cluster, wal_level=logical
#   PASSERELLE_PG_PLAIN_PORT=55433  a second, small cluster with wal_level=replica, for preflight tests
#   PASSERELLE_MARIADB_PORT=53306
#   PASSERELLE_MYSQL_PORT=53307
#   PASSERELLE_KAFKA_PORT=59092     (the KRaft controller listens on the next port)
#   PASSERELLE_KAFKA_SASL_PORT=59094  Kafka's SASL_SSL listener (PLAIN and SCRAM-SHA-512 users)
#   PASSERELLE_KAFKA_PLAINTEXT=off   (service-up kafka) SASL_SSL is the broker's only client listener, also
#                                    between brokers; nothing listens on PASSERELLE_KAFKA_PORT
#
# TLS: a throwaway CA and a server certificate for 127.0.0.1 and localhost, made once with openssl in
# $PASSERELLE_TLS_DIR (default $PASSERELLE_STACK_DIR/tls) and kept across `up`s; PostgreSQL, MariaDB, MySQL
# and Kafka's second listener serve it, each with a user allowed only over TLS (see `env`).
#   A private service (service-up, with PASSERELLE_STACK_DIR and ports of its own) serves TLS too, on the
#   shared CA given PASSERELLE_TLS_DIR; MariaDB's certificate and Kafka's listeners are fixed at start.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STACK_DIR=${PASSERELLE_STACK_DIR:-/var/tmp/passerelle-stack}
CACHE_DIR=${PASSERELLE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/passerelle}
PG_PORT=${PASSERELLE_PG_PORT:-55432}
PG_PLAIN_PORT=${PASSERELLE_PG_PLAIN_PORT:-55433}
MARIADB_PORT=${PASSERELLE_MARIADB_PORT:-53306}
MYSQL_PORT=${PASSERELLE_MYSQL_PORT:-53307}
KAFKA_PORT=${PASSERELLE_KAFKA_PORT:-59092}
KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
KAFKA_SASL_PORT=${PASSERELLE_KAFKA_SASL_PORT:-$((KAFKA_PORT + 2))}
KAFKA_PLAINTEXT=${PASSERELLE_KAFKA_PLAINTEXT:-on}
TLS_DIR=${PASSERELLE_TLS_DIR:-$STACK_DIR/tls}

# Test credentials of a throwaway local stack; a real deployment brings its own.
PG_ADMIN_USER=passerelle_admin PG_ADMIN_PASSWORD=admin-secret-pg
PG_REPL_USER=passerelle PG_REPL_PASSWORD=repl-secret-pg
MARIADB_USER=passerelle MARIADB_PASSWORD=target-secret-my
MYSQL_USER=passerelle MYSQL_PASSWORD=target-secret-mysql
# Users allowed only over TLS (PostgreSQL hostssl, MySQL/MariaDB REQUIRE SSL, Kafka SASL_SSL).
PG_TLS_USER=passerelle_tls PG_TLS_PASSWORD=tls-secret-pg
MY_TLS_USER=passerelle_tls MY_TLS_PASSWORD=tls-secret-my
KAFKA_PLAIN_USER=passerelle-plain KAFKA_PLAIN_PASSWORD=sasl-plain-secret
KAFKA_SCRAM_USER=passerelle-scram KAFKA_SCRAM_PASSWORD=sasl-scram-secret
KAFKA_KEYSTORE_PASSWORD=keystore-secret

KAFKA_LIBS=$CACHE_DIR/kafka-libs
PG_BIN=/usr/lib/postgresql/15/bin

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# Run a command as the owner of the PostgreSQL data: postgres refuses to run as root.
as_pg() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION LOGFILE COMMAND...
  local seconds=$1 what=$2 logfile=$3; shift 3
  # The probe's own stderr stays: it says why it gave up (kafka_ready: the broker exited).
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null; then return 0; fi
    sleep 0.2
  done
  log "$what did not come up within ${seconds}s; its log is $logfile:"
  tail -n 30 "$logfile" >&2 || true
  exit 1
}

# Every port of the stack's, shared and private (tests' and benchmarks' servers), is in Linux's ephemeral
# range (32768-60999): a client's connection there, or its TIME_WAIT for a minute after, keeps a server
# started later from binding it, even with SO_REUSEADDR (CI saw a private broker and cluster started
# mid-suite fail so). Reserved, the kernel never picks them for a client: a sysctl of this network
# namespace, which only root may set.
STACK_PORT_RANGES=53300-53999,55400-55499,59000-59799
reserve_ports() {
  local file=/proc/sys/net/ipv4/ip_local_reserved_ports current
  current=$(cat "$file" 2>/dev/null) || return 0
  if ! { is_root && echo "${current:+$current,}$STACK_PORT_RANGES" >"$file"; } 2>/dev/null; then
    log "could not reserve the stack's ports ($STACK_PORT_RANGES) in $file: a service started while clients run may find its port taken"
  fi
}

install_packages() {
  local missing=()
  [ -x "$PG_BIN/postgres" ] || missing+=(postgresql-15 postgresql-contrib-15 postgresql-client-15)
  command -v mariadbd >/dev/null || missing+=(mariadb-server mariadb-client)
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v runuser >/dev/null || missing+=(util-linux)
  [ ${#missing[@]} -eq 0 ] && return 0
  is_root || die "missing packages ${missing[*]}: install them (apt-get install ${missing[*]}) or run this as root"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # Debian's postinst scripts try to start the packaged services; ours run on their own ports instead.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$CACHE_DIR/apt.log" 2>&1 ||
    die "apt-get install failed; see $CACHE_DIR/apt.log"
}

install_kafka() {
  local stamp
  stamp=$(sha256sum "$here/kafka/pom.xml" | cut -c1-16)
  [ -f "$KAFKA_LIBS/.stamp-$stamp" ] && return 0
  log "resolving Apache Kafka jars from Maven Central into $KAFKA_LIBS"
  rm -rf "$KAFKA_LIBS"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime >"$CACHE_DIR/mvn-kafka.log" 2>&1 ||
    die "maven could not resolve the Kafka jars; see $CACHE_DIR/mvn-kafka.log"
  touch "$KAFKA_LIBS/.stamp-$stamp"
}

# --- PostgreSQL ---------------------------------------------------------------------------------

pg_running() { as_pg "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }

pg_up() { # pg_up NAME PORT WAL_LEVEL
  local name=$1 port=$2 wal_level=$3
  local dir=$STACK_DIR/$name
  local data=$dir/data logfile=$dir/postgres.log
  if [ -d "$data" ] && pg_running "$data"; then return 0; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "creating PostgreSQL cluster $name in $data"
    mkdir -p "$dir"
    is_root && chown postgres:postgres "$dir"
    local pwfile=$dir/.pwfile
    printf '%s\n' "$PG_ADMIN_PASSWORD" >"$pwfile"
    is_root && chown postgres "$pwfile"
    as_pg "$PG_BIN/initdb" -D "$data" -U "$PG_ADMIN_USER" --pwfile="$pwfile" -A scram-sha-256 \
      --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { tail -n 20 "$dir/initdb.log" >&2; die "initdb failed for $name; see $dir/initdb.log"; }
    rm -f "$pwfile"
    cat >>"$data/postgresql.conf" <<EOF
# --- passerelle stack ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
wal_level = $wal_level
max_replication_slots = 64
max_wal_senders = 64
max_connections = 300
shared_buffers = 512MB
max_wal_size = 4GB
logical_decoding_work_mem = 256MB
EOF
    printf 'host replication all 127.0.0.1/32 scram-sha-256\n' >>"$data/pg_hba.conf"
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$logfile" -w -t 60 start >/dev/null 2>&1 ||
    { tail -n 20 "$logfile" >&2; die "PostgreSQL cluster $name did not start; its log is $logfile"; }
  psql_admin "$port" postgres -qc "select 1" >/dev/null
  # The non-superuser a real deployment would use: REPLICATION, and owner of the demo database.
  psql_admin "$port" postgres -q <<EOF >/dev/null
do \$\$ begin
  if not exists (select from pg_roles where rolname = '$PG_REPL_USER') then
    create role $PG_REPL_USER login replication password '$PG_REPL_PASSWORD';
  end if;
end \$\$;
select 'create database demo owner $PG_REPL_USER'
  where not exists (select from pg_database where datname = 'demo') \gexec
EOF
}

psql_admin() { # psql_admin PORT DB ARGS...
  local port=$1 db=$2; shift 2
  PGPASSWORD=$PG_ADMIN_PASSWORD psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$PG_ADMIN_USER" -d "$db" "$@"
}

pg_down() {
  local data=$STACK_DIR/$1/data
  [ -d "$data" ] && pg_running "$data" && as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  return 0
}

# --- MariaDB ------------------------------------------------------------------------------------

mariadb_dir=$STACK_DIR/mariadb
mariadb_socket=$mariadb_dir/mysqld.sock

# The target user a deployment would use, over TCP and the socket, and the demo's database: the same
# statements on MariaDB and MySQL.
target_user_sql() { # target_user_sql USER PASSWORD
  cat <<EOF
create user if not exists '$1'@'127.0.0.1' identified by '$2';
create user if not exists '$1'@'localhost' identified by '$2';
grant all privileges on *.* to '$1'@'127.0.0.1' with grant option;
grant all privileges on *.* to '$1'@'localhost' with grant option;
create database if not exists demo;
EOF
}

mariadb_running() { mariadb-admin --no-defaults -S "$mariadb_socket" -uroot ping >/dev/null 2>&1; }

mariadb_up() {
  local data=$mariadb_dir/data logfile=$mariadb_dir/mariadb.log
  mariadb_running && return 0
  local user_opt=()
  if is_root; then user_opt=(--user=mysql); fi
  if [ ! -d "$data/mysql" ]; then
    log "creating MariaDB data directory $data"
    mkdir -p "$data"
    is_root && chown -R mysql:mysql "$mariadb_dir"
    mariadb-install-db --no-defaults "${user_opt[@]}" --datadir="$data" --auth-root-authentication-method=socket \
      --skip-test-db >"$mariadb_dir/install.log" 2>&1 ||
      { tail -n 20 "$mariadb_dir/install.log" >&2; die "mariadb-install-db failed; see $mariadb_dir/install.log"; }
  fi
  tls_copy_for "$mariadb_dir" mysql:mysql
  # Passerelle's target settings: LOAD DATA LOCAL allowed, utf8mb4 everywhere, room for big batches.
  # shellcheck disable=SC2046 # my_tls_args: three options, paths without spaces
  nohup mariadbd --no-defaults "${user_opt[@]}" $(my_tls_args "$mariadb_dir") --datadir="$data" --socket="$mariadb_socket" \
    --pid-file="$mariadb_dir/mariadbd.pid" --port="$MARIADB_PORT" --bind-address=127.0.0.1 \
    --local-infile=1 --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --max-allowed-packet=256M --max-connections=300 --innodb-buffer-pool-size=1G \
    --innodb-log-file-size=512M --skip-name-resolve --log-error="$logfile" >/dev/null 2>&1 &
  wait_for 60 MariaDB "$logfile" mariadb_running
  target_user_sql "$MARIADB_USER" "$MARIADB_PASSWORD" | mariadb --no-defaults -S "$mariadb_socket" -uroot
}

mariadb_down() {
  mariadb_running || return 0
  mariadb-admin --no-defaults -S "$mariadb_socket" -uroot shutdown
}

# --- MySQL --------------------------------------------------------------------------------------
# Debian's unstable suite ships MySQL 9.7. It is installed once into a minimal root of that suite, and
# runs from there with the root's own loader and libraries: no chroot, so no mounts, and the data stays
# in $STACK_DIR like the other services'. The suite moves every day: a working root is kept (its stamp).

mysql_root=$CACHE_DIR/mysql-root
mysql_stamp=$mysql_root/.passerelle-installed
mysql_dir=$STACK_DIR/mysql
mysql_socket=$mysql_dir/mysqld.sock
mysql_unavailable=$STACK_DIR/mysql.unavailable # why MySQL could not be had, for status and env
mysql_exec=("$mysql_root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
  --library-path "$mysql_root/usr/lib/x86_64-linux-gnu")

mysql_client() { "${mysql_exec[@]}" "$mysql_root/usr/bin/mysql" --no-defaults -S "$mysql_socket" -uroot "$@"; }

mysql_running() {
  [ -f "$mysql_stamp" ] &&
    "${mysql_exec[@]}" "$mysql_root/usr/bin/mysqladmin" --no-defaults -S "$mysql_socket" -uroot ping >/dev/null 2>&1
}

# Records why MySQL is missing; `up` goes on with the other services.
mysql_give_up() {
  printf '%s\n' "$1" >"$mysql_unavailable"
  log "MySQL is not available: $1; going on without it"
  return 1
}

# The mirror apt's sources already name, else Debian's own.
debian_mirror() {
  local uri
  uri=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources \
    /etc/apt/sources.list 2>/dev/null | grep -oE 'https?://[^ ]+' | head -n 1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

mysql_install() {
  [ -f "$mysql_stamp" ] && return 0
  is_root || { mysql_give_up "installing it needs root (debootstrap and chroot): run stack/stack.sh up as root"; return 1; }
  local partial=$mysql_root.partial logfile=$CACHE_DIR/mysql-install.log started=$SECONDS
  log "installing MySQL 9.7 from Debian unstable into $mysql_root (once, about 1.5 min); log $logfile"
  : >"$logfile"
  export DEBIAN_FRONTEND=noninteractive
  if ! command -v debootstrap >/dev/null; then
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap; } >>"$logfile" 2>&1 ||
      { mysql_give_up "apt-get install debootstrap failed; see $logfile"; return 1; }
  fi
  rm -rf "$partial"
  debootstrap --variant=minbase sid "$partial" "$(debian_mirror)" >>"$logfile" 2>&1 ||
    { mysql_give_up "debootstrap of Debian unstable failed; see $logfile"; return 1; }
  # No service starts inside the root (ours runs on its own port); the suite's Release file may be
  # a few weeks past its Valid-Until.
  printf '#!/bin/sh\nexit 101\n' >"$partial/usr/sbin/policy-rc.d"
  chmod +x "$partial/usr/sbin/policy-rc.d"
  local apt=(chroot "$partial" apt-get -o Acquire::Check-Valid-Until=false)
  { "${apt[@]}" update -qq && "${apt[@]}" install -y --no-install-recommends mysql-server && "${apt[@]}" clean; } \
    >>"$logfile" 2>&1 || { mysql_give_up "apt-get install mysql-server in the Debian unstable root failed; see $logfile"; return 1; }
  rm -rf "$mysql_root"
  mv "$partial" "$mysql_root"
  "${mysql_exec[@]}" "$mysql_root/usr/sbin/mysqld" --version >"$mysql_stamp" 2>>"$logfile" ||
    { rm -f "$mysql_stamp"; mysql_give_up "the installed mysqld does not run; see $logfile"; return 1; }
  log "installed $(cat "$mysql_stamp") in $((SECONDS - started))s"
}

mysql_up() {
  local data=$mysql_dir/data logfile=$mysql_dir/mysqld.log
  rm -f "$mysql_unavailable"
  mysql_running && return 0
  mysql_install || return 1
  # --user=root when root: the root lives under $HOME, which the mysql account may not read.
  local server=("${mysql_exec[@]}" "$mysql_root/usr/sbin/mysqld" --no-defaults --basedir="$mysql_root/usr"
    --lc-messages-dir="$mysql_root/usr/share/mysql" --character-sets-dir="$mysql_root/usr/share/mysql/charsets"
    --plugin-dir="$mysql_root/usr/lib/mysql/plugin" --datadir="$data" --secure-file-priv="$mysql_dir/files")
  if is_root; then server+=(--user=root); fi
  if [ ! -d "$data/mysql" ]; then
    log "creating MySQL data directory $data"
    rm -rf "$data"
    mkdir -p "$mysql_dir/files"
    "${server[@]}" --initialize-insecure >"$mysql_dir/initialize.log" 2>&1 ||
      { tail -n 20 "$mysql_dir/initialize.log" >&2; mysql_give_up "mysqld --initialize failed; see $mysql_dir/initialize.log"; return 1; }
  fi
  tls_copy_for "$mysql_dir" "$(id -un)"
  # MySQL's own defaults otherwise (local_infile OFF, binary log on, utf8mb4_0900_ai_ci): what users meet.
  # shellcheck disable=SC2046 # my_tls_args: three options, paths without spaces
  setsid nohup "${server[@]}" $(my_tls_args "$mysql_dir") --port="$MYSQL_PORT" --bind-address=127.0.0.1 --mysqlx=OFF \
    --socket="$mysql_socket" --pid-file="$mysql_dir/mysqld.pid" --log-error="$logfile" \
    --character-set-server=utf8mb4 --max-connections=300 --innodb-buffer-pool-size=1G \
    --innodb-redo-log-capacity=1G --binlog-expire-logs-seconds=3600 --skip-name-resolve >/dev/null 2>&1 &
  for _ in $(seq 1 300); do mysql_running && break; sleep 0.2; done
  mysql_running || { tail -n 30 "$logfile" >&2; mysql_give_up "mysqld did not come up within 60s; its log is $logfile"; return 1; }
  target_user_sql "$MYSQL_USER" "$MYSQL_PASSWORD" | mysql_client ||
    { mysql_give_up "creating the $MYSQL_USER user failed"; return 1; }
}

mysql_down() {
  mysql_running || return 0
  "${mysql_exec[@]}" "$mysql_root/usr/bin/mysqladmin" --no-defaults -S "$mysql_socket" -uroot shutdown
}

# --- Kafka --------------------------------------------------------------------------------------

kafka_dir=$STACK_DIR/kafka

kafka_pid() { [ -f "$kafka_dir/kafka.pid" ] && kill -0 "$(cat "$kafka_dir/kafka.pid")" 2>/dev/null && cat "$kafka_dir/kafka.pid"; }

kafka_jvm=(java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true -Dkafka.logs.dir="$kafka_dir"
  -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -cp "$KAFKA_LIBS/*")

kafka_up() {
  kafka_pid >/dev/null && return 0
  mkdir -p "$kafka_dir"
  local props=$kafka_dir/server.properties
  cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
$(kafka_listener_props)
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
log.dirs=$kafka_dir/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
message.max.bytes=16777216
EOF
  kafka_sasl_props >>"$props"
  if [ ! -f "$kafka_dir/data/meta.properties" ]; then
    log "formatting Kafka KRaft storage in $kafka_dir/data"
    local cluster_id
    cluster_id=$("${kafka_jvm[@]}" kafka.tools.StorageTool random-uuid 2>>"$kafka_dir/format.log")
    "${kafka_jvm[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$props" \
      --add-scram "$(kafka_scram_credential)" >>"$kafka_dir/format.log" 2>&1 ||
      die "formatting Kafka storage failed; see $kafka_dir/format.log"
    printf 'scram-user=%s\n' "$KAFKA_SCRAM_USER" >"$kafka_dir/sasl.done"
  fi
  # setsid: the broker outlives this script and the shell or CI step that ran it.
  setsid nohup "${kafka_jvm[@]}" kafka.Kafka "$props" >"$kafka_dir/stdout.log" 2>&1 &
  echo $! >"$kafka_dir/kafka.pid"
  wait_for 90 Kafka "$kafka_dir/server.log" kafka_ready
}

# The TLS parts of services started before the stack served TLS: what can change live does (users,
# MySQL's certificate); listeners and MariaDB's certificate are fixed at start, so say so instead of
# restarting a shared server under other users' feet.
mariadb_tls() {
  my_tls_user_sql | mariadb --no-defaults -S "$mariadb_socket" -uroot
  [ "$(mariadb --no-defaults -S "$mariadb_socket" -uroot -Nse "select @@have_ssl")" = YES ] ||
    log "the running MariaDB serves no TLS: it will from its next start (stack/stack.sh down, then up)"
}

mysql_tls() {
  mysql_running || return 0
  [ -f "$mysql_dir/tls/server.key" ] || tls_copy_for "$mysql_dir" "$(id -un)"
  { my_tls_user_sql
    printf "set global ssl_ca = '%s', ssl_cert = '%s', ssl_key = '%s';\nalter instance reload tls;\n" \
      "$mysql_dir/tls/ca.crt" "$mysql_dir/tls/server.crt" "$mysql_dir/tls/server.key"; } | mysql_client ||
    die "configuring MySQL's TLS failed"
}

kafka_tls() {
  kafka_scram_users
  port_open "$KAFKA_SASL_PORT" ||
    log "the running Kafka has no SASL_SSL listener on $KAFKA_SASL_PORT: it will from its next start (stack/stack.sh down, then up)"
}

# The client listeners: plaintext and SASL_SSL, or SASL_SSL alone (PASSERELLE_KAFKA_PLAINTEXT=off), which
# the broker then also speaks to itself, as the PLAIN user, trusting the stack's CA.
kafka_listener_props() {
  if [ "$KAFKA_PLAINTEXT" = off ]; then
    cat <<EOF
listeners=CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
inter.broker.listener.name=SASL_SSL
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_ssl.ssl.truststore.type=PEM
listener.name.sasl_ssl.ssl.truststore.location=$TLS_DIR/ca.crt
EOF
  else
    cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
inter.broker.listener.name=PLAINTEXT
EOF
  fi
}

# The port clients reach the broker on: the plaintext one, or the SASL_SSL one when it is the only one.
kafka_client_port() { if [ "$KAFKA_PLAINTEXT" = off ]; then echo "$KAFKA_SASL_PORT"; else echo "$KAFKA_PORT"; fi; }

kafka_ready() {
  kafka_pid >/dev/null || { tail -n 20 "$kafka_dir/stdout.log" >&2; die "Kafka exited; its logs are $kafka_dir/server.log and $kafka_dir/stdout.log"; }
  port_open "$(kafka_client_port)" && grep -q 'Kafka Server started' "$kafka_dir/server.log"
}

kafka_down() {
  local pid
  pid=$(kafka_pid) || return 0
  kill "$pid"
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$kafka_dir/kafka.pid"
}

# --- one service, for fault tests ---------------------------------------------------------------
# Fault tests kill a service mid-run: they get private ones (PASSERELLE_STACK_DIR and the port
# variables set by crates/testkit), never the shared stack's.

service_pidfile() {
  case $1 in
    kafka) echo "$kafka_dir/kafka.pid" ;;
    mariadb) echo "$mariadb_dir/mariadbd.pid" ;;
    mysql) echo "$mysql_dir/mysqld.pid" ;;
    *) die "unknown service $1: kafka, mariadb or mysql" ;;
  esac
}

service_up() {
  mkdir -p "$STACK_DIR" "$CACHE_DIR"
  reserve_ports
  tls_certs
  case $1 in
    # A restarted broker writes a new server.log: kafka_ready must not find the last one's start line.
    kafka) install_kafka; kafka_pid >/dev/null || rm -f "$kafka_dir/server.log"; kafka_up ;;
    mariadb) mariadb_up; mariadb_tls ;;
    mysql) mysql_up && mysql_tls ;;
    # The source cluster (wal_level=logical, no TLS), for tests that change its settings.
    postgres) pg_up pg "$PG_PORT" logical ;;
    *) die "unknown service $1: kafka, mariadb, mysql or postgres" ;;
  esac
}

# SIGKILL, as a crash or an OOM kill would end it: no shutdown, no flush.
service_kill() {
  local pidfile pid
  pidfile=$(service_pidfile "$1")
  [ -f "$pidfile" ] || die "$1 in $STACK_DIR is not running (no $pidfile)"
  pid=$(cat "$pidfile")
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pidfile"
}

# --- TLS ----------------------------------------------------------------------------------------
# One CA signs the server certificate every service presents; a second, unrelated CA is there for tests
# that must fail verification. Kept across `up`s: clients may have pinned the CA.

tls_certs() {
  [ -f "$TLS_DIR/server.crt" ] && [ -f "$TLS_DIR/other-ca.crt" ] && [ -f "$TLS_DIR/server.p12" ] && return 0
  command -v openssl >/dev/null || die "openssl is missing: apt-get install openssl"
  log "making a throwaway CA and server certificate in $TLS_DIR"
  rm -rf "$TLS_DIR.partial"
  mkdir -p "$TLS_DIR.partial"
  (
    cd "$TLS_DIR.partial"
    for ca in ca other-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -keyout "$ca.key" -out "$ca.crt" -days 3650 \
        -subj "/CN=passerelle stack $ca" 2>/dev/null
    done
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt 2>/dev/null
    # A client certificate, for tests of sslcert/sslkey and ssl-cert/ssl-key.
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=$PG_TLS_USER" 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out client.crt 2>/dev/null
    # Kafka's broker reads a PKCS#12 keystore.
    openssl pkcs12 -export -in server.crt -inkey server.key -out server.p12 -passout "pass:$KAFKA_KEYSTORE_PASSWORD"
    rm -f ./*.csr server.ext ./*.srl
    chmod 600 ./*.key
  ) || die "openssl could not make the stack's certificates in $TLS_DIR.partial"
  rm -rf "$TLS_DIR"
  mv "$TLS_DIR.partial" "$TLS_DIR"
  chmod 755 "$TLS_DIR"
}

# A copy of the server key a service's own account may read (postgres and mysql refuse or fail otherwise).
tls_copy_for() { # tls_copy_for DIR OWNER
  mkdir -p "$1/tls"
  cp "$TLS_DIR/server.crt" "$TLS_DIR/server.key" "$TLS_DIR/ca.crt" "$1/tls/"
  chmod 600 "$1/tls/server.key"
  if is_root; then chown -R "$2" "$1/tls"; fi
}

# PostgreSQL turns TLS on with a reload; the TLS-only role's hostssl lines go first in pg_hba.conf,
# each followed by a reject for the same role without TLS, so the generic `host` lines never match it.
pg_tls() { # pg_tls NAME PORT
  local dir=$STACK_DIR/$1 port=$2
  local hba=$dir/data/pg_hba.conf
  [ -f "$dir/tls/server.key" ] || tls_copy_for "$dir" postgres
  if ! grep -q '^# passerelle stack: TLS-only role' "$hba"; then
    { printf '# passerelle stack: TLS-only role\n'
      printf 'hostssl all %s 127.0.0.1/32 scram-sha-256\n' "$PG_TLS_USER"
      printf 'hostssl replication %s 127.0.0.1/32 scram-sha-256\n' "$PG_TLS_USER"
      printf 'hostnossl all %s 127.0.0.1/32 reject\n' "$PG_TLS_USER"
      printf 'hostnossl replication %s 127.0.0.1/32 reject\n' "$PG_TLS_USER"
      cat "$hba"; } >"$hba.new"
    is_root && chown postgres:postgres "$hba.new"
    mv "$hba.new" "$hba"
  fi
  psql_admin "$port" postgres -q <<EOF >/dev/null
do \$\$ begin
  if not exists (select from pg_roles where rolname = '$PG_TLS_USER') then
    create role $PG_TLS_USER login replication password '$PG_TLS_PASSWORD' in role $PG_REPL_USER;
  end if;
end \$\$;
alter system set ssl_cert_file = '$dir/tls/server.crt';
alter system set ssl_key_file = '$dir/tls/server.key';
alter system set ssl_ca_file = '$dir/tls/ca.crt';
alter system set ssl = on;
select pg_reload_conf();
EOF
}

# MySQL/MariaDB server options naming the certificate, given at start.
my_tls_args() { # my_tls_args DIR
  echo "--ssl-ca=$1/tls/ca.crt --ssl-cert=$1/tls/server.crt --ssl-key=$1/tls/server.key"
}

# The REQUIRE SSL user, on either server (their client reads the statements on stdin).
my_tls_user_sql() {
  cat <<EOF
create user if not exists '$MY_TLS_USER'@'127.0.0.1' identified by '$MY_TLS_PASSWORD' require ssl;
create user if not exists '$MY_TLS_USER'@'localhost' identified by '$MY_TLS_PASSWORD' require ssl;
grant all privileges on *.* to '$MY_TLS_USER'@'127.0.0.1' with grant option;
grant all privileges on *.* to '$MY_TLS_USER'@'localhost' with grant option;
EOF
}

# Kafka's SASL_SSL listener, beside the plaintext one: PLAIN users live in the JAAS line, SCRAM users in
# the cluster metadata (added when the storage is formatted).
kafka_sasl_props() {
  cat <<EOF
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$KAFKA_PLAIN_USER" password="$KAFKA_PLAIN_PASSWORD" user_$KAFKA_PLAIN_USER="$KAFKA_PLAIN_PASSWORD";
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/server.p12
listener.name.sasl_ssl.ssl.keystore.password=$KAFKA_KEYSTORE_PASSWORD
EOF
}

kafka_scram_credential() { echo "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]"; }

# A broker formatted before the stack served TLS gets its SCRAM user from kafka-configs, once.
kafka_scram_users() {
  grep -q "^scram-user=$KAFKA_SCRAM_USER$" "$kafka_dir/sasl.done" 2>/dev/null && return 0
  "${kafka_jvm[@]}" kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter \
    --entity-type users --entity-name "$KAFKA_SCRAM_USER" \
    --add-config "SCRAM-SHA-512=[iterations=4096,password=$KAFKA_SCRAM_PASSWORD]" >>"$kafka_dir/sasl.log" 2>&1 ||
    die "creating Kafka's SCRAM user failed; see $kafka_dir/sasl.log"
  printf 'scram-user=%s\n' "$KAFKA_SCRAM_USER" >"$kafka_dir/sasl.done"
}

print_tls_env() {
  local ca=$TLS_DIR/ca.crt
  cat <<EOF
export PASSERELLE_TLS_CA='$ca'
export PASSERELLE_TLS_OTHER_CA='$TLS_DIR/other-ca.crt'
export PASSERELLE_TLS_CLIENT_CERT='$TLS_DIR/client.crt'
export PASSERELLE_TLS_CLIENT_KEY='$TLS_DIR/client.key'
export PASSERELLE_SOURCE_TLS='postgres://$PG_TLS_USER:$PG_TLS_PASSWORD@localhost:$PG_PORT/demo?sslmode=verify-full&sslrootcert=$ca'
export PASSERELLE_TARGET_MARIADB_TLS='mysql://$MY_TLS_USER:$MY_TLS_PASSWORD@localhost:$MARIADB_PORT/demo?ssl-mode=VERIFY_IDENTITY&ssl-ca=$ca'
export PASSERELLE_TARGET_MYSQL_TLS='mysql://$MY_TLS_USER:$MY_TLS_PASSWORD@localhost:$MYSQL_PORT/demo?ssl-mode=VERIFY_IDENTITY&ssl-ca=$ca'
export PASSERELLE_KAFKA_SASL='127.0.0.1:$KAFKA_SASL_PORT'
export PASSERELLE_KAFKA_SASL_PLAIN_USER='$KAFKA_PLAIN_USER'
export PASSERELLE_KAFKA_SASL_PLAIN_PASSWORD='$KAFKA_PLAIN_PASSWORD'
export PASSERELLE_KAFKA_SASL_SCRAM_USER='$KAFKA_SCRAM_USER'
export PASSERELLE_KAFKA_SASL_SCRAM_PASSWORD='$KAFKA_SCRAM_PASSWORD'
EOF
}

# --- commands -----------------------------------------------------------------------------------

print_env() {
  cat <<EOF
export PASSERELLE_SOURCE='postgres://$PG_REPL_USER:$PG_REPL_PASSWORD@127.0.0.1:$PG_PORT/demo'
export PASSERELLE_SOURCE_ADMIN='postgres://$PG_ADMIN_USER:$PG_ADMIN_PASSWORD@127.0.0.1:$PG_PORT/postgres'
export PASSERELLE_SOURCE_PLAIN_ADMIN='postgres://$PG_ADMIN_USER:$PG_ADMIN_PASSWORD@127.0.0.1:$PG_PLAIN_PORT/postgres'
export PASSERELLE_KAFKA='127.0.0.1:$KAFKA_PORT'
export PASSERELLE_TARGET='mysql://$MARIADB_USER:$MARIADB_PASSWORD@127.0.0.1:$MARIADB_PORT/demo'
export PASSERELLE_TARGET_MARIADB='mysql://$MARIADB_USER:$MARIADB_PASSWORD@127.0.0.1:$MARIADB_PORT/demo'
export PASSERELLE_TARGET_MYSQL='mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT/demo'
EOF
  # Tests on MySQL fail with this reason rather than skip.
  if [ -f "$mysql_unavailable" ]; then
    printf "export PASSERELLE_MYSQL_UNAVAILABLE=%q\n" "$(cat "$mysql_unavailable")"
  else
    echo "unset PASSERELLE_MYSQL_UNAVAILABLE"
  fi
}

up() {
  mkdir -p "$STACK_DIR" "$CACHE_DIR"
  is_root && chmod 755 "$STACK_DIR"
  reserve_ports
  install_packages
  install_kafka
  tls_certs
  pg_up pg "$PG_PORT" logical
  pg_tls pg "$PG_PORT"
  pg_up pg-plain "$PG_PLAIN_PORT" replica
  mariadb_up
  mariadb_tls
  mysql_up && mysql_tls || true
  kafka_up
  kafka_tls
  status
}

down() {
  kafka_down
  mysql_down
  mariadb_down
  pg_down pg
  pg_down pg-plain
}

status() {
  local s
  s=down; [ -d "$STACK_DIR/pg/data" ] && pg_running "$STACK_DIR/pg/data" && s=up
  log "postgresql (logical) $s  127.0.0.1:$PG_PORT  log $STACK_DIR/pg/postgres.log"
  s=down; [ -d "$STACK_DIR/pg-plain/data" ] && pg_running "$STACK_DIR/pg-plain/data" && s=up
  log "postgresql (replica) $s  127.0.0.1:$PG_PLAIN_PORT  log $STACK_DIR/pg-plain/postgres.log"
  s=down; mariadb_running && s=up
  log "mariadb              $s  127.0.0.1:$MARIADB_PORT  log $mariadb_dir/mariadb.log"
  s=down; mysql_running && s=up
  [ -f "$mysql_unavailable" ] && s="unavailable ($(cat "$mysql_unavailable"))"
  log "mysql                $s  127.0.0.1:$MYSQL_PORT  log $mysql_dir/mysqld.log"
  s=down; kafka_pid >/dev/null && port_open "$KAFKA_PORT" && s=up
  log "kafka                $s  127.0.0.1:$KAFKA_PORT  log $kafka_dir/server.log"
  s=down; kafka_pid >/dev/null && port_open "$KAFKA_SASL_PORT" && s=up
  log "kafka SASL_SSL       $s  127.0.0.1:$KAFKA_SASL_PORT"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  reset) down; rm -rf "$STACK_DIR"; up ;;
  env) print_env; print_tls_env ;;
  mysql-down) mysql_down ;;
  mysql-sql) shift; mysql_client "$@" ;;
  service-up) service_up "${2:?usage: stack/stack.sh service-up kafka|mariadb|mysql|postgres}" ;;
  service-kill) service_kill "${2:?usage: stack/stack.sh service-kill kafka|mariadb|mysql}" ;;
  kafka-tool) shift; cls=${1:?usage: stack/stack.sh kafka-tool CLASS ARGS...}; shift
    java -Xmx256m -Djava.awt.headless=true -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
      -cp "$KAFKA_LIBS/*" "org.apache.kafka.tools.$cls" "$@" ;;
  recreate-target-db)
    [ -n "${2:-}" ] || die "usage: stack/stack.sh recreate-target-db NAME [mysql|mariadb]"
    sql="DROP DATABASE IF EXISTS \`$2\`; CREATE DATABASE \`$2\`"
    case ${3:-mariadb} in
      mariadb) mariadb --no-defaults -S "$mariadb_socket" -uroot -e "$sql" ;;
      mysql) mysql_client -e "$sql" ;;
      *) die "recreate-target-db: the target is mysql or mariadb, not ${3}" ;;
    esac ;;
  *) die "usage: stack/stack.sh up|down|status|reset|env|recreate-target-db NAME [mysql|mariadb]|service-up|service-kill SERVICE|mysql-down|mysql-sql ARGS|kafka-tool CLASS ARGS" ;;
esac
