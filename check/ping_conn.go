package check

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// PingMode says which kind of ICMP socket OpenPing opens.
type PingMode uint8

const (
	// PingAuto opens a ping socket when net.ipv4.ping_group_range allows it, else a
	// raw socket.
	PingAuto PingMode = iota
	// PingDgram opens ping sockets only.
	PingDgram
	// PingRaw opens raw sockets only.
	PingRaw
)

// PingConfig says how OpenPing sets up an ICMP socket.
type PingConfig struct {
	V6   bool // ICMPv6, else ICMP
	Mode PingMode
	// ID is the echo identifier of the requests sent and the replies accepted on a raw
	// socket; on a ping socket the kernel picks it.
	ID uint16
	// Src is the local address to bind to (invalid: any); the zone of an IPv6 address
	// names its interface.
	Src netip.Addr
	// SetSockopts, when not nil, sets options on the socket before it is bound.
	SetSockopts func(fd int) error
}

// PingConn is an ICMP socket of one address family for echo requests and replies.
//
// It is an unprivileged ICMP ("ping") socket (SOCK_DGRAM, IPPROTO_ICMP or
// IPPROTO_ICMPV6; Linux allows it to the groups in net.ipv4.ping_group_range, which
// also governs IPv6), which only receives the replies to its own requests, the kernel
// setting the identifier; or a raw ICMP socket (CAP_NET_RAW) with an ICMP filter
// passing only echo replies, which sees the replies to every ping of the host and
// accepts those carrying its identifier. A new network namespace starts with
// ping_group_range "1 0" (nobody), so there PingAuto opens a raw socket.
type PingConn struct {
	conn net.PacketConn
	raw  bool
	v6   bool
	id   uint16
}

// PingReply is an echo reply that ReadEcho accepted.
type PingReply struct {
	Src  netip.Addr // its source, unmapped and without zone
	Seq  uint16
	Data []byte // its payload
}

// OpenPing opens an ICMP socket as cfg says, in the network namespace of the calling
// thread, close-on-exec (icmp.ListenPacket's would not be, and a script started
// meanwhile could inherit it).
func OpenPing(ctx context.Context, cfg PingConfig) (*PingConn, error) {
	var dgramErr error
	if cfg.Mode != PingRaw {
		c, err := pingListenDgram(cfg)
		if err == nil {
			return &PingConn{conn: c, v6: cfg.V6, id: cfg.ID}, nil
		}
		if cfg.Mode == PingDgram {
			return nil, err
		}
		dgramErr = err
	}
	c, err := pingListenRaw(ctx, cfg)
	if err != nil {
		if dgramErr != nil {
			return nil, fmt.Errorf("%w; %w", dgramErr, err)
		}
		return nil, err
	}
	return &PingConn{conn: c, raw: true, v6: cfg.V6, id: cfg.ID}, nil
}

// pingListenDgram opens a ping socket.
func pingListenDgram(cfg PingConfig) (net.PacketConn, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	var sa unix.Sockaddr = &unix.SockaddrInet4{}
	if cfg.V6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
		sa6 := &unix.SockaddrInet6{}
		if cfg.Src.IsValid() {
			sa6.Addr = cfg.Src.As16()
			if z := cfg.Src.Zone(); z != "" {
				ifi, err := net.InterfaceByName(z)
				if err != nil {
					return nil, fmt.Errorf("bindto %s: %w", cfg.Src, err)
				}
				sa6.ZoneId = uint32(ifi.Index)
			}
		}
		sa = sa6
	} else if cfg.Src.IsValid() {
		sa = &unix.SockaddrInet4{Addr: cfg.Src.As4()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("ping socket: %w", err)
	}
	if cfg.SetSockopts != nil {
		if err := cfg.SetSockopts(fd); err != nil {
			_ = unix.Close(fd)
			return nil, err
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		if cfg.Src.IsValid() {
			return nil, fmt.Errorf("bind ping socket to %s: %w", cfg.Src, err)
		}
		return nil, fmt.Errorf("bind ping socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "ping socket")
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("ping socket: %w", err)
	}
	return c, nil
}

// pingListenRaw opens a raw ICMP socket that only receives echo replies.
func pingListenRaw(ctx context.Context, cfg PingConfig) (net.PacketConn, error) {
	network, laddr := "ip4:icmp", "0.0.0.0"
	if cfg.V6 {
		network, laddr = "ip6:ipv6-icmp", "::"
	}
	if cfg.Src.IsValid() {
		zoned, err := probeZoneIndex(cfg.Src)
		if err != nil {
			return nil, fmt.Errorf("bindto: %w", err)
		}
		laddr = zoned.String()
	}
	var lc net.ListenConfig
	if cfg.SetSockopts != nil {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = cfg.SetSockopts(int(fd)) }); err != nil {
				return err
			}
			return serr
		}
	}
	c, err := lc.ListenPacket(ctx, network, laddr)
	if err != nil {
		return nil, fmt.Errorf("raw ICMP socket: %w", err)
	}
	if cfg.V6 {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		err = ipv6.NewPacketConn(c).SetICMPFilter(&f)
	} else {
		var f ipv4.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv4.ICMPTypeEchoReply)
		err = ipv4.NewPacketConn(c).SetICMPFilter(&f)
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raw ICMP socket: set ICMP filter: %w", err)
	}
	return c, nil
}

// Raw reports whether c is a raw socket (else a ping socket).
func (c *PingConn) Raw() bool { return c.raw }

// Close closes the socket; a ReadEcho in progress returns net.ErrClosed.
func (c *PingConn) Close() error { return c.conn.Close() }

// SetDeadline sets the deadline of the socket's reads and writes.
func (c *PingConn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// WriteEcho sends an echo request with sequence number seq and payload data to dst,
// whose zone (an interface name or index) scopes an IPv6 link-local address. An error
// in sending is the socket's, as is.
func (c *PingConn) WriteEcho(dst netip.Addr, seq uint16, data []byte) error {
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if c.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	req, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(c.id), Seq: int(seq), Data: data}}).Marshal(nil)
	if err != nil {
		return fmt.Errorf("build echo request: %w", err)
	}
	ip := net.IP(dst.AsSlice())
	var to net.Addr = &net.UDPAddr{IP: ip, Zone: dst.Zone()}
	if c.raw {
		to = &net.IPAddr{IP: ip, Zone: dst.Zone()}
	}
	_, err = c.conn.WriteTo(req, to)
	return err
}

// ReadEcho reads into buf until an echo reply to this socket's requests arrives (on a
// raw socket: one with its identifier), passing over anything else. An error is the
// socket's, as is: os.ErrDeadlineExceeded past the deadline, net.ErrClosed once closed.
func (c *PingConn) ReadEcho(buf []byte) (PingReply, error) {
	proto, replyType := 1, icmp.Type(ipv4.ICMPTypeEchoReply) // ICMP
	if c.v6 {
		proto, replyType = 58, ipv6.ICMPTypeEchoReply // ICMPv6
	}
	for {
		n, from, err := c.conn.ReadFrom(buf)
		if err != nil {
			return PingReply{}, err
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || (c.raw && echo.ID != int(c.id)) {
			continue
		}
		var ip net.IP
		switch a := from.(type) {
		case *net.UDPAddr:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		src, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		return PingReply{Src: src.Unmap(), Seq: uint16(echo.Seq), Data: echo.Data}, nil
	}
}
