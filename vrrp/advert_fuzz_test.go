package vrrp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// FuzzAdvert decodes arbitrary bytes as an IPv4 and as an IPv6 payload and
// with family inference. Decoding and checksum verification must never panic
// and must fail only with the package's sentinel errors; whatever decodes
// must encode again (except version 3 without addresses, which is accepted
// but never sent) to bytes that verify and decode to the same fields.
func FuzzAdvert(f *testing.F) {
	// The seed corpus is in testdata/fuzz/FuzzAdvert.
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fam := range []Family{FamilyIPv4, FamilyIPv6} {
			src, dst := fuzzAddrs(fam)
			for _, mode := range []ChecksumMode{ChecksumPseudoHeader, ChecksumMessageOnly} {
				checkSentinel(t, "VerifyChecksum", VerifyChecksum(b, fam, mode, src, dst))
			}
			var a Advert
			if err := a.Parse(b, fam); err != nil {
				checkSentinel(t, "Parse", err)
				continue
			}
			checkRoundTrip(t, &a)
		}
		var a Advert
		if err := a.UnmarshalBinary(b); err != nil {
			checkSentinel(t, "UnmarshalBinary", err)
			return
		}
		checkRoundTrip(t, &a)
	})
}

// fuzzAddrs returns a source and destination of family f.
func fuzzAddrs(f Family) (src, dst netip.Addr) {
	if f == FamilyIPv6 {
		return src6, dst6
	}
	return src4, dst4
}

// checkSentinel fails unless err is nil or wraps one of the sentinels.
func checkSentinel(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []error{ErrShort, ErrVersion, ErrType, ErrChecksum, ErrAddrCount, ErrFamily, ErrAdvertInt, ErrAuth} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s: error %v wraps no sentinel", op, err)
}

// checkRoundTrip encodes the decoded a with both checksum modes and checks
// that the result verifies and decodes to the same fields.
func checkRoundTrip(t *testing.T, a *Advert) {
	t.Helper()
	fam := FamilyIPv4
	if len(a.Addrs) > 0 && a.Addrs[0].Is6() {
		fam = FamilyIPv6
	}
	src, dst := fuzzAddrs(fam)
	for _, mode := range []ChecksumMode{ChecksumPseudoHeader, ChecksumMessageOnly} {
		b, err := a.AppendMarshal(nil, mode, src, dst)
		if a.Version == 3 && len(a.Addrs) == 0 {
			if !errors.Is(err, ErrAddrCount) {
				t.Fatalf("AppendMarshal of v3 without addresses = %v, want ErrAddrCount", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("AppendMarshal(%+v, %v): %v", *a, mode, err)
		}
		if err := VerifyChecksum(b, fam, mode, src, dst); err != nil {
			t.Fatalf("VerifyChecksum of re-encoded % x: %v", b, err)
		}
		var again Advert
		if err := again.Parse(b, fam); err != nil {
			t.Fatalf("Parse of re-encoded % x: %v", b, err)
		}
		if !equalFields(a, &again) {
			t.Fatalf("round trip changed the advert:\n got %+v\nwant %+v", again, *a)
		}
		if again.Checksum != binary.BigEndian.Uint16(b[6:8]) {
			t.Fatalf("Checksum = %#04x, wire has % x", again.Checksum, b[6:8])
		}
	}
}
