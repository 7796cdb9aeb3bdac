#!/usr/bin/env bash
# Server-side dry-run of every overlay against a real kube-apiserver.
#
# Builds (or reuses from the cache) kube-apiserver and kubectl from the
# k8s.io/kubernetes module (build-apiserver.sh), starts Debian's etcd and the
# apiserver on 127.0.0.1 only (token auth, RBAC, service-account keys,
# PodSecurity admission), creates the namespace of the manifests and runs
# `kubectl apply --dry-run=server --validate=strict` on each overlay. Fails on
# any error and on any warning (for example a PodSecurity violation).
# Everything started here is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
k8s=$(dirname "$here")
bin=$("$here/build-apiserver.sh" | tail -n 1)
kubectl=$bin/kubectl
command -v etcd >/dev/null || { echo "k8s-verify: etcd not found (apt-get install etcd-server)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "k8s-verify: openssl not found" >&2; exit 1; }

work=$(mktemp -d /tmp/whorl-k8s-verify.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    echo "--- kube-apiserver log (tail)" >&2; tail -n 30 "$work/apiserver.log" >&2 || true
    echo "--- etcd log (tail)" >&2; tail -n 10 "$work/etcd.log" >&2 || true
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

# free_port prints a loopback TCP port nobody listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
  done
}

etcd_port=$(free_port)
etcd_peer=$(free_port)
api_port=$(free_port)
etcd --name verify --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "verify=http://127.0.0.1:$etcd_peer" >"$work/etcd.log" 2>&1 &
pids+=($!)

openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
openssl rsa -in "$work/sa.key" -pubout -out "$work/sa.pub" 2>/dev/null
token=$(openssl rand -hex 16)
echo "$token,whorl-verify,whorl-verify,system:masters" >"$work/tokens.csv"

"$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --cert-dir "$work/certs" \
  --token-auth-file "$work/tokens.csv" \
  --authorization-mode Node,RBAC \
  --service-account-key-file "$work/sa.pub" \
  --service-account-signing-key-file "$work/sa.key" \
  --service-account-issuer https://kubernetes.default.svc \
  --service-cluster-ip-range 10.96.0.0/24 \
  --endpoint-reconciler-type none \
  --enable-admission-plugins NamespaceLifecycle,ServiceAccount,PodSecurity,LimitRanger,ResourceQuota \
  >"$work/apiserver.log" 2>&1 &
pids+=($!)

cat >"$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: verify
  cluster:
    server: https://127.0.0.1:$api_port
    insecure-skip-tls-verify: true
users:
- name: verify
  user:
    token: $token
contexts:
- name: verify
  context: {cluster: verify, user: verify}
current-context: verify
KC
export KUBECONFIG=$work/kubeconfig

start=$(date +%s)
until "$kubectl" get --raw /readyz >/dev/null 2>&1; do
  if [ $(($(date +%s) - start)) -gt 120 ]; then
    echo "k8s-verify: kube-apiserver not ready after 120 s" >&2
    exit 1
  fi
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "k8s-verify: etcd or kube-apiserver exited" >&2; exit 1; }; done
  sleep 1
done
echo "k8s-verify: kube-apiserver $("$kubectl" version -o json | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p' | tail -n 1) ready on 127.0.0.1:$api_port after $(($(date +%s) - start)) s"

status=0
for overlay in "${K8S_OVERLAYS:-$k8s/overlays}"/*/; do
  name=$(basename "$overlay")
  "$kubectl" kustomize "$overlay" >"$work/$name.yaml"
  # The objects are namespaced: the namespace must exist for a dry-run.
  for ns in $(sed -n 's/^  namespace: //p' "$work/$name.yaml" | sort -u); do
    "$kubectl" get namespace "$ns" >/dev/null 2>&1 || "$kubectl" create namespace "$ns" --save-config >/dev/null
  done
  if ! "$kubectl" apply --dry-run=server --validate=strict -f "$work/$name.yaml" >"$work/$name.out" 2>"$work/$name.err"; then
    echo "k8s-verify: overlay $name: FAILED" >&2
    cat "$work/$name.out" "$work/$name.err" >&2
    status=1
    continue
  fi
  if grep -qi 'warning' "$work/$name.err"; then
    echo "k8s-verify: overlay $name: warnings are errors here:" >&2
    cat "$work/$name.err" >&2
    status=1
    continue
  fi
  echo "k8s-verify: overlay $name: $(wc -l <"$work/$name.out") objects accepted (server dry-run)"
  sed 's/^/  /' "$work/$name.out"
done
exit $status
