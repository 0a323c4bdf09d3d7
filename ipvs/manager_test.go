package ipvs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gokeepalived/check"
	"gokeepalived/parser"
)

func managerConfig(t *testing.T, ports ...int) *parser.Config {
	t.Helper()
	rs := ""
	for _, p := range ports {
		rs += fmt.Sprintf(`
    real_server 127.0.0.1 %d {
        weight 2
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }`, p)
	}
	text := fmt.Sprintf(`
virtual_server 10.0.0.1 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
%s
}
`, rs)
	cfg, ds := parser.LoadBytes("m.conf", []byte(text), parser.Options{ConfigID: "x"})
	if ds.ExitCode() != parser.ExitOK {
		t.Fatalf("config: %v", ds)
	}
	return cfg
}

func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestManagerFollowsHealth: real servers whose listener closes leave the table after
// their check fails, come back when it answers again, and Stop removes what we own.
func TestManagerFollowsHealth(t *testing.T) {
	ln1, p1 := listen(t)
	defer ln1.Close()
	ln2, p2 := listen(t)
	k := &Fake{}
	m := NewManager(k, slog.New(slog.NewTextHandler(io.Discard, nil)))
	events := make(chan RealServerEvent, 16)
	m.OnRealServer = func(e RealServerEvent) { events <- e }
	if err := m.Start(context.Background(), managerConfig(t, p1, p2)); err != nil {
		t.Fatal(err)
	}
	dests := func() string { return k.Dump() }
	waitFor(t, 5*time.Second, "both destinations", func() bool {
		d := dests()
		return strings.Contains(d, fmt.Sprintf(":%d", p1)) && strings.Contains(d, fmt.Sprintf(":%d", p2))
	})
	ln2.Close()
	waitFor(t, 5*time.Second, "the closed one removed", func() bool { return !strings.Contains(dests(), fmt.Sprintf(":%d", p2)) })
	select {
	case e := <-events:
		for e.Up { // skip the initial ups
			e = <-events
		}
		if e.RS.Port != uint16(p2) {
			t.Errorf("down event for port %d, want %d", e.RS.Port, p2)
		}
	case <-time.After(time.Second):
		t.Error("no real server event")
	}
	ln2b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p2))
	if err != nil {
		t.Fatal(err)
	}
	defer ln2b.Close()
	go func() {
		for {
			c, err := ln2b.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	waitFor(t, 5*time.Second, "it returns", func() bool { return strings.Contains(dests(), fmt.Sprintf(":%d", p2)) })
	if err := m.Stop(false); err != nil {
		t.Fatal(err)
	}
	if s, _ := k.Services(); len(s) != 0 {
		t.Errorf("services left after Stop: %v", s)
	}
}

// TestManagerHASuspend: with ha_suspend the checks of a virtual server run only while
// this director holds its address; meanwhile its real servers keep their last state.
func TestManagerHASuspend(t *testing.T) {
	ln, port := listen(t)
	defer ln.Close()
	cfg := managerConfig(t, port)
	cfg.VirtualServers[0].HASuspend = true
	k := &Fake{}
	m := NewManager(k, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := m.SetHeld(nil); err != nil { // this director holds nothing
		t.Fatal(err)
	}
	if err := m.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(false)
	attempts := func() uint64 {
		var n uint64
		for _, c := range m.Status().Checker.Checks {
			n += c.Attempts
		}
		return n
	}
	if n := len(m.Status().Checker.Checks); n != 0 {
		t.Fatalf("%d checks scheduled while the address is not held", n)
	}
	if err := m.SetHeld([]netip.Addr{netip.MustParseAddr("10.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "checks running once the VIP is held", func() bool { return attempts() > 0 })
}

// TestManagerReload: a reload that adds a real server programs only that destination;
// the other keeps its health (no re-check storm) and nothing else is written.
func TestManagerReload(t *testing.T) {
	ln1, p1 := listen(t)
	defer ln1.Close()
	ln2, p2 := listen(t)
	defer ln2.Close()
	k := &Fake{}
	m := NewManager(k, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := m.Start(context.Background(), managerConfig(t, p1)); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(false)
	waitFor(t, 5*time.Second, "first destination", func() bool { return strings.Contains(k.Dump(), fmt.Sprintf(":%d", p1)) })
	k.ResetCalls()
	if err := m.Reload(managerConfig(t, p1, p2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "second destination", func() bool { return strings.Contains(k.Dump(), fmt.Sprintf(":%d", p2)) })
	if w := k.Writes(); w != 1 {
		t.Errorf("reload made %d kernel writes, want 1 (the new destination)", w)
	}
}

// farmConf is n virtual servers TCP 10.0.<i>.1:80 with r real servers 10.1.<i>.<j+1>:8080
// each and no checker: the tests report health through Manager.transition. vsExtra and
// rsExtra are added to every virtual and real server.
func farmConf(n, r int, vsExtra, rsExtra string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "virtual_server 10.0.%d.1 80 {\nlb_algo rr\nprotocol TCP\n%s\n", i, vsExtra)
		for j := range r {
			fmt.Fprintf(&b, "real_server 10.1.%d.%d 8080 {\n%s\n}\n", i, j+1, rsExtra)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// startManager starts a manager over k and cfg and waits for its first, full, pass.
func startManager(t testing.TB, k *Fake, cfg *parser.Config) *Manager {
	t.Helper()
	m := NewManager(k, slog.New(slog.DiscardHandler))
	startedManager(t, m, cfg)
	return m
}

// startedManager starts m over cfg and waits for its first, full, pass.
func startedManager(t testing.TB, m *Manager, cfg *parser.Config) {
	t.Helper()
	if err := m.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(true) })
	waitFor(t, 5*time.Second, "the first pass", func() bool { return m.Status().Last.Owned != nil })
}

// setHealth reports real server j of virtual server i up or down, as the check runner
// does.
func setHealth(m *Manager, cfg *parser.Config, i, j int, up bool) {
	vs := cfg.VirtualServers[i]
	m.transition(check.Transition{RS: rsID(RSKey(vs, vs.RealServers[j])), Up: up, Reason: "test"})
}

// callLines returns every call recorded by k.
func callLines(k *Fake) []string {
	var out []string
	for _, c := range k.Calls() {
		out = append(out, c.String())
	}
	return out
}

// TestManagerTargetedPass: a real server going down in a configuration of many virtual
// servers costs one read of its service's destinations and one write; the table is not
// dumped.
func TestManagerTargetedPass(t *testing.T) {
	for _, tc := range []struct {
		name, rsExtra, gone, write string
	}{
		{"removed", "", "10.1.7.3:8080 NAT weight 1", "del-dest TCP 10.0.7.1:80 -> 10.1.7.3:8080"},
		{"inhibit_on_failure", "inhibit_on_failure", "10.1.7.3:8080 NAT weight 1", "update-dest TCP 10.0.7.1:80 -> 10.1.7.3:8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := load(t, farmConf(50, 4, "", tc.rsExtra))
			k := &Fake{}
			m := startManager(t, k, cfg)
			k.ResetCalls()
			setHealth(m, cfg, 7, 2, false)
			waitFor(t, 5*time.Second, "the destination down", func() bool { return !strings.Contains(k.Dump(), tc.gone) })
			m.Stop(true) // the loop is done: every call of the pass is recorded
			want := []string{"destinations TCP 10.0.7.1:80", tc.write}
			if got := callLines(k); !slices.Equal(got, want) {
				t.Errorf("kernel calls:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestManagerTargetedReadds: a targeted pass over a service that vanished from the
// kernel adds it back with its destinations.
func TestManagerTargetedReadds(t *testing.T) {
	cfg := load(t, farmConf(5, 3, "", ""))
	k := &Fake{}
	m := startManager(t, k, cfg)
	want := k.Dump()
	svc := Service{Family: IPv4, Protocol: TCP, Addr: netip.MustParseAddr("10.0.3.1"), Port: 80}
	if err := k.DelService(svc); err != nil {
		t.Fatal(err)
	}
	k.ResetCalls()
	setHealth(m, cfg, 3, 0, false)
	setHealth(m, cfg, 3, 0, true)
	waitFor(t, 5*time.Second, "the service back", func() bool { return k.Dump() == want })
	m.Stop(true)
	if n := k.Count("services"); n != 0 {
		t.Errorf("%d dumps of the table", n)
	}
	if n, d := k.Count("add-service"), k.Count("add-dest"); n != 1 || d != 3 {
		t.Errorf("%d services and %d destinations added, want 1 and 3: %q", n, d, callLines(k))
	}
	if !m.Status().Last.Owned.Has(svc.Key()) {
		t.Error("the service added back is not in the last pass's owned services")
	}
}

// TestManagerTargetedQuorum: a targeted pass that loses the quorum swaps the pool for
// the sorry server and reports it, as a full pass does; regaining it swaps back.
func TestManagerTargetedQuorum(t *testing.T) {
	cfg := load(t, farmConf(3, 3, "quorum 2\nsorry_server 10.9.9.9 80", ""))
	k := &Fake{}
	m := NewManager(k, slog.New(slog.NewTextHandler(io.Discard, nil)))
	events := make(chan QuorumEvent, 4)
	m.OnQuorum = func(e QuorumEvent) { events <- e }
	startedManager(t, m, cfg)
	k.ResetCalls()
	expect := func(up bool) {
		t.Helper()
		select {
		case e := <-events:
			if e.Up != up || VSKey(e.VS) != VSKey(cfg.VirtualServers[1]) {
				t.Errorf("quorum event %v up=%v, want %v up=%v", VSKey(e.VS), e.Up, VSKey(cfg.VirtualServers[1]), up)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no quorum event (up=%v)", up)
		}
	}
	setHealth(m, cfg, 1, 0, false)
	setHealth(m, cfg, 1, 1, false) // live weight 1 < quorum 2
	expect(false)
	sorry := "TCP 10.0.1.1:80 rr\n  -> 10.9.9.9:80 NAT weight 1\nTCP 10.0.2.1:80"
	if d := k.Dump(); !strings.Contains(d, sorry) {
		t.Errorf("quorum lost, table:\n%s", d)
	}
	setHealth(m, cfg, 1, 0, true)
	expect(true)
	if d := k.Dump(); strings.Contains(d, "10.9.9.9") || !strings.Contains(d, "10.1.1.1:8080") {
		t.Errorf("quorum regained, table:\n%s", d)
	}
	m.Stop(true)
	if n := k.Count("services"); n != 0 {
		t.Errorf("%d dumps of the table", n)
	}
	if q := m.Status().Quorum[VSKey(cfg.VirtualServers[1])]; !q {
		t.Error("quorum state not recorded")
	}
}

// TestManagerTargetedDuplicate: a service that an earlier virtual server defines is
// left alone by a later one that defines it too, when the later one's health changes.
func TestManagerTargetedDuplicate(t *testing.T) {
	cfg := load(t, `
virtual_server_group g {
	10.0.0.1 80
	10.0.0.2 80
}
virtual_server 10.0.0.1 80 {
	lb_algo rr
	protocol TCP
	real_server 10.1.0.1 8080 {
	}
}
virtual_server group g {
	lb_algo rr
	protocol TCP
	real_server 10.2.0.1 8080 {
	}
	real_server 10.2.0.2 8080 {
	}
}
`)
	k := &Fake{}
	m := startManager(t, k, cfg)
	k.ResetCalls()
	setHealth(m, cfg, 1, 0, false)
	waitFor(t, 5*time.Second, "the destination removed", func() bool { return !strings.Contains(k.Dump(), "10.2.0.1") })
	m.Stop(true)
	want := []string{"destinations TCP 10.0.0.2:80", "del-dest TCP 10.0.0.2:80 -> 10.2.0.1:8080"}
	if got := callLines(k); !slices.Equal(got, want) {
		t.Errorf("kernel calls:\n got %q\nwant %q", got, want)
	}
	table := "TCP 10.0.0.1:80 rr\n  -> 10.1.0.1:8080 NAT weight 1\nTCP 10.0.0.2:80 rr\n  -> 10.2.0.2:8080 NAT weight 1\n"
	if d := k.Dump(); d != table {
		t.Errorf("table:\n%s\nwant:\n%s", d, table)
	}
}

// TestManagerTargetedCoalesces: the health changes that arrive while a pass runs are
// taken together by the next pass, which reads each virtual server's services once.
func TestManagerTargetedCoalesces(t *testing.T) {
	cfg := load(t, farmConf(10, 4, "", ""))
	k := &Fake{}
	m := startManager(t, k, cfg)
	k.ResetCalls()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	k.SetHook(func(Call) error {
		once.Do(func() { close(entered); <-release })
		return nil
	})
	setHealth(m, cfg, 0, 0, false)
	<-entered // the first pass is reading; these wait for the next
	setHealth(m, cfg, 0, 1, false)
	setHealth(m, cfg, 4, 0, false)
	setHealth(m, cfg, 4, 1, false)
	setHealth(m, cfg, 4, 2, false)
	setHealth(m, cfg, 9, 3, false)
	close(release)
	waitFor(t, 5*time.Second, "every destination removed", func() bool {
		d := k.Dump()
		return !strings.Contains(d, "10.1.0.2:") && !strings.Contains(d, "10.1.4.3:") && !strings.Contains(d, "10.1.9.4:")
	})
	m.Stop(true)
	reads := map[string]int{}
	for _, c := range k.Calls() {
		if c.Op == "destinations" {
			reads[c.Service.String()]++
		}
	}
	want := map[string]int{"TCP 10.0.0.1:80": 2, "TCP 10.0.4.1:80": 1, "TCP 10.0.9.1:80": 1}
	if !maps.Equal(reads, want) || k.Count("del-dest") != 6 || k.Count("services") != 0 {
		t.Errorf("reads %v (want %v), %d deletions (want 6), %d dumps:\n%q", reads, want, k.Count("del-dest"), k.Count("services"), callLines(k))
	}
}

// TestManagerTargetedRetry: a targeted pass that fails is retried by a full pass.
func TestManagerTargetedRetry(t *testing.T) {
	cfg := load(t, farmConf(3, 2, "", ""))
	k := &Fake{}
	m := NewManager(k, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.retryEvery = 10 * time.Millisecond
	startedManager(t, m, cfg)
	k.ResetCalls()
	var once sync.Once
	k.SetHook(func(c Call) error {
		var err error
		if c.Op == "del-dest" {
			once.Do(func() { err = errors.New("netlink says no") })
		}
		return err
	})
	setHealth(m, cfg, 2, 1, false)
	waitFor(t, 5*time.Second, "the destination removed by the retry", func() bool { return !strings.Contains(k.Dump(), "10.1.2.2") })
	m.Stop(true)
	want := []string{
		"destinations TCP 10.0.2.1:80", "del-dest TCP 10.0.2.1:80 -> 10.1.2.2:8080", // targeted, fails
		"services", "destinations TCP 10.0.0.1:80", "destinations TCP 10.0.1.1:80", "destinations TCP 10.0.2.1:80",
		"del-dest TCP 10.0.2.1:80 -> 10.1.2.2:8080", // full
	}
	if got := callLines(k); !slices.Equal(got, want) {
		t.Errorf("kernel calls:\n got %q\nwant %q", got, want)
	}
	if errs := m.Status().Errors; len(errs) != 0 {
		t.Errorf("errors after the retry: %v", errs)
	}
}

// TestManagerReloadFullPass: a reload runs a full pass, which deletes the services of
// the virtual servers removed.
func TestManagerReloadFullPass(t *testing.T) {
	cfg := load(t, farmConf(3, 2, "", ""))
	k := &Fake{}
	m := startManager(t, k, cfg)
	k.ResetCalls()
	if err := m.Reload(load(t, farmConf(2, 2, "", ""))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the service removed", func() bool { return !strings.Contains(k.Dump(), "10.0.2.1:80") })
	m.Stop(true)
	want := []string{"services", "destinations TCP 10.0.0.1:80", "destinations TCP 10.0.1.1:80", "del-service TCP 10.0.2.1:80"}
	if got := callLines(k); !slices.Equal(got, want) {
		t.Errorf("kernel calls:\n got %q\nwant %q", got, want)
	}
	if m.Status().Last.Owned.Has(Service{Family: IPv4, Protocol: TCP, Addr: netip.MustParseAddr("10.0.2.1"), Port: 80}.Key()) {
		t.Error("the deleted service is still owned")
	}
}

// TestManagerChecksAfterFirstPass: the checks start only once the first pass has
// programmed the table, and a reload meanwhile replaces the checks that will start.
func TestManagerChecksAfterFirstPass(t *testing.T) {
	ln1, p1 := listen(t)
	defer ln1.Close()
	ln2, p2 := listen(t)
	defer ln2.Close()
	k := &Fake{}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	k.SetHook(func(Call) error {
		once.Do(func() { close(entered); <-release })
		return nil
	})
	m := NewManager(k, slog.New(slog.DiscardHandler))
	if err := m.Start(context.Background(), managerConfig(t, p1, p2)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(true) })
	<-entered // the first pass is in its first kernel call
	if n := m.Status().Checker.Stats.Checks; n != 0 {
		t.Fatalf("%d checks run during the first pass, want none", n)
	}
	if err := m.Reload(managerConfig(t, p1)); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitFor(t, 5*time.Second, "the check of the reloaded configuration", func() bool {
		return m.Status().Checker.Stats.Checks == 1
	})
}
