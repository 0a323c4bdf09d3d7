package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// ListenAdvert opens the VRRP connection of family f on interface ifname:
// a raw IP socket for protocol 112, as keepalived opens one (vrrp_if.c).
//
//   - It is bound to the interface (SO_BINDTODEVICE), joins the groups of
//     opts there with IP_MULTICAST_ALL (IPV6_MULTICAST_ALL) off, so that it
//     receives neither adverts that arrive on other interfaces nor groups
//     that other sockets joined, and sends multicast out of the interface
//     with loopback off: a host never reads its own multicast adverts.
//   - ReadAdvert returns the VRRP payload only (the IP header is stripped)
//     with the source, destination, TTL/hop limit and interface from the
//     packet's control messages, and skips any packet that the kernel did
//     not report as received on ifname (one queued in the moment between
//     opening the socket and binding it).
//   - WriteAdvert sets the TTL/hop limit, the source and the interface per
//     packet (IP_TTL/IPV6_HOPLIMIT and IP_PKTINFO/IPV6_PKTINFO control
//     messages), so instances with different unicast_ttl share the
//     connection safely. The source must be an address of the host (for
//     IPv6 a usable one: not tentative); a zero source lets the kernel pick.
//
// Checksums: for IPv4 they are the caller's job, on both sides: WriteAdvert
// sends the payload as it is (marshal it with Advert.AppendMarshal) and
// ReadAdvert returns it unverified (check it with VerifyChecksum). For
// IPv6 they are the kernel's (IPV6_CHECKSUM at offset 6): it computes the
// checksum over the pseudo-header on sending, whatever bytes 6-7 of the
// payload hold, and silently drops received packets whose checksum is
// wrong, so ReadAdvert never returns one.
//
// The interface is resolved when opening: if it is deleted, the connection
// receives nothing and must be reopened. Opening needs CAP_NET_RAW, and
// happens in the network namespace of the calling thread.
func ListenAdvert(ifname string, f Family, opts ConnOptions) (AdvertConn, error) {
	c, err := listenAdvert(ifname, f, opts)
	if err != nil {
		return nil, fmt.Errorf("vrrp: open %v socket on %s: %w", f, ifname, err)
	}
	return c, nil
}

// advertSocket is the AdvertConn of ListenAdvert. Exactly one of p4 and p6 is
// set, after the family; both wrap ip.
type advertSocket struct {
	ifname  string
	ifindex int
	family  Family
	ip      *net.IPConn
	p4      *ipv4.PacketConn
	p6      *ipv6.PacketConn
}

func listenAdvert(ifname string, f Family, opts ConnOptions) (*advertSocket, error) {
	groups, err := opts.groups(f)
	if err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	network, laddr := "ip4:112", "0.0.0.0"
	if f == FamilyIPv6 {
		network, laddr = "ip6:112", "::"
	}
	pc, err := net.ListenPacket(network, laddr)
	if err != nil {
		return nil, err
	}
	c := &advertSocket{ifname: ifname, ifindex: ifi.Index, family: f, ip: pc.(*net.IPConn)}
	if err := c.setup(ifi, groups); err != nil {
		pc.Close()
		return nil, err
	}
	if opts.RcvBuf > 0 {
		if err := c.ip.SetReadBuffer(opts.RcvBuf); err != nil {
			pc.Close()
			return nil, fmt.Errorf("SO_RCVBUF %d: %w", opts.RcvBuf, err)
		}
	}
	return c, nil
}

// setup sets the socket options; the TTL/hop limit is not one of them, as
// every write carries it.
func (c *advertSocket) setup(ifi *net.Interface, groups []netip.Addr) error {
	if err := c.bind(); err != nil {
		return err
	}
	if c.family == FamilyIPv4 {
		p := ipv4.NewPacketConn(c.ip)
		c.p4 = p
		if err := p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagSrc|ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
			return fmt.Errorf("control messages: %w", err)
		}
		if err := p.SetMulticastInterface(ifi); err != nil {
			return fmt.Errorf("IP_MULTICAST_IF: %w", err)
		}
		if err := p.SetMulticastLoopback(false); err != nil {
			return fmt.Errorf("IP_MULTICAST_LOOP: %w", err)
		}
		for _, g := range groups {
			if err := p.JoinGroup(ifi, &net.IPAddr{IP: g.AsSlice()}); err != nil {
				return fmt.Errorf("join %v: %w", g, err)
			}
		}
		return nil
	}
	p := ipv6.NewPacketConn(c.ip)
	c.p6 = p
	if err := p.SetChecksum(true, 6); err != nil {
		return fmt.Errorf("IPV6_CHECKSUM: %w", err)
	}
	if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return fmt.Errorf("control messages: %w", err)
	}
	if err := p.SetMulticastInterface(ifi); err != nil {
		return fmt.Errorf("IPV6_MULTICAST_IF: %w", err)
	}
	if err := p.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("IPV6_MULTICAST_LOOP: %w", err)
	}
	for _, g := range groups {
		if err := p.JoinGroup(ifi, &net.IPAddr{IP: g.AsSlice()}); err != nil {
			return fmt.Errorf("join %v: %w", g, err)
		}
	}
	return nil
}

// bind binds the socket to the interface and turns IP_MULTICAST_ALL
// (IPV6_MULTICAST_ALL) off; x/net has neither.
func (c *advertSocket) bind() error {
	rc, err := c.ip.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if err := unix.BindToDevice(int(fd), c.ifname); err != nil {
			serr = fmt.Errorf("SO_BINDTODEVICE: %w", err)
			return
		}
		if c.family == FamilyIPv4 {
			if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
				serr = fmt.Errorf("IP_MULTICAST_ALL: %w", err)
			}
			return
		}
		// IPV6_MULTICAST_ALL is Linux 4.20; older kernels cannot turn it off.
		if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0); err != nil && !errors.Is(err, unix.ENOPROTOOPT) {
			serr = fmt.Errorf("IPV6_MULTICAST_ALL: %w", err)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// ReadAdvert implements AdvertConn. It returns the VRRP payload in buf[:n],
// truncated to len(buf), with RxInfo from the packet: Src and Dst (for IPv6
// without a zone, IfIndex tells the interface), TTL the IPv4 TTL or IPv6
// hop limit (-1 if the kernel gave none) and IfIndex, always the
// interface's. After Close it fails with an error wrapping net.ErrClosed.
func (c *advertSocket) ReadAdvert(buf []byte) (int, RxInfo, error) {
	for {
		n, rx, err := c.read(buf)
		if err != nil {
			return 0, RxInfo{}, fmt.Errorf("vrrp: read %v advert on %s: %w", c.family, c.ifname, err)
		}
		if rx.IfIndex == c.ifindex {
			return n, rx, nil
		}
	}
}

// read reads one packet, from whichever interface.
func (c *advertSocket) read(buf []byte) (int, RxInfo, error) {
	rx := RxInfo{TTL: -1}
	var (
		n   int
		src net.Addr
		err error
	)
	if c.p4 != nil {
		var cm *ipv4.ControlMessage
		n, cm, src, err = c.p4.ReadFrom(buf)
		if cm != nil {
			rx.TTL, rx.IfIndex = cm.TTL, cm.IfIndex
			rx.Dst = addrFromIP(cm.Dst)
		}
	} else {
		var cm *ipv6.ControlMessage
		n, cm, src, err = c.p6.ReadFrom(buf)
		if cm != nil {
			rx.TTL, rx.IfIndex = cm.HopLimit, cm.IfIndex
			rx.Dst = addrFromIP(cm.Dst)
		}
	}
	if err != nil {
		return 0, rx, err
	}
	if a, ok := src.(*net.IPAddr); ok {
		rx.Src = addrFromIP(a.IP)
	}
	return n, rx, nil
}

// addrFromIP converts ip, unmapping IPv4; nil gives the zero Addr.
func addrFromIP(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// WriteAdvert implements AdvertConn. It sends b from src to dst (multicast
// group or unicast peer, of the connection's family) with TTL/hop limit ttl
// (1-255) out of the interface; for IPv6 b must be at least 8 bytes long,
// for the kernel to place the checksum.
func (c *advertSocket) WriteAdvert(b []byte, src, dst netip.Addr, ttl int) error {
	src, dst, err := checkAdvertWrite(c.family, src, dst, ttl)
	if err == nil {
		_, _, err = c.ip.WriteMsgIP(b, c.control(src, ttl), &net.IPAddr{IP: dst.AsSlice()})
	}
	if err != nil {
		return fmt.Errorf("vrrp: send %v advert on %s from %v to %v: %w", c.family, c.ifname, src, dst, err)
	}
	return nil
}

// control returns the control messages of a write: the packet info (the
// interface, and the source unless zero) and the TTL/hop limit. x/net's
// ipv4.ControlMessage cannot carry a TTL, hence raw control messages.
func (c *advertSocket) control(src netip.Addr, ttl int) []byte {
	if c.family == FamilyIPv4 {
		info := unix.Inet4Pktinfo{Ifindex: int32(c.ifindex)}
		if src.IsValid() {
			info.Spec_dst = src.As4()
		}
		return append(unix.PktInfo4(&info), intCmsg(unix.IPPROTO_IP, unix.IP_TTL, ttl)...)
	}
	info := unix.Inet6Pktinfo{Ifindex: uint32(c.ifindex)}
	if src.IsValid() {
		info.Addr = src.As16()
	}
	return append(unix.PktInfo6(&info), intCmsg(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, ttl)...)
}

// intCmsg returns a control message carrying one int.
func intCmsg(level, typ, v int) []byte {
	b := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], uint32(v))
	return b
}

// Close implements AdvertConn: it closes the socket, which leaves its
// groups, and a blocked ReadAdvert returns.
func (c *advertSocket) Close() error {
	if err := c.ip.Close(); err != nil {
		return fmt.Errorf("vrrp: close %v socket on %s: %w", c.family, c.ifname, err)
	}
	return nil
}

// PrimaryAddr returns the address keepalived sends adverts from by default
// on interface ifname: for IPv4 its first address, normally the primary
// one (the kernel lists primary addresses before secondary ones), for IPv6
// its first link-local address (without a zone). It fails when the
// interface has none. It looks in the network namespace of the calling
// thread.
func PrimaryAddr(ifname string, f Family) (netip.Addr, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrp: primary %v address: %w", f, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrp: primary %v address of %s: %w", f, ifname, err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := addrFromIP(n.IP)
		if f == FamilyIPv4 && ip.Is4() || f == FamilyIPv6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("vrrp: %s has no %v address to send from", ifname, f)
}
