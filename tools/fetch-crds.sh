#!/usr/bin/env bash
# Copies the CustomResourceDefinitions the Pulumi program uses, exactly as their projects publish them, from
# the projects' Go modules at the versions pinned in tools/versions.env:
#   Argo Rollouts        manifests/crds/*-crd.yaml
#   Traefik v3           docs/content/reference/dynamic-configuration/traefik.io_*.yaml
#   prometheus-operator  example/prometheus-operator-crd/monitoring.coreos.com_*.yaml
# into "$(cache_dir crds ...)/<project>/<file>.yaml" and prints that directory on stdout (progress on stderr).
# A second run reuses the directory. Everything comes through the Go module proxy.
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"

DEST="$(cache_dir crds "$ARGO_ROLLOUTS_VERSION" "$TRAEFIK_VERSION" "$PROMETHEUS_OPERATOR_VERSION")"
if [[ -f "$DEST/.complete" ]]; then
  log "CRDs: reusing $DEST"
  echo "$DEST"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
WORK="$(mktemp -d "$CACHE_ROOT/.crds.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# module_zip MODULE@VERSION: the path of the module's zip in the Go module cache, verified against the checksum
# database by `go mod download`. We read the zip rather than the extracted directory: a module whose go.mod
# asks for a newer Go than ours (argo-rollouts does) still downloads and verifies, but is not extracted.
# GOTOOLCHAIN=local: fetching YAML files must never pull in another Go toolchain.
module_zip() {
  local json
  json="$(cd "$WORK" && GOTOOLCHAIN=local go mod download -json "$1" 2>/dev/null || true)"
  python3 -c '
import json, sys
info = json.loads(sys.argv[1] or "{}")
if not info.get("Zip"):
    sys.exit("go mod download %s failed: %s" % (sys.argv[2], info.get("Error", "no output")))
print(info["Zip"])' "$json" "$1"
}

# extract ZIP PREFIX REGEX DIR: copies the zip's files under PREFIX whose base name matches REGEX into DIR.
extract() {
  python3 - "$@" <<'EOF'
import os, re, sys, zipfile
zip_path, prefix, pattern, dest = sys.argv[1:5]
os.makedirs(dest, exist_ok=True)
count = 0
with zipfile.ZipFile(zip_path) as z:
    for name in z.namelist():
        # zip entries are "<module>@<version>/<path>"; the module path itself contains slashes
        rel = name[name.index("@"):].split("/", 1)[1] if "@" in name else name
        if rel.startswith(prefix) and re.fullmatch(pattern, os.path.basename(rel)):
            with open(os.path.join(dest, os.path.basename(rel)), "wb") as f:
                f.write(z.read(name))
            count += 1
if count == 0:
    sys.exit(f"no file matching {pattern} under {prefix} in {zip_path}")
print(f"{count} CRD file(s) -> {dest}", file=sys.stderr)
EOF
}

log "CRDs: Argo Rollouts $ARGO_ROLLOUTS_VERSION"
zip="$(module_zip "github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION")"
extract "$zip" "manifests/crds/" '.*-crd\.yaml' "$WORK/out/argo-rollouts"

log "CRDs: Traefik $TRAEFIK_VERSION"
zip="$(module_zip "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")"
extract "$zip" "docs/content/reference/dynamic-configuration/" 'traefik\.io_.*\.yaml' "$WORK/out/traefik"

log "CRDs: prometheus-operator $PROMETHEUS_OPERATOR_VERSION"
zip="$(module_zip "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")"
extract "$zip" "example/prometheus-operator-crd/" 'monitoring\.coreos\.com_.*\.yaml' "$WORK/out/prometheus-operator"

touch "$WORK/out/.complete"
rm -rf "$DEST"
mv "$WORK/out" "$DEST"
log "CRDs in $DEST"
echo "$DEST"
