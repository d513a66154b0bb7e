#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager, kubectl and the test
# kubelet from the Go modules under test/cluster/go, unless a cached build of
# the same sources exists, and print the absolute path of the folder that
# contains them. Progress and errors go to stderr, so stdout is only that path.
#
# Cache: ${KNR_CACHE_DIR:-$HOME/.cache/kube-node-rename}/bin/<key>/, where the
# key contains the Kubernetes and etcd versions and a hash of every file that
# changes the binaries (Go sources, go.mod, go.sum, this script, the Go
# version). A changed tree builds into a new folder and an unchanged tree
# reuses its folder. Go's module and build caches stay in their default places.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
go_dir="$script_dir/go"
kubernetes_module="$go_dir/kubernetes"
etcd_module="$go_dir/etcd"
min_go_minor=26 # k8s.io/kubernetes v1.36 declares go 1.26.0

log() { printf 'build.sh: %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

if ! command -v go >/dev/null 2>&1; then
  fail "go not found in PATH; install Go 1.$min_go_minor or newer (https://go.dev/dl/) and run again"
fi
go_version=$(go env GOVERSION)
if [[ ! $go_version =~ ^go1\.([0-9]+) ]] || ((BASH_REMATCH[1] < min_go_minor)); then
  fail "Go $go_version is too old: Kubernetes v1.36 needs Go 1.$min_go_minor or newer; install it and run again"
fi

module_version() { # module folder, module path
  (cd "$1" && go list -m -f '{{.Version}}' "$2") ||
    fail "cannot read the version of $2 from $1/go.mod; run 'go mod tidy' in $1 and check its output"
}
kubernetes_version=$(module_version "$kubernetes_module" k8s.io/kubernetes)
etcd_version=$(module_version "$etcd_module" go.etcd.io/etcd/server/v3)
if [[ ! $kubernetes_version =~ ^v1\.([0-9]+)\. ]]; then
  fail "unexpected k8s.io/kubernetes version $kubernetes_version in $kubernetes_module/go.mod: expected v1.<minor>.<patch>"
fi
kubernetes_minor=${BASH_REMATCH[1]}

# The hash covers file names and contents, in a fixed order.
sources_hash=$(
  {
    printf '%s\n' "$go_version" "$kubernetes_version" "$etcd_version"
    cat "${BASH_SOURCE[0]}"
    cd "$go_dir"
    find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 |
      LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
)
key="kubernetes-$kubernetes_version-etcd-$etcd_version-$sources_hash"
cache_root="${KNR_CACHE_DIR:-$HOME/.cache/kube-node-rename}/bin"
out="$cache_root/$key"
binaries=(etcd kube-apiserver kube-controller-manager kubectl kubelet)

complete() {
  local binary
  for binary in "${binaries[@]}"; do
    [[ -x $1/$binary ]] || return 1
  done
}

if complete "$out"; then
  log "using cached binaries in $out"
  printf '%s\n' "$out"
  exit 0
fi

mkdir -p "$cache_root"
# Two test runs that start at once build only once: the second waits here.
exec {lock_fd}>"$cache_root/.build.lock"
if ! flock -n "$lock_fd"; then
  log "waiting for another build.sh to finish (lock $cache_root/.build.lock)"
  flock "$lock_fd"
fi
if complete "$out"; then
  log "using binaries that another build.sh just built in $out"
  printf '%s\n' "$out"
  exit 0
fi

staging="$out.partial"
rm -rf "$staging"
mkdir -p "$staging"

version_ldflags=""
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_ldflags+=" -X $package.gitVersion=$kubernetes_version"
  version_ldflags+=" -X $package.gitMajor=1 -X $package.gitMinor=$kubernetes_minor"
  version_ldflags+=" -X $package.gitTreeState=clean"
done

export CGO_ENABLED=0
started=$SECONDS

log "building etcd $etcd_version"
(cd "$etcd_module" && go build -trimpath -ldflags "-s -w" -o "$staging/etcd" .) ||
  fail "building etcd failed (see the Go errors above); fix $etcd_module and run again"

log "building Kubernetes $kubernetes_version: kube-apiserver, kube-controller-manager, kubectl, kubelet (a cold build takes tens of minutes)"
(
  cd "$kubernetes_module" &&
    go build -trimpath -ldflags "-s -w$version_ldflags" -o "$staging/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kubectl \
      ./cmd/kubelet
) || fail "building Kubernetes failed (see the Go errors above); fix $kubernetes_module and run again"

complete "$staging" || fail "the build finished but $staging lacks one of: ${binaries[*]}"
{
  printf 'kubernetes %s\netcd %s\n%s\nbuilt %s in %d s\n' \
    "$kubernetes_version" "$etcd_version" "$go_version" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$((SECONDS - started))"
} >"$staging/BUILD-INFO"
rm -rf "$out"
mv "$staging" "$out"
log "built in $((SECONDS - started)) s: $out"
printf '%s\n' "$out"
