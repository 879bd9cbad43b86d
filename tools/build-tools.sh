#!/usr/bin/env bash
# Builds (or reuses) every Go tool the tests and `make up` need, into $SHORTS_TOOLS_CACHE keyed by tools/versions.env.
# The three builds run side by side: each spends minutes waiting on module downloads and on single-threaded links,
# time in which the others keep both cores busy. Every line of progress is prefixed with the tool it is about.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
start=$SECONDS

# prefixed NAME CMD...: runs CMD, its stdout discarded (the bin dirs), its stderr prefixed with NAME.
prefixed() {
  local name=$1; shift
  "$@" 2> >(sed -u "s/^/[$name] /" >&2) >/dev/null
}

pids=() names=()
for tool in control-plane argo-rollouts pulumi; do
  prefixed "$tool" "$here/build-$tool.sh" &
  pids+=($!) names+=("$tool")
done
failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${names[$i]}")
done
if ((${#failed[@]})); then
  echo "build-tools.sh: failed to build: ${failed[*]} (its log lines above are prefixed with its name)" >&2
  exit 1
fi
prefixed crds "$here/fetch-crds.sh"
echo "[tools] ready in $((SECONDS - start)) s" >&2
