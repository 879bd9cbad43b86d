# Sourced by tools/up.sh, tools/down.sh and tools/render.sh: the engine, the cluster and the stack they share.
# shellcheck shell=bash
# shellcheck source=../lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"
# shellcheck source=paths.sh
source "$TOOLS_DIR/pulumi/paths.sh"

STACK="${STACK:-local}"
PY="${SHORTS_PYTHON:-$PROJECT_DIR/.venv/bin/python}"
# Present while the local cluster runs because up.sh started it: down.sh stops only a cluster it owns.
STARTED_MARKER="$PROJECT_DIR/.state/cluster-started-by-up"

fail() {
  # fail WHAT NEXT: what went wrong and what to do about it, then stop.
  log "error: $1"
  log "next: $2"
  exit 1
}

require_engine() {
  [[ -x "$(pulumi_bin_dir)/pulumi" ]] ||
    fail "the Pulumi engine is not built ($(pulumi_bin_dir) is missing)" \
      "run \`make tools\` (or tools/build-pulumi.sh), then try again"
  [[ -x "$PY" ]] || fail "$PY is missing" "run \`make setup\`, then try again"
  pulumi_offline_env
}

# cluster_reachable: the API server of $KUBECONFIG answers /version within a few seconds.
cluster_reachable() {
  [[ -n "${KUBECONFIG:-}" && -r "${KUBECONFIG%%:*}" ]] || return 1
  timeout 20 "$PY" - <<'EOF' >/dev/null 2>&1
from kubernetes import client, config
config.load_kube_config()
client.VersionApi().get_code(_request_timeout=5)
EOF
}

# select_stack: the stack in the project's file backend, created on first use.
select_stack() {
  cd "$PROJECT_DIR"
  pulumi stack select --create "$STACK" --non-interactive >/dev/null ||
    fail "could not select or create stack $STACK in $PULUMI_BACKEND_URL" \
      "check that Pulumi.yaml exists in $PROJECT_DIR and that $PULUMI_BACKEND_URL is writable"
}

# up_with_policy TARGET [MORE]: `pulumi up --yes` of $STACK with the project's policy pack. On failure it says how
# to fix it and to run `make TARGET` again (MORE is added to that advice); on success UP_SECONDS holds its time.
up_with_policy() {
  local start=$SECONDS
  pulumi up --yes --stack "$STACK" --policy-pack "$PROJECT_DIR/policy" --non-interactive ||
    fail "pulumi up of stack $STACK failed (see the messages above)" \
      "fix what they name (a policy violation names its rule; a setting error names the \`pulumi config set\` that fixes it), then run \`make $1\` again${2:+; $2}"
  UP_SECONDS=$((SECONDS - start))
}
