# Sourced by the tools/ scripts: pinned versions and the version-keyed build cache.
# shellcheck shell=bash
TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_DIR="$(dirname "$TOOLS_DIR")"
# shellcheck source=versions.env
source "$TOOLS_DIR/versions.env"
CACHE_ROOT="${SHORTS_TOOLS_CACHE:-$HOME/.cache/shorts-platform}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" GOFLAGS="${GOFLAGS:--buildvcs=false}"

# cache_dir NAME VERSION...: the directory holding NAME built at exactly these versions.
cache_dir() {
  local name=$1; shift
  local key; key=$(printf '%s\n' "$@" "$(go env GOVERSION 2>/dev/null)" | sha256sum | cut -c1-12)
  echo "$CACHE_ROOT/$name-$key"
}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
