package vrrp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gokeepalived/parser"
)

var fakeVIPAddr = netip.MustParsePrefix(fakeVIP).Addr()

// blocked reports whether the director's firewall drops traffic to the VIP.
func (d *director) blocked() bool { return d.fw.Blocked(fakeVIPAddr) }

// blockCalls counts the director's Block calls.
func (d *director) blockCalls() int {
	n := 0
	for _, c := range d.fw.Calls() {
		if c.Op == "block" {
			n++
		}
	}
	return n
}

// TestFirewallNoAccept: a no_accept master drops the traffic to its VIP while it holds
// it; the backup does not; a master that becomes backup, or stops, lets it through
// again, and the new master blocks.
func TestFirewallNoAccept(t *testing.T) {
	link := NewFakeLink()
	d1 := startDirector(t, link, "d1", 1, 150, "no_accept")
	eventually(t, 3*time.Second, "d1 master, VIP blocked", func() bool {
		return d1.state() == StateMaster && d1.holdsVIP() && d1.blocked()
	})
	d2 := startDirector(t, link, "d2", 2, 200, "no_accept")
	eventually(t, 3*time.Second, "d2 preempts, blocks; d1 backup, unblocked", func() bool {
		return d2.state() == StateMaster && d2.blocked() && d1.state() == StateBackup && !d1.blocked()
	})
	if d1.holdsVIP() {
		t.Error("the backup holds the VIP")
	}
	d2.mgr.Stop()
	if d2.blocked() {
		t.Error("a stopped master still blocks its VIP")
	}
	eventually(t, 3*time.Second, "d1 master again, blocked", func() bool {
		return d1.state() == StateMaster && d1.blocked()
	})
	if got := d1.mgr.Status()[0].NoAccept; got != "no_accept" {
		t.Errorf("NoAccept = %q, want no_accept", got)
	}
}

// TestFirewallNeverBlocks: an instance that accepts (the default, or explicitly), and
// the address owner even in strict mode, never touch the firewall.
func TestFirewallNeverBlocks(t *testing.T) {
	for _, tc := range []struct{ name, global, extra string }{
		{"default accept", "", ""},
		{"explicit accept", "", "accept"},
		{"owner in strict mode", "vrrp_strict", "state MASTER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prio := 150
			if tc.global != "" {
				prio = 255
			}
			d := startDirectorCfg(t, NewFakeLink(), "d", 1, fakeConfigWith(t, tc.global, prio, tc.extra))
			eventually(t, 3*time.Second, "master with the VIP", func() bool { return d.state() == StateMaster && d.holdsVIP() })
			d.mgr.Stop()
			if n := d.blockCalls(); n != 0 {
				t.Errorf("%d Block calls: %+v", n, d.fw.Calls())
			}
			if got := NoAcceptReason(fakeConfigWith(t, tc.global, prio, tc.extra).Instances[0]); got != "" {
				t.Errorf("NoAcceptReason = %q, want none", got)
			}
		})
	}
}

// TestFirewallStrict: vrrp_strict makes no_accept the default; the status says why.
func TestFirewallStrict(t *testing.T) {
	d := startDirectorCfg(t, NewFakeLink(), "d", 1, fakeConfigWith(t, "vrrp_strict", 150, ""))
	eventually(t, 3*time.Second, "master, VIP blocked", func() bool { return d.state() == StateMaster && d.blocked() })
	if got := d.mgr.Status()[0].NoAccept; got != "vrrp_strict" {
		t.Errorf("NoAccept = %q, want vrrp_strict", got)
	}
}

// TestFirewallReload: a reload that switches a master between accept and no_accept, or
// changes its addresses, changes its firewall rules at once.
func TestFirewallReload(t *testing.T) {
	d := startDirector(t, NewFakeLink(), "d", 1, 150, "")
	eventually(t, 3*time.Second, "master", func() bool { return d.state() == StateMaster && d.holdsVIP() })
	if d.blocked() {
		t.Fatal("accept master blocks")
	}
	reload := func(extra string) {
		t.Helper()
		if err := d.mgr.Reload(context.Background(), fakeConfig(t, 150, extra)); err != nil {
			t.Fatal(err)
		}
	}
	reload("no_accept")
	eventually(t, time.Second, "blocked after reload to no_accept", d.blocked)
	extra := netip.MustParseAddr("192.168.71.206")
	reload("no_accept\nvirtual_ipaddress_excluded {\n192.168.71.206/24\n}")
	eventually(t, time.Second, "the added address blocked too", func() bool { return d.blocked() && d.fw.Blocked(extra) })
	reload("accept")
	eventually(t, time.Second, "unblocked after reload to accept", func() bool { return !d.blocked() && !d.fw.Blocked(extra) })
	if d.state() != StateMaster || !d.holdsVIP() {
		t.Errorf("the reload should keep the master and its VIP: %v", d.state())
	}
	plan := PlanReload(fakeConfig(t, 150, ""), fakeConfig(t, 150, "no_accept")).String()
	if !strings.Contains(plan, "instance VI_1: accept true -> false") {
		t.Errorf("plan does not show the accept change:\n%s", plan)
	}
}

// TestFirewallErrors: a firewall that fails is logged and counted; the instance still
// becomes master with its VIP.
func TestFirewallErrors(t *testing.T) {
	link := NewFakeLink()
	d := startDirectorCfg(t, link, "d", 1, fakeConfig(t, 150, "no_accept"))
	d.fw.Fail(errors.New("nf_tables missing"))
	eventually(t, 3*time.Second, "master with the VIP despite the firewall", func() bool {
		return d.state() == StateMaster && d.holdsVIP()
	})
	eventually(t, time.Second, "error counted", func() bool { return d.mgr.Status()[0].FirewallErrors > 0 })
}

// TestNoAcceptReason names why traffic is dropped.
func TestNoAcceptReason(t *testing.T) {
	for _, tc := range []struct{ global, extra, want string }{
		{"", "no_accept", "no_accept"},
		{"vrrp_strict", "", "vrrp_strict"},
		{"", "strict_mode", "strict_mode"},
		{"vrrp_strict", "no_accept", "no_accept, vrrp_strict"},
		{"vrrp_strict", "accept", ""}, // VRRPv3: accept is allowed in strict mode
		{"", "", ""},
	} {
		if got := NoAcceptReason(fakeConfigWith(t, tc.global, 150, tc.extra).Instances[0]); got != tc.want {
			t.Errorf("global %q, instance %q: %q, want %q", tc.global, tc.extra, got, tc.want)
		}
	}
}

// TestLogAcceptMode: the start-up line says the VIP will not answer and why, or that
// no_accept is not enforced without a firewall.
func TestLogAcceptMode(t *testing.T) {
	cfg := fakeConfigWith(t, "vrrp_strict", 150, "")
	for _, tc := range []struct {
		name string
		fw   Firewall
		want []string
	}{
		{"firewall", &FakeFirewall{}, []string{"drops all traffic", "will not answer ping", "because=vrrp_strict", `firewall="fake firewall"`}},
		{"none", nil, []string{"no_accept is not enforced", "because=vrrp_strict"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			in := newInstance(cfg.Instances[0], &cfg.Global, Kernel{Firewall: tc.fw}, slog.New(slog.NewTextHandler(&buf, nil)))
			in.logAcceptMode()
			for _, w := range tc.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, buf.String())
				}
			}
		})
	}
}

// TestFirewallTable: global_defs nftables names the table; keepalived's name otherwise.
func TestFirewallTable(t *testing.T) {
	for global, want := range map[string]string{"": "keepalived", "nftables": "keepalived", "nftables gka": "gka"} {
		if got := FirewallTable(&fakeConfigWith(t, global, 150, "").Global); got != want {
			t.Errorf("%q: %q, want %q", global, got, want)
		}
	}
	if _, ds := parser.LoadBytes("n.conf", []byte("global_defs {\nnftables \"\"\n}\n"), parser.Options{}); ds.ExitCode() == parser.ExitOK {
		t.Error("an empty table name is accepted")
	}
}
