package vrrp

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Protocol is the IP protocol number (IPv6 next header) of VRRP.
const Protocol = 112

// TypeAdvertisement is the only VRRP message type; decoding rejects any
// other with [ErrType] and encoding always writes it.
const TypeAdvertisement = 1

const (
	headerLen     = 8      // version/type, VRID, priority, count, interval, checksum
	authLen       = 8      // version 2 authentication data
	maxAddrs      = 255    // the count is one byte
	maxIntervalV2 = 0xff   // 8 bits of seconds
	maxIntervalV3 = 0x0fff // 12 bits of centiseconds
)

// Errors returned by the codec. They are wrapped with the offending values,
// so test for them with [errors.Is].
var (
	// ErrShort means the input is shorter than the fixed header or than the
	// addresses (and version 2 authentication data) the header declares.
	ErrShort = errors.New("vrrp: advert too short")
	// ErrVersion means a version other than 2 or 3.
	ErrVersion = errors.New("vrrp: unsupported version")
	// ErrType means a message type other than 1 (advertisement).
	ErrType = errors.New("vrrp: not an advertisement")
	// ErrChecksum means the checksum does not match the message.
	ErrChecksum = errors.New("vrrp: bad checksum")
	// ErrAddrCount means more than 255 addresses, or a version 3 advert
	// with none (RFC 5798 section 5.2.4 sets the minimum to 1), on encoding.
	ErrAddrCount = errors.New("vrrp: bad address count")
	// ErrFamily means an invalid or unknown address family, addresses of
	// mixed families, IPv6 with version 2, pseudo-header addresses that do
	// not match the advert, or a length from which the family of the
	// addresses cannot be inferred.
	ErrFamily = errors.New("vrrp: bad address family")
	// ErrAdvertInt means an advertisement interval of zero, or one too large
	// for its field (255 s in version 2, 4095 cs in version 3).
	ErrAdvertInt = errors.New("vrrp: bad advertisement interval")
	// ErrAuth means authentication that does not match the local
	// configuration, or authentication on a version 3 advert.
	ErrAuth = errors.New("vrrp: authentication failed")
)

// Family is the address family of the IP packet carrying an advert, and so
// of the addresses in it.
type Family uint8

// The address families. They are numbered after the IP version.
const (
	FamilyIPv4 Family = 4
	FamilyIPv6 Family = 6
)

// String returns "IPv4", "IPv6" or "Family(N)".
func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "IPv4"
	case FamilyIPv6:
		return "IPv6"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

// addrLen is the size of one address of the family, 0 for an unknown family.
func (f Family) addrLen() int {
	switch f {
	case FamilyIPv4:
		return 4
	case FamilyIPv6:
		return 16
	}
	return 0
}

// familyOf returns the family of addr, treating IPv4-mapped IPv6 addresses
// as IPv6 (they travel as 16 bytes), and 0 for the zero Addr.
func familyOf(addr netip.Addr) Family {
	switch {
	case addr.Is4():
		return FamilyIPv4
	case addr.Is6():
		return FamilyIPv6
	}
	return 0
}

// AuthType is the version 2 authentication type. RFC 3768 deprecated all but
// AuthNone; keepalived still speaks AuthPass and AuthAH.
type AuthType uint8

// The authentication types of RFC 2338, named as keepalived's auth_type.
const (
	AuthNone AuthType = 0 // no authentication
	AuthPass AuthType = 1 // simple text password in the authentication data
	AuthAH   AuthType = 2 // IPsec AH header around the advert
)

// String returns "NONE", "PASS", "AH" or "AuthType(N)".
func (t AuthType) String() string {
	switch t {
	case AuthNone:
		return "NONE"
	case AuthPass:
		return "PASS"
	case AuthAH:
		return "AH"
	}
	return "AuthType(" + strconv.Itoa(int(t)) + ")"
}

// Advert is a VRRP advertisement of version 2 or 3; the package
// documentation shows both wire layouts. The message type is not a field:
// only [TypeAdvertisement] exists.
type Advert struct {
	// Version is 2 (RFC 3768, IPv4 only) or 3 (RFC 5798).
	Version uint8
	// VRID is the virtual router ID. The codec does not check its range
	// (1-255); the instance matches it.
	VRID uint8
	// Priority is the sender's priority: 0 announces that the master is
	// leaving, 255 that the sender owns the addresses.
	Priority uint8
	// AdverInt is the advertisement interval in the version's unit: whole
	// seconds in version 2 (1-255), centiseconds in version 3 (the Max Adver
	// Int field, 1-4095). Interval converts it to a duration.
	AdverInt uint16
	// AuthType is the version 2 authentication type; version 3 has none and
	// it must be AuthNone.
	AuthType AuthType
	// AuthData is the version 2 authentication data, the password for
	// AuthPass (see PassAuthData). It must be zero in version 3.
	AuthData [8]byte
	// Addrs are the virtual addresses, all IPv4 or all IPv6 (IPv6 needs
	// version 3). Decoding reuses the slice's capacity.
	Addrs []netip.Addr
	// Checksum is the checksum as read by decoding. Encoding ignores it and
	// writes the computed one.
	Checksum uint16
}

// Interval returns AdverInt as a duration: seconds for version 2,
// centiseconds for version 3.
func (a *Advert) Interval() time.Duration {
	if a.Version == 2 {
		return time.Duration(a.AdverInt) * time.Second
	}
	return time.Duration(a.AdverInt) * 10 * time.Millisecond
}

// ParseAdvert decodes the VRRP payload b of an IP packet of family f into a
// new Advert. It is Advert.Parse for callers that do not reuse an Advert.
func ParseAdvert(b []byte, f Family) (*Advert, error) {
	a := new(Advert)
	if err := a.Parse(b, f); err != nil {
		return nil, err
	}
	return a, nil
}

// Parse decodes the VRRP payload b of an IP packet of family f, which tells
// the size of the addresses. Bytes after the declared message are ignored.
// Parse does not verify the checksum (see VerifyChecksum) nor authentication
// (see CheckAuth).
//
// On success Parse overwrites every field of a and reuses the capacity of
// a.Addrs without allocating, so a caller that keeps a.Addrs across calls
// must copy it. On error a is left unchanged.
func (a *Advert) Parse(b []byte, f Family) error {
	if f.addrLen() == 0 {
		return fmt.Errorf("%w: %v", ErrFamily, f)
	}
	return a.parse(b, f)
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. It decodes like
// Parse, inferring the family: version 2 is IPv4; version 3 is IPv4 if b is
// exactly as long as n IPv4 addresses need, or shorter than n IPv6 addresses
// need (padding), and IPv6 if it is exactly as long as n IPv6 addresses need.
// A longer version 3 advert could be either and fails with ErrFamily, unless
// it has no addresses, when the family does not matter. A socket knows the
// family and uses Parse instead.
func (a *Advert) UnmarshalBinary(b []byte) error {
	return a.parse(b, 0)
}

// parse is Parse with f == 0 meaning "infer the family".
func (a *Advert) parse(b []byte, f Family) error {
	version, f, size, err := layout(b, f)
	if err != nil {
		return err
	}
	var interval uint16
	if version == 2 {
		interval = uint16(b[5])
	} else {
		interval = binary.BigEndian.Uint16(b[4:6]) & maxIntervalV3
	}
	if interval == 0 {
		return fmt.Errorf("%w: 0", ErrAdvertInt)
	}

	a.Version = version
	a.VRID = b[1]
	a.Priority = b[2]
	a.AdverInt = interval
	a.Checksum = binary.BigEndian.Uint16(b[6:8])
	if version == 2 {
		a.AuthType = AuthType(b[4])
		a.AuthData = [authLen]byte(b[size-authLen : size])
	} else {
		a.AuthType = AuthNone
		a.AuthData = [authLen]byte{}
	}
	n, alen := int(b[3]), f.addrLen()
	a.Addrs = slices.Grow(a.Addrs[:0], n)
	for i := range n {
		raw := b[headerLen+i*alen : headerLen+(i+1)*alen]
		if f == FamilyIPv4 {
			a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(raw)))
		} else {
			a.Addrs = append(a.Addrs, netip.AddrFrom16([16]byte(raw)))
		}
	}
	return nil
}

// layout checks the fixed header of b and the length it declares. It
// returns the version, the family (inferred when f is 0, see
// UnmarshalBinary) and the size of the declared message, without padding.
func layout(b []byte, f Family) (version uint8, fam Family, size int, err error) {
	if len(b) < headerLen {
		return 0, 0, 0, fmt.Errorf("%w: %d bytes, the header needs %d", ErrShort, len(b), headerLen)
	}
	version = b[0] >> 4
	if version != 2 && version != 3 {
		return 0, 0, 0, fmt.Errorf("%w: %d", ErrVersion, version)
	}
	if typ := b[0] & 0x0f; typ != TypeAdvertisement {
		return 0, 0, 0, fmt.Errorf("%w: type %d", ErrType, typ)
	}
	n := int(b[3])
	switch {
	case version == 2 && f == FamilyIPv6:
		return 0, 0, 0, fmt.Errorf("%w: version 2 carries IPv4 only", ErrFamily)
	case version == 2:
		f = FamilyIPv4
	case f == 0:
		need4, need6 := headerLen+4*n, headerLen+16*n
		switch {
		case n == 0 || len(b) < need6 || len(b) == need4:
			f = FamilyIPv4
		case len(b) == need6:
			f = FamilyIPv6
		default:
			return 0, 0, 0, fmt.Errorf("%w: cannot infer it from %d bytes for %d addresses", ErrFamily, len(b), n)
		}
	}
	size = headerLen + n*f.addrLen()
	if version == 2 {
		size += authLen
	}
	if len(b) < size {
		return 0, 0, 0, fmt.Errorf("%w: %d bytes, version %d with %d %v addresses needs %d", ErrShort, len(b), version, n, f, size)
	}
	return version, f, size, nil
}

// MarshalBinary implements encoding.BinaryMarshaler. Its checksum sums the
// message only, which is right for version 2, for version 3 over IPv4 with
// ChecksumMessageOnly, and for IPv6 sockets on which the kernel fills the
// checksum in (IPV6_CHECKSUM). A version 3 advert with the pseudo-header
// checksum needs AppendMarshal.
func (a *Advert) MarshalBinary() ([]byte, error) {
	return a.AppendMarshal(nil, ChecksumMessageOnly, netip.Addr{}, netip.Addr{})
}

// AppendMarshal appends the encoded advert to b and returns the extended
// buffer; it does not allocate when b has room. For a version 3 advert with
// ChecksumPseudoHeader, src and dst are the source and destination of the
// carrying IP packet and must be of the advert's family; otherwise they are
// ignored. On error b is returned unchanged.
func (a *Advert) AppendMarshal(b []byte, mode ChecksumMode, src, dst netip.Addr) ([]byte, error) {
	f, err := a.validate()
	if err != nil {
		return b, err
	}
	size := headerLen + len(a.Addrs)*f.addrLen()
	if a.Version == 2 {
		size += authLen
	}
	var acc uint64
	if a.Version == 3 && mode == ChecksumPseudoHeader {
		if acc, err = pseudoSum(f, src, dst, size); err != nil {
			return b, err
		}
	}

	start := len(b)
	b = slices.Grow(b, size)[:start+size]
	m := b[start:]
	m[0] = a.Version<<4 | TypeAdvertisement
	m[1] = a.VRID
	m[2] = a.Priority
	m[3] = byte(len(a.Addrs))
	if a.Version == 2 {
		m[4] = byte(a.AuthType)
		m[5] = byte(a.AdverInt)
		copy(m[size-authLen:], a.AuthData[:])
	} else {
		binary.BigEndian.PutUint16(m[4:6], a.AdverInt) // reserved bits are zero
	}
	m[6], m[7] = 0, 0
	off := headerLen
	for _, addr := range a.Addrs {
		if f == FamilyIPv4 {
			v4 := addr.As4()
			off += copy(m[off:], v4[:])
		} else {
			v6 := addr.As16()
			off += copy(m[off:], v6[:])
		}
	}
	binary.BigEndian.PutUint16(m[6:8], checksum(acc, m))
	return b, nil
}

// validate checks that a can be encoded and returns the family of its
// addresses (IPv4 when there are none, which only version 2 allows).
func (a *Advert) validate() (Family, error) {
	if a.Version != 2 && a.Version != 3 {
		return 0, fmt.Errorf("%w: %d", ErrVersion, a.Version)
	}
	if len(a.Addrs) > maxAddrs {
		return 0, fmt.Errorf("%w: %d addresses, at most %d fit", ErrAddrCount, len(a.Addrs), maxAddrs)
	}
	if a.Version == 3 && len(a.Addrs) == 0 {
		return 0, fmt.Errorf("%w: version 3 needs at least one address", ErrAddrCount)
	}
	f := FamilyIPv4
	if len(a.Addrs) > 0 {
		f = familyOf(a.Addrs[0])
	}
	for _, addr := range a.Addrs {
		if g := familyOf(addr); g == 0 || g != f {
			return 0, fmt.Errorf("%w: address %v in an advert of %v addresses", ErrFamily, addr, f)
		}
	}
	if a.Version == 2 && f != FamilyIPv4 {
		return 0, fmt.Errorf("%w: version 2 carries IPv4 only", ErrFamily)
	}
	limit := uint16(maxIntervalV3)
	if a.Version == 2 {
		limit = maxIntervalV2
	}
	if a.AdverInt == 0 || a.AdverInt > limit {
		return 0, fmt.Errorf("%w: %d, version %d allows 1 to %d", ErrAdvertInt, a.AdverInt, a.Version, limit)
	}
	if a.Version == 3 && (a.AuthType != AuthNone || a.AuthData != [authLen]byte{}) {
		return 0, fmt.Errorf("%w: version 3 has no authentication", ErrAuth)
	}
	return f, nil
}

// PassAuthData returns the authentication data for AuthPass: the first 8
// bytes of password, zero padded, as keepalived's auth_pass truncates it.
func PassAuthData(password string) [8]byte {
	var d [authLen]byte
	copy(d[:], password)
	return d
}

// CheckAuth checks the authentication of a received advert against the
// local configuration: the types must be equal and, for AuthPass, the data
// too, compared in constant time. For AuthAH only the type is compared; the
// AH header is verified at the IP layer. A version 3 advert carries
// AuthNone. The error wraps ErrAuth.
func (a *Advert) CheckAuth(t AuthType, data [8]byte) error {
	if a.AuthType != t {
		return fmt.Errorf("%w: received auth type %v, expecting %v", ErrAuth, a.AuthType, t)
	}
	if t == AuthPass && subtle.ConstantTimeCompare(a.AuthData[:], data[:]) != 1 {
		return fmt.Errorf("%w: password mismatch", ErrAuth)
	}
	return nil
}
