package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment variables between the parent test process, the child that
// runs the tests inside the driver namespace, and proxy helper processes.
const (
	envRun   = "WHORL_NETNS_RUN"   // "prefix|subnet" in the child
	envProxy = "WHORL_NETNS_PROXY" // "listen|target|delay|on" in a proxy helper
)

// nsBase starts every namespace name of this suite; the pid of the parent
// test process follows, so that stale namespaces of dead runs are found.
const nsBase = "whorl-e2e-"

// DefaultSubnet is the private range of the hosts; it exists only inside
// the run's namespaces.
var DefaultSubnet = netip.MustParsePrefix("10.213.7.0/24")

// state of this process, set by Main.
var (
	current    *Network // in the child: the network the tests add hosts to
	driver     netip.Addr
	skipReason = "netns.Main did not run: call it from TestMain"
)

// Main is the TestMain of a suite that uses hosts. As root in the root
// namespace it creates the network and the driver namespace, re-executes
// the test binary inside it, and removes every namespace and process of
// the run when the child exits. In the child it runs the tests. Without
// root the tests run and skip. It returns the exit code.
func Main(m *testing.M) int {
	if spec := os.Getenv(envProxy); spec != "" {
		return runProxy(spec)
	}
	if spec := os.Getenv(envRun); spec != "" {
		return runChild(m, spec)
	}
	if reason := missing(); reason != "" {
		if os.Getenv(EnvRequire) == "require" {
			fmt.Fprintf(os.Stderr, "netns: FAIL: %s, and %s=require\n", reason, EnvRequire)
			return 1
		}
		skipReason = reason
		fmt.Fprintln(os.Stderr, "netns: SKIP:", skipReason)
		return m.Run()
	}
	return runParent()
}

// EnvRequire set to "require" turns the suite's skip (not root, a tool
// missing) into a failure; .ci/run sets it so CI never skips silently.
const EnvRequire = "WHORL_E2E_NETNS"

// missing says what this machine lacks for the suite ("" when nothing).
func missing() string {
	if os.Geteuid() != 0 {
		return "the multi-host network-namespace suite needs root (ip netns, veth, nftables); run `sudo make e2e` or CI"
	}
	for _, tool := range []string{"ip", "nft", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("the multi-host network-namespace suite needs %s (apt-get install iproute2 nftables util-linux)", tool)
		}
	}
	return ""
}

// runParent sets the network up, runs the child in the driver namespace and
// cleans up.
func runParent() int {
	ctx := context.Background()
	if err := CleanupStale(ctx, nsBase); err != nil {
		fmt.Fprintln(os.Stderr, "netns: cleaning up earlier runs:", err)
	}
	prefix := fmt.Sprintf("%s%d-", nsBase, os.Getpid())
	n, err := Create(ctx, prefix, DefaultSubnet)
	if err != nil {
		fmt.Fprintln(os.Stderr, "netns:", err)
		return 1
	}
	defer func() {
		if err := Cleanup(context.Background(), prefix); err != nil {
			fmt.Fprintln(os.Stderr, "netns: cleanup:", err)
		}
	}()
	drv, err := n.AddHost(ctx, "drv")
	if err != nil {
		fmt.Fprintln(os.Stderr, "netns:", err)
		return 1
	}
	cmd := drv.Command(context.Background(), os.Args[0], os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s", envRun, prefix, n.Subnet(), drv.Addr))
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "netns: start the driver:", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			if err != nil {
				if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 {
					return ee.ExitCode()
				}
				fmt.Fprintln(os.Stderr, "netns: driver:", err)
				return 1
			}
			return 0
		}
	}
}

// runChild attaches to the network the parent made and runs the tests.
func runChild(m *testing.M, spec string) int {
	parts := strings.Split(spec, "|")
	if len(parts) != 3 {
		fmt.Fprintf(os.Stderr, "netns: bad %s=%q\n", envRun, spec)
		return 1
	}
	subnet, err1 := netip.ParsePrefix(parts[1])
	addr, err2 := netip.ParseAddr(parts[2])
	if err1 != nil || err2 != nil {
		fmt.Fprintf(os.Stderr, "netns: bad %s=%q\n", envRun, spec)
		return 1
	}
	current, driver, skipReason = Attach(parts[0], subnet), addr, ""
	return m.Run()
}

// Require returns the network of the run, or skips the test saying why
// there is none (not root).
func Require(t testing.TB) *Network {
	t.Helper()
	if current == nil {
		t.Skip("netns: " + skipReason)
	}
	return current
}

// Driver is the address of the namespace the tests run in.
func Driver() netip.Addr { return driver }

// StartProxy starts a DelayProxy inside host h as a helper process (the
// test binary re-executed in the host's namespace) listening on listen and
// forwarding to target. With on false it starts without delay; SIGUSR1
// toggles the delay on and off.
func StartProxy(h *Host, logPath, listen, target string, delay time.Duration, on bool) (*Proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start proxy: %w", err)
	}
	return h.Start(logPath, "env", fmt.Sprintf("%s=%s|%s|%s|%v", envProxy, listen, target, delay, on), self)
}

// runProxy is a proxy helper process: it serves until SIGTERM or SIGINT;
// SIGUSR1 toggles its delay.
func runProxy(spec string) int {
	parts := strings.Split(spec, "|")
	if len(parts) != 4 {
		fmt.Fprintf(os.Stderr, "netns: bad %s=%q\n", envProxy, spec)
		return 2
	}
	delay, err := time.ParseDuration(parts[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "netns: bad %s delay: %v\n", envProxy, err)
		return 2
	}
	on := parts[3] == "true"
	// Catch SIGUSR1 before accepting: its default action ends the process.
	toggles := make(chan os.Signal, 1)
	signal.Notify(toggles, syscall.SIGUSR1)
	defer signal.Stop(toggles)
	ln, err := net.Listen("tcp", parts[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "netns: proxy:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := NewDelayProxy(parts[1], map[bool]time.Duration{true: delay}[on])
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-toggles:
				on = !on
				p.SetDelay(map[bool]time.Duration{true: delay}[on])
				fmt.Fprintf(os.Stderr, "netns: proxy delay now %v\n", p.Delay())
			}
		}
	}()
	fmt.Fprintf(os.Stderr, "netns: proxy %s -> %s delay %v\n", ln.Addr(), parts[1], p.Delay())
	if err := p.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, "netns:", err)
		return 1
	}
	return 0
}
