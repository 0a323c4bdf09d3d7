package vrrp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"golang.org/x/sys/unix"

	"gokeepalived/tests/netns"
)

// These tests run the real sockets in network namespaces that they create
// (tests/netns), never in the host's own: they need root.

const connReadTimeout = 5 * time.Second

var (
	connGroup4 = DefaultGroup(FamilyIPv4)
	connGroup6 = DefaultGroup(FamilyIPv6)
)

// connPair returns two namespaces a and b joined by a veth pair, eth0 on
// both sides, with 10.99.1.1/24 on a and 10.99.1.2/24 on b, and IPv6
// link-local addresses usable at once (no duplicate address detection).
func connPair(t testing.TB) (a, b *netns.NS) {
	t.Helper()
	a, b = connHost(t, "a"), connHost(t, "b")
	netns.Veth(t, a, "eth0", b, "eth0")
	a.Addr("eth0", "10.99.1.1/24")
	b.Addr("eth0", "10.99.1.2/24")
	return a, b
}

// connHost creates a namespace whose interfaces skip duplicate address
// detection, so that their link-local addresses can be sources at once.
func connHost(t testing.TB, label string) *netns.NS {
	t.Helper()
	ns := netns.New(t, label)
	ns.Run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	return ns
}

// connListen opens a connection inside ns, closed when the test ends.
func connListen(t testing.TB, ns *netns.NS, ifname string, f Family, opts ConnOptions) *advertSocket {
	t.Helper()
	var c AdvertConn
	if err := ns.Do(func() (err error) {
		c, err = ListenAdvert(ifname, f, opts)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*advertSocket)
}

// connPrimary returns PrimaryAddr inside ns, waiting for an IPv6 link-local
// address to appear (the kernel adds it once the link has carrier).
func connPrimary(t testing.TB, ns *netns.NS, ifname string, f Family) netip.Addr {
	t.Helper()
	var addr netip.Addr
	netns.Eventually(t, 5*time.Second, ifname+" has a primary "+f.String()+" address", func() bool {
		err := ns.Do(func() (err error) {
			addr, err = PrimaryAddr(ifname, f)
			return err
		})
		return err == nil
	})
	return addr
}

func connIfindex(t testing.TB, ns *netns.NS, ifname string) int {
	t.Helper()
	var ifi *net.Interface
	if err := ns.Do(func() (err error) {
		ifi, err = net.InterfaceByName(ifname)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ifi.Index
}

// connRead reads the next advert on c, failing the test after connReadTimeout.
func connRead(t testing.TB, c *advertSocket) ([]byte, RxInfo) {
	t.Helper()
	if err := c.ip.SetReadDeadline(time.Now().Add(connReadTimeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, rx, err := c.ReadAdvert(buf)
	if err != nil {
		t.Fatalf("no advert on %s: %v", c.ifname, err)
	}
	return buf[:n], rx
}

func connWrite(t testing.TB, c *advertSocket, b []byte, src, dst netip.Addr, ttl int) {
	t.Helper()
	if err := c.WriteAdvert(b, src, dst, ttl); err != nil {
		t.Fatal(err)
	}
}

// connAdvert4 is a version 2 IPv4 advert with a password.
func connAdvert4(t testing.TB, id uint8) []byte {
	t.Helper()
	a := &Advert{Version: 2, VRID: id, Priority: 100, AdverInt: 1, AuthType: AuthPass,
		AuthData: PassAuthData("secret"), Addrs: []netip.Addr{netip.MustParseAddr("10.99.1.100")}}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// connAdvert6 is a version 3 IPv6 advert whose checksum field holds garbage:
// the kernel must fill it in.
func connAdvert6(t testing.TB, id uint8) []byte {
	t.Helper()
	a := &Advert{Version: 3, VRID: id, Priority: 100, AdverInt: 100,
		Addrs: []netip.Addr{netip.MustParseAddr("fd00::100")}}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b[6], b[7] = 0xde, 0xad
	return b
}

func connWantRx(t testing.TB, got, want RxInfo) {
	t.Helper()
	if got != want {
		t.Fatalf("rx = %+v, want %+v", got, want)
	}
}

// connVRID returns the VRID of a payload, which tests use to tell adverts apart.
func connVRID(t testing.TB, b []byte, f Family) uint8 {
	t.Helper()
	a, err := ParseAdvert(b, f)
	if err != nil {
		t.Fatalf("received payload does not decode: %v (% x)", err, b)
	}
	return a.VRID
}

func TestConnIPv4Multicast(t *testing.T) {
	netns.RequireRoot(t)
	a, b := connPair(t)
	ca := connListen(t, a, "eth0", FamilyIPv4, ConnOptions{})
	cb := connListen(t, b, "eth0", FamilyIPv4, ConnOptions{})
	src := connPrimary(t, a, "eth0", FamilyIPv4)
	if src != netip.MustParseAddr("10.99.1.1") {
		t.Fatalf("PrimaryAddr = %v, want 10.99.1.1", src)
	}
	sent := connAdvert4(t, 51)
	connWrite(t, ca, sent, src, connGroup4, 255)

	got, rx := connRead(t, cb)
	connWantRx(t, rx, RxInfo{Src: src, Dst: connGroup4, TTL: 255, IfIndex: connIfindex(t, b, "eth0")})
	if !bytes.Equal(got, sent) {
		t.Fatalf("payload\n% x, want\n% x", got, sent)
	}
	adv, err := ParseAdvert(got, FamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if adv.VRID != 51 || adv.Priority != 100 || adv.CheckAuth(AuthPass, PassAuthData("secret")) != nil {
		t.Fatalf("decoded %+v", adv)
	}
	if err := VerifyChecksum(got, FamilyIPv4, ChecksumPseudoHeader, rx.Src, rx.Dst); err != nil {
		t.Fatal(err)
	}
}

// TestConnIPv4CustomGroup checks that ConnOptions.Groups replaces the
// default group (vrrp_mcast_group4).
func TestConnIPv4CustomGroup(t *testing.T) {
	netns.RequireRoot(t)
	a, b := connPair(t)
	group := netip.MustParseAddr("224.0.0.99")
	ca := connListen(t, a, "eth0", FamilyIPv4, ConnOptions{Groups: []netip.Addr{group}})
	cb := connListen(t, b, "eth0", FamilyIPv4, ConnOptions{Groups: []netip.Addr{group}})
	src := connPrimary(t, a, "eth0", FamilyIPv4)
	connWrite(t, ca, connAdvert4(t, 52), src, group, 255)
	got, rx := connRead(t, cb)
	if connVRID(t, got, FamilyIPv4) != 52 || rx.Dst != group {
		t.Fatalf("got VRID %d to %v", connVRID(t, got, FamilyIPv4), rx.Dst)
	}
}

func TestConnIPv6(t *testing.T) {
	netns.RequireRoot(t)
	a, b := connPair(t)
	ca := connListen(t, a, "eth0", FamilyIPv6, ConnOptions{})
	cb := connListen(t, b, "eth0", FamilyIPv6, ConnOptions{})
	srcA := connPrimary(t, a, "eth0", FamilyIPv6)
	srcB := connPrimary(t, b, "eth0", FamilyIPv6)
	if !srcA.IsLinkLocalUnicast() || srcA.Zone() != "" {
		t.Fatalf("PrimaryAddr = %v, want a link-local address without zone", srcA)
	}
	idxB := connIfindex(t, b, "eth0")

	t.Run("multicast", func(t *testing.T) {
		connWrite(t, ca, connAdvert6(t, 61), srcA, connGroup6, 255)
		got, rx := connRead(t, cb)
		connWantRx(t, rx, RxInfo{Src: srcA, Dst: connGroup6, TTL: 255, IfIndex: idxB})
		if connVRID(t, got, FamilyIPv6) != 61 {
			t.Fatalf("VRID %d, want 61", connVRID(t, got, FamilyIPv6))
		}
		// connAdvert6 sent garbage in the checksum field: the kernel computed it.
		if err := VerifyChecksum(got, FamilyIPv6, ChecksumPseudoHeader, rx.Src, rx.Dst); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unicast", func(t *testing.T) {
		connWrite(t, ca, connAdvert6(t, 62), srcA, srcB, 7)
		got, rx := connRead(t, cb)
		connWantRx(t, rx, RxInfo{Src: srcA, Dst: srcB, TTL: 7, IfIndex: idxB})
		if err := VerifyChecksum(got, FamilyIPv6, ChecksumPseudoHeader, rx.Src, rx.Dst); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("short", func(t *testing.T) {
		if err := ca.WriteAdvert([]byte{0x31, 62}, srcA, connGroup6, 255); err == nil {
			t.Fatal("a 2-byte IPv6 payload was sent: the kernel has no room for the checksum")
		}
	})
}

// TestConnIPv6BadChecksumDropped shows that the kernel, not the engine,
// rejects IPv6 adverts with a bad checksum: ReadAdvert never sees them, and
// the socket's drop counter (/proc/net/raw6) counts them.
func TestConnIPv6BadChecksumDropped(t *testing.T) {
	netns.RequireRoot(t)
	a, b := connPair(t)
	ca := connListen(t, a, "eth0", FamilyIPv6, ConnOptions{})
	cb := connListen(t, b, "eth0", FamilyIPv6, ConnOptions{})
	src := connPrimary(t, a, "eth0", FamilyIPv6)

	// A raw socket without IPV6_CHECKSUM sends the payload as it is.
	bad := &Advert{Version: 3, VRID: 63, Priority: 100, AdverInt: 100,
		Addrs: []netip.Addr{netip.MustParseAddr("fd00::100")}}
	payload, err := bad.AppendMarshal(nil, ChecksumPseudoHeader, src, connGroup6)
	if err != nil {
		t.Fatal(err)
	}
	payload[6] ^= 0x0f // never a valid checksum: the sum changes by 0x0f00
	var raw *ipv6.PacketConn
	if err := a.Do(func() error {
		c, err := net.ListenPacket("ip6:112", "::")
		raw = ipv6.NewPacketConn(c)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	cm := &ipv6.ControlMessage{HopLimit: 255, Src: src.AsSlice(), IfIndex: connIfindex(t, a, "eth0")}
	if _, err := raw.WriteTo(payload, cm, &net.IPAddr{IP: connGroup6.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	// The kernel checks the checksum on receipt: it counts the advert as
	// dropped by b's socket instead of queueing it.
	netns.Eventually(t, connReadTimeout, "b's socket drops the bad advert", func() bool {
		return connRaw6Drops(t, b) == 1
	})
	connWrite(t, ca, connAdvert6(t, 64), src, connGroup6, 255)
	got, _ := connRead(t, cb)
	if v := connVRID(t, got, FamilyIPv6); v != 64 {
		t.Fatalf("read VRID %d, want 64: the bad checksum was delivered", v)
	}
}

// connRaw6Drops sums the drop counters of the IPv6 VRRP raw sockets in ns,
// from /proc/net/raw6.
func connRaw6Drops(t testing.TB, ns *netns.NS) int64 {
	t.Helper()
	var text []byte
	if err := ns.Do(func() (err error) {
		text, err = os.ReadFile("/proc/thread-self/net/raw6")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var drops int64
	for _, line := range strings.Split(string(text), "\n")[1:] {
		// sl local:proto remote st tx:rx tr:when retr uid timeout inode ref pointer drops
		f := strings.Fields(line)
		if len(f) < 13 || !strings.HasSuffix(f[1], ":0070") {
			continue
		}
		d, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			t.Fatalf("cannot parse raw6 line %q", line)
		}
		drops += d
	}
	return drops
}

func TestConnIPv4Unicast(t *testing.T) {
	netns.RequireRoot(t)
	a, b := connPair(t)
	ca := connListen(t, a, "eth0", FamilyIPv4, ConnOptions{Unicast: true})
	cb := connListen(t, b, "eth0", FamilyIPv4, ConnOptions{Unicast: true})
	src, dst := netip.MustParseAddr("10.99.1.1"), netip.MustParseAddr("10.99.1.2")
	idxB := connIfindex(t, b, "eth0")
	// The TTL is per packet: 5 (unicast_ttl) in between does not stick.
	for i, ttl := range []int{255, 5, 255} {
		sent := connAdvert4(t, uint8(10+i))
		connWrite(t, ca, sent, src, dst, ttl)
		got, rx := connRead(t, cb)
		connWantRx(t, rx, RxInfo{Src: src, Dst: dst, TTL: ttl, IfIndex: idxB})
		if !bytes.Equal(got, sent) {
			t.Fatalf("payload\n% x, want\n% x", got, sent)
		}
	}
}

// TestConnUnicastIgnoresGroups checks IP_MULTICAST_ALL=0: a unicast-only
// connection does not receive the multicast adverts that another socket of
// the host joined the group for.
func TestConnUnicastIgnoresGroups(t *testing.T) {
	netns.RequireRoot(t)
	a, b := connPair(t)
	ca := connListen(t, a, "eth0", FamilyIPv4, ConnOptions{Unicast: true})
	member := connListen(t, b, "eth0", FamilyIPv4, ConnOptions{})
	unicast := connListen(t, b, "eth0", FamilyIPv4, ConnOptions{Unicast: true})
	src := netip.MustParseAddr("10.99.1.1")

	connWrite(t, ca, connAdvert4(t, 20), src, connGroup4, 255)
	got, _ := connRead(t, member) // b's kernel has delivered it to every socket that wants it
	if v := connVRID(t, got, FamilyIPv4); v != 20 {
		t.Fatalf("member read VRID %d, want 20", v)
	}
	connWrite(t, ca, connAdvert4(t, 21), src, netip.MustParseAddr("10.99.1.2"), 255)
	got, _ = connRead(t, unicast)
	if v := connVRID(t, got, FamilyIPv4); v != 21 {
		t.Fatalf("unicast connection read VRID %d first, want 21: it received multicast", v)
	}
}

// TestConnInterfaceFilter checks that a connection on eth0 returns nothing
// that arrives on eth1 of the same host, multicast or unicast, while a
// connection on eth1 gets it.
func TestConnInterfaceFilter(t *testing.T) {
	netns.RequireRoot(t)
	a, b := connPair(t)
	c := connHost(t, "c")
	netns.Veth(t, c, "eth0", b, "eth1")
	c.Addr("eth0", "10.99.2.1/24")
	b.Addr("eth1", "10.99.2.2/24")
	ca := connListen(t, a, "eth0", FamilyIPv4, ConnOptions{})
	cc := connListen(t, c, "eth0", FamilyIPv4, ConnOptions{})
	b0 := connListen(t, b, "eth0", FamilyIPv4, ConnOptions{})
	b1 := connListen(t, b, "eth1", FamilyIPv4, ConnOptions{})
	srcC := netip.MustParseAddr("10.99.2.1")
	idx1 := connIfindex(t, b, "eth1")

	connWrite(t, cc, connAdvert4(t, 30), srcC, connGroup4, 255)
	connWrite(t, cc, connAdvert4(t, 31), srcC, netip.MustParseAddr("10.99.2.2"), 255)
	for _, want := range []uint8{30, 31} {
		got, rx := connRead(t, b1)
		if v := connVRID(t, got, FamilyIPv4); v != want || rx.IfIndex != idx1 || rx.Src != srcC {
			t.Fatalf("eth1 read VRID %d %+v, want VRID %d from %v on %d", v, rx, want, srcC, idx1)
		}
	}
	// b's kernel has handled both: a connection on eth0 that wanted them
	// has them queued before this advert from a.
	connWrite(t, ca, connAdvert4(t, 32), netip.MustParseAddr("10.99.1.1"), connGroup4, 255)
	got, rx := connRead(t, b0)
	if v := connVRID(t, got, FamilyIPv4); v != 32 || rx.IfIndex != connIfindex(t, b, "eth0") {
		t.Fatalf("eth0 read VRID %d %+v first, want 32 on eth0", v, rx)
	}
}

// TestConnNoLoopback checks that a sender does not read its own multicast.
func TestConnNoLoopback(t *testing.T) {
	netns.RequireRoot(t)
	for _, f := range []Family{FamilyIPv4, FamilyIPv6} {
		t.Run(f.String(), func(t *testing.T) {
			a, b := connPair(t)
			ca := connListen(t, a, "eth0", f, ConnOptions{})
			cb := connListen(t, b, "eth0", f, ConnOptions{})
			srcA, srcB := connPrimary(t, a, "eth0", f), connPrimary(t, b, "eth0", f)
			mk := connAdvert4
			if f == FamilyIPv6 {
				mk = connAdvert6
			}
			connWrite(t, ca, mk(t, 40), srcA, DefaultGroup(f), 255)
			if got, _ := connRead(t, cb); connVRID(t, got, f) != 40 {
				t.Fatalf("b read VRID %d, want 40", connVRID(t, got, f))
			}
			connWrite(t, cb, mk(t, 41), srcB, DefaultGroup(f), 255)
			got, rx := connRead(t, ca)
			if v := connVRID(t, got, f); v != 41 || rx.Src != srcB {
				t.Fatalf("a read VRID %d from %v first, want 41 from %v: its own advert looped back", v, rx.Src, srcB)
			}
		})
	}
}

func TestConnCloseUnblocksRead(t *testing.T) {
	netns.RequireRoot(t)
	a, _ := connPair(t)
	c := connListen(t, a, "eth0", FamilyIPv4, ConnOptions{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadAdvert(make([]byte, 1500))
		errc <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) || !strings.Contains(err.Error(), "eth0") {
			t.Fatalf("ReadAdvert after Close: %v, want net.ErrClosed naming eth0", err)
		}
	case <-time.After(connReadTimeout):
		t.Fatal("Close did not unblock ReadAdvert")
	}
	err := c.WriteAdvert(connAdvert4(t, 1), netip.Addr{}, connGroup4, 255)
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteAdvert after Close: %v, want net.ErrClosed", err)
	}
}

// TestConnTTL254Delivered checks that a multicast advert with TTL 254 (one
// that crossed a router) reaches ReadAdvert with its TTL, for the engine to
// count it (keepalived's ip_ttl_err) and drop it.
func TestConnTTL254Delivered(t *testing.T) {
	netns.RequireRoot(t)
	a, b := connPair(t)
	cb := connListen(t, b, "eth0", FamilyIPv4, ConnOptions{})
	var raw *ipv4.PacketConn
	if err := a.Do(func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		raw = ipv4.NewPacketConn(c)
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		return raw.SetMulticastInterface(ifi)
	}); err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.SetMulticastTTL(254); err != nil {
		t.Fatal(err)
	}
	sent := connAdvert4(t, 50)
	if _, err := raw.WriteTo(sent, nil, &net.IPAddr{IP: connGroup4.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	got, rx := connRead(t, cb)
	if rx.TTL != 254 || !bytes.Equal(got, sent) {
		t.Fatalf("rx %+v payload % x, want TTL 254 and % x", rx, got, sent)
	}
}

func TestListenAdvertErrors(t *testing.T) {
	netns.RequireRoot(t)
	a, _ := connPair(t)
	for _, tc := range []struct {
		name   string
		ifname string
		f      Family
		opts   ConnOptions
		want   string
	}{
		{"no interface", "nosuch0", FamilyIPv4, ConnOptions{}, "nosuch0"},
		{"bad family", "eth0", 5, ConnOptions{}, "Family(5)"},
		{"unicast group", "eth0", FamilyIPv4, ConnOptions{Groups: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, "not an IPv4 multicast group"},
		{"group of other family", "eth0", FamilyIPv6, ConnOptions{Groups: []netip.Addr{connGroup4}}, "not an IPv6 multicast group"},
		{"unicast with groups", "eth0", FamilyIPv4, ConnOptions{Unicast: true, Groups: []netip.Addr{connGroup4}}, "unicast connection with multicast groups"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := a.Do(func() error {
				c, err := ListenAdvert(tc.ifname, tc.f, tc.opts)
				if err == nil {
					c.Close()
				}
				return err
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.ifname) {
				t.Fatalf("err = %v, want one naming %s and saying %q", err, tc.ifname, tc.want)
			}
		})
	}
}

func TestConnWriteErrors(t *testing.T) {
	netns.RequireRoot(t)
	a, _ := connPair(t)
	c := connListen(t, a, "eth0", FamilyIPv4, ConnOptions{})
	src := netip.MustParseAddr("10.99.1.1")
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		ttl      int
	}{
		{"ttl 0", src, connGroup4, 0},
		{"ttl 256", src, connGroup4, 256},
		{"IPv6 destination", src, connGroup6, 255},
		{"no destination", src, netip.Addr{}, 255},
		{"IPv6 source", netip.MustParseAddr("fe80::1"), connGroup4, 255},
		{"foreign source", netip.MustParseAddr("192.0.2.1"), connGroup4, 255},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.WriteAdvert(connAdvert4(t, 1), tc.src, tc.dst, tc.ttl)
			if err == nil || !strings.Contains(err.Error(), "eth0") {
				t.Fatalf("err = %v, want an error naming eth0", err)
			}
		})
	}
	// An IPv4-mapped address is an IPv4 one.
	if err := c.WriteAdvert(connAdvert4(t, 1), netip.AddrFrom16(src.As16()), netip.AddrFrom16(connGroup4.As16()), 255); err != nil {
		t.Fatal(err)
	}
}

func TestConnPrimaryAddr(t *testing.T) {
	netns.RequireRoot(t)
	a, _ := connPair(t)
	a.Addr("eth0", "10.99.1.10/24") // a secondary address comes after the primary one
	a.Addr("eth0", "fd00::1/64")
	a.Run("ip", "link", "add", "down0", "type", "veth", "peer", "name", "down1")
	if got := connPrimary(t, a, "eth0", FamilyIPv4); got != netip.MustParseAddr("10.99.1.1") {
		t.Fatalf("IPv4 primary = %v, want 10.99.1.1", got)
	}
	if got := connPrimary(t, a, "eth0", FamilyIPv6); !got.IsLinkLocalUnicast() {
		t.Fatalf("IPv6 primary = %v, want the link-local address", got)
	}
	for _, f := range []Family{FamilyIPv4, FamilyIPv6} {
		err := a.Do(func() error {
			_, err := PrimaryAddr("down0", f) // down: no address at all
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "down0") {
			t.Fatalf("PrimaryAddr(down0, %v) = %v, want an error naming down0", f, err)
		}
	}
}

// BenchmarkConnRoundTrip measures one IPv4 multicast advert written in one
// namespace and read in the other.
func BenchmarkConnRoundTrip(b *testing.B) {
	netns.RequireRoot(b)
	na, nb := connPair(b)
	ca := connListen(b, na, "eth0", FamilyIPv4, ConnOptions{})
	cb := connListen(b, nb, "eth0", FamilyIPv4, ConnOptions{})
	src := netip.MustParseAddr("10.99.1.1")
	sent := connAdvert4(b, 1)
	buf := make([]byte, 1500)
	if err := cb.ip.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := ca.WriteAdvert(sent, src, connGroup4, 255); err != nil {
			b.Fatal(err)
		}
		if _, _, err := cb.ReadAdvert(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// The fake needs no root.

func fakeListen(t *testing.T, l *FakeLink, f Family, opts ConnOptions, addrs ...string) *FakeConn {
	t.Helper()
	as := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		as[i] = netip.MustParseAddr(a)
	}
	c, err := l.Listen(f, opts, as...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// fakeRead returns the next queued advert on c, failing if there is none:
// the fake delivers during WriteAdvert.
func fakeRead(t *testing.T, c *FakeConn) ([]byte, RxInfo) {
	t.Helper()
	if len(c.queue) == 0 {
		t.Fatalf("nothing delivered to connection %d", c.IfIndex())
	}
	buf := make([]byte, 1500)
	n, rx, err := c.ReadAdvert(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n], rx
}

func fakeNothing(t *testing.T, cs ...*FakeConn) {
	t.Helper()
	for _, c := range cs {
		if n := len(c.queue); n != 0 {
			t.Fatalf("%d adverts delivered to connection %d, want none", n, c.IfIndex())
		}
	}
}

func TestFakeLinkDelivery(t *testing.T) {
	l := NewFakeLink()
	a := fakeListen(t, l, FamilyIPv4, ConnOptions{}, "10.0.0.1", "10.0.0.11")
	b := fakeListen(t, l, FamilyIPv4, ConnOptions{}, "10.0.0.2")
	c := fakeListen(t, l, FamilyIPv4, ConnOptions{}, "10.0.0.3")
	uni := fakeListen(t, l, FamilyIPv4, ConnOptions{Unicast: true}, "10.0.0.4")
	other := fakeListen(t, l, FamilyIPv4, ConnOptions{Groups: []netip.Addr{netip.MustParseAddr("224.0.0.99")}}, "10.0.0.5")
	v6 := fakeListen(t, l, FamilyIPv6, ConnOptions{}, "fe80::6")
	if a.IfIndex() == b.IfIndex() {
		t.Fatal("two connections share an interface index")
	}
	src := netip.MustParseAddr("10.0.0.1")
	sent := connAdvert4(t, 1)

	// Multicast: every member of the group but the sender.
	if err := a.WriteAdvert(sent, src, connGroup4, 255); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*FakeConn{b, c} {
		got, rx := fakeRead(t, r)
		connWantRx(t, rx, RxInfo{Src: src, Dst: connGroup4, TTL: 255, IfIndex: r.IfIndex()})
		if !bytes.Equal(got, sent) {
			t.Fatalf("payload % x, want % x", got, sent)
		}
	}
	fakeNothing(t, a, uni, other, v6)

	// Unicast: the owner of the address only, with the TTL given; a zero
	// source is the sender's first address.
	if err := a.WriteAdvert(sent, netip.Addr{}, netip.MustParseAddr("10.0.0.4"), 5); err != nil {
		t.Fatal(err)
	}
	_, rx := fakeRead(t, uni)
	connWantRx(t, rx, RxInfo{Src: src, Dst: netip.MustParseAddr("10.0.0.4"), TTL: 5, IfIndex: uni.IfIndex()})
	fakeNothing(t, a, b, c, other, v6)

	// Another group; an IPv4-mapped destination is IPv4.
	if err := b.WriteAdvert(sent, netip.Addr{}, netip.AddrFrom16(netip.MustParseAddr("224.0.0.99").As16()), 255); err != nil {
		t.Fatal(err)
	}
	if _, rx := fakeRead(t, other); rx.Dst != netip.MustParseAddr("224.0.0.99") || rx.Src != netip.MustParseAddr("10.0.0.2") {
		t.Fatalf("rx %+v", rx)
	}
	fakeNothing(t, a, b, c, uni, v6)

	// Reads truncate like a raw socket.
	if err := a.WriteAdvert(sent, src, connGroup4, 255); err != nil {
		t.Fatal(err)
	}
	if n, _, err := b.ReadAdvert(make([]byte, 4)); n != 4 || err != nil {
		t.Fatalf("short read: %d, %v", n, err)
	}
}

func TestFakeLinkIPv6Checksum(t *testing.T) {
	l := NewFakeLink()
	a := fakeListen(t, l, FamilyIPv6, ConnOptions{}, "fe80::1")
	b := fakeListen(t, l, FamilyIPv6, ConnOptions{}, "fe80::2")
	sent := connAdvert6(t, 7) // garbage checksum: the "kernel" fills it in
	if err := a.WriteAdvert(sent, netip.Addr{}, connGroup6, 255); err != nil {
		t.Fatal(err)
	}
	got, rx := fakeRead(t, b)
	connWantRx(t, rx, RxInfo{Src: netip.MustParseAddr("fe80::1"), Dst: connGroup6, TTL: 255, IfIndex: b.IfIndex()})
	if err := VerifyChecksum(got, FamilyIPv6, ChecksumPseudoHeader, rx.Src, rx.Dst); err != nil {
		t.Fatal(err)
	}
	if sent[6] != 0xde || sent[7] != 0xad {
		t.Fatal("WriteAdvert modified the caller's buffer")
	}
}

func TestFakeLinkErrors(t *testing.T) {
	l := NewFakeLink()
	for _, tc := range []struct {
		name  string
		f     Family
		opts  ConnOptions
		addrs []netip.Addr
	}{
		{"bad family", 0, ConnOptions{}, nil},
		{"address of other family", FamilyIPv4, ConnOptions{}, []netip.Addr{netip.MustParseAddr("fe80::1")}},
		{"unicast group", FamilyIPv6, ConnOptions{Groups: []netip.Addr{netip.MustParseAddr("fd00::1")}}, nil},
		{"unicast with groups", FamilyIPv4, ConnOptions{Unicast: true, Groups: []netip.Addr{connGroup4}}, nil},
	} {
		if _, err := l.Listen(tc.f, tc.opts, tc.addrs...); err == nil {
			t.Errorf("%s: Listen succeeded", tc.name)
		}
	}
	v4 := fakeListen(t, l, FamilyIPv4, ConnOptions{}, "10.0.0.1")
	v6 := fakeListen(t, l, FamilyIPv6, ConnOptions{}) // no address: no source to pick
	for _, tc := range []struct {
		name     string
		c        *FakeConn
		b        []byte
		src, dst netip.Addr
		ttl      int
	}{
		{"ttl 0", v4, connAdvert4(t, 1), netip.Addr{}, connGroup4, 0},
		{"ttl 256", v4, connAdvert4(t, 1), netip.Addr{}, connGroup4, 256},
		{"IPv6 destination", v4, connAdvert4(t, 1), netip.Addr{}, connGroup6, 255},
		{"IPv6 source", v4, connAdvert4(t, 1), netip.MustParseAddr("fe80::1"), connGroup4, 255},
		{"mapped IPv6 destination", v6, connAdvert6(t, 1), netip.MustParseAddr("fe80::1"), netip.AddrFrom16(connGroup4.As16()), 255},
		{"IPv6 short", v6, []byte{0x31, 1}, netip.MustParseAddr("fe80::1"), connGroup6, 255},
		{"IPv6 without source", v6, connAdvert6(t, 1), netip.Addr{}, connGroup6, 255},
	} {
		if err := tc.c.WriteAdvert(tc.b, tc.src, tc.dst, tc.ttl); err == nil {
			t.Errorf("%s: WriteAdvert succeeded", tc.name)
		}
	}
}

func TestFakeConnClose(t *testing.T) {
	l := NewFakeLink()
	a := fakeListen(t, l, FamilyIPv4, ConnOptions{}, "10.0.0.1")
	b := fakeListen(t, l, FamilyIPv4, ConnOptions{}, "10.0.0.2")
	errc := make(chan error, 1)
	go func() {
		_, _, err := b.ReadAdvert(make([]byte, 1500))
		errc <- err
	}()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadAdvert after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(connReadTimeout):
		t.Fatal("Close did not unblock ReadAdvert")
	}
	if err := b.WriteAdvert(connAdvert4(t, 1), netip.Addr{}, connGroup4, 255); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteAdvert after Close: %v", err)
	}
	if err := b.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	// A closed connection is off the link.
	if err := a.WriteAdvert(connAdvert4(t, 1), netip.Addr{}, connGroup4, 255); err != nil {
		t.Fatal(err)
	}
	fakeNothing(t, b)
}

func TestFakeConnQueueAndInject(t *testing.T) {
	l := NewFakeLink()
	a := fakeListen(t, l, FamilyIPv4, ConnOptions{}, "10.0.0.1")
	b := fakeListen(t, l, FamilyIPv4, ConnOptions{}, "10.0.0.2")
	for range fakeQueueLen + 10 {
		if err := a.WriteAdvert(connAdvert4(t, 1), netip.Addr{}, connGroup4, 255); err != nil {
			t.Fatal(err)
		}
	}
	if b.Dropped() != 10 || len(b.queue) != fakeQueueLen {
		t.Fatalf("dropped %d queued %d, want 10 and %d", b.Dropped(), len(b.queue), fakeQueueLen)
	}
	for len(b.queue) > 0 {
		fakeRead(t, b)
	}
	stranger := netip.MustParseAddr("192.0.2.9")
	b.Inject(connAdvert4(t, 9), stranger, connGroup4, 254)
	got, rx := fakeRead(t, b)
	connWantRx(t, rx, RxInfo{Src: stranger, Dst: connGroup4, TTL: 254, IfIndex: b.IfIndex()})
	if connVRID(t, got, FamilyIPv4) != 9 {
		t.Fatal("injected advert altered")
	}
}

// TestFakeConnConcurrent runs writers, readers and Close together, for the
// race detector.
func TestFakeConnConcurrent(t *testing.T) {
	l := NewFakeLink()
	conns := make([]*FakeConn, 4)
	for i := range conns {
		conns[i] = fakeListen(t, l, FamilyIPv4, ConnOptions{}, "10.0.0."+strconv.Itoa(i+1))
	}
	done := make(chan struct{})
	for _, c := range conns {
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := c.ReadAdvert(buf); err != nil {
					done <- struct{}{}
					return
				}
			}
		}()
	}
	ws := make(chan error, len(conns))
	for _, c := range conns {
		go func() {
			for range 100 {
				if err := c.WriteAdvert(connAdvert4(t, 1), netip.Addr{}, connGroup4, 255); err != nil {
					ws <- err
					return
				}
			}
			ws <- nil
		}()
	}
	for range conns {
		if err := <-ws; err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		<-done
	}
}

// TestConnRcvBuf: kernel_rx_buf_size sets the socket's receive buffer (the kernel
// doubles what it is given).
func TestConnRcvBuf(t *testing.T) {
	netns.RequireRoot(t)
	a, _ := connPair(t)
	rcvbuf := func(c *advertSocket) int {
		rc, err := c.ip.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var serr error
		if err := rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil {
			t.Fatal(err)
		}
		if serr != nil {
			t.Fatal(serr)
		}
		return v
	}
	def := rcvbuf(connListen(t, a, "eth0", FamilyIPv4, ConnOptions{}))
	want := 2 * 48 * 1024
	if def == want {
		t.Fatalf("the default receive buffer is already %d: pick another size", def)
	}
	if got := rcvbuf(connListen(t, a, "eth0", FamilyIPv4, ConnOptions{RcvBuf: 48 * 1024})); got != want {
		t.Errorf("SO_RCVBUF %d with RcvBuf 48 KiB, want %d (default %d)", got, want, def)
	}
}
