package vrrp

import (
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"

	"gokeepalived/tests/netns"
)

// vmacLab makes a namespace with an interface eth0 (a veth whose peer is in the same
// namespace), up, and a VMAC manager working in it: every link and sysctl the test
// changes is inside that namespace.
func vmacLab(t *testing.T) (*netns.NS, *NetlinkVMACs) {
	t.Helper()
	ns := eth0Lab(t, "vmac")
	var m *NetlinkVMACs
	if err := ns.Do(func() error { m = NewVMACManager(); return m.initErr }); err != nil {
		t.Fatalf("VMAC manager in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return ns, m
}

// ipLink is what the test reads of "ip -d -j link show DEV".
type ipLink struct {
	IfIndex  int      `json:"ifindex"`
	Link     string   `json:"link"`
	Address  string   `json:"address"`
	Flags    []string `json:"flags"`
	LinkInfo struct {
		Kind string `json:"info_kind"`
		Data struct {
			Mode string `json:"mode"`
		} `json:"info_data"`
	} `json:"linkinfo"`
}

// showLink returns the link, or ok false when it does not exist.
func showLink(t *testing.T, ns *netns.NS, name string) (l ipLink, ok bool) {
	t.Helper()
	out, err := ns.Try("ip", "-d", "-j", "link", "show", "dev", name)
	if err != nil {
		if strings.Contains(out, "does not exist") {
			return l, false
		}
		t.Fatalf("ip link show %s: %v\n%s", name, err, out)
	}
	var ls []ipLink
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("ip link show %s: %v\n%s", name, err, out)
	}
	return ls[0], true
}

func sysctl(t *testing.T, ns *netns.NS, ifname, key string) string {
	t.Helper()
	return strings.TrimSpace(ns.Run("cat", "/proc/sys/net/ipv4/conf/"+ifname+"/"+key))
}

// TestNetlinkVMACs: create, ensure again (nothing changes), adopt a leftover, replace
// a wrong one, refuse a non-macvlan, delete; the sysctls of the macvlan and of its
// parent (restored after the last macvlan).
func TestNetlinkVMACs(t *testing.T) {
	ns, m := vmacLab(t)
	ns.Run("sh", "-c", "echo 0 > /proc/sys/net/ipv4/conf/eth0/arp_ignore && echo 0 > /proc/sys/net/ipv4/conf/eth0/arp_filter && echo 1 > /proc/sys/net/ipv4/conf/eth0/arp_announce")
	// A distribution's strict reverse path filter: all/rp_filter 1, the interfaces 0.
	ns.Run("sh", "-c", "for i in all default eth0 eth0p; do echo 0 > /proc/sys/net/ipv4/conf/$i/rp_filter; done; echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter")
	parentSet := map[string]string{"arp_ignore": "1", "arp_filter": "1", "arp_announce": "2"}
	parentWas := map[string]string{"arp_ignore": "0", "arp_filter": "0", "arp_announce": "1"}
	mac, _ := net.ParseMAC("00:00:5e:00:01:33")
	spec := VMACSpec{Name: "vrrp.51", Parent: "eth0", MAC: mac}

	if err := m.Ensure(spec); err != nil {
		t.Fatal(err)
	}
	l, ok := showLink(t, ns, "vrrp.51")
	if !ok || l.LinkInfo.Kind != "macvlan" || l.LinkInfo.Data.Mode != "private" || l.Address != "00:00:5e:00:01:33" || l.Link != "eth0" {
		t.Fatalf("macvlan %+v (exists %v)", l, ok)
	}
	if !strings.Contains(strings.Join(l.Flags, ","), "UP") {
		t.Errorf("macvlan not up: %v", l.Flags)
	}
	for key, want := range map[string]string{"arp_ignore": "1", "accept_local": "1", "rp_filter": "0", "promote_secondaries": "1"} {
		if got := sysctl(t, ns, "vrrp.51", key); got != want {
			t.Errorf("vrrp.51 %s = %s, want %s", key, got, want)
		}
	}
	for key, want := range parentSet {
		if got := sysctl(t, ns, "eth0", key); got != want {
			t.Errorf("eth0 %s = %s, want %s", key, got, want)
		}
	}
	// all/rp_filter moved to the interfaces, so that the macvlan's 0 counts.
	for ifname, want := range map[string]string{"all": "0", "default": "1", "eth0": "1", "eth0p": "1", "vrrp.51": "0"} {
		if got := sysctl(t, ns, ifname, "rp_filter"); got != want {
			t.Errorf("%s rp_filter = %s, want %s", ifname, got, want)
		}
	}

	if got := strings.TrimSpace(ns.Run("cat", "/proc/sys/net/ipv6/conf/vrrp.51/disable_ipv6")); got != "1" {
		t.Errorf("IPv4 macvlan: disable_ipv6 = %s, want 1 (its automatic link-local would be every router's)", got)
	}

	// Idempotent: the same link, not a new one.
	if err := m.Ensure(spec); err != nil {
		t.Fatal(err)
	}
	if l2, _ := showLink(t, ns, "vrrp.51"); l2.IfIndex != l.IfIndex {
		t.Errorf("ensure again replaced the macvlan: index %d -> %d", l.IfIndex, l2.IfIndex)
	}

	// A leftover of a crashed run (another manager, same namespace) is adopted.
	ns.Run("ip", "link", "add", "link", "eth0", "name", "vrrp.52", "address", "00:00:5e:00:01:34", "type", "macvlan", "mode", "private")
	left, _ := showLink(t, ns, "vrrp.52")
	mac52, _ := net.ParseMAC("00:00:5e:00:01:34")
	if err := m.Ensure(VMACSpec{Name: "vrrp.52", Parent: "eth0", MAC: mac52}); err != nil {
		t.Fatal(err)
	}
	if l52, _ := showLink(t, ns, "vrrp.52"); l52.IfIndex != left.IfIndex || !strings.Contains(strings.Join(l52.Flags, ","), "UP") {
		t.Errorf("leftover not adopted as is: index %d -> %d, flags %v", left.IfIndex, l52.IfIndex, l52.Flags)
	}

	// A leftover with the wrong MAC and mode is replaced.
	ns.Run("ip", "link", "add", "link", "eth0", "name", "vrrp.53", "address", "02:00:00:00:00:01", "type", "macvlan", "mode", "bridge")
	mac53, _ := net.ParseMAC("00:00:5e:00:01:35")
	if err := m.Ensure(VMACSpec{Name: "vrrp.53", Parent: "eth0", MAC: mac53}); err != nil {
		t.Fatal(err)
	}
	if l53, _ := showLink(t, ns, "vrrp.53"); l53.Address != "00:00:5e:00:01:35" || l53.LinkInfo.Data.Mode != "private" {
		t.Errorf("wrong leftover not replaced: %+v", l53)
	}

	// An interface of another kind is never touched.
	ns.Run("ip", "link", "add", "vrrp.54", "type", "bridge")
	if err := m.Ensure(VMACSpec{Name: "vrrp.54", Parent: "eth0", MAC: mac}); err == nil || !strings.Contains(err.Error(), "not a macvlan") {
		t.Errorf("ensure over a bridge: %v", err)
	}
	if err := m.Delete("vrrp.54"); err == nil {
		t.Error("delete removed a bridge")
	}
	if _, ok := showLink(t, ns, "vrrp.54"); !ok {
		t.Error("the bridge is gone")
	}

	// IPv6: no automatic link-local address, the instance's own instead.
	mac6, _ := net.ParseMAC("00:00:5e:00:02:3d")
	if err := m.Ensure(VMACSpec{Name: "vrrp6.61", Parent: "eth0", MAC: mac6, IPv6: true, LinkLocal: netip.MustParseAddr("fe80::1")}); err != nil {
		t.Fatal(err)
	}
	if out := ns.Run("ip", "-6", "-o", "addr", "show", "dev", "vrrp6.61"); !strings.Contains(out, "fe80::1/64") || strings.Count(out, "fe80::") != 1 {
		t.Errorf("IPv6 macvlan addresses:\n%s\nwant fe80::1/64 alone", out)
	}
	if err := m.Delete("vrrp6.61"); err != nil {
		t.Fatal(err)
	}
	// An adopted macvlan that now carries IPv6 gets it back.
	if err := m.Ensure(VMACSpec{Name: "vrrp.51", Parent: "eth0", MAC: mac, IPv6: true}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(ns.Run("cat", "/proc/sys/net/ipv6/conf/vrrp.51/disable_ipv6")); got != "0" {
		t.Errorf("IPv6 macvlan: disable_ipv6 = %s, want 0", got)
	}

	// Delete: the parent keeps its settings until its last macvlan goes.
	for _, name := range []string{"vrrp.51", "vrrp.52"} {
		if err := m.Delete(name); err != nil {
			t.Fatal(err)
		}
		if _, ok := showLink(t, ns, name); ok {
			t.Errorf("%s still there after Delete", name)
		}
		if got := sysctl(t, ns, "eth0", "arp_ignore"); got != "1" {
			t.Errorf("eth0 arp_ignore %s while vrrp.53 remains", got)
		}
	}
	if err := m.Delete("vrrp.53"); err != nil {
		t.Fatal(err)
	}
	for key, want := range parentWas {
		if got := sysctl(t, ns, "eth0", key); got != want {
			t.Errorf("eth0 %s = %s after the last macvlan, want %s (restored)", key, got, want)
		}
	}
	for ifname, want := range map[string]string{"all": "1", "default": "0", "eth0": "0", "eth0p": "0"} {
		if got := sysctl(t, ns, ifname, "rp_filter"); got != want {
			t.Errorf("%s rp_filter = %s after the last macvlan, want %s (restored)", ifname, got, want)
		}
	}
	if err := m.Delete("vrrp.51"); err != nil {
		t.Errorf("delete of a missing macvlan: %v", err)
	}
	if err := m.Ensure(VMACSpec{Name: "vrrp.55", Parent: "nosuch", MAC: mac}); err == nil {
		t.Error("ensure on a missing parent succeeded")
	}
}
