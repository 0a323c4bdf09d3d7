// Package netns builds throw-away network labs for integration tests: named network
// namespaces joined by veth pairs and bridges, all created by the test and removed when
// it ends. Nothing here touches the host's own interfaces.
//
// Tests that use it need root. RequireRoot skips them on a developer's machine without
// root but fails them when CI=true, so that an integration test never passes by not
// running in CI.
package netns

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
)

var counter atomic.Int64

// RequireRoot fails the test in CI (CI=true) and skips it elsewhere when not root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	SkipUnlessCI(t, "integration test needs root, and CI runs as root: refusing to skip")
}

// SkipUnlessCI skips a test that needs what this machine lacks (root, a package, a user),
// but fails it in CI (CI=true, root, everything tests/setup.sh installs): a test must
// not pass in CI by not running.
func SkipUnlessCI(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// NS is a named network namespace created for a test.
type NS struct {
	Name string
	t    testing.TB
}

// New creates a namespace with loopback up; it is deleted when the test ends.
func New(t testing.TB, label string) *NS {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("gka%d-%d-%s", os.Getpid()%100000, counter.Add(1), label)
	if len(name) > 40 {
		name = name[:40]
	}
	run(t, "ip", "netns", "add", name)
	ns := &NS{Name: name, t: t}
	t.Cleanup(func() {
		// Processes started with Command are killed by their own cleanups first
		// (cleanups run last-in first-out).
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	ns.Run("ip", "link", "set", "lo", "up")
	return ns
}

// Do runs fn with the calling goroutine's OS thread inside the namespace. Sockets and
// netlink handles opened in fn stay in the namespace after Do returns.
func (n *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := vnetns.Get()
	if err != nil {
		return fmt.Errorf("current namespace: %w", err)
	}
	defer orig.Close()
	h, err := vnetns.GetFromName(n.Name)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", n.Name, err)
	}
	defer h.Close()
	if err := vnetns.Set(h); err != nil {
		return fmt.Errorf("enter %s: %w", n.Name, err)
	}
	defer func() {
		if err := vnetns.Set(orig); err != nil {
			panic(fmt.Sprintf("cannot return to the original network namespace: %v", err))
		}
	}()
	return fn()
}

// Run runs a command inside the namespace and fails the test if it fails.
func (n *NS) Run(args ...string) string {
	n.t.Helper()
	return run(n.t, append([]string{"ip", "netns", "exec", n.Name}, args...)...)
}

// Try runs a command inside the namespace and returns its combined output and error.
func (n *NS) Try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	return string(out), err
}

// Command returns a command that runs inside the namespace. The caller starts it; it is
// killed when the test ends if still running.
func (n *NS) Command(args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	n.t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// Veth connects two namespaces with a veth pair named aName in a and bName in b, both up.
func Veth(t testing.TB, a *NS, aName string, b *NS, bName string) {
	t.Helper()
	tmp := fmt.Sprintf("gkv%d-%d", os.Getpid()%100000, counter.Add(1))
	run(t, "ip", "link", "add", tmp+"a", "type", "veth", "peer", "name", tmp+"b")
	run(t, "ip", "link", "set", tmp+"a", "netns", a.Name)
	run(t, "ip", "link", "set", tmp+"b", "netns", b.Name)
	a.Run("ip", "link", "set", tmp+"a", "name", aName)
	b.Run("ip", "link", "set", tmp+"b", "name", bName)
	a.Run("ip", "link", "set", aName, "up")
	b.Run("ip", "link", "set", bName, "up")
}

// Bridge creates a bridge named br inside ns (a "switch" namespace) and plugs each
// member namespace into it with a veth pair: the member side is called ifname.
func Bridge(t testing.TB, sw *NS, br string, ifname string, members ...*NS) {
	t.Helper()
	sw.Run("ip", "link", "add", br, "type", "bridge")
	sw.Run("ip", "link", "set", br, "type", "bridge", "forward_delay", "0")
	sw.Run("ip", "link", "set", br, "up")
	for i, m := range members {
		port := fmt.Sprintf("%s-p%d", br, i)
		Veth(t, sw, port, m, ifname)
		sw.Run("ip", "link", "set", port, "master", br)
	}
}

// Addr adds an address (CIDR) to an interface in the namespace.
func (n *NS) Addr(ifname, cidr string) {
	n.t.Helper()
	args := []string{"ip", "addr", "add", cidr, "dev", ifname}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	n.Run(args...)
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Eventually polls cond every 10 ms until it returns true or the timeout passes, then
// fails the test with msg. Use it instead of sleeping.
func Eventually(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", timeout, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
