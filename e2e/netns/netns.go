package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// bridgeIf is the bridge device inside the bridge namespace.
const bridgeIf = "br0"

// hostIf is every host's interface name inside its namespace.
const hostIf = "eth0"

// firstHostOctet is the last address octet of the first host a child
// process adds; the parent's driver host has .2.
const firstHostOctet = 10

// cmdTimeout bounds one ip/nft/nsenter command.
const cmdTimeout = 20 * time.Second

// Network is a bridge in a namespace of its own and the hosts attached to it.
// Every namespace name of a Network starts with its prefix.
type Network struct {
	prefix string
	subnet netip.Prefix

	mu    sync.Mutex
	next  netip.Addr
	hosts map[string]*Host
}

// Create makes the bridge namespace of a new network for prefix on subnet
// (a /24 or larger of private addresses).
func Create(ctx context.Context, prefix string, subnet netip.Prefix) (*Network, error) {
	n := attach(prefix, subnet, 2)
	if err := run(ctx, "ip", "netns", "add", n.bridgeNS()); err != nil {
		return nil, fmt.Errorf("create network %s: %w", prefix, err)
	}
	for _, args := range [][]string{
		{"-n", n.bridgeNS(), "link", "add", bridgeIf, "type", "bridge"},
		{"-n", n.bridgeNS(), "link", "set", bridgeIf, "up"},
		{"-n", n.bridgeNS(), "link", "set", "lo", "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return nil, errors.Join(fmt.Errorf("create network %s: %w", prefix, err), Cleanup(ctx, prefix))
		}
	}
	return n, nil
}

// Attach returns the network that Create made (in another process) for
// prefix and subnet; hosts it adds start at .10.
func Attach(prefix string, subnet netip.Prefix) *Network {
	return attach(prefix, subnet, firstHostOctet)
}

func attach(prefix string, subnet netip.Prefix, first int) *Network {
	a := subnet.Masked().Addr()
	for range first {
		a = a.Next()
	}
	return &Network{prefix: prefix, subnet: subnet, next: a, hosts: map[string]*Host{}}
}

// Prefix is the common prefix of the network's namespace names.
func (n *Network) Prefix() string { return n.prefix }

// Subnet is the network's address range.
func (n *Network) Subnet() netip.Prefix { return n.subnet }

func (n *Network) bridgeNS() string { return n.prefix + "br" }

// AddHost creates host name: a namespace with loopback and eth0 up, eth0
// holding the next free address and linked by a veth to the bridge.
func (n *Network) AddHost(ctx context.Context, name string) (*Host, error) {
	if name == "" || len(name) > 12 || strings.ContainsAny(name, " /") {
		return nil, fmt.Errorf("add host %q: want 1..12 characters without spaces or slashes", name)
	}
	n.mu.Lock()
	if _, ok := n.hosts[name]; ok {
		n.mu.Unlock()
		return nil, fmt.Errorf("add host %s: exists", name)
	}
	addr := n.next
	if !n.subnet.Contains(addr) || !n.subnet.Contains(addr.Next()) {
		n.mu.Unlock()
		return nil, fmt.Errorf("add host %s: subnet %s is full", name, n.subnet)
	}
	n.next = addr.Next()
	h := &Host{Name: name, NS: n.prefix + name, Addr: addr, link: "v" + name, net: n}
	n.hosts[name] = h
	n.mu.Unlock()
	if err := h.create(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("add host %s: %w", name, err), h.Remove(ctx))
	}
	return h, nil
}

// Hosts returns the hosts this process added and has not removed.
func (n *Network) Hosts() []*Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Host, 0, len(n.hosts))
	for _, h := range n.hosts {
		out = append(out, h)
	}
	return out
}

// run runs one command (in the current namespace) and wraps its output into
// the error.
func run(ctx context.Context, name string, args ...string) error {
	_, err := output(ctx, nil, name, args...)
	return err
}

// output runs one command with stdin and returns its standard output.
func output(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// namespaces lists the named network namespaces.
func namespaces(ctx context.Context) ([]string, error) {
	out, err := output(ctx, nil, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// killNamespace SIGKILLs every process in namespace ns, waits until none is
// left (bounded) and deletes the namespace.
func killNamespace(ctx context.Context, ns string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := nsPids(ctx, ns)
		if err != nil || len(pids) == 0 {
			break
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s: processes %v survive SIGKILL", ns, pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := run(ctx, "ip", "netns", "del", ns); err != nil {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	return nil
}

// nsPids lists the processes in namespace ns.
func nsPids(ctx context.Context, ns string) ([]int, error) {
	out, err := output(ctx, nil, "ip", "netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		var p int
		if _, err := fmt.Sscan(f, &p); err == nil && p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// Cleanup kills every process in every namespace whose name starts with
// prefix and deletes those namespaces.
func Cleanup(ctx context.Context, prefix string) error {
	names, err := namespaces(ctx)
	if err != nil {
		return fmt.Errorf("cleanup %s: %w", prefix, err)
	}
	var errs []error
	for _, ns := range names {
		if strings.HasPrefix(ns, prefix) {
			errs = append(errs, killNamespace(ctx, ns))
		}
	}
	etc, _ := filepath.Glob(filepath.Join(etcNetns, prefix+"*"))
	for _, dir := range etc {
		errs = append(errs, os.RemoveAll(dir))
	}
	_ = os.Remove(etcNetns) // only when empty: others may use it
	return errors.Join(errs...)
}

// CleanupStale removes the namespaces of earlier runs (named
// "<base><pid>-...") whose process no longer exists.
func CleanupStale(ctx context.Context, base string) error {
	names, err := namespaces(ctx)
	if err != nil {
		return err
	}
	dead := map[string]bool{}
	for _, ns := range names {
		rest, ok := strings.CutPrefix(ns, base)
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		var p int
		if _, err := fmt.Sscan(pid, &p); err != nil {
			continue
		}
		if syscall.Kill(p, 0) == syscall.ESRCH {
			dead[base+pid+"-"] = true
		}
	}
	var errs []error
	for prefix := range dead {
		errs = append(errs, Cleanup(ctx, prefix))
	}
	return errors.Join(errs...)
}
