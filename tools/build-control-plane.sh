#!/usr/bin/env bash
# Builds (or reuses) the Kubernetes control plane used by tests and `make up`, at the versions pinned in
# tools/versions.env: kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok.
# Everything comes through the Go module proxy; binaries land in "$(cache_dir controlplane ...)/bin".
# Prints that directory on stdout (progress goes to stderr).
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)
DEST="$(cache_dir controlplane "$KUBERNETES_VERSION" "$ETCD_VERSION" "$KWOK_VERSION")"

# complete DIR: every binary and the kwok stages are there.
complete() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$1/$b" ]] || return 1; done
  [[ -s "$1/kwok-stages.yaml" ]]
}

if complete "$DEST/bin"; then
  log "control plane: reusing cached build in $DEST/bin"
  echo "$DEST/bin"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
WORK="$(mktemp -d "$CACHE_ROOT/.controlplane-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
OUT="$WORK/bin"
mkdir -p "$OUT"
BUILD_FLAGS=(-trimpath)
total_start=$SECONDS

# timed LABEL CMD...: runs CMD and logs how long it took.
timed() {
  local label=$1; shift
  local start=$SECONDS
  log "building $label ..."
  "$@"
  log "built $label in $((SECONDS - start))s"
}

# module_json MODULE@VERSION: `go mod download -json` output (downloads the module's go.mod and zip).
module_json() { (cd "$WORK" && go mod download -json "$1"); }

# ---------------------------------------------------------------- Kubernetes
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging/src/...: `go build`
# refuses that outside its repository, so a throw-away wrapper module replaces each with its published version.
build_kubernetes() {
  local wrap="$WORK/k8s-wrapper" minor patch staging_version info gomod commit
  minor="$(cut -d. -f2 <<<"${KUBERNETES_VERSION#v}")"
  patch="$(cut -d. -f3 <<<"${KUBERNETES_VERSION#v}")"
  staging_version="v0.$minor.$patch"
  mkdir -p "$wrap"
  info="$(module_json "k8s.io/kubernetes@$KUBERNETES_VERSION")"
  gomod="$(jq -r .GoMod <<<"$info")"
  # The release commit, when the proxy recorded where the version came from.
  commit="$(jq -r '.Origin.Hash // empty' <<<"$info")"
  local goversion
  goversion="$(go mod edit -json "$gomod" | jq -r .Go)"
  {
    echo "module shorts.local/controlplane-kubernetes"
    echo
    echo "go $goversion"
    go mod edit -json "$gomod" | jq -r '(.Godebug // [])[] | "godebug \(.Key)=\(.Value)"'
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    # Local (staging) replaces become the published version; any other replace is kept as it is.
    go mod edit -json "$gomod" | jq -r --arg v "$staging_version" '
      (.Replace // [])[]
      | if (.New.Path | startswith("./") or startswith("../"))
        then "replace \(.Old.Path) => \(.Old.Path) \($v)"
        else "replace \(.Old.Path)\(if .Old.Version then " " + .Old.Version else "" end) => \(.New.Path) \(.New.Version)"
        end'
  } >"$wrap/go.mod"
  log "kubernetes wrapper: $(grep -c '^replace' "$wrap/go.mod") replaces, staging at $staging_version, commit ${commit:-unknown}"

  local pkg="k8s.io/kubernetes/cmd" ldflags date
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
    # The proxy does not always record the release commit; then gitCommit stays empty rather than invented.
    [[ -n "$commit" ]] && ldflags+=" -X $p.gitCommit=$commit"
  done
  timed "kubernetes module graph (go get)" \
    bash -c "cd '$wrap' && go get $pkg/kube-apiserver@$KUBERNETES_VERSION $pkg/kube-controller-manager@$KUBERNETES_VERSION $pkg/kube-scheduler@$KUBERNETES_VERSION"
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    timed "$b" bash -c "cd '$wrap' && go build ${BUILD_FLAGS[*]} -ldflags '$ldflags' -o '$OUT/$b' $pkg/$b"
  done
}

# ---------------------------------------------------------------- etcd
# The etcd server binary is the main package of go.etcd.io/etcd/server/v3, whose go.mod replaces its sibling
# modules with ../ paths; they are published at the same version, so the wrapper only needs to require them.
build_etcd() {
  local wrap="$WORK/etcd-wrapper" info gomod goversion
  mkdir -p "$wrap"
  info="$(module_json "go.etcd.io/etcd/server/v3@$ETCD_VERSION")"
  gomod="$(jq -r .GoMod <<<"$info")"
  goversion="$(go mod edit -json "$gomod" | jq -r .Go)"
  {
    echo "module shorts.local/controlplane-etcd"
    echo
    echo "go $goversion"
    echo
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    # Sibling modules (../api, ../client/v3, ...) at the same published version; its ./FORBIDDEN_DEPENDENCY
    # replaces only guard etcd's own repository and are left out.
    go mod edit -json "$gomod" | jq -r --arg v "$ETCD_VERSION" '
      (.Replace // [])[] | select(.New.Path | startswith("../"))
      | "replace \(.Old.Path) => \(.Old.Path) \($v)"'
  } >"$wrap/go.mod"
  timed "etcd module graph (go get)" bash -c "cd '$wrap' && go get go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  timed etcd bash -c "cd '$wrap' && go build ${BUILD_FLAGS[*]} -ldflags '-s -w' -o '$OUT/etcd' go.etcd.io/etcd/server/v3"
}

# ---------------------------------------------------------------- kwok
build_kwok() {
  timed kwok env GOBIN="$OUT" go install "${BUILD_FLAGS[@]}" \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # kwok does nothing without Stages. Its "fast" set (the one kwokctl uses by default) ships in the module:
  # nodes initialised and kept alive with Leases, pods made Ready at once (and Job pods completed).
  local dir stage
  dir="$(jq -r .Dir <<<"$(module_json "sigs.k8s.io/kwok@$KWOK_VERSION")")/kustomize/stage"
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"
    cat "$dir/$stage.yaml"
  done >"$OUT/kwok-stages.yaml"
}

log "control plane: building Kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION with $(go env GOVERSION)"
build_kubernetes
build_etcd
build_kwok
complete "$OUT" || { log "the build finished without every binary and kwok-stages.yaml in $OUT"; exit 1; }

# Publish atomically: a half-finished build never looks like a finished one.
mkdir -p "$DEST"
rm -rf "$DEST/bin.old"
[[ -d "$DEST/bin" ]] && mv "$DEST/bin" "$DEST/bin.old"
mv "$OUT" "$DEST/bin"
rm -rf "$DEST/bin.old"
log "control plane: built in $((SECONDS - total_start))s into $DEST/bin ($(du -sh "$DEST/bin" | cut -f1))"
echo "$DEST/bin"
