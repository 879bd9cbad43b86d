#!/usr/bin/env bash
# Builds (or reuses) the Pulumi engine from the Go module proxy, at the versions in tools/versions.env:
#   pulumi                        the CLI (github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
#   pulumi-language-python        the Python language host (tools/pulumi/language-python, see its main.go for why)
#   pulumi-language-python-exec   the script the host runs programs with (shipped in the sdk/v3 module)
#   pulumi-resource-kubernetes    the Kubernetes provider, its embedded schema generated as its own build does
# into "$(tools/build-pulumi.sh --bin-dir)". A build writes into a temp dir renamed into place at the end, so an
# interrupted build is never mistaken for a finished one. Usage: build-pulumi.sh [--bin-dir]
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=pulumi/paths.sh
source "$TOOLS_DIR/pulumi/paths.sh"

dest_bin="$(pulumi_bin_dir)"
if [[ "${1:-}" == "--bin-dir" ]]; then
  echo "$dest_bin"
  exit 0
fi
if [[ -x "$dest_bin/pulumi" ]]; then
  log "pulumi engine: reusing $dest_bin"
  exit 0
fi

command -v go >/dev/null || { echo "build-pulumi.sh: Go is not installed (see tools/install-system-deps.sh)" >&2; exit 1; }
mkdir -p "$CACHE_ROOT"
work="$(mktemp -d "$CACHE_ROOT/.pulumi-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
out="$work/bin"
mkdir -p "$out"
# -mod=mod: the wrapper modules below start without go.sum entries; the proxy's checksum database still verifies
# every download.
export GOFLAGS="$GOFLAGS -mod=mod"
timings="$work/build-times.txt"

# module_dir MODULE@VERSION: where the Go module cache holds that module (downloading it if needed).
module_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# timed NAME COMMAND...: runs COMMAND and records its duration, so the report numbers come from real builds.
timed() {
  local name=$1 start; shift
  start=$(date +%s)
  log "building $name"
  "$@"
  echo "$name $(( $(date +%s) - start ))s" | tee -a "$timings" >&2
}

build_cli() {
  local pkg_dir; pkg_dir="$(module_dir "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION")"
  mkdir -p "$work/cli"
  # `go install` refuses a module with replace directives: a wrapper module repeats pkg/v3's replaces that point
  # at published modules (its `sdk/v3 => ../sdk` is covered by requiring the same release).
  {
    echo "module shorts.local/pulumi-cli"
    echo
    grep -m1 '^go ' "$pkg_dir/go.mod"
    echo
    echo "require github.com/pulumi/pulumi/pkg/v3 $PULUMI_VERSION"
    echo
    grep '^replace ' "$pkg_dir/go.mod" | grep -v '=> \.' || true
  } >"$work/cli/go.mod"
  (cd "$work/cli" && go build -tags osusergo,grpcnotrace \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    -o "$out/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
}

build_language_host() {
  cp -r "$TOOLS_DIR/pulumi/language-python" "$work/lang"
  (cd "$work/lang" && go mod edit -require="github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" &&
    go build -ldflags "-s -w -X main.version=${PULUMI_VERSION#v}" -o "$out/pulumi-language-python" .)
  local sdk_dir; sdk_dir="$(module_dir "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION")"
  install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$out/pulumi-language-python-exec"
}

build_kubernetes_provider() {
  local src; src="$(module_dir "github.com/pulumi/pulumi-kubernetes/provider/v4@$PULUMI_KUBERNETES_PROVIDER_MODULE")"
  # The module cache is read-only and the provider's go.mod replaces sdk/v4 with a sibling directory that is not
  # part of the module: build a writable copy that takes sdk/v4 from the proxy instead.
  cp -r "$src" "$work/provider"
  chmod -R u+w "$work/provider"
  sed -i '/^replace github.com\/pulumi\/pulumi-kubernetes\/sdk\/v4 => /d' "$work/provider/go.mod"
  # The pinned commit's delete await dereferences the nil result kstatus returns for an object whose status it
  # cannot read, which every Argo Rollout is (status.observedGeneration is a string in its CRD): a nil-pointer
  # panic that crashed `pulumi destroy` about every other run. The patch (its header says more) fixes that and
  # adds a regression test, run here so that a build never ships the patch untested.
  patch -s -p1 -d "$work/provider" <"$TOOLS_DIR/pulumi/provider-deleted-await.patch"
  (cd "$work/provider" && go test -vet=off -count=1 -run 'TestDeleted' ./pkg/await/condition/)
  # schema-embed.json and terraform-mapping-embed.json are generated (gitignored upstream), as `make provider` does.
  (cd "$work/provider/cmd/pulumi-resource-kubernetes" && VERSION="${PULUMI_KUBERNETES_VERSION#v}" go generate ./...)
  (cd "$work/provider" && go build \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=${PULUMI_KUBERNETES_VERSION#v}" \
    -o "$out/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes)
}

total_start=$(date +%s)
timed "pulumi (CLI $PULUMI_VERSION)" build_cli
timed "pulumi-language-python (sdk/v3 $PULUMI_VERSION)" build_language_host
timed "pulumi-resource-kubernetes ($PULUMI_KUBERNETES_VERSION, module $PULUMI_KUBERNETES_PROVIDER_MODULE)" \
  build_kubernetes_provider
echo "total $(( $(date +%s) - total_start ))s" >>"$timings"

"$out/pulumi" version >/dev/null
mkdir -p "$(dirname "$dest_bin")"
mv "$timings" "$(dirname "$dest_bin")/build-times.txt"
mv "$out" "$dest_bin"
log "pulumi engine ready in $dest_bin ($(( $(date +%s) - total_start ))s)"
