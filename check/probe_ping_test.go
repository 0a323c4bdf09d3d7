package check

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gokeepalived/parser"
	"gokeepalived/tests/netns"
)

// pingProbeFor builds a PING_CHECK probe to addr using sockets of the given mode.
func pingProbeFor(t testing.TB, addr string, mode PingMode) *pingProbe {
	t.Helper()
	p, err := newPingProbe(testChecker("PING_CHECK", netip.AddrPortFrom(netip.MustParseAddr(addr), 0)), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.mode = mode
	return p
}

// TestPingProbeLoopback pings the loopback addresses with both kinds of socket. A ping
// socket needs the process's group in net.ipv4.ping_group_range and a raw socket needs
// CAP_NET_RAW: a kind that cannot be opened is skipped.
func TestPingProbeLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "::1"} {
		for _, m := range []struct {
			name string
			mode PingMode
		}{{"auto", PingAuto}, {"ping socket", PingDgram}, {"raw socket", PingRaw}} {
			t.Run(addr+" "+m.name, func(t *testing.T) {
				p := pingProbeFor(t, addr, m.mode)
				if c, err := p.open(t.Context()); err != nil {
					// Raw (and auto, which falls back to raw) needs root; a ping socket
					// needs the group in net.ipv4.ping_group_range (gid 0 is in the CI
					// machine's "0 0"). CI has both: there it fails instead of skipping.
					netns.SkipUnlessCI(t, fmt.Sprintf("cannot open the socket: %v", err))
				} else {
					c.Close()
				}
				// Several in a row: replies to earlier requests must not confuse later ones.
				for i := range 3 {
					if r := runProbe(t, p, time.Second); !r.OK {
						t.Fatalf("check %d: %v", i, r.Err)
					}
				}
			})
		}
	}
}

// TestPingProbeNetns checks failures in a namespace: no route, and an address that never
// answers (on a link where no one has it).
func TestPingProbeNetns(t *testing.T) {
	netns.RequireRoot(t)
	ns, peer := netns.New(t, "ckping"), netns.New(t, "ckpeer")
	netns.Veth(t, ns, "v0", peer, "v1") // the peer has no address: nothing answers
	ns.Addr("v0", "10.8.0.1/24")
	// A new namespace allows no group ping sockets: auto mode falls back to a raw socket.
	if err := ns.Do(func() error {
		r := runProbe(t, pingProbeFor(t, "10.8.0.1", PingAuto), time.Second)
		if !r.OK {
			t.Errorf("auto mode without ping sockets: %v", r.Err)
		}
		if c, err := pingProbeFor(t, "10.8.0.1", PingDgram).open(t.Context()); err == nil {
			c.Close()
			t.Error("ping socket allowed in a new namespace: the fallback is not tested")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ns.Run("sh", "-c", "echo 0 2147483647 > /proc/sys/net/ipv4/ping_group_range")
	tests := []struct {
		name    string
		addr    string
		mode    PingMode
		wantErr string
	}{
		{"no route, ping socket", "192.0.2.1", PingDgram, "unreachable"},
		{"no route, raw socket", "192.0.2.1", PingRaw, "unreachable"},
		{"no answer, ping socket", "10.8.0.2", PingDgram, "no echo reply"},
		{"no answer, raw socket", "10.8.0.2", PingRaw, "no echo reply"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := pingProbeFor(t, tc.addr, tc.mode)
			var r Result
			if err := ns.Do(func() error {
				r = runProbe(t, p, 300*time.Millisecond)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if r.OK || !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Fatalf("OK=%v err=%v, want a failure mentioning %q", r.OK, r.Err, tc.wantErr)
			}
		})
	}
	// The same address answers once it is the namespace's own.
	ns.Addr("v0", "10.8.0.2/32")
	p := pingProbeFor(t, "10.8.0.2", PingAuto)
	if err := ns.Do(func() error {
		if r := runProbe(t, p, time.Second); !r.OK {
			t.Errorf("own address: %v", r.Err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestPingProbeFromConfig(t *testing.T) {
	// PING_CHECK ignores ports; connect_ip defaults to the real server's address.
	rs := &parser.RealServer{Addr: netip.MustParseAddr("127.0.0.1"), Port: 80}
	p, err := New(&parser.Checker{Type: "PING_CHECK", Conn: &parser.ConnOpts{}, Timing: &parser.CheckTiming{}}, rs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := runProbe(t, p, time.Second); !r.OK {
		t.Fatal(r.Err)
	}
}
