# Sourced by the scripts in this folder: the build prerequisites, a Cargo target directory outside
# the clone (so a fresh clone builds incrementally), and the running stack's addresses.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PASSERELLE_CACHE_DIR=${PASSERELLE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/passerelle}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PASSERELLE_CACHE_DIR/target}
mkdir -p "$PASSERELLE_CACHE_DIR"

# What the Rust build links against: librdkafka is built from source (bundled) with OpenSSL and zlib.
install_build_prerequisites() {
  command -v cargo >/dev/null || { echo "error: cargo is missing; install Rust (rustup) first" >&2; exit 1; }
  local missing=()
  for package in build-essential pkg-config libssl-dev zlib1g-dev; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || { echo "error: missing packages ${missing[*]}: apt-get install them" >&2; exit 1; }
  echo "installing ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

stack_up() {
  "$root/stack/stack.sh" up
  eval "$("$root/stack/stack.sh" env)"
}
