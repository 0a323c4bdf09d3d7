package failover

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestParseFrame checks the capture's decoding of an IPv4 VRRP advert and of a
// gratuitous ARP (and that an ordinary ARP request is ignored).
func TestParseFrame(t *testing.T) {
	mac := []byte{0x02, 0, 0, 0, 0, 0x01}
	eth := func(typ uint16) []byte {
		return append([]byte{0x01, 0, 0x5e, 0, 0, 0x12}, append(append([]byte{}, mac...), byte(typ>>8), byte(typ))...)
	}
	ip := []byte{0x45, 0, 0, 40, 0, 0, 0, 0, 255, 112, 0, 0, 192, 168, 71, 2, 224, 0, 0, 18}
	vrrp := []byte{0x31, 51, 100, 1, 0, 5, 0, 0, 192, 168, 71, 205}
	ev, ok := parseFrame(append(append(eth(0x0800), ip...), vrrp...))
	if !ok || ev.Kind != Advert || ev.Version != 3 || ev.VRID != 51 || ev.Priority != 100 || ev.Src != netip.MustParseAddr("192.168.71.2") {
		t.Fatalf("advert: %+v %v", ev, ok)
	}
	arp := func(spa, tpa byte) []byte {
		a := []byte{0, 1, 8, 0, 6, 4, 0, 1}
		a = append(a, mac...)
		a = append(a, 192, 168, 71, spa)
		a = append(a, 0, 0, 0, 0, 0, 0)
		return append(eth(0x0806), append(a, 192, 168, 71, tpa)...)
	}
	ev, ok = parseFrame(arp(205, 205))
	if !ok || ev.Kind != GARP || ev.Src != netip.MustParseAddr("192.168.71.205") || ev.SrcMAC.String() != net.HardwareAddr(mac).String() {
		t.Fatalf("GARP: %+v %v", ev, ok)
	}
	if _, ok := parseFrame(arp(100, 205)); ok {
		t.Fatal("an ARP request from the client was taken for a gratuitous ARP")
	}
}

// TestAnalyzeSoak counts a takeover by the backup, a priority-0 advert and a long gap.
func TestAnalyzeSoak(t *testing.T) {
	m, bk := netip.MustParseAddr("192.168.71.1"), netip.MustParseAddr("192.168.71.2")
	t0 := time.Unix(1000, 0)
	adv := func(ms int, src netip.Addr, prio uint8) Event {
		return Event{At: t0.Add(time.Duration(ms) * time.Millisecond), Kind: Advert, Src: src, VRID: 61, Priority: prio}
	}
	evs := []Event{
		adv(0, m, 150), adv(50, m, 150), adv(100, m, 150),
		adv(290, bk, 100), adv(300, m, 150), adv(300, bk, 0), // backup took over; master back
		adv(350, m, 150), {At: t0.Add(400 * time.Millisecond), Kind: Advert, Src: m, VRID: 62, Priority: 150},
	}
	st := analyzeSoak(evs, 61, m, bk, "", netip.Addr{}, t0, t0.Add(time.Second), 50*time.Millisecond, 180*time.Millisecond)
	if st.adverts != 5 || st.fromBackup != 1 || st.changes != 2 || st.zero != 1 || st.overMDI != 1 || st.over2x != 1 || st.maxGap != 200*time.Millisecond {
		t.Fatalf("%+v", st)
	}
}
