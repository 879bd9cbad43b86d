#!/usr/bin/env bash
# `make down`: destroys the stack (default `local`), then stops the local cluster if `make up` started it.
set -euo pipefail
# shellcheck source=pulumi/common.sh
source "$(cd "$(dirname "$0")" && pwd)/pulumi/common.sh"

require_engine

if [[ -f "$STARTED_MARKER" ]]; then
  eval "$("$TOOLS_DIR/cluster" env)"
  export KUBECONFIG
fi

cd "$PROJECT_DIR"
if ! pulumi stack ls --json 2>/dev/null | "$PY" -c \
  'import json, sys; sys.exit(0 if any(s["name"] == sys.argv[1] for s in json.load(sys.stdin)) else 1)' "$STACK"; then
  log "stack $STACK does not exist in $PULUMI_BACKEND_URL: nothing to destroy"
elif cluster_reachable; then
  log "pulumi destroy --stack $STACK"
  pulumi destroy --yes --stack "$STACK" --non-interactive ||
    fail "pulumi destroy of stack $STACK failed (see the messages above)" \
      "fix the cause and run \`make down\` again; the cluster is left running so that nothing is orphaned"
else
  fail "the cluster of stack $STACK does not answer (KUBECONFIG=${KUBECONFIG:-unset}), so its objects cannot be deleted" \
    "start it again (\`tools/cluster up\` for the local one) and run \`make down\` again"
fi

if [[ -f "$STARTED_MARKER" ]]; then
  log "stopping the local cluster that \`make up\` started (tools/cluster down)"
  "$TOOLS_DIR/cluster" down || fail "tools/cluster down failed" "see \`tools/cluster status\` and ${SHORTS_CLUSTER_DIR:-.state/cluster}/logs/"
  rm -f "$STARTED_MARKER"
fi
log "done"
