# Shared by up.sh and down.sh (sourced): where the node lives and its fixed
# names and addresses. The pod and service ranges avoid Docker's 172.17/16
# and e2e/netns's 10.213.7.0/24.
#
#   WHORL_NODE_DIR  the work dir: certificates, logs, etcd, containerd's root
#                   and state, the kubelet's root, the volumes (default
#                   /tmp/whorl-node); down.sh removes it.
node_dir=${WHORL_NODE_DIR:-/tmp/whorl-node}
node_name=whorl-node
# The CNI bridge; up.sh creates it with the gateway address, which is also
# the node's InternalIP (the kubelet's address) and CoreDNS's.
node_bridge=whorl0
node_ip=10.247.0.1
pod_cidr=10.247.0.0/24
service_cidr=10.248.0.0/24
service_ip=10.248.0.1
cluster_domain=cluster.local
storage_class=whorl-node
# Sysctls the kubelet and kube-proxy may set: up.sh saves them, down.sh puts
# them back.
node_sysctls=(
  net.ipv4.ip_forward
  net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables
  vm.overcommit_memory
  vm.panic_on_oom
  kernel.panic
  kernel.panic_on_oops
  kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes
  net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait
)
# Host paths outside the work dir that the kubelet or containerd may create
# (they hard-code them): down.sh removes those that up.sh did not find.
node_host_paths=(/var/log/containers /var/log/pods /var/lib/cni /run/containerd /var/lib/kubelet /opt/cni)
