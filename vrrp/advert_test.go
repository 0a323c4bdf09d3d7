package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	src4 = netip.MustParseAddr("10.0.0.1")
	dst4 = netip.MustParseAddr("224.0.0.18")
	src6 = netip.MustParseAddr("fe80::1")
	dst6 = netip.MustParseAddr("ff02::12")
)

// addrs parses its arguments as addresses.
func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, v := range s {
		out[i] = netip.MustParseAddr(v)
	}
	return out
}

// equalFields reports whether a and b agree on every field but Checksum.
func equalFields(a, b *Advert) bool {
	return a.Version == b.Version && a.VRID == b.VRID && a.Priority == b.Priority &&
		a.AdverInt == b.AdverInt && a.AuthType == b.AuthType && a.AuthData == b.AuthData &&
		slices.Equal(a.Addrs, b.Addrs)
}

// TestChecksumRFC1071 checks the one's complement sum against the worked
// example of RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to
// 0x2ddf0, which folds to 0xddf2; its complement, the checksum, is 0x220d.
func TestChecksumRFC1071(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := sum(0, b); got != 0x2ddf0 {
		t.Fatalf("sum = %#x, want 0x2ddf0", got)
	}
	if got := fold(sum(0, b)); got != 0xddf2 {
		t.Fatalf("fold = %#x, want 0xddf2", got)
	}
	if got := checksum(0, b); got != 0x220d {
		t.Fatalf("checksum = %#x, want 0x220d", got)
	}
	// An odd trailing byte is the high byte of a zero-padded word.
	if got := sum(0, []byte{0x12, 0x34, 0x56}); got != 0x1234+0x5600 {
		t.Fatalf("odd sum = %#x, want %#x", got, 0x1234+0x5600)
	}
}

// golden holds adverts with their wire bytes written out by hand from the
// RFC layouts. The checksums were added up by hand (shown per vector) and
// cross-checked with an independent script.
var golden = []struct {
	name     string
	advert   Advert
	family   Family
	mode     ChecksumMode
	src, dst netip.Addr
	wire     []byte
}{
	{
		// words 2133+6401+0001+c0a8+010a = 0x146e7 -> 0x46e8 -> ^ = 0xb917
		name:   "v2 one VIP no auth",
		advert: Advert{Version: 2, VRID: 51, Priority: 100, AdverInt: 1, Addrs: addrs("192.168.1.10"), Checksum: 0xb917},
		family: FamilyIPv4,
		wire: []byte{
			0x21, 51, 100, 1, // version 2 | type 1, VRID, priority, count
			0, 1, 0xb9, 0x17, // auth type none, interval 1 s, checksum
			192, 168, 1, 10, // VIP
			0, 0, 0, 0, 0, 0, 0, 0, // auth data
		},
	},
	{
		// words 2101+9603+0101+3*0a00+1+2+3+7365+6372+6574 = 0x21256
		// -> 0x1258 -> ^ = 0xeda7
		name: "v2 three VIPs PASS",
		advert: Advert{Version: 2, VRID: 1, Priority: 150, AdverInt: 1, AuthType: AuthPass,
			AuthData: PassAuthData("secret"), Addrs: addrs("10.0.0.1", "10.0.0.2", "10.0.0.3"), Checksum: 0xeda7},
		family: FamilyIPv4,
		wire: []byte{
			0x21, 1, 150, 3,
			1, 1, 0xed, 0xa7, // auth type PASS, interval 1 s, checksum
			10, 0, 0, 1,
			10, 0, 0, 2,
			10, 0, 0, 3,
			's', 'e', 'c', 'r', 'e', 't', 0, 0,
		},
	},
	{
		// pseudo-header 0a00+0001+e000+0012+0070+000c = 0xea8f,
		// message 3133+6401+0064+c0a8+010a = 0x1574a,
		// total 0x241d9 -> 0x41db -> ^ = 0xbe24
		name:   "v3 IPv4 pseudo-header",
		advert: Advert{Version: 3, VRID: 51, Priority: 100, AdverInt: 100, Addrs: addrs("192.168.1.10"), Checksum: 0xbe24},
		family: FamilyIPv4, mode: ChecksumPseudoHeader, src: src4, dst: dst4,
		wire: []byte{
			0x31, 51, 100, 1, // version 3 | type 1, VRID, priority, count
			0x00, 0x64, 0xbe, 0x24, // rsvd | 100 cs, checksum
			192, 168, 1, 10,
		},
	},
	{
		// message only: 0x1574a -> 0x574b -> ^ = 0xa8b4
		name:   "v3 IPv4 as v2",
		advert: Advert{Version: 3, VRID: 51, Priority: 100, AdverInt: 100, Addrs: addrs("192.168.1.10"), Checksum: 0xa8b4},
		family: FamilyIPv4, mode: ChecksumMessageOnly,
		wire: []byte{
			0x31, 51, 100, 1,
			0x00, 0x64, 0xa8, 0xb4,
			192, 168, 1, 10,
		},
	},
	{
		// pseudo-header fe80+0001 + ff02+0012 + 0000+0018 + 0000+0070 =
		// 0x1fe1d, message 3101+ff01+0064+2001+0db8+0001 = 0x15e20,
		// total 0x35c3d -> 0x5c40 -> ^ = 0xa3bf
		name:   "v3 IPv6",
		advert: Advert{Version: 3, VRID: 1, Priority: 255, AdverInt: 100, Addrs: addrs("2001:db8::1"), Checksum: 0xa3bf},
		family: FamilyIPv6, mode: ChecksumPseudoHeader, src: src6, dst: dst6,
		wire: []byte{
			0x31, 1, 255, 1,
			0x00, 0x64, 0xa3, 0xbf,
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		},
	},
}

func TestGolden(t *testing.T) {
	for _, tt := range golden {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.advert.AppendMarshal(nil, tt.mode, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("AppendMarshal: %v", err)
			}
			if !bytes.Equal(got, tt.wire) {
				t.Fatalf("AppendMarshal:\n got % x\nwant % x", got, tt.wire)
			}
			if err := VerifyChecksum(tt.wire, tt.family, tt.mode, tt.src, tt.dst); err != nil {
				t.Fatalf("VerifyChecksum: %v", err)
			}
			a, err := ParseAdvert(tt.wire, tt.family)
			if err != nil {
				t.Fatalf("ParseAdvert: %v", err)
			}
			if !equalFields(a, &tt.advert) || a.Checksum != tt.advert.Checksum {
				t.Fatalf("ParseAdvert:\n got %+v\nwant %+v", *a, tt.advert)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	many6 := make([]netip.Addr, 255)
	for i := range many6 {
		many6[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
	}
	tests := []struct {
		name     string
		advert   Advert
		mode     ChecksumMode
		src, dst netip.Addr
	}{
		{name: "v2 one VIP", advert: Advert{Version: 2, VRID: 51, Priority: 100, AdverInt: 1,
			Addrs: addrs("192.168.1.10")}},
		{name: "v2 three VIPs PASS", advert: Advert{Version: 2, VRID: 7, Priority: 254, AdverInt: 3,
			AuthType: AuthPass, AuthData: PassAuthData("k33p@l1ve"), Addrs: addrs("10.1.1.1", "10.1.1.2", "10.1.1.3")}},
		{name: "v2 no VIPs", advert: Advert{Version: 2, VRID: 1, Priority: 0, AdverInt: 255}},
		{name: "v2 AH", advert: Advert{Version: 2, VRID: 9, Priority: 10, AdverInt: 2, AuthType: AuthAH,
			Addrs: addrs("172.16.0.1")}},
		{name: "v3 IPv4 pseudo-header", advert: Advert{Version: 3, VRID: 51, Priority: 150, AdverInt: 100,
			Addrs: addrs("192.168.1.10", "192.168.1.11")}, src: src4, dst: dst4},
		{name: "v3 IPv4 unicast pseudo-header", advert: Advert{Version: 3, VRID: 51, Priority: 150, AdverInt: 4095,
			Addrs: addrs("192.168.1.10")}, src: src4, dst: netip.MustParseAddr("10.0.0.2")},
		{name: "v3 IPv4 as v2", advert: Advert{Version: 3, VRID: 51, Priority: 0, AdverInt: 1,
			Addrs: addrs("192.168.1.10")}, mode: ChecksumMessageOnly},
		{name: "v3 IPv6", advert: Advert{Version: 3, VRID: 200, Priority: 255, AdverInt: 50,
			Addrs: addrs("fe80::10", "2001:db8::10")}, src: src6, dst: dst6},
		{name: "v3 IPv6 255 VIPs", advert: Advert{Version: 3, VRID: 1, Priority: 100, AdverInt: 100,
			Addrs: many6}, src: src6, dst: dst6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := FamilyIPv4
			if tt.advert.Addrs != nil && tt.advert.Addrs[0].Is6() {
				f = FamilyIPv6
			}
			b, err := tt.advert.AppendMarshal(nil, tt.mode, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("AppendMarshal: %v", err)
			}
			if err := VerifyChecksum(b, f, tt.mode, tt.src, tt.dst); err != nil {
				t.Fatalf("VerifyChecksum: %v", err)
			}
			var a Advert
			if err := a.Parse(b, f); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !equalFields(&a, &tt.advert) {
				t.Fatalf("Parse:\n got %+v\nwant %+v", a, tt.advert)
			}
			if want := binary.BigEndian.Uint16(b[6:8]); a.Checksum != want {
				t.Fatalf("Checksum = %#04x, want %#04x", a.Checksum, want)
			}
			var inferred Advert
			if err := inferred.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if !equalFields(&inferred, &tt.advert) {
				t.Fatalf("UnmarshalBinary:\n got %+v\nwant %+v", inferred, tt.advert)
			}
			if tt.advert.Version == 2 || tt.mode == ChecksumMessageOnly {
				mb, err := tt.advert.MarshalBinary()
				if err != nil || !bytes.Equal(mb, b) {
					t.Fatalf("MarshalBinary = % x, %v; want % x", mb, err, b)
				}
			}
		})
	}
}

// TestAppendMarshalAppends checks that AppendMarshal keeps what b holds and
// does not allocate when b has room.
func TestAppendMarshalAppends(t *testing.T) {
	a := golden[2].advert
	buf := append(make([]byte, 0, 64), 0xaa, 0xbb)
	out, err := a.AppendMarshal(buf, ChecksumPseudoHeader, src4, dst4)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out[:2], []byte{0xaa, 0xbb}) || !bytes.Equal(out[2:], golden[2].wire) {
		t.Fatalf("got % x", out)
	}
	// Reused garbage in the capacity must be overwritten, reserved bits too.
	dirty := bytes.Repeat([]byte{0xff}, 64)[:0]
	if out, _ := a.AppendMarshal(dirty, ChecksumPseudoHeader, src4, dst4); !bytes.Equal(out, golden[2].wire) {
		t.Fatalf("over dirty buffer: got % x", out)
	}
	if n := testing.AllocsPerRun(100, func() {
		_, _ = a.AppendMarshal(buf[:0], ChecksumPseudoHeader, src4, dst4)
	}); n != 0 {
		t.Fatalf("AppendMarshal allocates %v times", n)
	}
}

func TestPadding(t *testing.T) {
	tests := []struct {
		name     string
		wire     []byte
		family   Family
		mode     ChecksumMode
		src, dst netip.Addr
	}{
		// An IPv4 payload in a minimum Ethernet frame is 60-14-20 = 26 bytes.
		{name: "v2 padded", wire: golden[0].wire, family: FamilyIPv4},
		{name: "v2 PASS padded", wire: golden[1].wire, family: FamilyIPv4},
		{name: "v3 IPv4 padded", wire: golden[2].wire, family: FamilyIPv4, src: src4, dst: dst4},
		{name: "v3 IPv6 padded", wire: golden[4].wire, family: FamilyIPv6, src: src6, dst: dst6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := ParseAdvert(tt.wire, tt.family)
			if err != nil {
				t.Fatal(err)
			}
			padded := append(slices.Clone(tt.wire), make([]byte, max(26-len(tt.wire), 6))...)
			for i := len(tt.wire); i < len(padded); i++ {
				padded[i] = byte(i) // junk, not zeros, so it would break the checksum if summed
			}
			got, err := ParseAdvert(padded, tt.family)
			if err != nil {
				t.Fatalf("ParseAdvert: %v", err)
			}
			if !equalFields(got, want) || got.Checksum != want.Checksum {
				t.Fatalf("got %+v, want %+v", *got, *want)
			}
			if err := VerifyChecksum(padded, tt.family, tt.mode, tt.src, tt.dst); err != nil {
				t.Fatalf("VerifyChecksum: %v", err)
			}
		})
	}
}

func TestUnmarshalBinaryInfersFamily(t *testing.T) {
	v3 := func(n byte, size int) []byte {
		b := make([]byte, size)
		copy(b, []byte{0x31, 1, 100, n, 0, 100})
		return b
	}
	tests := []struct {
		name    string
		b       []byte
		want    Family // of the decoded addresses, 0 for none
		wantErr error
	}{
		{name: "v2 is IPv4", b: golden[0].wire, want: FamilyIPv4},
		{name: "v3 exact IPv4", b: v3(2, 16), want: FamilyIPv4},
		{name: "v3 IPv4 with padding shorter than IPv6", b: v3(2, 26), want: FamilyIPv4},
		{name: "v3 exact IPv6", b: v3(2, 40), want: FamilyIPv6},
		{name: "v3 one address 24 bytes is IPv6", b: v3(1, 24), want: FamilyIPv6},
		{name: "v3 ambiguous", b: v3(1, 26), wantErr: ErrFamily},
		{name: "v3 no addresses padded", b: v3(0, 26)},
		{name: "v3 short for IPv4", b: v3(2, 15), wantErr: ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Advert
			err := a.UnmarshalBinary(tt.b)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var got Family
			if len(a.Addrs) > 0 {
				got = familyOf(a.Addrs[0])
			}
			if got != tt.want {
				t.Fatalf("family = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseIgnoresReservedBits(t *testing.T) {
	b := slices.Clone(golden[2].wire)
	b[4] |= 0xf0
	a, err := ParseAdvert(b, FamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if a.AdverInt != 100 {
		t.Fatalf("AdverInt = %d, want 100", a.AdverInt)
	}
	// The bits are part of the message, so the old checksum no longer holds.
	if err := VerifyChecksum(b, FamilyIPv4, ChecksumPseudoHeader, src4, dst4); !errors.Is(err, ErrChecksum) {
		t.Fatalf("VerifyChecksum = %v, want ErrChecksum", err)
	}
}

func TestParseErrors(t *testing.T) {
	// mutate returns a copy of the golden wire i changed by fn.
	mutate := func(i int, fn func(b []byte) []byte) []byte { return fn(slices.Clone(golden[i].wire)) }
	tests := []struct {
		name   string
		b      []byte
		family Family
		want   error
	}{
		{name: "empty", b: nil, family: FamilyIPv4, want: ErrShort},
		{name: "short header", b: golden[0].wire[:7], family: FamilyIPv4, want: ErrShort},
		{name: "v2 missing auth data", b: golden[0].wire[:19], family: FamilyIPv4, want: ErrShort},
		{name: "v2 missing addresses", b: golden[1].wire[:12], family: FamilyIPv4, want: ErrShort},
		{name: "v3 IPv4 missing address", b: golden[2].wire[:11], family: FamilyIPv4, want: ErrShort},
		{name: "v3 IPv4 as IPv6 too short", b: golden[2].wire, family: FamilyIPv6, want: ErrShort},
		{name: "v3 count beyond data", b: mutate(4, func(b []byte) []byte { b[3] = 2; return b }), family: FamilyIPv6, want: ErrShort},
		{name: "version 0", b: mutate(0, func(b []byte) []byte { b[0] = 0x01; return b }), family: FamilyIPv4, want: ErrVersion},
		{name: "version 4", b: mutate(0, func(b []byte) []byte { b[0] = 0x41; return b }), family: FamilyIPv4, want: ErrVersion},
		{name: "type 0", b: mutate(0, func(b []byte) []byte { b[0] = 0x20; return b }), family: FamilyIPv4, want: ErrType},
		{name: "type 2", b: mutate(2, func(b []byte) []byte { b[0] = 0x32; return b }), family: FamilyIPv4, want: ErrType},
		{name: "v2 over IPv6", b: golden[0].wire, family: FamilyIPv6, want: ErrFamily},
		{name: "unknown family", b: golden[0].wire, family: 0, want: ErrFamily},
		{name: "family 5", b: golden[0].wire, family: 5, want: ErrFamily},
		{name: "v2 interval 0", b: mutate(0, func(b []byte) []byte { b[5] = 0; return b }), family: FamilyIPv4, want: ErrAdvertInt},
		{name: "v3 interval 0", b: mutate(2, func(b []byte) []byte { b[4], b[5] = 0, 0; return b }), family: FamilyIPv4, want: ErrAdvertInt},
		{name: "v3 interval 0 with reserved bits", b: mutate(2, func(b []byte) []byte { b[4], b[5] = 0xf0, 0; return b }), family: FamilyIPv4, want: ErrAdvertInt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keep := Advert{Version: 9, VRID: 9, Addrs: addrs("1.2.3.4")}
			a := keep
			a.Addrs = slices.Clone(keep.Addrs)
			err := a.Parse(tt.b, tt.family)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
			if !equalFields(&a, &keep) {
				t.Fatalf("Parse changed the Advert on error: %+v", a)
			}
			if p, err := ParseAdvert(tt.b, tt.family); p != nil || !errors.Is(err, tt.want) {
				t.Fatalf("ParseAdvert = %v, %v, want nil, %v", p, err, tt.want)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	v4 := addrs("192.168.1.10")
	tooMany := make([]netip.Addr, 256)
	for i := range tooMany {
		tooMany[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	tests := []struct {
		name     string
		advert   Advert
		mode     ChecksumMode
		src, dst netip.Addr
		want     error
	}{
		{name: "version 0", advert: Advert{AdverInt: 1, Addrs: v4}, want: ErrVersion},
		{name: "version 4", advert: Advert{Version: 4, AdverInt: 1, Addrs: v4}, want: ErrVersion},
		{name: "256 addresses", advert: Advert{Version: 2, AdverInt: 1, Addrs: tooMany}, want: ErrAddrCount},
		{name: "v3 no addresses", advert: Advert{Version: 3, AdverInt: 100}, mode: ChecksumMessageOnly, want: ErrAddrCount},
		{name: "v2 IPv6", advert: Advert{Version: 2, AdverInt: 1, Addrs: addrs("2001:db8::1")}, want: ErrFamily},
		{name: "mixed families", advert: Advert{Version: 3, AdverInt: 100, Addrs: addrs("10.0.0.1", "2001:db8::1")},
			mode: ChecksumMessageOnly, want: ErrFamily},
		{name: "IPv4-mapped among IPv4", advert: Advert{Version: 3, AdverInt: 100, Addrs: addrs("10.0.0.1", "::ffff:10.0.0.2")},
			mode: ChecksumMessageOnly, want: ErrFamily},
		{name: "zero address", advert: Advert{Version: 2, AdverInt: 1, Addrs: []netip.Addr{{}}}, want: ErrFamily},
		{name: "pseudo-header without addresses", advert: Advert{Version: 3, AdverInt: 100, Addrs: v4}, want: ErrFamily},
		{name: "pseudo-header IPv6 for IPv4", advert: Advert{Version: 3, AdverInt: 100, Addrs: v4},
			src: src6, dst: dst6, want: ErrFamily},
		{name: "pseudo-header IPv4 for IPv6", advert: Advert{Version: 3, AdverInt: 100, Addrs: addrs("2001:db8::1")},
			src: src4, dst: dst4, want: ErrFamily},
		{name: "pseudo-header mixed", advert: Advert{Version: 3, AdverInt: 100, Addrs: v4},
			src: src4, dst: dst6, want: ErrFamily},
		{name: "v2 interval 0", advert: Advert{Version: 2, Addrs: v4}, want: ErrAdvertInt},
		{name: "v2 interval 256", advert: Advert{Version: 2, AdverInt: 256, Addrs: v4}, want: ErrAdvertInt},
		{name: "v3 interval 0", advert: Advert{Version: 3, Addrs: v4}, src: src4, dst: dst4, want: ErrAdvertInt},
		{name: "v3 interval 4096", advert: Advert{Version: 3, AdverInt: 4096, Addrs: v4}, src: src4, dst: dst4, want: ErrAdvertInt},
		{name: "v3 auth type", advert: Advert{Version: 3, AdverInt: 100, AuthType: AuthPass, Addrs: v4},
			src: src4, dst: dst4, want: ErrAuth},
		{name: "v3 auth data", advert: Advert{Version: 3, AdverInt: 100, AuthData: PassAuthData("x"), Addrs: v4},
			src: src4, dst: dst4, want: ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte{1, 2, 3}
			out, err := tt.advert.AppendMarshal(buf, tt.mode, tt.src, tt.dst)
			if !errors.Is(err, tt.want) {
				t.Fatalf("AppendMarshal = %v, want %v", err, tt.want)
			}
			if !bytes.Equal(out, buf) {
				t.Fatalf("AppendMarshal changed b on error: % x", out)
			}
		})
	}
}

// TestPseudoHeaderUnmapsIPv4 checks that IPv4-mapped source and destination
// addresses, as netip.AddrFromSlice makes of a 16-byte net.IP, are accepted
// for an IPv4 pseudo-header.
func TestPseudoHeaderUnmapsIPv4(t *testing.T) {
	src, dst := netip.AddrFrom16(src4.As16()), netip.AddrFrom16(dst4.As16())
	b, err := golden[2].advert.AppendMarshal(nil, ChecksumPseudoHeader, src, dst)
	if err != nil || !bytes.Equal(b, golden[2].wire) {
		t.Fatalf("AppendMarshal = % x, %v", b, err)
	}
	if err := VerifyChecksum(b, FamilyIPv4, ChecksumPseudoHeader, src, dst); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyChecksumErrors(t *testing.T) {
	flip := func(i, at int) []byte { b := slices.Clone(golden[i].wire); b[at] ^= 0x01; return b }
	tests := []struct {
		name     string
		b        []byte
		family   Family
		mode     ChecksumMode
		src, dst netip.Addr
		want     error
	}{
		{name: "v2 priority flipped", b: flip(0, 2), family: FamilyIPv4, want: ErrChecksum},
		{name: "v2 auth data flipped", b: flip(1, 27), family: FamilyIPv4, want: ErrChecksum},
		{name: "v2 checksum flipped", b: flip(1, 7), family: FamilyIPv4, want: ErrChecksum},
		{name: "v3 address flipped", b: flip(2, 11), family: FamilyIPv4, src: src4, dst: dst4, want: ErrChecksum},
		{name: "v3 pseudo-header verified as v2", b: golden[2].wire, family: FamilyIPv4, mode: ChecksumMessageOnly, want: ErrChecksum},
		{name: "v3 as v2 verified with pseudo-header", b: golden[3].wire, family: FamilyIPv4, src: src4, dst: dst4, want: ErrChecksum},
		{name: "v3 unicast destination", b: golden[2].wire, family: FamilyIPv4, src: src4,
			dst: netip.MustParseAddr("10.0.0.2"), want: ErrChecksum},
		{name: "v3 other source", b: golden[4].wire, family: FamilyIPv6, src: netip.MustParseAddr("fe80::2"), dst: dst6, want: ErrChecksum},
		{name: "v3 pseudo-header without addresses", b: golden[2].wire, family: FamilyIPv4, want: ErrFamily},
		{name: "v3 pseudo-header of the wrong family", b: golden[4].wire, family: FamilyIPv6, src: src4, dst: dst4, want: ErrFamily},
		{name: "unknown family", b: golden[0].wire, want: ErrFamily},
		{name: "short", b: golden[0].wire[:10], family: FamilyIPv4, want: ErrShort},
		{name: "version", b: append([]byte{0x51}, golden[0].wire[1:]...), family: FamilyIPv4, want: ErrVersion},
		{name: "type", b: append([]byte{0x2f}, golden[0].wire[1:]...), family: FamilyIPv4, want: ErrType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifyChecksum(tt.b, tt.family, tt.mode, tt.src, tt.dst); !errors.Is(err, tt.want) {
				t.Fatalf("VerifyChecksum = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyChecksumNegativeZero checks that a checksum of 0xffff is
// accepted where 0x0000 is computed: both are zero in one's complement.
// The auth data word 0x7afd makes the message sum 2101+6400+0001+7afd =
// 0xffff, so the computed checksum is 0x0000.
func TestVerifyChecksumNegativeZero(t *testing.T) {
	a := Advert{Version: 2, VRID: 1, Priority: 100, AdverInt: 1, AuthData: [8]byte{0x7a, 0xfd}}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if ck := binary.BigEndian.Uint16(b[6:8]); ck != 0x0000 {
		t.Fatalf("checksum = %#04x, want 0x0000", ck)
	}
	b[6], b[7] = 0xff, 0xff
	if err := VerifyChecksum(b, FamilyIPv4, ChecksumPseudoHeader, netip.Addr{}, netip.Addr{}); err != nil {
		t.Fatalf("VerifyChecksum(0xffff) = %v", err)
	}
}

func TestPassAuth(t *testing.T) {
	if got, want := PassAuthData("secret"), [8]byte{'s', 'e', 'c', 'r', 'e', 't'}; got != want {
		t.Fatalf("PassAuthData(secret) = %q, want %q", got, want)
	}
	if got, want := PassAuthData("averylongpassword"), [8]byte([]byte("averylon")); got != want {
		t.Fatalf("PassAuthData(long) = %q, want %q", got, want)
	}
	pass := &Advert{Version: 2, AuthType: AuthPass, AuthData: PassAuthData("secret")}
	tests := []struct {
		name   string
		advert *Advert
		typ    AuthType
		data   [8]byte
		want   error
	}{
		{name: "PASS match", advert: pass, typ: AuthPass, data: PassAuthData("secret")},
		{name: "PASS mismatch", advert: pass, typ: AuthPass, data: PassAuthData("secreT"), want: ErrAuth},
		{name: "PASS truncated match", advert: &Advert{Version: 2, AuthType: AuthPass, AuthData: PassAuthData("12345678")},
			typ: AuthPass, data: PassAuthData("123456789")},
		{name: "PASS received, none expected", advert: pass, typ: AuthNone, want: ErrAuth},
		{name: "none received, PASS expected", advert: &Advert{Version: 2}, typ: AuthPass, data: PassAuthData("secret"), want: ErrAuth},
		{name: "none ignores data", advert: &Advert{Version: 2, AuthData: PassAuthData("junk")}, typ: AuthNone},
		{name: "AH compares the type only", advert: &Advert{Version: 2, AuthType: AuthAH}, typ: AuthAH, data: PassAuthData("x")},
		{name: "v3 has none", advert: &Advert{Version: 3}, typ: AuthNone},
		{name: "unknown type", advert: &Advert{Version: 2, AuthType: 7}, typ: AuthNone, want: ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.advert.CheckAuth(tt.typ, tt.data); !errors.Is(err, tt.want) {
				t.Fatalf("CheckAuth = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestInterval(t *testing.T) {
	tests := []struct {
		advert Advert
		want   time.Duration
	}{
		{Advert{Version: 2, AdverInt: 1}, time.Second},
		{Advert{Version: 2, AdverInt: 255}, 255 * time.Second},
		{Advert{Version: 3, AdverInt: 100}, time.Second},
		{Advert{Version: 3, AdverInt: 1}, 10 * time.Millisecond},
		{Advert{Version: 3, AdverInt: 4095}, 40950 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := tt.advert.Interval(); got != tt.want {
			t.Errorf("v%d AdverInt %d: Interval = %v, want %v", tt.advert.Version, tt.advert.AdverInt, got, tt.want)
		}
	}
}

// TestParseReusesAddrs checks that decoding into a reused Advert does not
// allocate once Addrs has grown.
func TestParseReusesAddrs(t *testing.T) {
	var a Advert
	for _, g := range golden {
		if n := testing.AllocsPerRun(100, func() { _ = a.Parse(g.wire, g.family) }); n != 0 {
			t.Errorf("%s: Parse allocates %v times", g.name, n)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{FamilyIPv4.String(), "IPv4"},
		{FamilyIPv6.String(), "IPv6"},
		{Family(0).String(), "Family(0)"},
		{AuthNone.String(), "NONE"},
		{AuthPass.String(), "PASS"},
		{AuthAH.String(), "AH"},
		{AuthType(9).String(), "AuthType(9)"},
		{ChecksumPseudoHeader.String(), "pseudo-header"},
		{ChecksumMessageOnly.String(), "message-only"},
		{ChecksumMode(7).String(), "ChecksumMode(7)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	for _, g := range golden {
		b.Run(g.name, func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = g.advert.AppendMarshal(buf[:0], g.mode, g.src, g.dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	for _, g := range golden {
		b.Run(g.name, func(b *testing.B) {
			var a Advert
			b.ReportAllocs()
			for b.Loop() {
				if err := a.Parse(g.wire, g.family); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyChecksum(b *testing.B) {
	for _, g := range golden {
		b.Run(g.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := VerifyChecksum(g.wire, g.family, g.mode, g.src, g.dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
