//go:build linux

package vrrp

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"gokeepalived/check"
	"gokeepalived/parser"
	"gokeepalived/tests/netns"
)

func trackPingCfg(interval, timeout time.Duration, rise, fall int, addrs ...string) *parser.TrackPing {
	cfg := &parser.TrackPing{
		Name: "gw", Interval: parser.Duration(interval), Timeout: parser.Duration(timeout), Rise: rise, Fall: fall,
	}
	for _, a := range addrs {
		cfg.Addresses = append(cfg.Addresses, netip.MustParseAddr(a))
	}
	return cfg
}

// trackPingIn makes a ping tracker inside ns (nil: the test's own namespace).
func trackPingIn(t *testing.T, ns *netns.NS, cfg *parser.TrackPing, mode check.PingMode) *PingTracker {
	t.Helper()
	var pt *PingTracker
	mk := func() (err error) {
		pt, err = newPingTracker(cfg, nil, mode)
		return err
	}
	var err error
	if ns == nil {
		err = mk()
	} else {
		err = ns.Do(mk)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

// trackVeth joins a and b with a veth pair named eth0 on both sides, both up. The
// pair is created inside a (netns.Veth creates it in the host namespace under names
// that two test processes running at once may both pick).
func trackVeth(a, b *netns.NS) {
	a.Run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b.Name)
	a.Run("ip", "link", "set", "eth0", "up")
	b.Run("ip", "link", "set", "eth0", "up")
}

func trackWaitUp(t *testing.T, rec *trackRecorder, n int) TrackStatus {
	t.Helper()
	return rec.wait(t, 5*time.Second, fmt.Sprintf("%d targets up", n), func(s TrackStatus) bool { return !s.Init && s.Value == n })
}

// TestTrackPingLoopback pings 127.0.0.1 (and ::1 when the host has it) from the
// test's own namespace with whichever socket is allowed.
func TestTrackPingLoopback(t *testing.T) {
	t.Parallel()
	addrs := []string{"127.0.0.1"}
	if b, err := os.ReadFile("/proc/net/if_inet6"); err == nil && strings.Contains(string(b), "00000000000000000000000000000001") {
		addrs = append(addrs, "::1")
	}
	pt, err := NewPingTracker(trackPingCfg(20*time.Millisecond, 15*time.Millisecond, 1, 1, addrs...), nil)
	if err != nil {
		netns.RequireRoot(t) // an unprivileged user may be refused both sockets
		t.Fatal(err)
	}
	rec := &trackRecorder{}
	trackRun(t, rec, pt.Run)
	s := trackWaitUp(t, rec, len(addrs))
	if !s.OK || s.Total != len(addrs) || s.Kind != TrackPing || s.Name != "gw" {
		t.Errorf("status %+v", s)
	}
	if first := rec.reports()[0]; !first.Init || first.Value != 0 {
		t.Errorf("first report %+v is not the init state", first)
	}
}

// TestTrackPingSockets pings both loopback addresses of a new namespace through raw
// sockets and through ping sockets (allowed there by ping_group_range).
func TestTrackPingSockets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mode check.PingMode
		raw  bool
	}{{"raw", check.PingRaw, true}, {"ping socket", check.PingDgram, false}, {"auto in a new namespace", check.PingAuto, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := netns.New(t, "ping")
			if tc.mode == check.PingDgram {
				ns.Run("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
			}
			pt := trackPingIn(t, ns, trackPingCfg(20*time.Millisecond, 15*time.Millisecond, 1, 1, "127.0.0.1", "::1"), tc.mode)
			for i, s := range pt.socks {
				if s == nil || s.Raw() != tc.raw {
					t.Fatalf("socket %d = %+v, want raw %v", i, s, tc.raw)
				}
			}
			rec := &trackRecorder{}
			trackRun(t, rec, pt.Run)
			trackWaitUp(t, rec, 2)
		})
	}
}

// TestTrackPingLab pings two addresses in another namespace and takes them away: an
// address deleted, then the link down. Interval 50 ms, rise 2, fall 3, quorum 2.
func TestTrackPingLab(t *testing.T) {
	t.Parallel()
	a, b := netns.New(t, "pinga"), netns.New(t, "pingb")
	trackVeth(a, b)
	a.Addr("eth0", "10.93.0.1/24")
	b.Addr("eth0", "10.93.0.2/24")
	b.Addr("eth0", "10.93.0.3/24")
	const interval, rise, fall = 50 * time.Millisecond, 2, 3
	cfg := trackPingCfg(interval, 40*time.Millisecond, rise, fall, "10.93.0.2", "10.93.0.3")
	cfg.Quorum, cfg.Weight = 2, 10
	pt := trackPingIn(t, a, cfg, check.PingAuto)
	rec := &trackRecorder{}
	trackRun(t, rec, pt.Run)

	s := trackWaitUp(t, rec, 2)
	if eff, fault, reason, _ := EffectivePriority(100, []TrackStatus{s}); eff != 120 || fault {
		t.Errorf("both up: priority %d fault %v (%s); want 120", eff, fault, reason)
	}

	begin := time.Now()
	b.Run("ip", "addr", "del", "10.93.0.3/24", "dev", "eth0")
	s = trackWaitUp(t, rec, 1)
	if d := time.Since(begin); d < (fall-1)*interval {
		t.Errorf("down after %v, before fall=%d rounds", d, fall)
	}
	if !strings.Contains(s.Detail, "down: 10.93.0.3 (no reply within 40ms)") || s.OK != false {
		t.Errorf("one down: %+v", s)
	}
	if eff, fault, reason, _ := EffectivePriority(100, []TrackStatus{s}); eff != 110 || !fault || !strings.Contains(reason, "quorum 2 lost") {
		t.Errorf("one up: priority %d fault %v (%s); want 110 and a quorum fault", eff, fault, reason)
	}

	begin = time.Now()
	b.Addr("eth0", "10.93.0.3/24")
	trackWaitUp(t, rec, 2)
	if d := time.Since(begin); d < (rise-1)*interval {
		t.Errorf("up after %v, before rise=%d rounds", d, rise)
	}

	b.Run("ip", "link", "set", "eth0", "down")
	s = trackWaitUp(t, rec, 0)
	if _, fault, _, _ := EffectivePriority(100, []TrackStatus{s}); !fault {
		t.Errorf("none up: no fault: %+v", s)
	}
	b.Run("ip", "link", "set", "eth0", "up")
	trackWaitUp(t, rec, 2)

	all := rec.reports()
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Errorf("report %d repeats the previous one: %+v", i, all[i])
		}
	}
}

// TestTrackPingMany pings 50 addresses with one tracker: another namespace answers
// for a whole /24 (a local route), which then goes away.
func TestTrackPingMany(t *testing.T) {
	t.Parallel()
	a, b := netns.New(t, "manya"), netns.New(t, "manyb")
	trackVeth(a, b)
	a.Addr("eth0", "10.94.0.1/24")
	b.Addr("eth0", "10.94.0.2/24")
	a.Run("ip", "route", "add", "10.94.1.0/24", "via", "10.94.0.2")
	b.Run("ip", "route", "add", "local", "10.94.1.0/24", "dev", "lo")
	var addrs []string
	for i := 1; i <= 50; i++ {
		addrs = append(addrs, fmt.Sprintf("10.94.1.%d", i))
	}
	cfg := trackPingCfg(50*time.Millisecond, 40*time.Millisecond, 1, 2, addrs...)
	pt := trackPingIn(t, a, cfg, check.PingAuto)
	rec := &trackRecorder{}
	trackRun(t, rec, pt.Run)
	trackWaitUp(t, rec, 50)
	b.Run("ip", "route", "del", "local", "10.94.1.0/24", "dev", "lo")
	trackWaitUp(t, rec, 0)
	b.Run("ip", "route", "add", "local", "10.94.1.0/24", "dev", "lo")
	trackWaitUp(t, rec, 50)
}
