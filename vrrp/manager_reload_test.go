package vrrp

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"gokeepalived/parser"
)

func reloadConfig(t *testing.T, prio int, vips ...string) *parser.Config {
	t.Helper()
	extra := ""
	for _, v := range vips[1:] {
		extra += "\n        " + v
	}
	cfg, ds := parser.LoadBytes("r.conf", []byte(`
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    version 3
    advert_int 0.05
    priority `+strconv.Itoa(prio)+`
    virtual_ipaddress {
        `+vips[0]+extra+`
    }
}
`), parser.Options{ConfigID: "x"})
	if ds.ExitCode() != parser.ExitOK {
		t.Fatalf("config: %v", ds)
	}
	return cfg
}

func addrCalls(d *director, op string) int {
	n := 0
	for _, c := range d.addrs.Calls() {
		if c.Op == op {
			n++
		}
	}
	return n
}

// TestReload: keepalived's reload semantics — an unchanged instance keeps its state with
// zero address calls, an added VIP is the only address added, a priority change does not
// flap, a changed identity is recreated.
func TestReload(t *testing.T) {
	link := NewFakeLink()
	d1 := startDirectorCfg(t, link, "d1", 1, reloadConfig(t, 150, "192.168.71.205/24"))
	d2 := startDirectorCfg(t, link, "d2", 2, reloadConfig(t, 100, "192.168.71.205/24"))
	eventually(t, 3*time.Second, "d1 master", func() bool { return d1.state() == StateMaster })
	ctx := context.Background()

	adds, dels := addrCalls(d1, "add"), addrCalls(d1, "del")
	before := d1.mgr.Status()[0]
	if err := d1.mgr.Reload(ctx, reloadConfig(t, 150, "192.168.71.205/24")); err != nil {
		t.Fatal(err)
	}
	after := d1.mgr.Status()[0]
	if after.State != StateMaster || !after.LastTransition.Equal(before.LastTransition) {
		t.Fatalf("unchanged reload changed the state: %v at %v", after.State, after.LastTransition)
	}
	if a, dl := addrCalls(d1, "add")-adds, addrCalls(d1, "del")-dels; a != 0 || dl != 0 {
		t.Errorf("unchanged reload made %d adds and %d deletes", a, dl)
	}
	if after.Stats.BecomeMaster != 1 || after.Stats.AdvertSent < before.Stats.AdvertSent {
		t.Errorf("counters not kept: %+v", after.Stats)
	}

	// One VIP added: only that one reaches the kernel.
	adds, dels = addrCalls(d1, "add"), addrCalls(d1, "del")
	if err := d1.mgr.Reload(ctx, reloadConfig(t, 150, "192.168.71.205/24", "192.168.71.206/24")); err != nil {
		t.Fatal(err)
	}
	if a, dl := addrCalls(d1, "add")-adds, addrCalls(d1, "del")-dels; a != 1 || dl != 0 {
		t.Errorf("adding one VIP made %d adds and %d deletes", a, dl)
	}
	if !d1.addrs.Present("eth0", mustPrefix("192.168.71.206/24")) {
		t.Error("new VIP not installed")
	}

	// Priority 150 -> 120 (still above 100): no flap.
	if err := d1.mgr.Reload(ctx, reloadConfig(t, 120, "192.168.71.205/24", "192.168.71.206/24")); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "priority 120", func() bool { return d1.mgr.Status()[0].Priority == 120 })
	if s := d1.mgr.Status()[0]; s.State != StateMaster || s.Stats.ReleaseMaster != 0 {
		t.Errorf("priority change flapped: %v %+v", s.State, s.Stats)
	}

	// Priority below the peer's: d2 preempts.
	if err := d1.mgr.Reload(ctx, reloadConfig(t, 90, "192.168.71.205/24", "192.168.71.206/24")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "d2 preempts", func() bool { return d2.state() == StateMaster && d1.state() == StateBackup })
}

// TestReloadRemovesInstance: an instance removed by a reload shuts down like a stop:
// its master gives up with priority 0 and its addresses go.
func TestReloadRemovesInstance(t *testing.T) {
	link := NewFakeLink()
	d1 := startDirectorCfg(t, link, "d1", 1, reloadConfig(t, 150, "192.168.71.205/24"))
	d2 := startDirectorCfg(t, link, "d2", 2, reloadConfig(t, 100, "192.168.71.205/24"))
	eventually(t, 3*time.Second, "d1 master", func() bool { return d1.state() == StateMaster })
	cfg, ds := parser.LoadBytes("empty.conf", []byte("global_defs {\n router_id x\n}\n"), parser.Options{ConfigID: "x"})
	if ds.ExitCode() != parser.ExitOK {
		t.Fatal(ds)
	}
	if err := d1.mgr.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if d1.holdsVIP() || len(d1.mgr.Status()) != 0 {
		t.Error("removed instance kept its VIP or status")
	}
	eventually(t, time.Second, "d2 takes over after the priority-0 advert", func() bool { return d2.state() == StateMaster })
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
