#!/usr/bin/env bash
# `make render`: the `render` stack (stacks/Pulumi.render.yaml, production's settings) written as one YAML file
# per resource by the real engine: `pulumi up` with the policy pack, pulumi-kubernetes' render-to-directory.
# No cluster and no kubeconfig are used; nothing is downloaded; state stays in the project's file backend.
# RENDER_STACK names another stack whose settings set renderDirectory.
set -euo pipefail
# shellcheck source=pulumi/common.sh
source "$(cd "$(dirname "$0")" && pwd)/pulumi/common.sh"

STACK="${RENDER_STACK:-render}"
stack_file="$PROJECT_DIR/stacks/Pulumi.$STACK.yaml"
rendered() { "$PY" "$TOOLS_DIR/pulumi/rendered.py" "$@"; }

[[ -f "$stack_file" ]] || fail "$stack_file does not exist" "use RENDER_STACK=render (stacks/Pulumi.render.yaml)"
[[ -x "$PY" ]] || fail "$PY is missing" "run \`make setup\`, then try again"
out="$(rendered directory "$stack_file" "$PROJECT_DIR")" || exit 2
# The engine only: rendering needs none of the cluster tools.
"$TOOLS_DIR/build-pulumi.sh"
require_engine
# An empty kubeconfig: the provider may not reach (or even read the kubeconfig of) any cluster while rendering.
export KUBECONFIG=/dev/null

select_stack
# The provider writes a file only when its resource is created or updated: when a file the state says was
# rendered is gone, start the stack afresh so that every file is written again (nothing else depends on it).
if ! pulumi stack export --stack "$STACK" | rendered missing "$out" >/dev/null; then
  log "some rendered files are gone from $out: rendering the stack afresh"
  pulumi stack rm --yes --force --preserve-config --stack "$STACK" --non-interactive >/dev/null
  rm -rf "$out/0-crd" "$out/1-manifest"
  select_stack
fi

log "pulumi up --stack $STACK --policy-pack policy (renders into $out)"
up_with_policy render
log "wrote $(rendered count "$out") manifests to $out in ${UP_SECONDS}s"
