package vrrp

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"gokeepalived/parser"
	"gokeepalived/tests/netns"
)

// addrLab makes a namespace with an interface eth0 (a veth whose peer eth0p is in the
// same namespace), both up, and an address manager working in it.
func addrLab(t *testing.T) (*netns.NS, *NetlinkAddrs) {
	t.Helper()
	ns := eth0Lab(t, "addr")
	return ns, addrManagerIn(t, ns, false)
}

// eth0Lab makes a namespace with an interface eth0, a veth whose peer eth0p is in the
// same namespace, both up.
func eth0Lab(t *testing.T, label string) *netns.NS {
	t.Helper()
	ns := netns.New(t, label)
	ns.Run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	ns.Run("ip", "link", "set", "eth0", "up")
	ns.Run("ip", "link", "set", "eth0p", "up")
	return ns
}

// addrManagerIn creates an address manager inside ns, with its own handle or, when
// withHandle, with one the test opens and closes.
func addrManagerIn(t *testing.T, ns *netns.NS, withHandle bool) *NetlinkAddrs {
	t.Helper()
	var m *NetlinkAddrs
	err := ns.Do(func() error {
		var h *netlink.Handle
		if withHandle {
			var err error
			if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
				return err
			}
			t.Cleanup(h.Close)
		}
		m = NewAddrManager(h)
		return m.initErr
	})
	if err != nil {
		t.Fatalf("address manager in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m
}

// ipShowAddr is one address as "ip -j addr show" prints it.
type ipShowAddr struct {
	Family     string `json:"family"`
	Local      string `json:"local"`
	Peer       string `json:"address"`
	Prefixlen  int    `json:"prefixlen"`
	Broadcast  string `json:"broadcast"`
	Scope      string `json:"scope"`
	Label      string `json:"label"`
	Tentative  bool   `json:"tentative"`
	NoDAD      bool   `json:"nodad"`
	Deprecated bool   `json:"deprecated"`
	NoPrefix   bool   `json:"noprefixroute"`
	Preferred  uint32 `json:"preferred_life_time"`
	Valid      uint32 `json:"valid_life_time"`
}

// ipShowAddrs lists the addresses of dev with iproute2, independently of the code tested.
func ipShowAddrs(t *testing.T, ns *netns.NS, dev string) map[string]ipShowAddr {
	t.Helper()
	var links []struct {
		AddrInfo []ipShowAddr `json:"addr_info"`
	}
	out := ns.Run("ip", "-j", "addr", "show", "dev", dev)
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j addr show dev %s: %v\n%s", dev, err, out)
	}
	m := map[string]ipShowAddr{}
	for _, a := range links[0].AddrInfo {
		m[a.Local] = a
	}
	return m
}

func testVIP(t *testing.T, prefix, dev string) *parser.VIP {
	t.Helper()
	return &parser.VIP{Prefix: netip.MustParsePrefix(prefix), Dev: dev, Text: prefix}
}

func lftPtr(v uint32) *uint32 { return &v }

// mustHaveAddr checks Has.
func mustHaveAddr(t *testing.T, m AddrManager, v *parser.VIP, want bool) {
	t.Helper()
	got, err := m.Has(v)
	if err != nil {
		t.Fatalf("Has(%s): %v", v.Prefix, err)
	}
	if got != want {
		t.Fatalf("Has(%s) = %v, want %v", v.Prefix, got, want)
	}
}

func TestAddrIPv4RoundTrip(t *testing.T) {
	ns, m := addrLab(t)
	v := testVIP(t, "10.20.0.10/24", "eth0")
	v.Label, v.Scope, v.Broadcast = "eth0:vip", "site", netip.MustParseAddr("10.20.0.254")
	v.NoPrefixRoute = true
	auto := testVIP(t, "10.20.1.10/24", "eth0") // no broadcast given: netlink computes it
	peer := testVIP(t, "10.20.2.1/32", "eth0")
	peer.Peer = netip.MustParseAddr("10.20.2.2")

	for _, x := range []*parser.VIP{v, auto, peer} {
		mustHaveAddr(t, m, x, false)
		if err := m.Add(x); err != nil {
			t.Fatalf("Add(%s): %v", x.Prefix, err)
		}
		mustHaveAddr(t, m, x, true)
	}
	got := ipShowAddrs(t, ns, "eth0")
	want := ipShowAddr{Family: "inet", Local: "10.20.0.10", Prefixlen: 24, Broadcast: "10.20.0.254",
		Scope: "site", Label: "eth0:vip", NoPrefix: true, Preferred: parser.LifetimeForever, Valid: parser.LifetimeForever}
	if got["10.20.0.10"] != want {
		t.Errorf("10.20.0.10 installed as %+v, want %+v", got["10.20.0.10"], want)
	}
	if a := got["10.20.1.10"]; a.Broadcast != "10.20.1.255" || a.Scope != "global" || a.Label != "eth0" {
		t.Errorf("10.20.1.10 installed as %+v, want brd 10.20.1.255 scope global label eth0", a)
	}
	if a := got["10.20.2.1"]; a.Peer != "10.20.2.2" || a.Prefixlen != 32 {
		t.Errorf("10.20.2.1 installed as %+v, want peer 10.20.2.2/32", a)
	}
	// Same address, another prefix length: another address for the kernel.
	mustHaveAddr(t, m, testVIP(t, "10.20.0.10/32", "eth0"), false)

	for _, x := range []*parser.VIP{v, auto, peer} {
		if err := m.Del(x); err != nil {
			t.Fatalf("Del(%s): %v", x.Prefix, err)
		}
		mustHaveAddr(t, m, x, false)
	}
	for local := range ipShowAddrs(t, ns, "eth0") {
		if strings.HasPrefix(local, "10.20.") {
			t.Errorf("%s still installed after Del", local)
		}
	}
}

func TestAddrIPv6NoDAD(t *testing.T) {
	ns, m := addrLab(t)
	v := testVIP(t, "2001:db8:20::10/64", "eth0")
	v.PreferredLft = lftPtr(parser.LifetimeForever)
	host := testVIP(t, "2001:db8:21::10/128", "eth0")
	host.PreferredLft = lftPtr(0) // keepalived's default for a /128: deprecated, never a source
	for _, x := range []*parser.VIP{v, host} {
		if err := m.Add(x); err != nil {
			t.Fatalf("Add(%s): %v", x.Prefix, err)
		}
		// Usable at once: binding fails on a tentative address (EADDRNOTAVAIL).
		err := ns.Do(func() error {
			c, err := net.ListenPacket("udp6", net.JoinHostPort(x.Prefix.Addr().String(), "0"))
			if err != nil {
				return err
			}
			return c.Close()
		})
		if err != nil {
			t.Errorf("bind to %s right after Add: %v", x.Prefix, err)
		}
		mustHaveAddr(t, m, x, true)
	}
	got := ipShowAddrs(t, ns, "eth0")
	if a := got["2001:db8:20::10"]; !a.NoDAD || a.Tentative || a.Deprecated || a.Prefixlen != 64 || a.Preferred != parser.LifetimeForever {
		t.Errorf("2001:db8:20::10 installed as %+v, want nodad, not tentative, /64, preferred forever", a)
	}
	if a := got["2001:db8:21::10"]; !a.NoDAD || a.Tentative || !a.Deprecated || a.Preferred != 0 || a.Valid != parser.LifetimeForever {
		t.Errorf("2001:db8:21::10 installed as %+v, want nodad, deprecated, preferred 0, valid forever", a)
	}
	for _, x := range []*parser.VIP{v, host} {
		if err := m.Del(x); err != nil {
			t.Fatalf("Del(%s): %v", x.Prefix, err)
		}
		mustHaveAddr(t, m, x, false)
	}
}

func TestAddrIdempotent(t *testing.T) {
	ns := netns.New(t, "addr")
	ns.Run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	ns.Run("ip", "link", "set", "eth0", "up")
	m := addrManagerIn(t, ns, true) // with a handle the caller owns
	for _, v := range []*parser.VIP{testVIP(t, "10.21.0.10/24", "eth0"), testVIP(t, "2001:db8:22::10/64", "eth0")} {
		for i := range 2 {
			if err := m.Add(v); err != nil {
				t.Fatalf("Add(%s) #%d: %v", v.Prefix, i+1, err)
			}
		}
		mustHaveAddr(t, m, v, true)
		for i := range 2 {
			if err := m.Del(v); err != nil {
				t.Fatalf("Del(%s) #%d: %v", v.Prefix, i+1, err)
			}
		}
		mustHaveAddr(t, m, v, false)
	}
	// Del matches whatever label the address has.
	ns.Run("ip", "addr", "add", "10.21.1.10/24", "dev", "eth0", "label", "eth0:other")
	v := testVIP(t, "10.21.1.10/24", "eth0")
	v.Label = "eth0:vip"
	if err := m.Del(v); err != nil {
		t.Fatal(err)
	}
	mustHaveAddr(t, m, v, false)
}

func TestAddrErrors(t *testing.T) {
	ns, m := addrLab(t)
	cases := []struct {
		v    *parser.VIP
		want string
	}{
		{&parser.VIP{Prefix: netip.MustParsePrefix("10.22.0.10/24"), Dev: "eth0", Label: "eth1:vip"}, `must start with the interface name "eth0"`},
		{&parser.VIP{Prefix: netip.MustParsePrefix("10.22.0.10/24"), Dev: "eth0", Label: "eth0:far-too-long"}, "longer than 15 bytes"},
		{&parser.VIP{Prefix: netip.MustParsePrefix("2001:db8::1/64"), Dev: "eth0", Label: "eth0:vip"}, "IPv4 only"},
		{&parser.VIP{Prefix: netip.MustParsePrefix("10.22.0.10/24"), Dev: "eth0", Scope: "galaxy"}, `unknown scope "galaxy"`},
		{&parser.VIP{Prefix: netip.MustParsePrefix("10.22.0.10/24"), Dev: "nosuch0"}, "interface nosuch0"},
	}
	for _, c := range cases {
		err := m.Add(c.v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Add(%s label %q scope %q dev %s) = %v, want an error containing %q", c.v.Prefix, c.v.Label, c.v.Scope, c.v.Dev, err, c.want)
		}
	}
	for local := range ipShowAddrs(t, ns, "eth0") {
		if strings.HasPrefix(local, "10.22.") || strings.HasPrefix(local, "2001:db8::") {
			t.Errorf("%s installed by a failed Add", local)
		}
	}
	if _, err := m.Has(testVIP(t, "10.22.0.10/24", "nosuch0")); err == nil {
		t.Error("Has on a missing interface succeeded")
	}
	if err := m.Del(testVIP(t, "10.22.0.10/24", "nosuch0")); err == nil {
		t.Error("Del on a missing interface succeeded")
	}
}

// TestAddrNetlinkAttrs checks the translation of a VIP to netlink attributes (pure).
func TestAddrNetlinkAttrs(t *testing.T) {
	v := &parser.VIP{Prefix: netip.MustParsePrefix("2001:db8::1/64"), Dev: "eth0", Home: true,
		MngTmpAddr: true, NoPrefixRoute: true, AutoJoin: true, PreferredLft: lftPtr(30)}
	a, err := vipNetlinkAddr(v)
	if err != nil {
		t.Fatal(err)
	}
	wantFlags := unix.IFA_F_NODAD | unix.IFA_F_HOMEADDRESS | unix.IFA_F_MANAGETEMPADDR | unix.IFA_F_NOPREFIXROUTE | unix.IFA_F_MCAUTOJOIN
	if a.Flags != wantFlags || a.PreferedLft != 30 || a.ValidLft != int(parser.LifetimeForever) {
		t.Errorf("flags %#x lftPtr %d/%d, want %#x 30/forever", a.Flags, a.PreferedLft, a.ValidLft, wantFlags)
	}
	v4 := &parser.VIP{Prefix: netip.MustParsePrefix("10.0.0.1/24"), Dev: "eth0", Scope: "host"}
	if a, err = vipNetlinkAddr(v4); err != nil {
		t.Fatal(err)
	}
	if a.Flags != 0 || a.Scope != unix.RT_SCOPE_HOST || a.Broadcast != nil || a.PreferedLft != 0 || a.ValidLft != 0 {
		t.Errorf("IPv4 address: %+v, want no flags, scope host, broadcast left to netlink, no lifetimes", a)
	}
	for name, want := range map[string]int{"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255} {
		if got := addrScopes[name]; got != want {
			t.Errorf("scope %s = %d, want %d", name, got, want)
		}
	}
}

func TestAddrWatch(t *testing.T) {
	ns, m := addrLab(t)
	var mu sync.Mutex
	var events []AddrEvent
	seen := func(want AddrEvent) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if e == want {
				return true
			}
		}
		return false
	}
	var watchErrs []error
	m.OnWatchError = func(err error) {
		mu.Lock()
		defer mu.Unlock()
		watchErrs = append(watchErrs, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- m.Watch(ctx, func(e AddrEvent) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		})
	}()

	// Wait until Watch is subscribed: toggle a sentinel address until it reports it.
	sentinel := netip.MustParsePrefix("10.30.9.9/32")
	toggle := 0
	netns.Eventually(t, 10*time.Second, "Watch reports a sentinel address", func() bool {
		op := []string{"add", "del"}[toggle%2]
		toggle++
		if _, err := ns.Try("ip", "addr", op, sentinel.String(), "dev", "eth0"); err != nil {
			t.Logf("ip addr %s: %v", op, err)
		}
		return seen(AddrEvent{"eth0", sentinel, true}) || seen(AddrEvent{"eth0", sentinel, false})
	})

	v := testVIP(t, "10.30.0.10/24", "eth0")
	if err := m.Add(v); err != nil {
		t.Fatal(err)
	}
	netns.Eventually(t, 5*time.Second, "Watch reports our own Add", func() bool {
		return seen(AddrEvent{"eth0", v.Prefix, true})
	})
	ns.Run("ip", "addr", "del", "10.30.0.10/24", "dev", "eth0")
	netns.Eventually(t, 5*time.Second, "Watch reports the address removed by ip addr del", func() bool {
		return seen(AddrEvent{"eth0", v.Prefix, false})
	})

	// An interface created after Watch started, then renamed: the current name.
	ns.Run("ip", "link", "add", "eth9", "type", "veth", "peer", "name", "eth9p")
	ns.Run("ip", "addr", "add", "10.31.0.1/24", "dev", "eth9")
	netns.Eventually(t, 5*time.Second, "Watch names a new interface", func() bool {
		return seen(AddrEvent{"eth9", netip.MustParsePrefix("10.31.0.1/24"), true})
	})
	ns.Run("ip", "link", "set", "eth9", "name", "eth7")
	ns.Run("ip", "addr", "add", "10.31.0.2/24", "dev", "eth7")
	netns.Eventually(t, 5*time.Second, "Watch names a renamed interface", func() bool {
		return seen(AddrEvent{"eth7", netip.MustParsePrefix("10.31.0.2/24"), true})
	})
	// Deleting an interface removes its addresses after it is gone: the cached name.
	ns.Run("ip", "link", "del", "eth7")
	netns.Eventually(t, 5*time.Second, "Watch names a deleted interface", func() bool {
		return seen(AddrEvent{"eth7", netip.MustParsePrefix("10.31.0.2/24"), false})
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch returned %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return within 5s of cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(watchErrs) != 0 {
		t.Errorf("subscription errors: %v", watchErrs)
	}
}

func TestRemoveResidual(t *testing.T) {
	ns, m := addrLab(t)
	// The host's own address (the primary: deleting a primary IPv4 address also
	// deletes the secondaries of its subnet unless promote_secondaries is set), then
	// two of our addresses that a crashed predecessor left, one with another label.
	ns.Run("ip", "addr", "add", "10.40.0.99/24", "dev", "eth0")
	ns.Run("ip", "addr", "add", "10.40.0.10/24", "dev", "eth0", "label", "eth0:old")
	ns.Addr("eth0", "2001:db8:40::10/64")
	vips := []*parser.VIP{
		testVIP(t, "10.40.0.10/24", "eth0"),
		testVIP(t, "10.40.0.11/24", "eth0"), // not there
		testVIP(t, "2001:db8:40::10/64", "eth0"),
	}
	vips[0].Label = "eth0:vip"
	removed, err := RemoveResidual(m, vips)
	if err != nil {
		t.Fatal(err)
	}
	if want := []*parser.VIP{vips[0], vips[2]}; !reflect.DeepEqual(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	got := ipShowAddrs(t, ns, "eth0")
	for _, local := range []string{"10.40.0.10", "2001:db8:40::10"} {
		if _, ok := got[local]; ok {
			t.Errorf("%s is still there", local)
		}
	}
	if _, ok := got["10.40.0.99"]; !ok {
		t.Error("10.40.0.99, not ours, was removed")
	}
	// Nothing left: a second run removes nothing.
	if removed, err = RemoveResidual(m, vips); err != nil || len(removed) != 0 {
		t.Errorf("second run: removed %v, err %v", removed, err)
	}
}

// TestRemoveResidualErrors checks that RemoveResidual goes on past failures (pure).
func TestRemoveResidualErrors(t *testing.T) {
	f := &FakeAddrs{}
	a := testVIP(t, "10.0.0.1/24", "eth0")
	b := testVIP(t, "10.0.0.2/24", "eth0")
	f.Inject("eth0", a.Prefix)
	f.Inject("eth0", b.Prefix)
	boom := errors.New("boom")
	f.Fail("del", boom)
	removed, err := RemoveResidual(f, []*parser.VIP{a, b})
	if !errors.Is(err, boom) || len(removed) != 0 || !strings.Contains(err.Error(), "10.0.0.2/24") {
		t.Fatalf("removed %v, err %v; want both failures reported", removed, err)
	}
	f.Fail("del", nil)
	f.Fail("has", boom)
	if _, err := RemoveResidual(f, []*parser.VIP{a}); !errors.Is(err, boom) {
		t.Fatalf("Has failure: err %v", err)
	}
	f.Fail("has", nil)
	if removed, err = RemoveResidual(f, []*parser.VIP{a, b}); err != nil || len(removed) != 2 {
		t.Fatalf("removed %v, err %v; want both", removed, err)
	}
	if f.Present("eth0", a.Prefix) || f.Present("eth0", b.Prefix) {
		t.Error("addresses left behind")
	}
}

func TestFakeAddrs(t *testing.T) {
	f := &FakeAddrs{}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan AddrEvent, 16)
	done := make(chan error, 1)
	go func() { done <- f.Watch(ctx, func(e AddrEvent) { events <- e }) }()
	netns.Eventually(t, 5*time.Second, "Watch registers", func() bool { return f.Watchers() == 1 })
	expect := func(want AddrEvent) {
		t.Helper()
		select {
		case e := <-events:
			if e != want {
				t.Fatalf("event %+v, want %+v", e, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event, want %+v", want)
		}
	}

	v := testVIP(t, "10.0.0.1/24", "eth0")
	if ok, _ := f.Has(v); ok {
		t.Fatal("Has on an empty fake")
	}
	for range 2 {
		if err := f.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	expect(AddrEvent{"eth0", v.Prefix, true}) // once: the second Add changed nothing
	if ok, _ := f.Has(v); !ok {
		t.Fatal("Has after Add")
	}
	if ok, _ := f.Has(testVIP(t, "10.0.0.1/24", "eth1")); ok {
		t.Fatal("Has on another interface")
	}
	other := netip.MustParsePrefix("10.0.0.9/32")
	f.Inject("eth0", other)
	expect(AddrEvent{"eth0", other, true})
	if got, want := f.Addrs("eth0"), []netip.Prefix{v.Prefix, other}; !reflect.DeepEqual(got, want) {
		t.Errorf("Addrs = %v, want %v", got, want)
	}
	f.Remove("eth0", v.Prefix)
	expect(AddrEvent{"eth0", v.Prefix, false})
	for range 2 {
		if err := f.Del(v); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	f.Fail("add", boom)
	if err := f.Add(v); !errors.Is(err, boom) || f.Present("eth0", v.Prefix) {
		t.Fatalf("failing Add: %v", err)
	}
	f.Fail("add", nil)

	var ops []string
	for _, c := range f.Calls() {
		ops = append(ops, c.Op+" "+c.VIP.Dev+" "+c.VIP.Prefix.String())
	}
	want := []string{"has eth0 10.0.0.1/24", "add eth0 10.0.0.1/24", "add eth0 10.0.0.1/24",
		"has eth0 10.0.0.1/24", "has eth1 10.0.0.1/24", "del eth0 10.0.0.1/24", "del eth0 10.0.0.1/24",
		"add eth0 10.0.0.1/24"}
	if !reflect.DeepEqual(ops, want) {
		t.Errorf("calls:\n%q\nwant\n%q", ops, want)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch returned %v", err)
	}
	if f.Watchers() != 0 {
		t.Error("watcher still registered after Watch returned")
	}
	select {
	case e := <-events:
		t.Errorf("unexpected event %+v", e)
	default:
	}
}

func TestFakeAnnouncer(t *testing.T) {
	f := &FakeAnnouncer{}
	addrs := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::1")}
	if err := f.Announce("eth0", addrs, 5); err != nil {
		t.Fatal(err)
	}
	addrs[0] = netip.MustParseAddr("10.9.9.9") // the fake kept a copy
	boom := errors.New("boom")
	f.Fail(boom)
	if err := f.Announce("eth1", nil, 1); !errors.Is(err, boom) {
		t.Fatalf("Fail: %v", err)
	}
	want := []AnnounceCall{
		{"eth0", []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::1")}, 5},
		{"eth1", nil, 1},
	}
	if got := f.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls %+v, want %+v", got, want)
	}
}
