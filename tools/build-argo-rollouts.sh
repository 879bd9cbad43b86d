#!/usr/bin/env bash
# Builds (or reuses) the Argo Rollouts controller at ARGO_ROLLOUTS_VERSION, so that Rollouts in the local
# cluster really create ReplicaSets, step through their canary weights and report health (without it a
# Rollout is an inert object and `pulumi up` would wait for Services that never get endpoints).
# Prints the bin directory on stdout (progress goes to stderr).
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"

DEST="$(cache_dir argo-rollouts "$ARGO_ROLLOUTS_VERSION")"
if [[ -x "$DEST/bin/rollouts-controller" ]]; then
  log "argo rollouts: reusing cached build in $DEST/bin"
  echo "$DEST/bin"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
WORK="$(mktemp -d "$CACHE_ROOT/.argo-rollouts-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
start=$SECONDS
module="github.com/argoproj/argo-rollouts"
# The module asks for a newer Go than the machine's: GOTOOLCHAIN=auto fetches it through the module proxy.
info="$(cd "$WORK" && go mod download -json "$module@$ARGO_ROLLOUTS_VERSION")"
gomod="$(jq -r .GoMod <<<"$info")"
# `go build` refuses a main module's replaces only inside a dependency: repeat them (all point at published
# versions) in a throw-away wrapper module.
{
  echo "module shorts.local/argo-rollouts"
  echo
  echo "go $(go mod edit -json "$gomod" | jq -r .Go)"
  echo
  echo "require $module $ARGO_ROLLOUTS_VERSION"
  go mod edit -json "$gomod" | jq -r '(.Replace // [])[]
    | "replace \(.Old.Path)\(if .Old.Version then " " + .Old.Version else "" end) => \(.New.Path) \(.New.Version)"'
} >"$WORK/go.mod"
log "argo rollouts: resolving the module graph for $ARGO_ROLLOUTS_VERSION ..."
(cd "$WORK" && go get "$module/cmd/rollouts-controller@$ARGO_ROLLOUTS_VERSION")
log "argo rollouts: building rollouts-controller ..."
mkdir -p "$WORK/bin"
(cd "$WORK" && go build -trimpath \
  -ldflags "-s -w -X $module/utils/version.version=${ARGO_ROLLOUTS_VERSION#v}" \
  -o "$WORK/bin/rollouts-controller" "$module/cmd/rollouts-controller")
mkdir -p "$DEST"
rm -rf "$DEST/bin"
mv "$WORK/bin" "$DEST/bin"
log "argo rollouts: built in $((SECONDS - start))s into $DEST/bin"
echo "$DEST/bin"
