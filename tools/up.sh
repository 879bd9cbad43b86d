#!/usr/bin/env bash
# `make up`, the main job: `pulumi up` of the stack (default `local`) with the policy pack, offline.
# Uses the cluster of $KUBECONFIG when it answers; otherwise starts the local control plane (tools/cluster).
# State lives in the project's file backend (.state/pulumi); nothing is downloaded and no cloud account is used.
set -euo pipefail
# shellcheck source=pulumi/common.sh
source "$(cd "$(dirname "$0")" && pwd)/pulumi/common.sh"

require_engine

if cluster_reachable; then
  log "using the cluster of KUBECONFIG=$KUBECONFIG"
else
  [[ -n "${KUBECONFIG:-}" ]] && log "KUBECONFIG=$KUBECONFIG does not answer: starting the local cluster instead"
  log "starting the local cluster (tools/cluster up)"
  already_running=false
  "$TOOLS_DIR/cluster" status >/dev/null 2>&1 && already_running=true
  "$TOOLS_DIR/cluster" up ||
    fail "the local cluster did not start" \
      "read the logs under ${SHORTS_CLUSTER_DIR:-.state/cluster}/logs/, run \`tools/cluster down\`, then \`make up\` again"
  eval "$("$TOOLS_DIR/cluster" env)"
  export KUBECONFIG
  # Remember that this cluster is ours to stop, unless it already ran before us.
  $already_running || { mkdir -p "$(dirname "$STARTED_MARKER")" && touch "$STARTED_MARKER"; }
  cluster_reachable || fail "the local cluster started but its API does not answer" \
    "see \`tools/cluster status\` and ${SHORTS_CLUSTER_DIR:-.state/cluster}/logs/kube-apiserver.log"
fi

select_stack
log "pulumi up --stack $STACK --policy-pack policy (backend $PULUMI_BACKEND_URL)"
up_with_policy up "\`make down\` removes what was created"
log "pulumi up finished in ${UP_SECONDS}s"

echo
echo "== stack outputs ($STACK)"
pulumi stack output --stack "$STACK"
echo
echo "== what now runs"
pulumi stack export --stack "$STACK" | "$PY" "$TOOLS_DIR/pulumi/summary.py"
echo
log "done: \`make down\` destroys the stack$([[ -f "$STARTED_MARKER" ]] && echo " and stops the local cluster")"
