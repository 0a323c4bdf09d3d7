package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"gokeepalived/parser"
	"gokeepalived/tests/netns"
)

func TestTCPProbe(t *testing.T) {
	open := serveLoopback(t, func(c net.Conn) { c.Close() })
	silent := serveLoopback(t, sinkConn) // accepts, never answers: TCP_CHECK only connects
	tests := []struct {
		name    string
		dst     netip.AddrPort
		wantOK  bool
		wantErr string
	}{
		{"listening", open.addr(), true, ""},
		{"accepts and never answers", silent.addr(), true, ""},
		{"closed port", closedPort(t, "tcp4"), false, "connection refused"},
		{"SYN dropped (full accept queue)", fullBacklog(t), false, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, testChecker("TCP_CHECK", tc.dst))
			r := runProbe(t, p, 300*time.Millisecond)
			if r.OK != tc.wantOK {
				t.Fatalf("OK = %v (%v), want %v", r.OK, r.Err, tc.wantOK)
			}
			if tc.wantErr != "" && !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", r.Err, tc.wantErr)
			}
		})
	}
}

func TestTCPProbeDefaultsToRealServer(t *testing.T) {
	srv := serveLoopback(t, func(c net.Conn) { c.Close() })
	rs := &parser.RealServer{Addr: srv.addr().Addr(), Port: srv.addr().Port()}
	c := &parser.Checker{Type: "TCP_CHECK", Conn: &parser.ConnOpts{}, Timing: &parser.CheckTiming{}}
	p, err := New(c, rs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := runProbe(t, p, time.Second); !r.OK {
		t.Fatal(r.Err)
	}
	// Without a port anywhere the checker cannot be built.
	if _, err := New(c, &parser.RealServer{Addr: rs.Addr}, nil); err == nil || !strings.Contains(err.Error(), "no port") {
		t.Errorf("New without a port: %v", err)
	}
}

func TestTCPProbeNoDeadlineUsesConnectTimeout(t *testing.T) {
	c := testChecker("TCP_CHECK", fullBacklog(t))
	c.Timing.ConnectTimeout = parser.Duration(200 * time.Millisecond)
	p := mustNew(t, c)
	start := time.Now()
	r := p.Check(context.Background())
	if r.OK || time.Since(start) > 200*time.Millisecond+testSlack {
		t.Fatalf("OK=%v after %v", r.OK, time.Since(start))
	}
}

func TestTCPProbeCancel(t *testing.T) {
	p := mustNew(t, testChecker("TCP_CHECK", fullBacklog(t)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if r := p.Check(ctx); r.OK {
		t.Fatal("cancelled check passed")
	}
	if el := time.Since(start); el > 100*time.Millisecond+testSlack {
		t.Fatalf("cancelled check returned after %v", el)
	}
}

func TestTCPProbeBindTo(t *testing.T) {
	peers := make(chan netip.AddrPort, 4)
	srv := serveLoopback(t, func(c net.Conn) {
		peers <- addrPort(c.RemoteAddr())
		c.Close()
	})
	c := testChecker("TCP_CHECK", srv.addr())
	src := closedPort(t, "tcp4")
	c.Conn.BindTo = netip.MustParseAddr("127.0.0.2")
	c.Conn.BindPort = src.Port()
	p := mustNew(t, c)
	// Twice: the fixed source port must be reusable at once.
	for i := range 2 {
		if r := runProbe(t, p, time.Second); !r.OK {
			t.Fatalf("check %d: %v", i, r.Err)
		}
		if got := <-peers; got != netip.AddrPortFrom(c.Conn.BindTo, src.Port()) {
			t.Errorf("check %d: server saw %s, want 127.0.0.2:%d", i, got, src.Port())
		}
	}
}

func TestProbeNewErrors(t *testing.T) {
	dst := netip.MustParseAddrPort("127.0.0.1:1")
	bad := []struct {
		name string
		c    *parser.Checker
		want string
	}{
		{"nil", nil, "no checker"},
		{"unknown", &parser.Checker{Type: "FOO_CHECK"}, "unknown checker type"},
		{"BFD", &parser.Checker{Type: "BFD_CHECK"}, "not supported"},
		{"FILE without a path", &parser.Checker{Type: "FILE_CHECK", File: &parser.FileCheck{TrackFile: "f"}}, "has no file"},
		{"no address", &parser.Checker{Type: "TCP_CHECK"}, "no address"},
		{"family mismatch", func() *parser.Checker {
			c := testChecker("TCP_CHECK", dst)
			c.Conn.BindTo = netip.MustParseAddr("::1")
			return c
		}(), "different families"},
		{"HTTP without url", &parser.Checker{Type: "HTTP_GET", Conn: &parser.ConnOpts{ConnectIP: dst.Addr(), ConnectPort: 80}, HTTP: &parser.HTTPCheck{}}, "no url"},
		{"MISC without path", &parser.Checker{Type: "MISC_CHECK", Misc: &parser.MiscCheck{}}, "no misc_path"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.c, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestProbeSocketOptions checks fwmark and bind_if for real, in two network namespaces
// joined by a veth pair: a policy rule prohibits marked packets, and bind_if is both
// required (IPv6 link-local) and enforced (SO_BINDTODEVICE).
func TestProbeSocketOptions(t *testing.T) {
	netns.RequireRoot(t)
	a, b := netns.New(t, "cka"), netns.New(t, "ckb")
	netns.Veth(t, a, "va", b, "vb")
	a.Addr("va", "10.9.0.1/24")
	b.Addr("vb", "10.9.0.2/24")
	a.Addr("va", "fe80::1/64")
	b.Addr("vb", "fe80::2/64")
	a.Run("ip", "rule", "add", "pref", "100", "fwmark", "7", "prohibit")
	a.Run("ip", "-6", "rule", "add", "pref", "100", "fwmark", "7", "prohibit")

	var ln4, ln6 net.Listener
	if err := b.Do(func() (err error) {
		if ln4, err = net.Listen("tcp4", "10.9.0.2:0"); err != nil {
			return err
		}
		ln6, err = net.Listen("tcp6", "[::]:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv4 := serveOn(t, ln4, func(c net.Conn) { c.Close() })
	srv6 := serveOn(t, ln6, func(c net.Conn) { c.Close() })
	ll := netip.AddrPortFrom(netip.MustParseAddr("fe80::2"), srv6.addr().Port())

	tests := []struct {
		name    string
		typ     string
		dst     netip.AddrPort
		set     func(*parser.ConnOpts)
		wantOK  bool
		wantErr string
	}{
		{"TCP no mark", "TCP_CHECK", srv4.addr(), func(*parser.ConnOpts) {}, true, ""},
		{"TCP fwmark prohibited", "TCP_CHECK", srv4.addr(), func(co *parser.ConnOpts) { co.FWMark = 7 }, false, "permission denied"},
		{"TCP other fwmark", "TCP_CHECK", srv4.addr(), func(co *parser.ConnOpts) { co.FWMark = 8 }, true, ""},
		{"UDP fwmark prohibited", "UDP_CHECK", srv4.addr(), func(co *parser.ConnOpts) { co.FWMark = 7 }, false, "permission denied"},
		{"PING fwmark prohibited", "PING_CHECK", srv4.addr(), func(co *parser.ConnOpts) { co.FWMark = 7 }, false, "permission denied"},
		{"PING bind_if", "PING_CHECK", srv4.addr(), func(co *parser.ConnOpts) { co.BindIf = "va" }, true, ""},
		{"TCP bind_if right device", "TCP_CHECK", srv4.addr(), func(co *parser.ConnOpts) { co.BindIf = "va" }, true, ""},
		{"TCP bind_if wrong device", "TCP_CHECK", srv4.addr(), func(co *parser.ConnOpts) { co.BindIf = "lo" }, false, ""},
		{"TCP bind_if unknown device", "TCP_CHECK", srv4.addr(), func(co *parser.ConnOpts) { co.BindIf = "nosuchdev0" }, false, "bind_if"},
		{"TCP IPv6 link-local via bind_if", "TCP_CHECK", ll, func(co *parser.ConnOpts) { co.BindIf = "va" }, true, ""},
		{"TCP IPv6 link-local bindto", "TCP_CHECK", ll, func(co *parser.ConnOpts) {
			co.BindIf, co.BindTo = "va", netip.MustParseAddr("fe80::1")
		}, true, ""},
		{"PING IPv6 link-local via bind_if", "PING_CHECK", ll, func(co *parser.ConnOpts) { co.BindIf = "va" }, true, ""},
		{"PING IPv6 link-local bindto", "PING_CHECK", ll, func(co *parser.ConnOpts) {
			co.BindIf, co.BindTo = "va", netip.MustParseAddr("fe80::1")
		}, true, ""},
		{"TCP IPv6 link-local fwmark prohibited", "TCP_CHECK", ll, func(co *parser.ConnOpts) {
			co.BindIf, co.FWMark = "va", 7
		}, false, "permission denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testChecker(tc.typ, tc.dst)
			tc.set(c.Conn)
			p := mustNew(t, c)
			var r Result
			if err := a.Do(func() error {
				r = runProbe(t, p, 500*time.Millisecond)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if r.OK != tc.wantOK {
				t.Fatalf("OK = %v (%v), want %v", r.OK, r.Err, tc.wantOK)
			}
			if tc.wantErr != "" && !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", r.Err, tc.wantErr)
			}
		})
	}
}

func BenchmarkTCPProbe(b *testing.B) {
	srv := serveLoopback(b, func(c net.Conn) { c.Close() })
	p := mustNew(b, testChecker("TCP_CHECK", srv.addr()))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		if r := p.Check(cctx); !r.OK {
			b.Fatal(r.Err)
		}
		cancel()
	}
}

// TestTCPProbeClose checks how the probe ends its connection, as the server sees it:
// a reset by default, a normal close (EOF) with tcp_check_close fin.
func TestTCPProbeClose(t *testing.T) {
	for _, fin := range []bool{false, true} {
		t.Run(fmt.Sprintf("fin=%v", fin), func(t *testing.T) {
			seen := make(chan error, 1)
			srv := serveLoopback(t, func(c net.Conn) {
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err := c.Read(make([]byte, 1))
				seen <- err
				c.Close()
			})
			c := testChecker("TCP_CHECK", srv.addr())
			c.Conn.CloseFIN = fin
			if r := runProbe(t, mustNew(t, c), time.Second); !r.OK {
				t.Fatal(r.Err)
			}
			err := <-seen
			switch {
			case fin && err != io.EOF:
				t.Errorf("server read %v, want EOF", err)
			case !fin && !errors.Is(err, syscall.ECONNRESET):
				t.Errorf("server read %v, want a reset", err)
			}
		})
	}
}
