package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// PacketAnnouncer is the Linux Announcer: gratuitous ARP requests on an AF_PACKET socket
// for IPv4 and unsolicited neighbour advertisements on a raw ICMPv6 socket for IPv6.
//
// Sockets are opened by each Announce call, in the network namespace of the calling
// thread, and closed before it returns: announcements come in short bursts (on a
// transition to MASTER, then every garp_master_refresh), so keeping sockets per
// interface would save little and would outlive renamed or re-created interfaces.
//
// The interval applies between any two packets of a call. keepalived paces ARP and
// NA separately (garp_interval, gna_interval): use one PacketAnnouncer per family
// for that.
//
// A PacketAnnouncer is safe for concurrent use.
type PacketAnnouncer struct {
	interval time.Duration
}

var _ Announcer = (*PacketAnnouncer)(nil)

// NewAnnouncer returns a PacketAnnouncer that leaves interval between two packets on an
// interface (keepalived's garp_interval or gna_interval); 0 sends back to back.
func NewAnnouncer(interval time.Duration) *PacketAnnouncer {
	return &PacketAnnouncer{interval: interval}
}

var arpBroadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ipv6AllNodes is ff02::1, where unsolicited neighbour advertisements go (RFC 4861 7.2.6).
var ipv6AllNodes = netip.MustParseAddr("ff02::1")

// Announce sends count announcements for each address out of ifname, in count rounds
// of one packet per address, with the interval between consecutive packets. IPv4
// addresses get a gratuitous ARP request; IPv6 addresses an unsolicited neighbour
// advertisement from the address itself, which must therefore be installed (with
// NODAD, see NetlinkAddrs) first. An address whose packet cannot be sent is skipped in
// later rounds; the errors are returned joined once every other packet is sent.
func (an *PacketAnnouncer) Announce(ifname string, addrs []netip.Addr, count int) error {
	if count <= 0 || len(addrs) == 0 {
		return nil
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("announce on %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) == 0 {
		return fmt.Errorf("announce on %s: the interface has no link-layer address", ifname)
	}
	var (
		arp    *arpSender
		na     *naSender
		arpErr error
		naErr  error
	)
	defer func() {
		if arp != nil {
			arp.close()
		}
		if na != nil {
			na.close()
		}
	}()
	send := func(a netip.Addr) error {
		if a.Is4() {
			if arp == nil && arpErr == nil {
				arp, arpErr = newARPSender(ifi)
			}
			if arpErr != nil {
				return arpErr
			}
			return arp.send(a)
		}
		if na == nil && naErr == nil {
			na, naErr = newNASender(ifi)
		}
		if naErr != nil {
			return naErr
		}
		return na.send(a)
	}
	errs := make([]error, len(addrs))
	var next time.Time
	for range count {
		for i, a := range addrs {
			if errs[i] != nil {
				continue
			}
			time.Sleep(time.Until(next))
			err := send(a.Unmap())
			next = time.Now().Add(an.interval)
			if err != nil {
				errs[i] = fmt.Errorf("announce %s on %s: %w", a, ifname, err)
			}
		}
	}
	return errors.Join(errs...)
}

// arpSender sends gratuitous ARP requests on one interface.
type arpSender struct {
	c   *packet.Conn
	ifi *net.Interface
	b   []byte
}

// announceWriteTimeout bounds each send: a socket whose buffer does not drain fails
// the packet instead of blocking the caller.
const announceWriteTimeout = 5 * time.Second

// dropAll is a socket filter that accepts nothing: the senders never read.
var dropAll = []bpf.RawInstruction{{Op: unix.BPF_RET | unix.BPF_K, K: 0}}

func newARPSender(ifi *net.Interface) (*arpSender, error) {
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("gratuitous ARP on %s: not an Ethernet interface (link-layer address %s)", ifi.Name, ifi.HardwareAddr)
	}
	c, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_ARP, &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, fmt.Errorf("open ARP socket on %s: %w", ifi.Name, err)
	}
	return &arpSender{c: c, ifi: ifi, b: make([]byte, 28)}, nil
}

// send writes one gratuitous ARP request, as keepalived sends it: Ethernet broadcast,
// sender = the interface's MAC and the address, target = broadcast MAC and the address.
func (s *arpSender) send(a netip.Addr) error {
	b, be, ip := s.b, binary.BigEndian, a.As4()
	be.PutUint16(b[0:], 1)      // hardware type Ethernet
	be.PutUint16(b[2:], 0x0800) // protocol IPv4
	b[4], b[5] = 6, 4           // address lengths
	be.PutUint16(b[6:], 1)      // request
	copy(b[8:14], s.ifi.HardwareAddr)
	copy(b[14:18], ip[:])
	copy(b[18:24], arpBroadcastMAC)
	copy(b[24:28], ip[:])
	if err := s.c.SetWriteDeadline(time.Now().Add(announceWriteTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := s.c.WriteTo(b, &packet.Addr{HardwareAddr: arpBroadcastMAC}); err != nil {
		return fmt.Errorf("send gratuitous ARP: %w", err)
	}
	return nil
}

func (s *arpSender) close() { _ = s.c.Close() }

// naSender sends unsolicited neighbour advertisements on one interface.
type naSender struct {
	c      *icmp.PacketConn
	p      *ipv6.PacketConn
	ifi    *net.Interface
	router bool
	b      []byte
}

func newNASender(ifi *net.Interface) (s *naSender, err error) {
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("open ICMPv6 socket: %w", err)
	}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	p := c.IPv6PacketConn()
	// Nothing is read from this socket: drop everything instead of queueing it.
	var f ipv6.ICMPFilter
	f.SetAll(true)
	for _, step := range []struct {
		what string
		err  error
	}{
		{"set ICMPv6 filter", p.SetICMPFilter(&f)},
		{"set checksum offset", p.SetChecksum(true, 2)},
		{"set multicast hop limit", p.SetMulticastHopLimit(255)},
		{"set multicast interface", p.SetMulticastInterface(ifi)},
		{"disable multicast loopback", p.SetMulticastLoopback(false)},
	} {
		if step.err != nil {
			return nil, fmt.Errorf("%s on %s: %w", step.what, ifi.Name, step.err)
		}
	}
	// 8-byte header, 16-byte target, then the target link-layer address option
	// (type, length in units of 8 bytes, address, zero padding).
	optLen := (2 + len(ifi.HardwareAddr) + 7) / 8 * 8
	return &naSender{c: c, p: p, ifi: ifi, router: ipv6Forwarding(ifi.Name), b: make([]byte, 24+optLen)}, nil
}

// ipv6Forwarding reports whether IPv6 forwarding is on for the interface: keepalived then
// sets the Router flag, so that neighbours do not drop us from their router lists.
func ipv6Forwarding(ifname string) bool {
	v, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifname + "/forwarding")
	return err == nil && strings.TrimSpace(string(v)) != "0"
}

// send writes one unsolicited neighbour advertisement (RFC 4861 4.4, 7.2.6) from the
// address to ff02::1, hop limit 255, Override set, Solicited clear, with the
// interface's MAC as target link-layer address. The kernel fills the checksum.
func (s *naSender) send(a netip.Addr) error {
	b := s.b
	clear(b)
	b[0] = byte(ipv6.ICMPTypeNeighborAdvertisement)
	b[4] = 0x20 // Override
	if s.router {
		b[4] |= 0x80
	}
	t := a.As16()
	copy(b[8:24], t[:])
	b[24] = 2 // target link-layer address
	b[25] = byte((len(b) - 24) / 8)
	copy(b[26:], s.ifi.HardwareAddr)
	cm := &ipv6.ControlMessage{HopLimit: 255, Src: a.AsSlice(), IfIndex: s.ifi.Index}
	// No zone: the interface comes from the control message. A zone name would go
	// through the net package's process-wide name-to-index cache, which does not know
	// about network namespaces and can be stale for a re-created interface.
	dst := &net.IPAddr{IP: ipv6AllNodes.AsSlice()}
	if err := s.p.SetWriteDeadline(time.Now().Add(announceWriteTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := s.p.WriteTo(b, cm, dst); err != nil {
		return fmt.Errorf("send unsolicited neighbour advertisement: %w", err)
	}
	return nil
}

func (s *naSender) close() { _ = s.c.Close() }

// familyAnnouncer paces gratuitous ARPs and neighbour advertisements separately.
type familyAnnouncer struct{ v4, v6 Announcer }

// NewFamilyAnnouncer returns an Announcer that spaces IPv4 gratuitous ARPs by garp
// (vrrp_garp_interval) and IPv6 neighbour advertisements by gna (vrrp_gna_interval).
func NewFamilyAnnouncer(garp, gna time.Duration) Announcer {
	return familyAnnouncer{v4: NewAnnouncer(garp), v6: NewAnnouncer(gna)}
}

func (f familyAnnouncer) Announce(ifname string, addrs []netip.Addr, count int) error {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a.Is4() || a.Is4In6() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return errors.Join(f.v4.Announce(ifname, v4, count), f.v6.Announce(ifname, v6, count))
}
