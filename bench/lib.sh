# Shared helpers of the bench scripts: sourced, never run. Bash, with set -euo pipefail in the caller.
#
# Connections come from PASSERELLE_SOURCE and PASSERELLE_TARGET (URLs, as every passerelle command
# reads them); when they are unset, from the local stack (`stack/stack.sh env`). The database part of
# each URL is replaced by the database named on the command line. Passwords go to the clients through
# PGPASSWORD and a mode-600 option file, never on a command line, never printed.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '%s: %s\n' "$bench_name" "$*" >&2; }
die() { printf '%s: error: %s\n' "$bench_name" "$*" >&2; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
ratio() { awk -v n="$1" -v d="$2" 'BEGIN { if (d > 0) printf "%.0f", n / d; else print 0 }'; }

# url_decode STRING: %XX escapes of a URL's user or password.
url_decode() { local s=${1//+/ }; printf '%b' "${s//%/\\x}"; }

# parse_url URL PREFIX: sets PREFIX_user, PREFIX_password, PREFIX_host, PREFIX_port, PREFIX_db.
parse_url() {
  local url=$1 prefix=$2 rest creds hostport path
  rest=${url#*://}
  rest=${rest%%\?*}
  if [[ $rest == *@* ]]; then creds=${rest%@*}; rest=${rest##*@}; else creds=; fi
  hostport=${rest%%/*}
  path=${rest#"$hostport"}
  path=${path#/}
  printf -v "${prefix}_user" '%s' "$(url_decode "${creds%%:*}")"
  if [[ $creds == *:* ]]; then printf -v "${prefix}_password" '%s' "$(url_decode "${creds#*:}")"; else printf -v "${prefix}_password" '%s' ''; fi
  printf -v "${prefix}_host" '%s' "${hostport%:*}"
  if [[ $hostport == *:* ]]; then printf -v "${prefix}_port" '%s' "${hostport##*:}"; else printf -v "${prefix}_port" '%s' ''; fi
  printf -v "${prefix}_db" '%s' "$path"
}

# with_db URL DB: the URL with its database replaced (query parameters dropped).
with_db() {
  local url=${1%%\?*}
  local scheme=${url%%://*} rest=${url#*://}
  local authority=${rest%%/*}
  printf '%s://%s/%s' "$scheme" "$authority" "$2"
}

# load_env: PASSERELLE_SOURCE / PASSERELLE_TARGET from the environment or the local stack.
load_env() {
  if [ -z "${PASSERELLE_SOURCE:-}" ] || [ -z "${PASSERELLE_TARGET:-}" ]; then
    [ -x "$bench_root/stack/stack.sh" ] || die "PASSERELLE_SOURCE and PASSERELLE_TARGET are not set and stack/stack.sh is missing"
    eval "$("$bench_root/stack/stack.sh" env)"
  fi
}

# setup_clients SOURCE_DB TARGET_DB WORKDIR: psql through PG* variables, mariadb through an option file.
# Defines pg (psql on SOURCE_DB) and my (mariadb, no database selected), and exports
# PASSERELLE_SOURCE/PASSERELLE_TARGET pointing at the two databases.
setup_clients() {
  local source_db=$1 target_db=$2 work=$3
  parse_url "$PASSERELLE_SOURCE" src
  parse_url "$PASSERELLE_TARGET" tgt
  export PGHOST=$src_host PGPORT=${src_port:-5432} PGUSER=$src_user PGPASSWORD=$src_password
  export PGDATABASE=$source_db PGCLIENTENCODING=UTF8 PGCONNECT_TIMEOUT=10
  export PASSERELLE_SOURCE PASSERELLE_TARGET
  PASSERELLE_SOURCE=$(with_db "$PASSERELLE_SOURCE" "$source_db")
  PASSERELLE_TARGET=$(with_db "$PASSERELLE_TARGET" "$target_db")
  my_cnf=$work/client.cnf
  (
    umask 077
    printf '[client]\nuser=%s\npassword="%s"\nhost=%s\nport=%s\nprotocol=tcp\ndefault-character-set=utf8mb4\nconnect-timeout=10\n' \
      "$tgt_user" "${tgt_password//\"/\\\"}" "$tgt_host" "${tgt_port:-3306}" >"$my_cnf"
  )
}

pg() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
my() { mariadb --defaults-file="$my_cnf" "$@"; }

# check_names NAME...: database names this script will create or drop must be plain identifiers.
check_names() {
  local n
  for n in "$@"; do
    [[ $n =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "'$n' is not a plain database name (letters, digits, _)"
  done
}

# passerelle_bin: the release binary, built if missing.
passerelle_bin() {
  local target=${CARGO_TARGET_DIR:-$HOME/.cache/passerelle/target}
  local bin=$target/release/passerelle
  if [ ! -x "$bin" ]; then
    log "building passerelle (cargo build --release -p passerelle-cli)"
    (cd "$bench_root" && CARGO_TARGET_DIR=$target cargo build --release -q -p passerelle-cli) >&2 ||
      die "cargo build failed"
  fi
  printf '%s' "$bin"
}

# source_tables SCHEMA: "table rows bytes" per ordinary table, biggest first (exact counts).
source_tables() {
  local schema=$1 t
  pg -At -F ' ' -v schema="$schema" <<'EOF' | while read -r t bytes; do
select c.relname, pg_table_size(c.oid)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = :'schema' and c.relkind in ('r', 'p') and not c.relispartition
 order by pg_table_size(c.oid) desc, c.relname
EOF
    printf '%s %s %s\n' "$t" "$(pg -At -c "select count(*) from \"$schema\".\"$t\"")" "$bytes"
  done
}
