#!/usr/bin/env bash
# Builds (or reuses) every Go tool the tests and `make up` need, into $SHORTS_TOOLS_CACHE keyed by tools/versions.env.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/build-control-plane.sh"
"$here/build-argo-rollouts.sh"
"$here/build-pulumi.sh"
"$here/fetch-crds.sh"
