package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
)

// ChecksumMode selects how the checksum of a version 3 advert is computed
// and verified. Version 2 always sums the message only and ignores it.
type ChecksumMode uint8

const (
	// ChecksumPseudoHeader adds the pseudo-header of the carrying IP packet
	// (source, destination, protocol 112, length) to the sum: RFC 5798, and
	// keepalived's default for both families.
	ChecksumPseudoHeader ChecksumMode = iota
	// ChecksumMessageOnly sums the message alone, as version 2 does:
	// keepalived's v3_checksum_as_v2 for IPv4 peers that leave the
	// pseudo-header out. With IPv6 it only suits sockets on which the kernel
	// computes the checksum.
	ChecksumMessageOnly
)

// String returns "pseudo-header", "message-only" or "ChecksumMode(N)".
func (m ChecksumMode) String() string {
	switch m {
	case ChecksumPseudoHeader:
		return "pseudo-header"
	case ChecksumMessageOnly:
		return "message-only"
	}
	return "ChecksumMode(" + strconv.Itoa(int(m)) + ")"
}

// VerifyChecksum verifies the checksum of the VRRP payload b of an IP packet
// of family f sent from src to dst. For a version 3 advert with
// ChecksumPseudoHeader, src and dst must be of family f; otherwise they are
// ignored. Only the declared message is summed, never padding after it. Like
// keepalived it accepts either form of a zero sum (0x0000 and 0xffff). The
// error wraps ErrChecksum on a mismatch, or the decoding error (ErrShort,
// ErrVersion, ErrType, ErrFamily) when b is not an advert of family f.
func VerifyChecksum(b []byte, f Family, mode ChecksumMode, src, dst netip.Addr) error {
	if f.addrLen() == 0 {
		return fmt.Errorf("%w: %v", ErrFamily, f)
	}
	version, f, size, err := layout(b, f)
	if err != nil {
		return err
	}
	var acc uint64
	if version == 3 && mode == ChecksumPseudoHeader {
		if acc, err = pseudoSum(f, src, dst, size); err != nil {
			return err
		}
	}
	m := b[:size]
	if fold(sum(acc, m)) == 0xffff {
		return nil
	}
	want := ^fold(sum(sum(acc, m[:6]), m[8:]))
	return fmt.Errorf("%w: got 0x%04x, want 0x%04x (version %d, %v, %v)",
		ErrChecksum, binary.BigEndian.Uint16(m[6:8]), want, version, f, mode)
}

// pseudoSum returns the one's complement sum of the pseudo-header for a
// version 3 message of size bytes sent from src to dst, which must be of
// family f. The IPv4 form is source, destination, zero, protocol and a
// 16-bit length; the IPv6 one (RFC 8200 section 8.1) source, destination, a
// 32-bit length, three zero bytes and the next header.
func pseudoSum(f Family, src, dst netip.Addr, size int) (uint64, error) {
	if f == FamilyIPv4 {
		// Addresses taken from a net.IP are often IPv4-mapped.
		src, dst = src.Unmap(), dst.Unmap()
	}
	if familyOf(src) != f || familyOf(dst) != f {
		return 0, fmt.Errorf("%w: the pseudo-header of an %v advert needs %v addresses, got %v and %v",
			ErrFamily, f, f, src, dst)
	}
	var acc uint64
	if f == FamilyIPv4 {
		s, d := src.As4(), dst.As4()
		acc = sum(sum(0, s[:]), d[:])
	} else {
		s, d := src.As16(), dst.As16()
		acc = sum(sum(0, s[:]), d[:])
	}
	// A version 3 message is at most 8 + 255*16 bytes, so the 32-bit IPv6
	// length has a zero upper word and both forms add the same words.
	return acc + Protocol + uint64(size), nil
}

// sum adds b to the one's complement accumulator acc as big-endian 16-bit
// words, padding an odd last byte with zero (RFC 1071). acc is folded only
// at the end; a uint64 cannot overflow for any IP payload.
func sum(acc uint64, b []byte) uint64 {
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold reduces acc to 16 bits with end-around carry.
func fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// checksum returns the Internet checksum of b, whose checksum field must be
// zero, on top of the pseudo-header sum acc (0 for none).
func checksum(acc uint64, b []byte) uint16 {
	return ^fold(sum(acc, b))
}
