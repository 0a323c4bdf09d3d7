// Package lab runs gokeepalived (and real keepalived as a peer) in namespace labs that
// the tests build: a switch namespace with a bridge, director namespaces and a client,
// all on 192.168.71.0/24 inside the lab only.
package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gokeepalived/tests/netns"
)

// VIP is the seed scenario's service address.
const VIP = "192.168.71.205"

// Lab is a bridge with directors and a client.
type Lab struct {
	t         *testing.T
	Switch    *netns.NS
	Client    *netns.NS
	Directors []*netns.NS
	dir       string

	mu   sync.Mutex
	live map[int]int // director index -> running daemons there
}

// New builds a lab with n directors at 192.168.71.1..n and a client at .100.
func New(t *testing.T, n int) *Lab {
	t.Helper()
	netns.RequireRoot(t)
	l := &Lab{t: t, Switch: netns.New(t, "sw"), Client: netns.New(t, "cl"), dir: t.TempDir(), live: map[int]int{}}
	members := []*netns.NS{l.Client}
	for i := 1; i <= n; i++ {
		d := netns.New(t, fmt.Sprintf("d%d", i))
		// IPv6 addresses must be usable at once (no duplicate address detection).
		d.Run("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
		l.Directors = append(l.Directors, d)
		members = append(members, d)
	}
	l.Client.Run("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
	netns.Bridge(t, l.Switch, "br0", "eth0", members...)
	l.Client.Addr("eth0", "192.168.71.100/24")
	l.Client.Addr("eth0", "fd71::100/64")
	for i, d := range l.Directors {
		d.Addr("eth0", fmt.Sprintf("192.168.71.%d/24", i+1))
		d.Addr("eth0", fmt.Sprintf("fd71::%d/64", i+1))
	}
	return l
}

// Holders returns the indexes of the directors with a running daemon that have addr on
// eth0. A director whose daemon was killed keeps its addresses (as after a crash) but is
// not counted: it no longer answers for them once the client learnt the new master.
func (l *Lab) Holders(addr string) []int { return l.HoldersOn("eth0", addr) }

// HoldersOn is Holders for the interface dev (a use_vmac macvlan).
func (l *Lab) HoldersOn(dev, addr string) []int {
	var out []int
	for _, i := range l.HoldersAllOn(dev, addr) {
		l.mu.Lock()
		n := l.live[i]
		l.mu.Unlock()
		if n > 0 {
			out = append(out, i)
		}
	}
	return out
}

// HoldersAll returns the indexes of all directors that have addr on eth0.
func (l *Lab) HoldersAll(addr string) []int { return l.HoldersAllOn("eth0", addr) }

// HoldersAllOn is HoldersAll for the interface dev.
func (l *Lab) HoldersAllOn(dev, addr string) []int {
	var out []int
	for i, d := range l.Directors {
		if out2, err := d.Try("ip", "-o", "addr", "show", "dev", dev); err == nil && strings.Contains(out2, " "+addr+"/") {
			out = append(out, i)
		}
	}
	return out
}

// MAC returns the MAC address of director i's eth0.
func (l *Lab) MAC(i int) string {
	out := l.Directors[i].Run("cat", "/sys/class/net/eth0/address")
	return strings.TrimSpace(out)
}

// LinkMAC returns the MAC address of dev in director i, "" when there is no dev.
func (l *Lab) LinkMAC(i int, dev string) string {
	out, err := l.Directors[i].Try("cat", "/sys/class/net/"+dev+"/address")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// WatchNeigh records every MAC the client's neighbour entry for addr takes, until the
// returned stop is called, which returns them in the order first seen.
func (l *Lab) WatchNeigh(addr string) (stop func() []string) {
	var (
		mu   sync.Mutex
		seen []string
		quit = make(chan struct{})
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			if mac := l.ClientNeigh(addr); mac != "" {
				mu.Lock()
				if !slices.Contains(seen, mac) {
					seen = append(seen, mac)
				}
				mu.Unlock()
			}
			select {
			case <-quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() []string {
		close(quit)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// ClientNeigh returns the MAC the client's neighbour table holds for addr ("" if none).
func (l *Lab) ClientNeigh(addr string) string {
	out, _ := l.Client.Try("ip", "neigh", "show", addr, "dev", "eth0")
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			return f[i+1]
		}
	}
	return ""
}

// Daemon is a running gokeepalived or keepalived.
type Daemon struct {
	Name string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Start runs bin with args in director i's namespace, with config written to a file;
// the daemon is killed when the test ends and its log is printed if the test failed.
func (l *Lab) Start(i int, name string, config string, bin string, args ...string) *Daemon {
	l.t.Helper()
	conf := filepath.Join(l.dir, name+".conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		l.t.Fatal(err)
	}
	full := append([]string{bin, "-n", "-l", "-f", conf, "-p", filepath.Join(l.dir, name+".pid")}, args...)
	cmd := l.Directors[i].Command(full...)
	d := &Daemon{Name: name, cmd: cmd, log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	cmd.Stdout = lockedBuffer{d.mu, d.log}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start %s: %v", name, err)
	}
	l.mu.Lock()
	l.live[i]++
	l.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		l.mu.Lock()
		l.live[i]--
		l.mu.Unlock()
		close(d.done)
	}()
	l.t.Cleanup(func() {
		d.Signal(syscall.SIGKILL)
		<-d.done
		if l.t.Failed() {
			l.t.Logf("---- log of %s ----\n%s", name, d.Log())
		}
	})
	return d
}

// Signal sends sig to the daemon's whole process group (keepalived forks children).
func (d *Daemon) Signal(sig syscall.Signal) {
	if d.cmd.Process != nil {
		_ = syscall.Kill(-d.cmd.Process.Pid, sig)
	}
}

// Wait waits for the daemon to exit, up to timeout.
func (d *Daemon) Wait(timeout time.Duration) bool {
	select {
	case <-d.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Log returns what the daemon printed so far.
func (d *Daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// BuildBinary builds cmd/gokeepalived into dir and returns its path.
func BuildBinary(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "gokeepalived")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "gokeepalived/cmd/gokeepalived")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	return out, nil
}
