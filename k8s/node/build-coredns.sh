#!/usr/bin/env bash
# Build CoreDNS from the published github.com/coredns/coredns module (Go
# module proxy) into the cache that build-apiserver.sh uses, with only the
# plugins k8s/node's one-node cluster uses: kubernetes (the cluster.local
# zone from the API server), bind, errors, log, health, ready, cache and
# forward. A main of its own imports them, so that the other plugins and
# their dependencies (cloud DNS providers, etcd, ...) are not compiled.
#
#   COREDNS_VERSION  CoreDNS release (default v1.14.7)
#   WHORL_CACHE      cache root (default /var/cache/whorl, else $HOME/.cache/whorl)
#
# Prints the path of the coredns binary on its last line.
set -euo pipefail

COREDNS_VERSION=${COREDNS_VERSION:-v1.14.7}
if [ -z "${WHORL_CACHE:-}" ]; then
  if mkdir -p /var/cache/whorl 2>/dev/null && [ -w /var/cache/whorl ]; then
    WHORL_CACHE=/var/cache/whorl
  else
    WHORL_CACHE=$HOME/.cache/whorl
  fi
fi
out=$WHORL_CACHE/coredns-$COREDNS_VERSION
go=${GO:-go}

if [ -x "$out/bin/coredns" ]; then
  echo "$out/bin/coredns"
  exit 0
fi
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [ -x "$out/bin/coredns" ]; then
  echo "$out/bin/coredns"
  exit 0
fi

# Outside any module, so that nothing touches the caller's go.mod or go.sum.
dir=$(cd / && GOFLAGS=-mod=mod GOWORK=off "$go" mod download -json "github.com/coredns/coredns@$COREDNS_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "build-coredns: go mod download of github.com/coredns/coredns@$COREDNS_VERSION gave no Dir" >&2; exit 1; }

src=$out/src
rm -rf "$src"
cp -r "$dir" "$src"
chmod -R u+w "$src"
mkdir -p "$src/whorlcoredns"
cat >"$src/whorlcoredns/main.go" <<'GO'
// Command coredns is CoreDNS with the plugins of whorl's one-node cluster only.
package main

import (
	_ "github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() { coremain.Run() }
GO
cd "$src"
mkdir -p "$out/bin"
echo "build-coredns: building coredns $COREDNS_VERSION (a few minutes on 2 cores)" >&2
GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 "$go" build -trimpath \
  -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
  -o "$out/bin/coredns.tmp" ./whorlcoredns
mv "$out/bin/coredns.tmp" "$out/bin/coredns"
cd /
rm -rf "$src"
echo "$out/bin/coredns"
