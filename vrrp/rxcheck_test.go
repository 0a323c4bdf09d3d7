package vrrp

import (
	"net/netip"
	"testing"
)

// TestRxCheck: every malformed or foreign advert is dropped (or, for an address list
// mismatch, accepted) and counted under keepalived's counter name; none panics.
func TestRxCheck(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.9")
	group := DefaultGroup(FamilyIPv4)
	vip := netip.MustParseAddr("192.168.71.205")
	v2 := func(mut func(*Advert)) []byte {
		a := Advert{Version: 2, VRID: 51, Priority: 150, AdverInt: 1, AuthType: AuthPass,
			AuthData: PassAuthData("secret"), Addrs: []netip.Addr{vip}}
		if mut != nil {
			mut(&a)
		}
		b, err := a.AppendMarshal(nil, ChecksumPseudoHeader, src, group)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pol := func() *rxPolicy {
		return &rxPolicy{version: 2, family: FamilyIPv4, authType: AuthPass, authData: PassAuthData("secret"),
			vips: []netip.Addr{vip}}
	}
	uni := func() *rxPolicy {
		p := pol()
		p.unicast, p.checkUnicastSrc = true, true
		p.peers = []peerTTL{{addr: netip.MustParseAddr("10.0.0.2"), min: 250}}
		return p
	}
	flip := func(b []byte, i int) []byte { b[i] ^= 0xff; return b }
	tests := []struct {
		name    string
		pol     *rxPolicy
		payload []byte
		rx      RxInfo
		ok      bool
		counter func(s StatsSnapshot) uint64
	}{
		{"valid", pol(), v2(nil), RxInfo{Src: src, Dst: group, TTL: 255}, true, func(s StatsSnapshot) uint64 { return s.AdvertRcvd }},
		{"short", pol(), []byte{0x21, 51, 1}, RxInfo{Src: src, Dst: group, TTL: 255}, false, func(s StatsSnapshot) uint64 { return s.PacketLenErr }},
		{"declared addresses missing", pol(), v2(nil)[:10], RxInfo{Src: src, Dst: group, TTL: 255}, false, func(s StatsSnapshot) uint64 { return s.PacketLenErr }},
		{"bad checksum", pol(), flip(v2(nil), 7), RxInfo{Src: src, Dst: group, TTL: 255}, false, func(s StatsSnapshot) uint64 { return s.ChecksumErr }},
		{"wrong type", pol(), func() []byte { b := v2(nil); b[0] = 0x22; return b }(), RxInfo{Src: src, Dst: group, TTL: 255}, false, func(s StatsSnapshot) uint64 { return s.InvalidTypeRcvd }},
		{"version 3 to a v2 instance", pol(), func() []byte {
			a := Advert{Version: 3, VRID: 51, Priority: 150, AdverInt: 100, Addrs: []netip.Addr{vip}}
			b, _ := a.AppendMarshal(nil, ChecksumPseudoHeader, src, group)
			return b
		}(), RxInfo{Src: src, Dst: group, TTL: 255}, false, func(s StatsSnapshot) uint64 { return s.VersionErr }},
		{"RFC 5798 7.1: multicast TTL 254", pol(), v2(nil), RxInfo{Src: src, Dst: group, TTL: 254}, false, func(s StatsSnapshot) uint64 { return s.IPTTLErr }},
		{"auth type mismatch", pol(), v2(func(a *Advert) { a.AuthType = AuthNone; a.AuthData = [8]byte{} }), RxInfo{Src: src, Dst: group, TTL: 255}, false, func(s StatsSnapshot) uint64 { return s.AuthTypeMismatch }},
		{"wrong password", pol(), v2(func(a *Advert) { a.AuthData = PassAuthData("guess") }), RxInfo{Src: src, Dst: group, TTL: 255}, false, func(s StatsSnapshot) uint64 { return s.AuthFailure }},
		{"unknown auth type", pol(), v2(func(a *Advert) { a.AuthType = 7 }), RxInfo{Src: src, Dst: group, TTL: 255}, false, func(s StatsSnapshot) uint64 { return s.InvalidAuthType }},
		{"keepalived HEAD: address list mismatch counted, accepted", pol(), v2(func(a *Advert) { a.Addrs = []netip.Addr{netip.MustParseAddr("192.168.71.9")} }), RxInfo{Src: src, Dst: group, TTL: 255}, true, func(s StatsSnapshot) uint64 { return s.AddrListErr }},
		{"priority 0 counted", pol(), v2(func(a *Advert) { a.Priority = 0 }), RxInfo{Src: src, Dst: group, TTL: 255}, true, func(s StatsSnapshot) uint64 { return s.PriZeroRcvd }},
		{"check_unicast_src: stranger", uni(), v2(nil), RxInfo{Src: src, Dst: netip.MustParseAddr("10.0.0.1"), TTL: 255}, false, func(s StatsSnapshot) uint64 { return s.UnicastSrcErr }},
		{"unicast peer below min_ttl", uni(), func() []byte {
			a := Advert{Version: 2, VRID: 51, Priority: 150, AdverInt: 1, AuthType: AuthPass, AuthData: PassAuthData("secret"), Addrs: []netip.Addr{vip}}
			b, _ := a.AppendMarshal(nil, ChecksumPseudoHeader, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"))
			return b
		}(), RxInfo{Src: netip.MustParseAddr("10.0.0.2"), Dst: netip.MustParseAddr("10.0.0.1"), TTL: 64}, false, func(s StatsSnapshot) uint64 { return s.IPTTLErr }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st Stats
			var adv Advert
			_, why := tc.pol.check(&adv, tc.payload, tc.rx, &st)
			ok := why == ""
			if ok != tc.ok {
				t.Errorf("accepted = %v, want %v", ok, tc.ok)
			}
			if got := tc.counter(st.Snapshot()); got != 1 {
				t.Errorf("counter = %d, want 1 (%+v)", got, st.Snapshot())
			}
		})
	}
}

// FuzzRxCheck: arbitrary payloads through the receive checks never panic and are either
// accepted or counted.
func FuzzRxCheck(f *testing.F) {
	f.Add([]byte{0x21, 51, 150, 1, 1, 1, 0, 0, 192, 168, 71, 205})
	f.Add([]byte{0x31, 51, 150, 1, 0, 100, 0, 0, 192, 168, 71, 205})
	p := &rxPolicy{version: 2, family: FamilyIPv4, authType: AuthPass, authData: PassAuthData("x"),
		vips: []netip.Addr{netip.MustParseAddr("192.168.71.205")}}
	f.Fuzz(func(t *testing.T, b []byte) {
		var st Stats
		var adv Advert
		p.check(&adv, b, RxInfo{Src: netip.MustParseAddr("10.0.0.9"), Dst: DefaultGroup(FamilyIPv4), TTL: 255}, &st)
		if st.AdvertRcvd.Load() != 1 {
			t.Fatal("not counted")
		}
	})
}
