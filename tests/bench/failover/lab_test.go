package failover

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gokeepalived/tests/lab"
	"gokeepalived/tests/netns"
)

var (
	buildOnce sync.Once
	binDir    string
	gkBin     string
	buildErr  error
)

// TestMain removes the gokeepalived binary built for the benchmarks.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// gokeepalivedBinary builds cmd/gokeepalived once per process (GKA_BIN names an existing
// binary instead).
func gokeepalivedBinary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("GKA_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gka-failover-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		gkBin, buildErr = lab.BuildBinary(ctx, binDir)
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return gkBin
}

// impl is a VRRP daemon under test.
type impl struct {
	name       string
	bin        string
	keepalived bool // pass keepalived's VRRP-only flags and pid file
}

func implementations(tb testing.TB) []impl {
	tb.Helper()
	ka, err := exec.LookPath("keepalived")
	if err != nil {
		tb.Fatal("keepalived is not installed (tests/setup.sh installs it)")
	}
	return []impl{
		{name: "gokeepalived", bin: gokeepalivedBinary(tb)},
		{name: "keepalived 2.2.7", bin: ka, keepalived: true},
	}
}

// benchLab is the layout of tests/lab (a switch namespace with bridge br0, directors at
// 192.168.71.N, a client at .100), built here because lab.New wants a *testing.T; plus a
// capture on the client's eth0.
type benchLab struct {
	tb     testing.TB
	client *netns.NS
	dirs   []*netns.NS
	macs   []net.HardwareAddr
	capt   *Capture
	tmp    string
	seq    int
}

func newLab(tb testing.TB, n int) *benchLab {
	tb.Helper()
	netns.RequireRoot(tb)
	sw := netns.New(tb, "sw")
	l := &benchLab{tb: tb, client: netns.New(tb, "cl"), tmp: tb.TempDir()}
	members := []*netns.NS{l.client}
	for i := 1; i <= n; i++ {
		l.dirs = append(l.dirs, netns.New(tb, fmt.Sprintf("d%d", i)))
	}
	members = append(members, l.dirs...)
	netns.Bridge(tb, sw, "br0", "eth0", members...)
	l.client.Addr("eth0", "192.168.71.100/24")
	for i, d := range l.dirs {
		d.Addr("eth0", fmt.Sprintf("192.168.71.%d/24", i+1))
		mac, err := net.ParseMAC(strings.TrimSpace(d.Run("cat", "/sys/class/net/eth0/address")))
		if err != nil {
			tb.Fatal(err)
		}
		l.macs = append(l.macs, mac)
	}
	err := l.client.Do(func() error {
		var err error
		l.capt, err = OpenCapture("eth0")
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.capt.Close() })
	return l
}

// addr is director i's address.
func (l *benchLab) addr(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 168, 71, byte(i + 1)}) }

// daemon is a running gokeepalived or keepalived.
type daemon struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

func (d *daemon) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.Write(p)
}

// Log returns what the daemon printed.
func (d *daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// signal sends sig to the daemon's process group (keepalived forks its VRRP child).
func (d *daemon) signal(sig syscall.Signal) {
	_ = syscall.Kill(-d.cmd.Process.Pid, sig)
}

func (d *daemon) wait(timeout time.Duration) bool {
	select {
	case <-d.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// start runs im in director i's namespace with config conf. The daemon's process group
// is killed when the benchmark ends.
func (l *benchLab) start(i int, im impl, conf string) *daemon {
	l.tb.Helper()
	l.seq++
	name := fmt.Sprintf("d%d-%d", i+1, l.seq)
	path := filepath.Join(l.tmp, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		l.tb.Fatal(err)
	}
	args := []string{im.bin, "-n", "-l", "-f", path, "-p", filepath.Join(l.tmp, name+".pid")}
	if im.keepalived {
		args = append(args, "-P", "-r", filepath.Join(l.tmp, name+"-vrrp.pid"))
	}
	d := &daemon{name: name, done: make(chan struct{})}
	d.cmd = l.dirs[i].Command(args...)
	d.cmd.Stdout, d.cmd.Stderr = d, d
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		l.tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	l.tb.Cleanup(func() {
		d.signal(syscall.SIGKILL)
		<-d.done
		if l.tb.Failed() {
			l.tb.Logf("---- log of %s (%s) ----\n%s", name, im.name, d.Log())
		}
	})
	return d
}

// burners starts n CPU-bound processes (shell busy loops) in the client namespace, each
// bounded by timeout; stop kills them.
func (l *benchLab) burners(n int, timeout time.Duration) (stop func()) {
	var cmds []*exec.Cmd
	for range n {
		cmd := l.client.Command("timeout", "-s", "KILL", fmt.Sprintf("%ds", int(timeout.Seconds())+1),
			"sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			l.tb.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			for _, c := range cmds {
				_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
				_ = c.Wait()
			}
		})
	}
	l.tb.Cleanup(stop)
	return stop
}
