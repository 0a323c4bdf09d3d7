package vrrp

import (
	"context"
	"net"
	"net/netip"

	"gokeepalived/parser"
)

// The engine's view of the kernel: small interfaces it owns, with Linux implementations
// (tested in network namespaces) and fakes beside them.

// RxInfo describes where a received advertisement came from.
type RxInfo struct {
	Src     netip.Addr // IP source address
	Dst     netip.Addr // IP destination: the multicast group or our unicast address
	TTL     int        // IPv4 TTL or IPv6 hop limit, -1 when unknown
	IfIndex int        // receiving interface
}

// AdvertConn sends and receives VRRP advertisements (IP protocol 112) of one address
// family on one interface. One connection serves every instance on that interface and
// family; the receive loop demultiplexes by VRID.
type AdvertConn interface {
	// ReadAdvert blocks until an advertisement arrives and returns its VRRP payload
	// in buf[:n]. It returns an error once the connection is closed.
	ReadAdvert(buf []byte) (n int, rx RxInfo, err error)
	// WriteAdvert sends the VRRP payload b from src to dst (the multicast group or a
	// unicast peer) with TTL/hop limit ttl.
	WriteAdvert(b []byte, src, dst netip.Addr, ttl int) error
	// Close stops the connection; a blocked ReadAdvert returns.
	Close() error
}

// AddrEvent is a change of an address on an interface.
type AddrEvent struct {
	Ifname string
	Prefix netip.Prefix
	Added  bool // false: removed
}

// AddrManager installs and removes virtual addresses. Add and Del are idempotent: adding
// an address that is there, or deleting one that is not, succeeds.
type AddrManager interface {
	Add(v *parser.VIP) error
	Del(v *parser.VIP) error
	// Has reports whether the address is on its interface.
	Has(v *parser.VIP) (bool, error)
	// Watch calls fn for every address change until ctx ends.
	Watch(ctx context.Context, fn func(AddrEvent)) error
}

// Announcer makes the network learn where the virtual addresses live: gratuitous ARP
// for IPv4 and unsolicited neighbour advertisements for IPv6, count times per address.
type Announcer interface {
	Announce(ifname string, addrs []netip.Addr, count int) error
}

// RouteManager installs and removes the virtual_routes and virtual_rules of a master.
// Add replaces a route with the same destination, table and metric; AddRule of a rule
// that is there succeeds; Del and DelRule of what is not there succeed.
type RouteManager interface {
	Add(r *parser.Route) error
	Del(r *parser.Route) error
	AddRule(r *parser.Rule) error
	DelRule(r *parser.Rule) error
}

// VMACSpec is the macvlan of an instance with use_vmac.
type VMACSpec struct {
	Name   string           // the macvlan, vrrp.VRID by default
	Parent string           // the instance's interface
	MAC    net.HardwareAddr // the VRRP virtual MAC unless configured
	// IPv6 is set for an IPv6 instance, or one with IPv6 addresses on the macvlan:
	// without it IPv6 is disabled on the macvlan. With it the macvlan generates no
	// link-local address of its own (every router's would be the same, from the same
	// MAC) and gets LinkLocal, when valid: the address its adverts come from.
	IPv6      bool
	LinkLocal netip.Addr
}

// VMACManager keeps the macvlans of use_vmac instances (private mode, on the instance's
// interface, with the virtual MAC). Ensure reconciles: a macvlan that is right (one a
// previous run left) is adopted, one with another MAC, parent or mode is replaced, a
// missing one is created; it is then up, with the sysctls that make it answer ARP for
// its addresses with the virtual MAC. An interface of that name that is not a macvlan
// is never touched. Delete of a macvlan that is not there succeeds.
type VMACManager interface {
	Ensure(spec VMACSpec) error
	Delete(name string) error
}
