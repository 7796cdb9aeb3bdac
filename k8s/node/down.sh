#!/usr/bin/env bash
# Stop the one-node Kubernetes of up.sh and leave the machine as up.sh found
# it: the daemons it started (by the pids it recorded, newest first), the
# pods' containers and their containerd shims, the mounts under the work
# dir (volumes, overlay roots, network namespaces), the pods' cgroups, the
# iptables rules and chains of the kubelet, kube-proxy and the CNI plugins,
# the bridge, the saved sysctls, the host paths the kubelet and containerd
# created, and the work dir. Docker's containers, rules and network are not
# touched. Safe to run twice, on a node half up, or with nothing up.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
. "$here/env.sh"
W=$node_dir

log() { echo "k8s-node: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "down needs root"; exit 1; }
if [ ! -d "$W" ] && ! ip link show "$node_bridge" >/dev/null 2>&1; then
  log "no node at $W"
  exit 0
fi
t0=$(date +%s)
sock=$W/containerd/containerd.sock

# stop NAME: SIGTERM the daemon NAME, SIGKILL after 15 s.
stop() {
  local f=$W/pids/$1 pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
  for i in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null && log "$1 killed (did not stop on SIGTERM)"
  rm -f "$f"
}

# 1. The control loops first, so that nothing restarts what goes next.
for d in coredns kube-proxy kube-scheduler kube-controller-manager kubelet; do stop $d; done

# 2. The pods' containers: through containerd while it runs; then whatever
# is left in the pods' cgroups (shims included) is killed.
if [ -S "$sock" ] && [ -f "$W/pids/containerd" ]; then
  c() { timeout 30 ctr --address "$sock" -n k8s.io "$@"; }
  for t in $(c tasks ls -q 2>/dev/null); do c tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  sleep 1
  for t in $(c tasks ls -q 2>/dev/null); do c tasks delete -f "$t" >/dev/null 2>&1; done
  for k in $(c containers ls -q 2>/dev/null); do c containers delete "$k" >/dev/null 2>&1; done
fi
stop containerd
# Shims of this containerd (their command line names its socket) outlive it.
for p in $(pgrep -f -- "-address $sock" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
for ctl in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$ctl" ] || continue
  find "$ctl" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | while read -r p; do kill -9 "$p" 2>/dev/null; done
done
stop kube-apiserver
stop etcd

# 3. Mounts under the work dir, deepest first (volumes, overlay roots, shm,
# network namespaces); lazily when busy.
for i in 1 2 3; do
  mapfile -t mnts < <(awk -v w="$W/" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r)
  [ ${#mnts[@]} -gt 0 ] || break
  for m in "${mnts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done

# 4. cgroups the kubelet and runc made (empty now), deepest first.
for ctl in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$ctl" ] && find "$ctl" -depth -type d -exec rmdir {} \; 2>/dev/null
done

# 5. iptables: the rules up.sh added, then every KUBE-* and CNI-* chain (the
# kubelet's, kube-proxy's and the bridge plugin's masquerade chains) with the
# rules that jump to them; Docker's chains and rules stay.
for ipt in iptables ip6tables; do
  command -v $ipt >/dev/null || continue
  for table in filter nat mangle; do
    $ipt -t $table -S 2>/dev/null | grep -E -- '^-A .*(-j (KUBE|CNI)-|--comment "?whorl-node)' | grep -Ev '^-A (KUBE|CNI)-' |
      while read -r rule; do eval "$ipt -t $table -D ${rule#-A }" 2>/dev/null; done
    chains=$($ipt -t $table -S 2>/dev/null | sed -n 's/^-N \(\(KUBE\|CNI\)-[^ ]*\)$/\1/p')
    for ch in $chains; do $ipt -t $table -F "$ch" 2>/dev/null; done
    for ch in $chains; do $ipt -t $table -X "$ch" 2>/dev/null; done
  done
done
if command -v nft >/dev/null; then
  # kube-proxy's nftables tables, in case it ran in that mode
  for t in "ip kube-proxy" "ip6 kube-proxy"; do nft delete table $t 2>/dev/null; done
fi

# 6. The bridge (veths went with the network namespaces) and the sysctls.
ip link show "$node_bridge" >/dev/null 2>&1 && ip link delete "$node_bridge"
if [ -f "$W/sysctls" ]; then
  while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null; done <"$W/sysctls"
fi

# 7. Host paths the kubelet or containerd created; containerd's shim socket
# dir only if empty (Docker's containerd shares /run/containerd/s).
if [ -f "$W/host-paths-created" ]; then
  while IFS= read -r p; do
    case $p in
      /run/containerd) rmdir /run/containerd/s /run/containerd/fifo /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd 2>/dev/null ;;
      *) rm -rf "$p" ;;
    esac
  done <"$W/host-paths-created"
fi
# The sandbox image's tag in Docker, if up.sh stopped between its build and
# its removal.
docker image rm whorl-pause:dev >/dev/null 2>&1
# The kubelet's symlinks into the work dir, when /var/log/containers was there.
find /var/log/containers -maxdepth 1 -type l -lname "$W/*" -delete 2>/dev/null

rm -rf --one-file-system "$W"
log "node down after $(($(date +%s) - t0)) s"
