package vrrp

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"gokeepalived/parser"
	"gokeepalived/tests/netns"
)

// frame is a captured Ethernet frame with the kernel's receive timestamp.
type frame struct {
	b  []byte
	at time.Time
}

// capture is an AF_PACKET socket in a namespace that reads whole frames of one
// EtherType, from a goroutine started at once, with their kernel receive timestamps
// (SO_TIMESTAMPNS), so that spacing is measured where the frames arrive, not when
// the test gets to them. (The kernel turns timestamping on asynchronously the first
// time a socket asks; until then it stamps a frame when it is read, which the
// reading goroutine does right away.)
type capture struct {
	c      *packet.Conn
	frames chan frame
}

func captureIn(t *testing.T, ns *netns.NS, ifname string, proto int) *capture {
	t.Helper()
	c := &capture{frames: make(chan frame, 256)}
	var rc syscall.RawConn
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		if c.c, err = packet.Listen(ifi, packet.Raw, proto, nil); err != nil {
			return err
		}
		if rc, err = c.c.SyscallConn(); err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		}); err != nil {
			return err
		}
		return serr
	})
	if err != nil {
		t.Fatalf("capture on %s in %s: %v", ifname, ns.Name, err)
	}
	go func() {
		defer close(c.frames)
		for {
			f, err := readFrame(rc)
			if err != nil {
				return // closed
			}
			c.frames <- f
		}
	}()
	t.Cleanup(func() {
		c.c.Close()
		for range c.frames { // until the reader has stopped
		}
	})
	return c
}

// readFrame reads the next frame and its receive timestamp.
func readFrame(rc syscall.RawConn) (frame, error) {
	buf, oob := make([]byte, 2048), make([]byte, 128)
	var n, oobn int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return frame{}, err
	}
	if rerr != nil {
		return frame{}, rerr
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return frame{}, err
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return frame{b: buf[:n], at: time.Unix(sec, nsec)}, nil
		}
	}
	return frame{}, errors.New("frame without a receive timestamp")
}

// collect waits until n frames match, failing the test after timeout, then checks
// that no further matching frame arrives within a short grace period.
func (c *capture) collect(t *testing.T, n int, timeout time.Duration, match func([]byte) bool) []frame {
	t.Helper()
	var out []frame
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case f, ok := <-c.frames:
			if !ok {
				t.Fatalf("capture ended after %d matching frames, want %d", len(out), n)
			}
			if match(f.b) {
				out = append(out, f)
			}
		case <-deadline:
			t.Fatalf("got %d matching frames within %v, want %d", len(out), timeout, n)
		}
	}
	grace := time.After(200 * time.Millisecond)
	for {
		select {
		case f := <-c.frames:
			if match(f.b) {
				t.Fatalf("more than %d matching frames: extra % x", n, f.b)
			}
		case <-grace:
			return out
		}
	}
}

// checkSpacing checks that consecutive frames arrived at least half an interval apart:
// a generous bound, for the rare frame stamped when read rather than on arrival.
func checkSpacing(t *testing.T, frames []frame, interval time.Duration) {
	t.Helper()
	for i := 1; i < len(frames); i++ {
		if gap := frames[i].at.Sub(frames[i-1].at); gap < interval/2 {
			t.Errorf("frames %d and %d arrived %v apart, want about %v", i-1, i, gap, interval)
		}
	}
}

func macIn(t *testing.T, ns *netns.NS, ifname string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err == nil {
			mac = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return mac
}

// neighMAC returns the link-layer address the namespace's neighbour table has for ip.
func neighMAC(ns *netns.NS, ifname string, ip netip.Addr) string {
	out, err := ns.Try("ip", "-j", "neigh", "show", "to", ip.String(), "dev", ifname)
	if err != nil {
		return ""
	}
	var entries []struct {
		LLAddr string `json:"lladdr"`
	}
	if json.Unmarshal([]byte(out), &entries) != nil || len(entries) != 1 {
		return ""
	}
	return entries[0].LLAddr
}

// announceLab connects namespaces a and b with a veth pair named eth0 on both sides.
func announceLab(t *testing.T) (a, b *netns.NS) {
	a, b = netns.New(t, "anna"), netns.New(t, "annb")
	netns.Veth(t, a, "eth0", b, "eth0")
	return a, b
}

// staleMAC is the address a neighbour table has for a VIP before the announcement:
// the previous master's.
const staleMAC = "02:00:00:00:00:99"

func TestAnnounceGARP(t *testing.T) {
	a, b := announceLab(t)
	capB := captureIn(t, b, "eth0", unix.ETH_P_ARP)
	a.Addr("eth0", "10.50.0.1/24")
	b.Addr("eth0", "10.50.0.2/24")
	v := testVIP(t, "10.50.0.100/24", "eth0")
	if err := addrManagerIn(t, a, false).Add(v); err != nil {
		t.Fatal(err)
	}
	macA := macIn(t, a, "eth0")
	ip := v.Prefix.Addr().As4()
	b.Run("ip", "neigh", "replace", v.Prefix.Addr().String(), "lladdr", staleMAC, "dev", "eth0", "nud", "stale")

	const interval = 50 * time.Millisecond
	start := time.Now()
	if err := a.Do(func() error {
		return NewAnnouncer(interval).Announce("eth0", []netip.Addr{v.Prefix.Addr()}, 3)
	}); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < 2*interval {
		t.Errorf("3 packets took %v, want at least 2 intervals (%v)", elapsed, 2*interval)
	}

	var want []byte
	want = append(want, arpBroadcastMAC...) // Ethernet destination
	want = append(want, macA...)            // Ethernet source
	want = append(want, 0x08, 0x06)         // ARP
	want = append(want, 0, 1, 0x08, 0, 6, 4, 0, 1)
	want = append(want, macA...)
	want = append(want, ip[:]...)
	want = append(want, arpBroadcastMAC...)
	want = append(want, ip[:]...)
	frames := capB.collect(t, 3, 5*time.Second, func(f []byte) bool {
		return len(f) >= 42 && f[12] == 0x08 && f[13] == 0x06 && bytes.Equal(f[28:32], ip[:])
	})
	for i, f := range frames {
		if !bytes.Equal(f.b[:42], want) || strings.Trim(string(f.b[42:]), "\x00") != "" {
			t.Errorf("frame %d:\n% x\nwant\n% x", i, f.b, want)
		}
	}
	checkSpacing(t, frames, interval)
	netns.Eventually(t, 5*time.Second, "b's neighbour table maps the VIP to a's MAC", func() bool {
		return neighMAC(b, "eth0", v.Prefix.Addr()) == macA.String()
	})
}

func TestAnnounceNA(t *testing.T) {
	a, b := announceLab(t)
	capB := captureIn(t, b, "eth0", unix.ETH_P_IPV6)
	a.Addr("eth0", "2001:db8:50::1/64")
	b.Addr("eth0", "2001:db8:50::2/64")
	m := addrManagerIn(t, a, false)
	v1 := testVIP(t, "2001:db8:50::100/64", "eth0")
	v1.PreferredLft = lftPtr(parser.LifetimeForever)
	v2 := testVIP(t, "2001:db8:51::101/128", "eth0")
	v2.PreferredLft = lftPtr(0) // deprecated, as keepalived installs a /128: still a valid source
	if err := m.Add(v1); err != nil {
		t.Fatal(err)
	}
	if err := m.Add(v2); err != nil {
		t.Fatal(err)
	}
	macA := macIn(t, a, "eth0")
	b.Run("ip", "-6", "neigh", "replace", v1.Prefix.Addr().String(), "lladdr", staleMAC, "dev", "eth0", "nud", "stale")

	const interval = 20 * time.Millisecond
	targets := []netip.Addr{v1.Prefix.Addr(), v2.Prefix.Addr()}
	if err := a.Do(func() error { return NewAnnouncer(interval).Announce("eth0", targets, 3) }); err != nil {
		t.Fatal(err)
	}

	// Ethernet 14 bytes, IPv6 header 40, then the 32-byte advertisement.
	const eth, ip6, icmp = 0, 14, 54
	frames := capB.collect(t, 6, 5*time.Second, func(f []byte) bool {
		return len(f) >= icmp+32 && f[12] == 0x86 && f[13] == 0xdd && f[ip6+6] == 58 && f[icmp] == 136 &&
			(bytes.Equal(f[icmp+8:icmp+24], targets[0].AsSlice()) || bytes.Equal(f[icmp+8:icmp+24], targets[1].AsSlice()))
	})
	allNodesMAC := net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	for i, fr := range frames {
		f := fr.b
		target := targets[i%2] // one round per count: 100, 101, 100, 101, ...
		checks := []struct {
			what      string
			got, want []byte
		}{
			{"Ethernet destination", f[eth : eth+6], allNodesMAC},
			{"Ethernet source", f[eth+6 : eth+12], macA},
			{"payload length", f[ip6+4 : ip6+6], []byte{0, 32}},
			{"hop limit", f[ip6+7 : ip6+8], []byte{255}},
			{"IPv6 source", f[ip6+8 : ip6+24], target.AsSlice()},
			{"IPv6 destination", f[ip6+24 : ip6+40], netip.MustParseAddr("ff02::1").AsSlice()},
			{"type and code", f[icmp : icmp+2], []byte{136, 0}},
			{"flags (O only) and reserved", f[icmp+4 : icmp+8], []byte{0x20, 0, 0, 0}},
			{"target", f[icmp+8 : icmp+24], target.AsSlice()},
			{"target link-layer address option", f[icmp+24 : icmp+32], append([]byte{2, 1}, macA...)},
		}
		for _, c := range checks {
			if !bytes.Equal(c.got, c.want) {
				t.Errorf("frame %d: %s % x, want % x", i, c.what, c.got, c.want)
			}
		}
		// The kernel filled in the checksum: the message plus pseudo-header sums to 0xffff.
		acc := sum(sum(0, f[ip6+8:ip6+24]), f[ip6+24:ip6+40]) + 32 + 58
		if got := fold(sum(acc, f[icmp:icmp+32])); got != 0xffff {
			t.Errorf("frame %d: bad ICMPv6 checksum (sum 0x%04x)", i, got)
		}
	}
	checkSpacing(t, frames, interval)
	netns.Eventually(t, 5*time.Second, "b's neighbour table maps the VIP to a's MAC", func() bool {
		return neighMAC(b, "eth0", v1.Prefix.Addr()) == macA.String()
	})
}

// TestAnnouncePartialFailure checks that an address whose packets cannot be sent (an
// IPv6 address not installed cannot be the source) does not stop the others.
func TestAnnouncePartialFailure(t *testing.T) {
	a, b := announceLab(t)
	v := testVIP(t, "2001:db8:52::100/64", "eth0")
	if err := addrManagerIn(t, a, false).Add(v); err != nil {
		t.Fatal(err)
	}
	capB := captureIn(t, b, "eth0", unix.ETH_P_IPV6)
	missing := netip.MustParseAddr("2001:db8:52::200")
	err := a.Do(func() error {
		return NewAnnouncer(0).Announce("eth0", []netip.Addr{missing, v.Prefix.Addr()}, 2)
	})
	if err == nil || !strings.Contains(err.Error(), missing.String()) {
		t.Fatalf("Announce = %v, want an error naming %s", err, missing)
	}
	if strings.Contains(err.Error(), v.Prefix.Addr().String()) {
		t.Errorf("error names the address that worked: %v", err)
	}
	capB.collect(t, 2, 5*time.Second, func(f []byte) bool {
		return len(f) >= 86 && f[12] == 0x86 && f[13] == 0xdd && f[54] == 136 && bytes.Equal(f[62:78], v.Prefix.Addr().AsSlice())
	})

	if err := a.Do(func() error {
		return NewAnnouncer(0).Announce("nosuch0", []netip.Addr{v.Prefix.Addr()}, 1)
	}); err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("Announce on a missing interface = %v", err)
	}
	if err := a.Do(func() error {
		return NewAnnouncer(0).Announce("lo", []netip.Addr{v.Prefix.Addr()}, 1)
	}); err == nil || !strings.Contains(err.Error(), "no link-layer address") {
		t.Errorf("Announce on lo = %v", err)
	}
	if err := a.Do(func() error { return NewAnnouncer(0).Announce("lo", nil, 3) }); err != nil {
		t.Errorf("Announce of nothing = %v", err)
	}
}

// TestAnnounceNARouter checks the Router flag, set when the interface forwards IPv6
// (keepalived does the same, so that neighbours keep us in their router lists).
func TestAnnounceNARouter(t *testing.T) {
	a, b := announceLab(t)
	capB := captureIn(t, b, "eth0", unix.ETH_P_IPV6)
	if err := a.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/eth0/forwarding", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	v := testVIP(t, "2001:db8:53::100/64", "eth0")
	if err := addrManagerIn(t, a, false).Add(v); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(func() error { return NewAnnouncer(0).Announce("eth0", []netip.Addr{v.Prefix.Addr()}, 1) }); err != nil {
		t.Fatal(err)
	}
	frames := capB.collect(t, 1, 5*time.Second, func(f []byte) bool {
		return len(f) >= 86 && f[12] == 0x86 && f[13] == 0xdd && f[54] == 136 && bytes.Equal(f[62:78], v.Prefix.Addr().AsSlice())
	})
	if flags := frames[0].b[58]; flags != 0xa0 {
		t.Errorf("flags 0x%02x, want 0xa0 (Router, Override)", flags)
	}
}
