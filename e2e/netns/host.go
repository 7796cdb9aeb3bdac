package netns

import (
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

// Host is one machine of the network: a network namespace with eth0 on the
// bridge.
type Host struct {
	// Name is the host's short name; NS its namespace.
	Name, NS string
	// Addr is eth0's address.
	Addr netip.Addr

	link     string // the veth end on the bridge
	net      *Network
	etcHosts bool // processes see /etc/netns/<NS>/hosts as /etc/hosts

	mu    sync.Mutex
	procs []*Proc
}

// create builds the namespace and its link.
func (h *Host) create(ctx context.Context) error {
	br := h.net.bridgeNS()
	bits := h.net.subnet.Bits()
	steps := [][]string{
		{"netns", "add", h.NS},
		{"-n", br, "link", "add", h.link, "type", "veth", "peer", "name", hostIf, "netns", h.NS},
		{"-n", br, "link", "set", h.link, "master", bridgeIf, "up"},
		{"-n", h.NS, "link", "set", "lo", "up"},
		{"-n", h.NS, "addr", "add", fmt.Sprintf("%s/%d", h.Addr, bits), "dev", hostIf},
		{"-n", h.NS, "link", "set", hostIf, "up"},
	}
	for _, args := range steps {
		if err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// Remove stops every process of the host, deletes its namespace (and with
// it both veth ends) and forgets it.
func (h *Host) Remove(ctx context.Context) error {
	h.mu.Lock()
	procs := h.procs
	h.procs = nil
	h.mu.Unlock()
	var errs []error
	for _, p := range procs {
		p.Signal(syscall.SIGKILL)
	}
	for _, p := range procs {
		if err := p.Wait(5 * time.Second); errors.Is(err, ErrRunning) {
			errs = append(errs, err)
		}
	}
	if err := killNamespace(ctx, h.NS); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(filepath.Join(etcNetns, h.NS)); err != nil {
		errs = append(errs, err)
	}
	// Deleting the namespace frees its veth end asynchronously; delete the
	// pair now so the bridge is clean when Remove returns. The kernel may
	// have freed it already: iproute2 then says "Cannot find device" or,
	// when the name vanished between lookup and delete, "No such device".
	if err := run(ctx, "ip", "-n", h.net.bridgeNS(), "link", "del", h.link); err != nil && !linkGone(err) {
		errs = append(errs, fmt.Errorf("delete link %s: %w", h.link, err))
	}
	h.net.mu.Lock()
	delete(h.net.hosts, h.Name)
	h.net.mu.Unlock()
	return errors.Join(errs...)
}

// Command returns cmd name args run inside the host's namespace: with
// nsenter --net (the mount namespace stays the caller's), or with ip netns
// exec once SetHosts gave the host its own /etc/hosts.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	full := append([]string{"--net=/run/netns/" + h.NS, "--", name}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	if h.etcHosts {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	}
	// Die with the test process, whatever kills it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// etcNetns is where ip netns exec finds a namespace's own /etc files.
const etcNetns = "/etc/netns"

// SetHosts gives the host's processes started from now on their own
// /etc/hosts (ip netns exec bind-mounts /etc/netns/<NS>/hosts over it):
// names resolve on this host as a cluster DNS would resolve them.
func (h *Host) SetHosts(hosts string) error {
	dir := filepath.Join(etcNetns, h.NS)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("host %s: hosts file: %w", h.Name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
		return fmt.Errorf("host %s: hosts file: %w", h.Name, err)
	}
	h.etcHosts = true
	return nil
}

// Output runs a command to completion inside the host and returns its
// standard output.
func (h *Host) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	full := append([]string{"--net=/run/netns/" + h.NS, "--", name}, args...)
	out, err := output(ctx, nil, "nsenter", full...)
	if err != nil {
		return out, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return out, nil
}

// Start starts a long-running process inside the host with its output
// appended to logPath.
func (h *Host) Start(logPath, name string, args ...string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("host %s: start %s: %w", h.Name, name, err)
	}
	cmd := h.Command(context.Background(), name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("host %s: start %s: %w", h.Name, name, err)
	}
	p := newProc(cmd, logPath, logf)
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	return p, nil
}

// Kill sends sig to every process in the host's namespace: the host dies
// (SIGKILL) or is asked to stop (SIGTERM).
func (h *Host) Kill(ctx context.Context, sig syscall.Signal) error {
	pids, err := nsPids(ctx, h.NS)
	if err != nil {
		return fmt.Errorf("host %s: kill: %w", h.Name, err)
	}
	for _, p := range pids {
		_ = syscall.Kill(p, sig)
	}
	return nil
}

// LinkDown sets the host's link down on the bridge side: its carrier goes
// away as if the cable were pulled.
func (h *Host) LinkDown(ctx context.Context) error {
	return run(ctx, "ip", "-n", h.net.bridgeNS(), "link", "set", h.link, "down")
}

// LinkUp sets the host's link up again.
func (h *Host) LinkUp(ctx context.Context) error {
	return run(ctx, "ip", "-n", h.net.bridgeNS(), "link", "set", h.link, "up")
}

// faultTable is the nftables table that holds a host's fault rules.
const faultTable = "whorl_fault"

// Isolate drops every packet into and out of the host's eth0 (nftables in
// the host's namespace): a network partition around the host.
func (h *Host) Isolate(ctx context.Context) error {
	return h.nft(ctx, "drop")
}

// Loss drops pct percent of the host's packets in each direction, chosen
// at random per packet (nftables numgen random).
func (h *Host) Loss(ctx context.Context, pct int) error {
	if pct < 1 || pct > 100 {
		return fmt.Errorf("host %s: loss %d%%: want 1..100", h.Name, pct)
	}
	return h.nft(ctx, fmt.Sprintf("numgen random mod 100 < %d drop", pct))
}

// nft replaces the host's fault table with input and output chains that
// apply verdict to eth0 traffic.
func (h *Host) nft(ctx context.Context, verdict string) error {
	_ = h.Heal(ctx)
	rules := fmt.Sprintf(`table inet %[1]s {
	chain input { type filter hook input priority 0; policy accept; iifname %[2]q %[3]s; }
	chain output { type filter hook output priority 0; policy accept; oifname %[2]q %[3]s; }
}
`, faultTable, hostIf, verdict)
	full := []string{"--net=/run/netns/" + h.NS, "--", "nft", "-f", "-"}
	if _, err := output(ctx, []byte(rules), "nsenter", full...); err != nil {
		return fmt.Errorf("host %s: nft: %w", h.Name, err)
	}
	return nil
}

// Heal removes the host's nftables fault rules.
func (h *Host) Heal(ctx context.Context) error {
	_, err := h.Output(ctx, "nft", "delete", "table", "inet", faultTable)
	return err
}

// linkGone reports whether err from "ip link del" says the link no longer
// exists, in either of the wordings iproute2 uses.
func linkGone(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot find device") || strings.Contains(msg, "No such device")
}
