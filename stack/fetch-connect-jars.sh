#!/usr/bin/env bash
# Resolves Kafka Connect and Debezium's PostgreSQL source and JDBC sink (bench/reference/pom.xml) from
# Maven Central into ~/.cache/passerelle/reference-libs (PASSERELLE_CACHE_DIR), once per pom version,
# and prints that directory: runtime/ is the worker's classpath, plugins/ its plugin.path.
# bench/reference.sh and the Debezium interoperability test (crates/kafka/tests/debezium.rs) use it.
#
# Needs mvn and a JDK 17; the first run downloads about 150 MB.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pom=$root/bench/reference/pom.xml
cache=${PASSERELLE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/passerelle}
libs=$cache/reference-libs
stamp=$(sha256sum "$pom" | cut -c1-16)

if [ ! -f "$libs/.stamp-$stamp" ]; then
  command -v mvn >/dev/null || { echo "fetch-connect-jars.sh: mvn is not installed" >&2; exit 1; }
  log=$(mktemp "${TMPDIR:-/tmp}/passerelle-fetch-jars.XXXXXX")
  echo "fetch-connect-jars.sh: resolving Kafka Connect and Debezium jars into $libs (log $log)" >&2
  rm -rf "$libs"
  mkdir -p "$libs"
  for profile in runtime:runtime pg-source:plugins/debezium-postgres jdbc-sink:plugins/debezium-jdbc; do
    timeout 900 mvn -q -B -f "$pom" -P "${profile%%:*}" dependency:copy-dependencies \
      -DoutputDirectory="$libs/${profile#*:}" -DincludeScope=runtime >>"$log" 2>&1 ||
      { echo "fetch-connect-jars.sh: maven could not resolve the ${profile%%:*} jars; see $log" >&2; exit 1; }
  done
  touch "$libs/.stamp-$stamp"
fi
echo "$libs"
