#!/usr/bin/env bash
# Start a real one-node Kubernetes on this machine, every part built here:
# Debian's etcd; kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet and kube-proxy built from the k8s.io/kubernetes module
# (../verify/build-apiserver.sh, K8S_COMMANDS); CoreDNS built from its
# module (build-coredns.sh) and run as a host process on the node's bridge
# address (the kubelet's clusterDNS); a containerd instance of its own
# (Debian's containerd and runc; CRI on, cgroupfs like the kubelet, CNI from
# Debian's containernetworking-plugins) beside Docker's; the sandbox image
# built from pause/ and the images named in WHORL_NODE_IMAGES imported from
# Docker (docker save | ctr import): nothing is pulled. Certificates are made
# here with openssl; RBAC, the Node authorizer, NodeRestriction and the
# ServiceAccount admission are on. The API server listens on the bridge's
# address only, which pods reach through the kubernetes Service (kube-proxy). A StorageClass (whorl-node) with local
# PersistentVolumes under the work dir serves volume claims.
#
# Waits for the node to be Ready and CoreDNS to answer, then prints the
# admin kubeconfig's path on its last line. Everything it started is
# stopped by down.sh, which it runs itself when it fails or is interrupted.
#
#   WHORL_NODE_DIR     work dir (default /tmp/whorl-node; env.sh)
#   WHORL_NODE_IMAGES  Docker images to import (default whorl:dev; each must exist)
#   WHORL_NODE_PVS     number of local PersistentVolumes (default 6, 1Gi each)
#   K8S_VERSION, WHORL_CACHE, COREDNS_VERSION: see the build scripts.
#
# Needs root, Docker, Go, curl and Debian's etcd-server, openssl, containerd,
# runc, containernetworking-plugins, iptables and iproute2.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=env.sh
. "$here/env.sh"
W=$node_dir
images=${WHORL_NODE_IMAGES:-whorl:dev}
npv=${WHORL_NODE_PVS:-6}

log() { echo "k8s-node: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (kubelet, containerd, network setup)"
for c in etcd openssl containerd containerd-shim-runc-v2 runc ctr iptables ip docker flock curl go; do
  command -v "$c" >/dev/null || die "$c not found (apt-get install etcd-server openssl containerd runc iptables iproute2 docker.io curl; Go)"
done
for p in bridge host-local loopback portmap; do
  [ -x "/usr/lib/cni/$p" ] || die "/usr/lib/cni/$p not found (apt-get install containernetworking-plugins)"
done
[ ! -e "$W" ] || die "$W exists: a node is up or was not cleaned up (run k8s/node/down.sh)"
! ip link show "$node_bridge" >/dev/null 2>&1 || die "interface $node_bridge exists (run k8s/node/down.sh)"

t0=$(date +%s)
# --- binaries and images (before anything runs: nothing to undo if they fail)
bin=$(K8S_COMMANDS="kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy" \
  "$repo/k8s/verify/build-apiserver.sh" | tail -n 1)
coredns=$("$here/build-coredns.sh" | tail -n 1)
for img in $images; do
  docker image inspect "$img" >/dev/null 2>&1 || die "Docker has no image $img (make image)"
done

mkdir -p "$W"
# From here on, any failure or interruption takes everything down again.
trap 'rc=$?; trap - EXIT INT TERM; if [ $rc -ne 0 ]; then log "up failed (exit $rc): stopping what started"; for f in "$W"/log/*.log; do [ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -n 15 "$f" >&2; }; done; "$here/down.sh" >&2 || true; fi; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$W"/{log,pids,pki,etcd,cni/net.d,cni/ipam,containerd,kubelet,pod-logs,pv,images}
echo "$bin" >"$W/bin"

# What down.sh must restore: the sysctls and the host paths that exist now.
for s in "${node_sysctls[@]}"; do
  v=$(sysctl -n "$s" 2>/dev/null) && printf '%s=%s\n' "$s" "$(echo $v)" >>"$W/sysctls"
done
for p in "${node_host_paths[@]}"; do
  [ -e "$p" ] || echo "$p" >>"$W/host-paths-created"
done

# run NAME CMD...: start a daemon in a session of its own, its pid in pids/NAME.
run() {
  local name=$1
  shift
  setsid "$@" >"$W/log/$name.log" 2>&1 </dev/null &
  echo $! >"$W/pids/$name"
  echo "$name" >>"$W/pids/order"
}
# alive NAME: fail if the daemon has exited.
alive() {
  kill -0 "$(cat "$W/pids/$1")" 2>/dev/null || die "$1 exited (log: $W/log/$1.log)"
}
# wait_for WHAT SECONDS DAEMONS... -- CMD...: poll CMD every second.
wait_for() {
  local what=$1 secs=$2 start=$SECONDS
  shift 2
  local daemons=()
  while [ "$1" != -- ]; do daemons+=("$1"); shift; done
  shift
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - start)) -lt "$secs" ] || die "$what: not ready after $secs s"
    for d in "${daemons[@]}"; do alive "$d"; done
    sleep 1
  done
  log "$what ready ($((SECONDS - start)) s)"
}
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
  done
}

# --- certificates: one CA signs every serving and client certificate
pki=$W/pki
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 7 \
  -subj "/CN=whorl-node-ca" 2>/dev/null
# issue NAME SUBJECT EXTKEYUSAGE [SAN]
issue() {
  local name=$1 subj=$2 eku=$3 san=${4:-}
  local ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$eku"
  [ -z "$san" ] || ext="$ext
subjectAltName=$san"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 7 -extfile <(echo "$ext") -out "$pki/$name.crt" 2>/dev/null
}
issue apiserver "/CN=kube-apiserver" serverAuth \
  "IP:127.0.0.1,IP:$service_ip,IP:$node_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$cluster_domain"
issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
issue kubelet "/CN=$node_name" serverAuth "IP:$node_ip,DNS:$node_name"
issue kubelet-client "/O=system:nodes/CN=system:node:$node_name" clientAuth
issue admin "/O=system:masters/CN=whorl-node-admin" clientAuth
issue controller-manager "/CN=system:kube-controller-manager" clientAuth
issue scheduler "/CN=system:kube-scheduler" clientAuth
issue kube-proxy "/CN=system:kube-proxy" clientAuth
issue coredns "/CN=whorl-node:coredns" clientAuth
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null

etcd_port=$(free_port)
etcd_peer=$(free_port)
api_port=$(free_port)
# kubeconfig NAME: a kubeconfig with NAME's client certificate.
kubeconfig() {
  cat >"$W/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: $node_name
  cluster:
    server: https://$node_ip:$api_port
    certificate-authority: $pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $pki/$1.crt
    client-key: $pki/$1.key
contexts:
- name: $node_name
  context: {cluster: $node_name, user: $1}
current-context: $node_name
KC
}
for n in admin kubelet-client controller-manager scheduler kube-proxy coredns; do kubeconfig $n; done
kubectl() { "$bin/kubectl" --kubeconfig "$W/admin.kubeconfig" "$@"; }

# --- network: the bridge with the gateway (node) address, forwarding to and
# from it past Docker's FORWARD policy (DROP), saved rules removed by down.sh
ip link add "$node_bridge" type bridge
ip addr add "$node_ip/${pod_cidr#*/}" dev "$node_bridge"
ip link set "$node_bridge" up
iptables -I FORWARD 1 -i "$node_bridge" -m comment --comment whorl-node -j ACCEPT
iptables -I FORWARD 1 -o "$node_bridge" -m comment --comment whorl-node -j ACCEPT
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
cat >"$W/cni/net.d/10-whorl.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "whorl-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$node_bridge",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$W/cni/ipam",
        "ranges": [[{"subnet": "$pod_cidr", "gateway": "$node_ip"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
# The pods' resolv.conf: CoreDNS only (the kubelet adds the search domains).
echo "nameserver $node_ip" >"$W/resolv.conf"

# --- etcd and the API server
run etcd etcd --name "$node_name" --data-dir "$W/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "$node_name=http://127.0.0.1:$etcd_peer"
run kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address "$node_ip" --advertise-address "$node_ip" --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NamespaceLifecycle,NodeRestriction,ServiceAccount,PodSecurity,LimitRanger,ResourceQuota,DefaultStorageClass \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-account-issuer "https://kubernetes.default.svc.$cluster_domain" \
  --service-cluster-ip-range "$service_cidr"
wait_for kube-apiserver 120 etcd kube-apiserver -- kubectl get --raw /readyz

# --- containerd: an instance of its own, CRI on, cgroupfs, the node's CNI
ctrd=$W/containerd
sock=$ctrd/containerd.sock
cat >"$ctrd/config.toml" <<TOML
version = 2
root = "$ctrd/root"
state = "$ctrd/state"
plugin_dir = ""
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$ctrd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/whorl-pause:dev"
  netns_mounts_under_state_dir = true
  # This machine gives root no CAP_SYS_RESOURCE: nothing may lower its
  # oom_score_adj below containerd's own (0), so the kubelet's negative
  # scores (the sandboxes' -998) are raised to it instead of failing runc.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
        Root = "$ctrd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/cni/net.d"
    max_conf_num = 1
TOML
run containerd containerd --config "$ctrd/config.toml"
ctr() { command ctr --address "$sock" -n k8s.io "$@"; }
wait_for containerd 60 containerd -- ctr version

# The sandbox image: the static pause binary FROM scratch; then the images to run.
mkdir -p "$W/images/pause"
CGO_ENABLED=0 GOWORK=off go -C "$repo" build -trimpath -ldflags "-s -w" -o "$W/images/pause/pause" ./k8s/node/pause
docker build -q -t whorl-pause:dev -f "$here/pause/Dockerfile" "$W/images/pause" >"$W/log/docker-build.log" 2>&1 ||
  die "docker build of the pause image failed (log: $W/log/docker-build.log)"
for img in whorl-pause:dev $images; do
  # unpacked into the overlayfs snapshotter: CRI creates containers from it
  docker save "$img" | ctr images import - >/dev/null
  log "imported $img into containerd ($(ctr images ls -q | grep -c .) images)"
done
docker image rm -f whorl-pause:dev >/dev/null 2>&1 || true

# --- kubelet
cat >"$W/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$sock
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: true
clusterDNS: [$node_ip]
clusterDomain: $cluster_domain
resolvConf: $W/resolv.conf
podLogsDir: $W/pod-logs
staticPodPath: ""
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  nodefs.inodesFree: 2%
  imagefs.available: 2%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
YAML
run kubelet "$bin/kubelet" --config "$W/kubelet.yaml" --kubeconfig "$W/kubelet-client.kubeconfig" \
  --root-dir "$W/kubelet" --hostname-override "$node_name" --node-ip "$node_ip" --v 1

# --- controller-manager, scheduler, kube-proxy
run kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$W/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$W/controller-manager.kubeconfig" --authorization-kubeconfig "$W/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --service-cluster-ip-range "$service_cidr" --cluster-cidr "$pod_cidr" --allocate-node-cidrs=false
run kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig "$W/scheduler.kubeconfig" \
  --authentication-kubeconfig "$W/scheduler.kubeconfig" --authorization-kubeconfig "$W/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false
cat >"$W/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $W/kube-proxy.kubeconfig
hostnameOverride: $node_name
mode: iptables
clusterCIDR: $pod_cidr
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$node_ip/32"]
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
YAML
run kube-proxy "$bin/kube-proxy" --config "$W/kube-proxy.yaml"

# --- CoreDNS: the cluster.local zone from the API server, on the node address
kubectl apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: whorl-node:coredns
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: whorl-node:coredns
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: whorl-node:coredns}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: whorl-node:coredns}
YAML
dns_health=$(free_port)
dns_ready=$(free_port)
cat >"$W/Corefile" <<COREFILE
.:53 {
    bind $node_ip
    errors
    health 127.0.0.1:$dns_health
    ready 127.0.0.1:$dns_ready
    kubernetes $cluster_domain in-addr.arpa ip6.arpa {
        kubeconfig $W/coredns.kubeconfig $node_name
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
}
COREFILE
run coredns "$coredns" -conf "$W/Corefile"

# --- storage: a default StorageClass without a provisioner and local
# PersistentVolumes on this node, one directory each under the work dir
{
  cat <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $storage_class
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
YAML
  for i in $(seq 1 "$npv"); do
    mkdir -p "$W/pv/pv$i"
    cat <<YAML
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $node_name-pv$i
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: $storage_class
  local: {path: $W/pv/pv$i}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: kubernetes.io/hostname, operator: In, values: [$node_name]}
YAML
  done
} | kubectl apply -f - >/dev/null

all=(etcd kube-apiserver containerd kubelet kube-controller-manager kube-scheduler kube-proxy coredns)
wait_for "node $node_name" 180 "${all[@]}" -- kubectl wait --for=condition=Ready "node/$node_name" --timeout=1s
wait_for coredns 60 "${all[@]}" -- curl -fsS "http://127.0.0.1:$dns_ready/ready"
# The default ServiceAccount exists once the controller-manager runs: pods need it.
wait_for "serviceaccount default" 60 "${all[@]}" -- kubectl -n default get serviceaccount default

cp "$W/admin.kubeconfig" "$W/kubeconfig"
trap - EXIT INT TERM
log "node $node_name Ready after $(($(date +%s) - t0)) s; kubectl: $bin/kubectl; down: $here/down.sh"
echo "$W/kubeconfig"
