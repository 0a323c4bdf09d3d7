// Package vrrp implements the Virtual Router Redundancy Protocol as keepalived
// does: VRRPv2 (RFC 3768) for IPv4 and VRRPv3 (RFC 5798) for IPv4 and IPv6.
//
// This file set holds the advertisement codec. It is pure: it neither opens
// sockets nor reads clocks, never panics on any input, and decodes into a
// reused [Advert] without allocating.
//
// # Wire format
//
// An advertisement is the payload of an IP packet with protocol (next header)
// 112, sent with TTL/hop limit 255. All multi-byte fields are big endian.
// Both versions share the first four bytes: version in the high nibble and
// type (always 1, advertisement) in the low nibble of byte 0, then the
// virtual router ID, the priority and the number n of addresses.
//
// Version 2 (RFC 3768 section 5.1), IPv4 only:
//
//	offset   size  field
//	0        1     version 2 | type 1
//	1        1     virtual router ID
//	2        1     priority (0 = master leaving, 255 = address owner)
//	3        1     n, the number of addresses
//	4        1     authentication type (0 none, 1 simple password, 2 IPsec AH)
//	5        1     advertisement interval, whole seconds
//	6        2     checksum
//	8        4n    IPv4 addresses
//	8+4n     8     authentication data (the password, zero padded)
//
// Version 3 (RFC 5798 section 5.1), IPv4 or IPv6, no authentication:
//
//	offset   size  field
//	0        1     version 3 | type 1
//	1        1     virtual router ID
//	2        1     priority
//	3        1     n, the number of addresses
//	4        2     4 reserved bits (sent as zero, ignored on receipt), then
//	               the 12-bit maximum advertisement interval in centiseconds
//	6        2     checksum
//	8        4n    IPv4 addresses, or
//	8        16n   IPv6 addresses
//
// Nothing in the message says whether the addresses are 4 or 16 bytes long:
// that is the family of the carrying IP packet, so the socket layer decodes
// with [ParseAdvert] or [Advert.Parse] and an explicit [Family].
// [Advert.UnmarshalBinary] infers the family from the length and refuses
// when the length allows both.
//
// # Checksum
//
// The checksum is the Internet checksum (RFC 1071: the one's complement of
// the one's complement sum of 16-bit words) with the checksum field taken as
// zero. Version 2 sums the message alone (header, addresses and
// authentication data). Version 3 adds a pseudo-header of the carrying packet:
// for IPv6 the RFC 8200 section 8.1 one (source, destination, 32-bit length,
// next header 112), which the kernel computes and verifies itself once
// IPV6_CHECKSUM is set to offset 6; for IPv4 source, destination, a zero
// byte, protocol 112 and the 16-bit length. Whether IPv4 version 3 includes
// a pseudo-header is disputed: keepalived includes it by default and leaves
// it out with v3_checksum_as_v2, for peers that sum the message only. See
// [ChecksumMode]. The summed length is always the one the message declares,
// so padding after it is never summed.
//
// # Receiver leniency
//
// Decoding follows keepalived. Bytes after the declared message (Ethernet
// padding) are ignored, the reserved bits of version 3 are ignored, any
// authentication type is accepted (compare it with [Advert.CheckAuth]), and
// zero addresses are accepted in both versions. Comparing VRID, priority,
// interval and addresses with the local configuration is the instance's job.
package vrrp
