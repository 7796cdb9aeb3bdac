#!/usr/bin/env bash
# Build SeaweedFS's weed (an Apache-2.0 S3-compatible server) from the Go
# module proxy into a cache directory that later runs on the same machine reuse.
# The tests of packed datasets over s3:// start it (internal/s3test).
#
#   SEAWEEDFS_VERSION  module version (default: the one below, from the proxy)
#   WHORL_CACHE        cache root (default /var/cache/whorl, else $HOME/.cache/whorl)
#
# Prints the path of the weed binary on its last line.
set -euo pipefail

SEAWEEDFS_VERSION=${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}
if [ -z "${WHORL_CACHE:-}" ]; then
  if mkdir -p /var/cache/whorl 2>/dev/null && [ -w /var/cache/whorl ]; then
    WHORL_CACHE=/var/cache/whorl
  else
    WHORL_CACHE=$HOME/.cache/whorl
  fi
fi
out=$WHORL_CACHE/seaweedfs-$SEAWEEDFS_VERSION
go=${GO:-go}

if [ -x "$out/bin/weed" ]; then
  echo "$out/bin/weed"
  exit 0
fi
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [ -x "$out/bin/weed" ]; then
  echo "$out/bin/weed"
  exit 0
fi

# Outside any module, so that nothing touches the caller's go.mod or go.sum.
dir=$(cd / && GOFLAGS=-mod=mod GOWORK=off "$go" mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "build-seaweedfs: go mod download of github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION gave no Dir" >&2; exit 1; }

# Its go.mod has a replace directive, so `go install pkg@version` refuses it:
# build a copy as the main module instead.
src=$out/src
rm -rf "$src"
cp -r "$dir" "$src"
chmod -R u+w "$src"
cd "$src"
mkdir -p "$out/bin"
echo "build-seaweedfs: building weed $SEAWEEDFS_VERSION (several minutes on 2 cores)" >&2
GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 "$go" build -trimpath -ldflags "-s -w" -o "$out/bin/weed.tmp" ./weed
mv "$out/bin/weed.tmp" "$out/bin/weed"
cd /
rm -rf "$src"
echo "$out/bin/weed"
