package vrrp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gokeepalived/parser"
)

// director is one simulated director: a Manager on a FakeLink with its own addresses.
type director struct {
	name   string
	addr   netip.Addr
	mgr    *Manager
	addrs  *FakeAddrs
	routes *FakeRoutes
	ann    *FakeAnnouncer
	fw     *FakeFirewall
	vmacs  *FakeVMACs

	listenMu sync.Mutex
	listens  []string // the interfaces of the sockets opened

	mu    sync.Mutex
	trans []Transition
}

const fakeVIP = "192.168.71.205/24"

func fakeConfig(t *testing.T, prio int, extra string) *parser.Config {
	return fakeConfigWith(t, "", prio, extra)
}

func fakeConfigWith(t *testing.T, global string, prio int, extra string) *parser.Config {
	t.Helper()
	text := fmt.Sprintf(`
global_defs {
    %s
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    version 3
    priority %d
    advert_int 0.05
    %s
    virtual_ipaddress {
        %s
    }
}
`, global, prio, extra, fakeVIP)
	cfg, ds := parser.LoadBytes("fake.conf", []byte(text), parser.Options{ConfigID: "x"})
	if ds.ExitCode() != parser.ExitOK {
		t.Fatalf("config: %v", ds)
	}
	return cfg
}

func startDirector(t *testing.T, link *FakeLink, name string, last byte, prio int, extra string) *director {
	t.Helper()
	return startDirectorCfg(t, link, name, last, fakeConfig(t, prio, extra))
}

func startDirectorCfg(t *testing.T, link *FakeLink, name string, last byte, cfg *parser.Config) *director {
	t.Helper()
	return newDirector(name, last).start(t, link, cfg)
}

// newDirector returns a director with empty fakes; a test may replace them (a kernel
// with leftovers) before start.
func newDirector(name string, last byte) *director {
	return &director{name: name, addr: netip.AddrFrom4([4]byte{10, 0, 0, last}), addrs: &FakeAddrs{}, routes: &FakeRoutes{}, ann: &FakeAnnouncer{}, fw: &FakeFirewall{}, vmacs: &FakeVMACs{}}
}

// start runs the director's manager on cfg; it stops when the test ends.
func (d *director) start(t *testing.T, link *FakeLink, cfg *parser.Config) *director {
	t.Helper()
	k := Kernel{
		Listen: func(ifname string, f Family, opts ConnOptions) (AdvertConn, error) {
			d.listenMu.Lock()
			d.listens = append(d.listens, ifname)
			d.listenMu.Unlock()
			return link.Listen(f, opts, d.addr)
		},
		Addrs:       d.addrs,
		Routes:      d.routes,
		Announcer:   d.ann,
		Firewall:    d.fw,
		VMACs:       d.vmacs,
		PrimaryAddr: func(string, Family) (netip.Addr, error) { return d.addr, nil },
	}
	d.mgr = NewManager(k, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.mgr.OnTransition = func(tr Transition) {
		d.mu.Lock()
		d.trans = append(d.trans, tr)
		d.mu.Unlock()
	}
	if err := d.mgr.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.mgr.Stop)
	return d
}

func (d *director) state() State { return d.mgr.Status()[0].State }

func (d *director) holdsVIP() bool {
	return d.addrs.Present("eth0", netip.MustParsePrefix(fakeVIP))
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestManagerFailover runs three directors (the seed's priorities) through the engine
// with fake kernel interfaces: election, graceful stop, crash and return.
func TestManagerFailover(t *testing.T) {
	link := NewFakeLink()
	d1 := startDirector(t, link, "d1", 1, 150, "")
	d2 := startDirector(t, link, "d2", 2, 100, "")
	d3 := startDirector(t, link, "d3", 3, 50, "")
	all := []*director{d1, d2, d3}
	holders := func() (n int) {
		for _, d := range all {
			if d.holdsVIP() {
				n++
			}
		}
		return n
	}

	eventually(t, 3*time.Second, "d1 master", func() bool { return d1.state() == StateMaster })
	eventually(t, time.Second, "only d1 holds the VIP", func() bool { return d1.holdsVIP() && holders() == 1 })
	if d2.state() != StateBackup || d3.state() != StateBackup {
		t.Fatalf("states %v %v", d2.state(), d3.state())
	}
	if len(d1.ann.Calls()) == 0 {
		t.Error("new master sent no gratuitous ARP")
	}

	// Graceful stop: priority 0, d2 takes over after its skew only.
	stopped := time.Now()
	d1.mgr.Stop()
	eventually(t, time.Second, "d2 master", func() bool { return d2.state() == StateMaster })
	t.Logf("graceful takeover after %v (Master_Down_Interval alone is 150 ms)", time.Since(stopped))
	eventually(t, time.Second, "VIP moved to d2", func() bool { return d2.holdsVIP() && !d1.holdsVIP() && holders() == 1 })
	if s := d2.mgr.Status()[0].Stats; s.PriZeroRcvd == 0 {
		t.Errorf("d2 counted no priority-0 advert: %+v", s)
	}

	// The old master returns and preempts.
	d1b := startDirector(t, link, "d1b", 1, 150, "")
	all = append(all, d1b)
	eventually(t, 3*time.Second, "d1 back as master", func() bool { return d1b.state() == StateMaster })
	eventually(t, time.Second, "d2 released", func() bool { return d2.state() == StateBackup && !d2.holdsVIP() })
	if holders() != 1 {
		t.Errorf("%d holders of the VIP", holders())
	}
}

// TestManagerRejectsBadAdverts: malformed and foreign adverts are counted and never
// change state.
func TestManagerRejectsBadAdverts(t *testing.T) {
	link := NewFakeLink()
	d := startDirector(t, link, "d", 2, 100, "")
	eventually(t, 3*time.Second, "master", func() bool { return d.state() == StateMaster })
	inj := d.mgr.gen.loops[0].getConn().(*FakeConn) // Inject feeds this connection's receive queue
	group := DefaultGroup(FamilyIPv4)
	src := netip.MustParseAddr("10.0.0.9")
	good := func(mut func(*Advert)) []byte {
		a := Advert{Version: 3, VRID: 51, Priority: 200, AdverInt: 5, Addrs: []netip.Addr{netip.MustParseAddr("192.168.71.205")}}
		mut(&a)
		b, err := a.AppendMarshal(nil, ChecksumPseudoHeader, src, group)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	badCk := good(func(*Advert) {})
	badCk[6] ^= 0xff
	v2 := good(func(a *Advert) { a.Version = 2; a.AdverInt = 1 })
	inj.Inject([]byte{0x31, 51, 200}, src, group, 255)                 // short
	inj.Inject(badCk, src, group, 255)                                 // bad checksum
	inj.Inject(good(func(*Advert) {}), src, group, 254)                // TTL 254 on multicast
	inj.Inject(v2, src, group, 255)                                    // wrong version
	inj.Inject(good(func(a *Advert) { a.VRID = 77 }), src, group, 255) // unknown VRID
	want := StatsSnapshot{PacketLenErr: 1, ChecksumErr: 1, IPTTLErr: 1, VersionErr: 1}
	defer func() {
		if t.Failed() {
			t.Logf("stats: %+v", d.mgr.Status()[0].Stats)
		}
	}()
	eventually(t, time.Second, "all four counted", func() bool {
		s := d.mgr.Status()[0].Stats
		return s.PacketLenErr == want.PacketLenErr && s.ChecksumErr == want.ChecksumErr &&
			s.IPTTLErr == want.IPTTLErr && s.VersionErr == want.VersionErr
	})
	if n := d.mgr.gen.loops[0].unknown.Load(); n != 1 {
		t.Errorf("unknown VRID counted %d times, want 1", n)
	}
	if d.state() != StateMaster {
		t.Fatalf("state changed to %v by bad adverts", d.state())
	}
}

// TestManagerNotifyFIFO: state changes reach vrrp_notify_fifo in keepalived's format and
// order, STOP included.
func TestManagerNotifyFIFO(t *testing.T) {
	path, lines := fifoLines(t)
	link := NewFakeLink()
	d := startDirectorCfg(t, link, "d", 2, fakeConfigWith(t, "vrrp_notify_fifo "+path, 120, ""))
	eventually(t, 3*time.Second, "master", func() bool { return d.state() == StateMaster })
	d.mgr.Stop()
	want := []string{`INSTANCE "VI_1" BACKUP 120`, `INSTANCE "VI_1" MASTER 120`, `INSTANCE "VI_1" STOP 120`}
	expectLines(t, lines, want...)
}

// TestManagerInterfaceAppearsLater: a socket that cannot be opened at start (the
// interface is not there yet) does not stop the daemon; it is retried and the instance
// then elects as usual.
func TestManagerInterfaceAppearsLater(t *testing.T) {
	link := NewFakeLink()
	addr := netip.AddrFrom4([4]byte{10, 0, 0, 7})
	var mu sync.Mutex
	failures := 2
	d := &director{addr: addr, addrs: &FakeAddrs{}, ann: &FakeAnnouncer{}}
	d.mgr = NewManager(Kernel{
		Listen: func(ifname string, f Family, opts ConnOptions) (AdvertConn, error) {
			mu.Lock()
			defer mu.Unlock()
			if failures > 0 {
				failures--
				return nil, fmt.Errorf("no interface %s", ifname)
			}
			return link.Listen(f, opts, addr)
		},
		Addrs: d.addrs, Announcer: d.ann,
		PrimaryAddr: func(string, Family) (netip.Addr, error) { return addr, nil },
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := d.mgr.Start(context.Background(), fakeConfig(t, 100, "")); err != nil {
		t.Fatalf("start failed instead of retrying: %v", err)
	}
	t.Cleanup(d.mgr.Stop)
	eventually(t, 5*time.Second, "master once the socket opens", func() bool { return d.state() == StateMaster })
}

// TestManagerStartupDelay: with vrrp_startup_delay the instance stays in INIT, silent,
// through the delay, even while a peer advertises, and then starts as usual; a reload
// does not delay again.
func TestManagerStartupDelay(t *testing.T) {
	link := NewFakeLink()
	peer := startDirector(t, link, "peer", 2, 100, "")
	eventually(t, 3*time.Second, "peer master", func() bool { return peer.state() == StateMaster })
	cfg := fakeConfigWith(t, "vrrp_startup_delay 1", 150, "")
	started := time.Now()
	d := startDirectorCfg(t, link, "d", 1, cfg)
	for time.Since(started) < 700*time.Millisecond {
		if s := d.state(); s != StateInit {
			t.Fatalf("state %v %v after the start, within vrrp_startup_delay 1", s, time.Since(started))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if peer.state() != StateMaster {
		t.Fatalf("the peer lost mastership to a director still in its start-up delay: %v", peer.state())
	}
	eventually(t, 3*time.Second, "d master after the delay", func() bool { return d.state() == StateMaster })
	if took := time.Since(started); took < time.Second {
		t.Errorf("master %v after the start, before the delay ended", took)
	}
	if err := d.mgr.Reload(context.Background(), fakeConfigWith(t, "vrrp_startup_delay 1", 150, "")); err != nil {
		t.Fatal(err)
	}
	if s := d.state(); s != StateMaster {
		t.Errorf("state %v right after a reload: the delay applies at start only", s)
	}
}

// TestManagerNotifyPriorityChanges: with notify_priority_changes a master's new
// effective priority is a MASTER_PRIORITY line on the FIFO; without it, nothing.
func TestManagerNotifyPriorityChanges(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			path, lines := fifoLines(t)
			extra := ""
			if on {
				extra = "notify_priority_changes"
			}
			d := startDirectorCfg(t, NewFakeLink(), "d", 2, fakeConfigWith(t, "vrrp_notify_fifo "+path, 120, extra))
			eventually(t, 3*time.Second, "master", func() bool { return d.state() == StateMaster })
			d.mgr.Deliver("VI_1", Event{Kind: EvPriority, Priority: 130})
			d.mgr.Stop()
			want := []string{`INSTANCE "VI_1" BACKUP 120`, `INSTANCE "VI_1" MASTER 120`, `INSTANCE "VI_1" MASTER_PRIORITY 130`, `INSTANCE "VI_1" STOP 130`}
			if !on {
				want = []string{`INSTANCE "VI_1" BACKUP 120`, `INSTANCE "VI_1" MASTER 120`, `INSTANCE "VI_1" STOP 130`}
			}
			expectLines(t, lines, want...)
		})
	}
}

// TestManagerReloadRemoved: an instance that a reload deletes is notified as FAULT, or
// as DELETED with notify_deleted (keepalived); a daemon stop stays STOP.
func TestManagerReloadRemoved(t *testing.T) {
	for _, deleted := range []bool{false, true} {
		t.Run(fmt.Sprint(deleted), func(t *testing.T) {
			path, lines := fifoLines(t)
			extra, want := "", `INSTANCE "VI_1" FAULT 120`
			if deleted {
				extra, want = "notify_deleted", `INSTANCE "VI_1" DELETED 120`
			}
			d := startDirectorCfg(t, NewFakeLink(), "d", 2, fakeConfigWith(t, "vrrp_notify_fifo "+path, 120, extra))
			eventually(t, 3*time.Second, "master", func() bool { return d.state() == StateMaster })
			other, ds := parser.LoadBytes("other.conf", []byte(`
global_defs {
    vrrp_notify_fifo `+path+`
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        192.168.71.206/24
    }
}
`), parser.Options{ConfigID: "x"})
			if ds.ExitCode() != parser.ExitOK {
				t.Fatalf("config: %v", ds)
			}
			if err := d.mgr.Reload(context.Background(), other); err != nil {
				t.Fatal(err)
			}
			expectLines(t, lines, `INSTANCE "VI_1" BACKUP 120`, `INSTANCE "VI_1" MASTER 120`, want)
		})
	}
}

// TestManagerFIFOStatesOnReload: with fifo_write_vrrp_states_on_reload a reload writes
// the state of each kept instance to the FIFO; without it, nothing.
func TestManagerFIFOStatesOnReload(t *testing.T) {
	path, lines := fifoLines(t)
	global := "vrrp_notify_fifo " + path + "\n    fifo_write_vrrp_states_on_reload"
	d := startDirectorCfg(t, NewFakeLink(), "d", 2, fakeConfigWith(t, global, 120, ""))
	eventually(t, 3*time.Second, "master", func() bool { return d.state() == StateMaster })
	if err := d.mgr.Reload(context.Background(), fakeConfigWith(t, global, 120, "")); err != nil {
		t.Fatal(err)
	}
	expectLines(t, lines, `INSTANCE "VI_1" BACKUP 120`, `INSTANCE "VI_1" MASTER 120`, `INSTANCE "VI_1" MASTER 120`)
}

// TestManagerVirtualRoutes: the master holds its virtual_routes and virtual_rules, a
// backup does not; they follow the VIP on failover, and a reload of the master swaps a
// changed route and drops a removed rule without touching the others.
func TestManagerVirtualRoutes(t *testing.T) {
	routes := func(lines ...string) string {
		return "virtual_routes {\n" + strings.Join(lines, "\n") + "\n}"
	}
	const r1, r2, r3 = "10.99.0.0/24 via 10.0.0.254", "10.98.0.0/24 via 10.0.0.254", "10.97.0.0/24 via 10.0.0.254"
	const rule = "from 192.168.71.205 table 100"
	rules := "\nvirtual_rules {\n" + rule + "\n}"
	link := NewFakeLink()
	d1 := startDirector(t, link, "d1", 1, 150, routes(r1, r2)+rules)
	d2 := startDirector(t, link, "d2", 2, 100, routes(r1, r2)+rules)
	eventually(t, 3*time.Second, "d1 master", func() bool { return d1.state() == StateMaster })
	eventually(t, time.Second, "routes on d1", func() bool {
		return d1.routes.Present(r1) && d1.routes.Present(r2) && d1.routes.Present("rule "+rule)
	})
	if d2.routes.Present(r1) || d2.routes.Present(r2) || d2.routes.Present("rule "+rule) {
		t.Fatal("a backup holds the virtual routes")
	}
	if err := d1.mgr.Reload(context.Background(), fakeConfig(t, 150, routes(r1, r3))); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "routes swapped on d1, rule gone", func() bool {
		return d1.routes.Present(r1) && d1.routes.Present(r3) && !d1.routes.Present(r2) && !d1.routes.Present("rule "+rule)
	})
	d1.mgr.Stop()
	eventually(t, time.Second, "routes moved to d2", func() bool {
		return d2.state() == StateMaster && d2.routes.Present(r1) && d2.routes.Present(r2) && !d1.routes.Present(r1)
	})
}

// TestManagerStatic: static_ipaddress, static_routes and static_rules are installed at
// start whatever the state (a backup here), converged by a reload and removed at stop.
func TestManagerStatic(t *testing.T) {
	static := func(route string) string {
		return "static_ipaddress {\n10.1.1.1/32 dev eth0\n}\nstatic_routes {\n" + route + "\n}\nstatic_rules {\nfrom 10.1.1.1 table 200\n}\n"
	}
	config := func(route string) *parser.Config {
		t.Helper()
		cfg, ds := parser.LoadBytes("static.conf", []byte(static(route)+`
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    version 3
    priority 50
    advert_int 0.05
    virtual_ipaddress {
        `+fakeVIP+`
    }
}
`), parser.Options{ConfigID: "x"})
		if ds.ExitCode() != parser.ExitOK {
			t.Fatalf("config: %v", ds)
		}
		return cfg
	}
	const r1, r2 = "10.96.0.0/24 via 10.0.0.254", "10.95.0.0/24 via 10.0.0.254"
	link := NewFakeLink()
	peer := startDirector(t, link, "peer", 2, 100, "")
	eventually(t, 3*time.Second, "peer master", func() bool { return peer.state() == StateMaster })
	d := startDirectorCfg(t, link, "d", 1, config(r1))
	addr := netip.MustParsePrefix("10.1.1.1/32")
	if !d.addrs.Present("eth0", addr) || !d.routes.Present(r1) || !d.routes.Present("rule from 10.1.1.1 table 200") {
		t.Fatal("static address, route or rule missing after the start")
	}
	if err := d.mgr.Reload(context.Background(), config(r2)); err != nil {
		t.Fatal(err)
	}
	if d.routes.Present(r1) || !d.routes.Present(r2) || !d.addrs.Present("eth0", addr) {
		t.Error("the reload did not swap the static route, or dropped the address")
	}
	if s := d.state(); s != StateBackup {
		t.Errorf("state %v, want BACKUP under the higher peer", s)
	}
	d.mgr.Stop()
	if d.addrs.Present("eth0", addr) || d.routes.Present(r2) || d.routes.Present("rule from 10.1.1.1 table 200") {
		t.Error("static address, route or rule left after the stop")
	}
}

// TestManagerOwnerIgnoreAdverts: two address owners (priority 255); the one with the
// lower address yields to the other, unless it has owner_ignore_adverts.
func TestManagerOwnerIgnoreAdverts(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		t.Run(fmt.Sprint(ignore), func(t *testing.T) {
			extra := "state MASTER"
			if ignore {
				extra += "\nowner_ignore_adverts"
			}
			link := NewFakeLink()
			low := startDirector(t, link, "low", 1, 255, extra)
			eventually(t, 3*time.Second, "low master", func() bool { return low.state() == StateMaster })
			startDirector(t, link, "high", 2, 255, "state MASTER")
			deadline := time.Now().Add(500 * time.Millisecond) // ten advert intervals
			for time.Now().Before(deadline) {
				if !ignore && low.state() == StateBackup {
					return
				}
				if ignore && low.state() != StateMaster {
					t.Fatalf("the owner with owner_ignore_adverts left MASTER: %v", low.state())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !ignore {
				t.Fatalf("the lower-address owner stayed %v, want BACKUP", low.state())
			}
		})
	}
}

// TestManagerRcvBuf: an instance's kernel_rx_buf_size reaches the options of its
// interface's socket.
func TestManagerRcvBuf(t *testing.T) {
	link := NewFakeLink()
	got := make(chan int, 4)
	addr := netip.MustParseAddr("10.0.0.1")
	k := Kernel{
		Listen: func(_ string, f Family, opts ConnOptions) (AdvertConn, error) {
			got <- opts.RcvBuf
			return link.Listen(f, opts, addr)
		},
		Addrs: &FakeAddrs{}, Announcer: &FakeAnnouncer{},
		PrimaryAddr: func(string, Family) (netip.Addr, error) { return addr, nil },
	}
	m := NewManager(k, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := m.Start(context.Background(), fakeConfig(t, 100, "kernel_rx_buf_size 65536")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	select {
	case v := <-got:
		if v != 65536 {
			t.Errorf("RcvBuf %d, want 65536", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the socket was not opened")
	}
}

// fifoLines makes a FIFO in a temporary directory and returns its path and the lines a
// reader gets from it until the test ends.
func fifoLines(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vrrp.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return path, lines
}

// expectLines fails the test unless the next lines are want, each within 3 s.
func expectLines(t *testing.T, lines <-chan string, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-lines:
			if got != w {
				t.Fatalf("FIFO line %q, want %q", got, w)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no FIFO line; want %q", w)
		}
	}
}
