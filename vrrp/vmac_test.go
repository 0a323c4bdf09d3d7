package vrrp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"gokeepalived/parser"
)

var vipPrefix = netip.MustParsePrefix(fakeVIP)

// vmacOf returns the macvlan the director's fake holds, with ok false when absent.
func (d *director) vmacOf(name string) (VMACSpec, bool) { return d.vmacs.Link(name) }

func (d *director) listened() []string {
	d.listenMu.Lock()
	defer d.listenMu.Unlock()
	return slices.Clone(d.listens)
}

// announcedOn tells whether a gratuitous ARP burst went out on ifname.
func (d *director) announcedOn(ifname string) bool {
	for _, c := range d.ann.Calls() {
		if c.Ifname == ifname {
			return true
		}
	}
	return false
}

// TestVMACStart: use_vmac ensures the macvlan (VRRP virtual MAC, on eth0) before the
// socket opens on it; the master puts its address on the macvlan and announces it
// from there; Stop removes the macvlan.
func TestVMACStart(t *testing.T) {
	link := NewFakeLink()
	d := startDirector(t, link, "d", 1, 150, "use_vmac")
	spec, ok := d.vmacOf("vrrp.51")
	if !ok || spec.Parent != "eth0" || spec.MAC.String() != "00:00:5e:00:01:33" {
		t.Fatalf("macvlan %+v (exists %v)", spec, ok)
	}
	eventually(t, time.Second, "the socket on the macvlan", func() bool { return slices.Equal(d.listened(), []string{"vrrp.51"}) })
	eventually(t, 3*time.Second, "master", func() bool { return d.state() == StateMaster })
	eventually(t, time.Second, "VIP on the macvlan", func() bool { return d.addrs.Present("vrrp.51", vipPrefix) })
	if d.addrs.Present("eth0", vipPrefix) {
		t.Error("VIP also on eth0")
	}
	eventually(t, time.Second, "GARP from the macvlan", func() bool { return d.announcedOn("vrrp.51") })
	if d.announcedOn("eth0") {
		t.Error("GARP sent on eth0")
	}
	var data, js strings.Builder
	if err := WriteData(&data, &parser.GlobalDefs{}, d.mgr.Status()); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&js, d.mgr.Status()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(data.String(), "Use VMAC, i/f name vrrp.51, MAC 00:00:5e:00:01:33, xmit_base = false") ||
		!strings.Contains(js.String(), `"vmac_ifname": "vrrp.51"`) {
		t.Errorf("dumps lack the VMAC:\n%s\n%s", data.String(), js.String())
	}

	d.mgr.Stop()
	if d.addrs.Present("vrrp.51", vipPrefix) {
		t.Error("VIP left after Stop")
	}
	if _, ok := d.vmacOf("vrrp.51"); ok {
		t.Error("macvlan left after Stop")
	}
	calls := d.vmacs.Calls()
	if last := calls[len(calls)-1]; last.Op != "delete" || last.Spec.Name != "vrrp.51" {
		t.Errorf("last VMAC call %+v, want the delete", last)
	}
}

// TestVMACXmitBase: with vmac_xmit_base the adverts use the base interface's socket;
// the address and its announcements stay on the macvlan.
func TestVMACXmitBase(t *testing.T) {
	link := NewFakeLink()
	d := startDirector(t, link, "d", 1, 150, "use_vmac vip51 02:00:00:00:00:33\n vmac_xmit_base")
	if spec, ok := d.vmacOf("vip51"); !ok || spec.MAC.String() != "02:00:00:00:00:33" {
		t.Fatalf("macvlan %+v (exists %v)", spec, ok)
	}
	eventually(t, time.Second, "the socket on eth0", func() bool { return slices.Equal(d.listened(), []string{"eth0"}) })
	eventually(t, 3*time.Second, "master", func() bool { return d.state() == StateMaster })
	eventually(t, time.Second, "VIP on the macvlan", func() bool { return d.addrs.Present("vip51", vipPrefix) })
	eventually(t, time.Second, "GARP from the macvlan", func() bool { return d.announcedOn("vip51") })
}

// TestVMACFailover: two directors with use_vmac on one link; the VIP moves from one
// macvlan to the other, both with the same MAC.
func TestVMACFailover(t *testing.T) {
	link := NewFakeLink()
	d1 := startDirector(t, link, "d1", 1, 150, "use_vmac")
	d2 := startDirector(t, link, "d2", 2, 100, "use_vmac")
	eventually(t, 3*time.Second, "d1 master", func() bool { return d1.state() == StateMaster && d2.state() == StateBackup })
	eventually(t, time.Second, "VIP on d1's macvlan", func() bool { return d1.addrs.Present("vrrp.51", vipPrefix) })
	if d2.addrs.Present("vrrp.51", vipPrefix) {
		t.Error("the backup holds the VIP")
	}
	if _, ok := d2.vmacOf("vrrp.51"); !ok {
		t.Error("the backup has no macvlan: it must exist in every state")
	}
	d1.mgr.Stop()
	eventually(t, time.Second, "d2 master", func() bool { return d2.state() == StateMaster })
	eventually(t, time.Second, "VIP on d2's macvlan", func() bool { return d2.addrs.Present("vrrp.51", vipPrefix) })
	s1, s2 := d1.vmacs.Calls()[0].Spec, d2.vmacs.Calls()[0].Spec
	if s1.MAC.String() != s2.MAC.String() {
		t.Errorf("MACs %s and %s differ", s1.MAC, s2.MAC)
	}
}

// TestVMACLeftover: a macvlan left by a crashed run is ensured (adopted or fixed), never
// deleted and created again, and the addresses left on it are removed.
func TestVMACLeftover(t *testing.T) {
	link := NewFakeLink()
	d := newDirector("d", 1)
	d.vmacs.Leave(VMACSpec{Name: "vrrp.51", Parent: "eth0"})
	d.addrs.Inject("vrrp.51", vipPrefix)
	d.start(t, link, fakeConfig(t, 100, "use_vmac"))
	calls := d.vmacs.Calls()
	if len(calls) != 1 || calls[0].Op != "ensure" || calls[0].Spec.MAC.String() != "00:00:5e:00:01:33" {
		t.Errorf("VMAC calls %+v, want one ensure", calls)
	}
	eventually(t, time.Second, "leftover VIP removed", func() bool { return !d.addrs.Present("vrrp.51", vipPrefix) })
}

// TestVMACReload: a reload adding use_vmac moves the instance onto a new macvlan (a new
// identity: the old one gives up, the new one is elected); removing it deletes the
// macvlan and brings the address back to the interface.
func TestVMACReload(t *testing.T) {
	link := NewFakeLink()
	d := startDirector(t, link, "d", 1, 150, "")
	eventually(t, 3*time.Second, "master", func() bool { return d.state() == StateMaster })
	eventually(t, time.Second, "VIP on eth0", func() bool { return d.addrs.Present("eth0", vipPrefix) })
	ctx := context.Background()

	if err := d.mgr.Reload(ctx, fakeConfig(t, 150, "use_vmac")); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.vmacOf("vrrp.51"); !ok {
		t.Fatal("no macvlan after the reload adding use_vmac")
	}
	eventually(t, 3*time.Second, "VIP on the macvlan", func() bool {
		return d.state() == StateMaster && d.addrs.Present("vrrp.51", vipPrefix) && !d.addrs.Present("eth0", vipPrefix)
	})

	// An unchanged reload keeps it: no delete.
	if err := d.mgr.Reload(ctx, fakeConfig(t, 150, "use_vmac")); err != nil {
		t.Fatal(err)
	}
	for _, c := range d.vmacs.Calls() {
		if c.Op == "delete" {
			t.Fatalf("unchanged reload deleted the macvlan: %+v", d.vmacs.Calls())
		}
	}

	if err := d.mgr.Reload(ctx, fakeConfig(t, 150, "")); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.vmacOf("vrrp.51"); ok {
		t.Error("macvlan left after the reload removing use_vmac")
	}
	eventually(t, 3*time.Second, "VIP back on eth0", func() bool {
		return d.state() == StateMaster && d.addrs.Present("eth0", vipPrefix) && !d.addrs.Present("vrrp.51", vipPrefix)
	})
}

// TestVMACKeepOnStop: with -V the addresses stay, and so does the macvlan they are on.
func TestVMACKeepOnStop(t *testing.T) {
	link := NewFakeLink()
	d := startDirector(t, link, "d", 1, 150, "use_vmac")
	d.mgr.KeepVIPsOnStop = true // instances learn it when launched: reload
	if err := d.mgr.Reload(context.Background(), fakeConfig(t, 150, "use_vmac")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "VIP on the macvlan", func() bool { return d.addrs.Present("vrrp.51", vipPrefix) })
	d.mgr.Stop()
	if _, ok := d.vmacOf("vrrp.51"); !ok || !d.addrs.Present("vrrp.51", vipPrefix) {
		t.Error("-V: the macvlan or its address was removed")
	}
}

// TestVMACEnsureFails: an instance whose macvlan cannot be made still runs; the error
// is logged and its addresses are never added (an interface of that name may be
// someone else's).
func TestVMACEnsureFails(t *testing.T) {
	link := NewFakeLink()
	d := newDirector("d", 1)
	d.vmacs.Fail(context.DeadlineExceeded)
	d.start(t, link, fakeConfig(t, 150, "use_vmac"))
	// The snapshot is taken after the actions: once MASTER shows, the adds were tried.
	eventually(t, 3*time.Second, "master anyway", func() bool { return d.state() == StateMaster })
	for _, c := range d.addrs.Calls() {
		if c.Op == "add" {
			t.Fatalf("address added on %s although its macvlan failed", c.VIP.Dev)
		}
	}
}

// TestVMACSpec: the macvlan an instance asks for, IPv6 included.
func TestVMACSpec(t *testing.T) {
	ll := netip.MustParseAddr("fe80::1")
	for _, tc := range []struct {
		name, text string
		ipv6       bool
		linkLocal  netip.Addr
	}{
		{"IPv4", "virtual_ipaddress {\n 10.0.0.1\n }", false, netip.Addr{}},
		{"IPv4 with an IPv6 excluded address on it", "virtual_ipaddress {\n 10.0.0.1\n }\n virtual_ipaddress_excluded {\n 2001:db8::1\n }", true, netip.Addr{}},
		{"IPv4 with an IPv6 excluded address elsewhere", "virtual_ipaddress {\n 10.0.0.1\n }\n virtual_ipaddress_excluded {\n 2001:db8::1 dev eth1\n }", false, netip.Addr{}},
		{"IPv6", "virtual_ipaddress {\n fe80::5\n }", true, ll},
	} {
		cfg, ds := parser.LoadBytes("t.conf", []byte("vrrp_instance V {\n interface eth0\n virtual_router_id 9\n use_vmac\n "+tc.text+"\n}\n"), parser.Options{ConfigID: "x"})
		if ds.ExitCode() != parser.ExitOK || len(cfg.Instances) != 1 {
			t.Fatalf("%s: %v", tc.name, ds)
		}
		spec, err := vmacSpec(cfg.Instances[0], ll)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Name != "vrrp.9" || spec.Parent != "eth0" || spec.IPv6 != tc.ipv6 || spec.LinkLocal != tc.linkLocal {
			t.Errorf("%s: %+v, want IPv6 %v link-local %v", tc.name, spec, tc.ipv6, tc.linkLocal)
		}
	}
}
