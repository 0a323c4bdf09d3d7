package ipvs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

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

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
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
