#!/usr/bin/env bash
# Build kube-apiserver and kubectl from the published k8s.io/kubernetes module
# (Go module proxy) into a cache directory that CI reuses on the same machine.
#
#   K8S_VERSION   Kubernetes release (default v1.34.4)
#   WHORL_CACHE   cache root (default /var/cache/whorl, else $HOME/.cache/whorl)
#   K8S_COMMANDS  the commands of k8s.io/kubernetes/cmd to build (default
#                 "kube-apiserver kubectl"; k8s/node/up.sh adds kubelet,
#                 kube-controller-manager, kube-scheduler and kube-proxy).
#                 Those missing from the cache are compiled by one go build
#                 run, sharing its compile work; those present are kept.
#
# Prints the directory that holds the binaries on its last line.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.4}
STAGING_VERSION=${STAGING_VERSION:-v0${K8S_VERSION#v1}}
if [ -z "${WHORL_CACHE:-}" ]; then
  if mkdir -p /var/cache/whorl 2>/dev/null && [ -w /var/cache/whorl ]; then
    WHORL_CACHE=/var/cache/whorl
  else
    WHORL_CACHE=$HOME/.cache/whorl
  fi
fi
out=$WHORL_CACHE/kubernetes-$K8S_VERSION
go=${GO:-go}
read -r -a commands <<<"${K8S_COMMANDS:-kube-apiserver kubectl}"

# missing lists the commands not yet in the cache.
missing() {
  local c
  for c in "${commands[@]}"; do
    [ -x "$out/bin/$c" ] || echo "$c"
  done
}

if [ -z "$(missing)" ]; then
  echo "$out/bin"
  exit 0
fi

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
build=$(missing)
if [ -z "$build" ]; then
  echo "$out/bin"
  exit 0
fi

# Outside any module, so that nothing touches the caller's go.mod or go.sum.
dir=$(cd / && GOFLAGS=-mod=mod GOWORK=off "$go" mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "build-apiserver: go mod download of k8s.io/kubernetes@$K8S_VERSION gave no Dir" >&2; exit 1; }

src=$out/src
rm -rf "$src"
cp -r "$dir" "$src"
chmod -R u+w "$src"
rm -rf "$src/vendor" "$src/go.work" "$src/go.work.sum"
cd "$src"
# Every ./staging/src/k8s.io/X replace becomes a require of the published module.
for m in $(sed -n 's/^[[:space:]]*\(k8s\.io\/[A-Za-z0-9._-]*\) => \.\/staging\/.*/\1/p' go.mod); do
  GOWORK=off "$go" mod edit -dropreplace="$m" -require="$m@$STAGING_VERSION"
done
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
mkdir -p "$out/bin"
pkgs=()
for cmd in $build; do pkgs+=("./cmd/$cmd"); done
echo "build-apiserver: building $(echo $build) $K8S_VERSION (several minutes on 2 cores)" >&2
# One go build of every missing command: -o names a directory, one binary each.
rm -rf "$out/bin/.new"
mkdir -p "$out/bin/.new"
GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 "$go" build -trimpath -ldflags "$ldflags" -o "$out/bin/.new/" "${pkgs[@]}"
for cmd in $build; do
  mv "$out/bin/.new/$cmd" "$out/bin/$cmd"
done
rmdir "$out/bin/.new"
cd /
rm -rf "$src"
echo "$out/bin"
