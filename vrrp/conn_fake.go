package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// This file holds what ListenAdvert (conn_linux.go) and its in-memory fake
// share, ConnOptions and the VRRP groups, and then the fake itself.

// ConnOptions configures a connection opened by ListenAdvert (or
// FakeLink.Listen).
type ConnOptions struct {
	// Groups are the multicast groups joined on the interface, all of the
	// connection's family (keepalived's vrrp_mcast_group4 and
	// vrrp_mcast_group6). Empty means the family's VRRP group, see
	// DefaultGroup.
	Groups []netip.Addr
	// Unicast joins no group, for an interface on which every instance has
	// unicast peers. Multicast adverts are then not received even when
	// another socket of the host joined their group (IP_MULTICAST_ALL is
	// off). Groups must be empty.
	Unicast bool
	// RcvBuf, when positive, is the socket's receive buffer (SO_RCVBUF; the kernel
	// doubles it and caps it at net.core.rmem_max): kernel_rx_buf_size.
	RcvBuf int
}

// DefaultGroup returns the multicast group of VRRP for family f:
// 224.0.0.18 for IPv4 and ff02::12 for IPv6 (RFC 5798 section 5.1.1.2),
// the zero Addr for an unknown family.
func DefaultGroup(f Family) netip.Addr {
	switch f {
	case FamilyIPv4:
		return netip.AddrFrom4([4]byte{224, 0, 0, 18})
	case FamilyIPv6:
		return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
	}
	return netip.Addr{}
}

// groups returns the multicast groups a connection of family f joins.
func (o ConnOptions) groups(f Family) ([]netip.Addr, error) {
	if f.addrLen() == 0 {
		return nil, fmt.Errorf("%w: %v", ErrFamily, f)
	}
	if o.Unicast {
		if len(o.Groups) > 0 {
			return nil, fmt.Errorf("vrrp: unicast connection with multicast groups %v", o.Groups)
		}
		return nil, nil
	}
	if len(o.Groups) == 0 {
		return []netip.Addr{DefaultGroup(f)}, nil
	}
	groups := make([]netip.Addr, len(o.Groups))
	for i, g := range o.Groups {
		a, ok := familyAddr(g, f)
		if !ok || !a.IsMulticast() {
			return nil, fmt.Errorf("vrrp: %v is not an %v multicast group", g, f)
		}
		groups[i] = a
	}
	return groups, nil
}

// familyAddr returns a as an address of family f, unmapping IPv4-mapped IPv6
// addresses for IPv4 (a net.IP often holds them), and false when a is not
// of family f.
func familyAddr(a netip.Addr, f Family) (netip.Addr, bool) {
	switch f {
	case FamilyIPv4:
		a = a.Unmap()
		return a, a.Is4()
	case FamilyIPv6:
		return a, a.Is6() && !a.Is4In6()
	}
	return a, false
}

// checkAdvertWrite validates the arguments of AdvertConn.WriteAdvert on a
// connection of family f and returns src and dst as addresses of f. A zero
// src is allowed: the kernel then picks the source.
func checkAdvertWrite(f Family, src, dst netip.Addr, ttl int) (netip.Addr, netip.Addr, error) {
	if ttl < 1 || ttl > 255 {
		return src, dst, fmt.Errorf("vrrp: TTL %d out of range 1-255", ttl)
	}
	dst, ok := familyAddr(dst, f)
	if !ok {
		return src, dst, fmt.Errorf("%w: destination %v on an %v connection", ErrFamily, dst, f)
	}
	if src.IsValid() {
		if src, ok = familyAddr(src, f); !ok {
			return src, dst, fmt.Errorf("%w: source %v on an %v connection", ErrFamily, src, f)
		}
	}
	return src, dst, nil
}

// fakeQueueLen is how many adverts a FakeConn holds unread before it drops
// more, as a full socket receive buffer does.
const fakeQueueLen = 256

// FakeLink is an in-memory network segment for tests of the VRRP engine: it
// stands for the wire between one interface of each of several hosts, each
// host holding a FakeConn. An advert written on one FakeConn is delivered as
// the kernel would deliver it from a connection of ListenAdvert: to every
// other connection of the same family on the link that joined the
// destination group (multicast) or has the destination among its addresses
// (unicast), never back to the sender (multicast loopback is off), with
// RxInfo filled in (Src, Dst, the TTL written, the receiver's IfIndex) and,
// for IPv6, the checksum computed over the pseudo-header as IPV6_CHECKSUM
// does. A FakeLink is safe for concurrent use.
type FakeLink struct {
	mu      sync.Mutex
	conns   []*FakeConn
	ifindex int // the last interface index handed out
}

// NewFakeLink returns an empty link.
func NewFakeLink() *FakeLink {
	return &FakeLink{}
}

// Listen attaches a new connection of family f to the link, as ListenAdvert
// opens one on an interface, with the same options. addrs are the addresses
// of the host's interface, all of family f: unicast adverts to one of them
// are delivered to this connection, and the first one is the source of an
// advert written with a zero source (keepalived's default: the primary
// IPv4 address, or the IPv6 link-local address). Each connection gets an
// interface index of its own, see FakeConn.IfIndex.
func (l *FakeLink) Listen(f Family, opts ConnOptions, addrs ...netip.Addr) (*FakeConn, error) {
	groups, err := opts.groups(f)
	if err != nil {
		return nil, fmt.Errorf("vrrp: fake %v connection: %w", f, err)
	}
	own := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		var ok bool
		if own[i], ok = familyAddr(a, f); !ok {
			return nil, fmt.Errorf("vrrp: fake %v connection: %w: address %v", f, ErrFamily, a)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ifindex++
	c := &FakeConn{
		link:    l,
		family:  f,
		ifindex: l.ifindex,
		groups:  groups,
		addrs:   own,
		queue:   make(chan fakeAdvert, fakeQueueLen),
		done:    make(chan struct{}),
	}
	l.conns = append(l.conns, c)
	return c, nil
}

// FakeConn is an AdvertConn on a FakeLink.
type FakeConn struct {
	link    *FakeLink
	family  Family
	ifindex int
	groups  []netip.Addr
	addrs   []netip.Addr
	queue   chan fakeAdvert
	done    chan struct{} // closed by Close
	closed  atomic.Bool
	dropped atomic.Int64
}

type fakeAdvert struct {
	b  []byte // shared by the receivers: never modified after delivery
	rx RxInfo
}

var _ AdvertConn = (*FakeConn)(nil)

// IfIndex returns the interface index the connection reports in
// RxInfo.IfIndex.
func (c *FakeConn) IfIndex() int {
	return c.ifindex
}

// Dropped returns how many adverts were dropped because ReadAdvert did not
// keep up (more than 256 unread).
func (c *FakeConn) Dropped() int64 {
	return c.dropped.Load()
}

// ReadAdvert returns the next advert delivered to c, copying as much of it
// as fits into buf, like a read of a raw socket. It blocks until one
// arrives, and fails with an error wrapping net.ErrClosed once c is closed.
func (c *FakeConn) ReadAdvert(buf []byte) (int, RxInfo, error) {
	select {
	case <-c.done:
		return 0, RxInfo{}, c.closedErr("read")
	default:
	}
	select {
	case p := <-c.queue:
		return copy(buf, p.b), p.rx, nil
	case <-c.done:
		return 0, RxInfo{}, c.closedErr("read")
	}
}

// WriteAdvert delivers a copy of b to the connections on the link that
// would receive it (see FakeLink). It validates its arguments as the real
// connection does, and for IPv6 rejects b shorter than 8 bytes, where the
// kernel could not place the checksum.
func (c *FakeConn) WriteAdvert(b []byte, src, dst netip.Addr, ttl int) error {
	if c.closed.Load() {
		return c.closedErr("write")
	}
	src, dst, err := checkAdvertWrite(c.family, src, dst, ttl)
	if err != nil {
		return fmt.Errorf("vrrp: fake %v connection %d: %w", c.family, c.ifindex, err)
	}
	if !src.IsValid() && len(c.addrs) > 0 {
		src = c.addrs[0]
	}
	p := slices.Clone(b)
	if c.family == FamilyIPv6 {
		if err := fillChecksum6(p, src, dst); err != nil {
			return fmt.Errorf("vrrp: fake %v connection %d: %w", c.family, c.ifindex, err)
		}
	}
	c.link.mu.Lock()
	defer c.link.mu.Unlock()
	for _, r := range c.link.conns {
		if r == c || r.family != c.family {
			continue
		}
		if dst.IsMulticast() && !slices.Contains(r.groups, dst) ||
			!dst.IsMulticast() && !slices.Contains(r.addrs, dst) {
			continue
		}
		r.deliver(fakeAdvert{b: p, rx: RxInfo{Src: src, Dst: dst, TTL: ttl, IfIndex: r.ifindex}})
	}
	return nil
}

// Inject hands b to c as if the kernel had received it from src for dst
// with the given TTL on c's interface, whatever its groups and addresses:
// a way to feed an engine adverts that no well-behaved peer sends (a TTL
// below 255, a bad checksum, a stranger's source). b is copied as is.
func (c *FakeConn) Inject(b []byte, src, dst netip.Addr, ttl int) {
	c.deliver(fakeAdvert{b: slices.Clone(b), rx: RxInfo{Src: src, Dst: dst, TTL: ttl, IfIndex: c.ifindex}})
}

// deliver queues p for reading, dropping it when the queue is full.
func (c *FakeConn) deliver(p fakeAdvert) {
	select {
	case c.queue <- p:
	default:
		c.dropped.Add(1)
	}
}

// Close detaches c from its link and unblocks a pending ReadAdvert. Closing
// twice fails with an error wrapping net.ErrClosed.
func (c *FakeConn) Close() error {
	if c.closed.Swap(true) {
		return c.closedErr("close")
	}
	close(c.done)
	c.link.mu.Lock()
	defer c.link.mu.Unlock()
	c.link.conns = slices.DeleteFunc(c.link.conns, func(o *FakeConn) bool { return o == c })
	return nil
}

func (c *FakeConn) closedErr(op string) error {
	return fmt.Errorf("vrrp: fake %v connection %d: %s: %w", c.family, c.ifindex, op, net.ErrClosed)
}

// fillChecksum6 writes into p the checksum that the kernel computes for an
// IPv6 raw socket with IPV6_CHECKSUM at offset 6: the whole payload plus the
// pseudo-header.
func fillChecksum6(p []byte, src, dst netip.Addr) error {
	if len(p) < headerLen {
		return fmt.Errorf("%w: %d bytes, the IPv6 checksum needs 8", ErrShort, len(p))
	}
	if !src.IsValid() {
		return errors.New("no IPv6 source address for the checksum")
	}
	acc, err := pseudoSum(FamilyIPv6, src, dst, len(p))
	if err != nil {
		return err
	}
	p[6], p[7] = 0, 0
	binary.BigEndian.PutUint16(p[6:8], checksum(acc, p))
	return nil
}
