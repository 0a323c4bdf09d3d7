package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// pingMode says which kind of ICMP socket a PING_CHECK uses.
type pingMode uint8

const (
	pingAuto  pingMode = iota // a ping socket when ping_group_range allows it, else a raw socket
	pingDgram                 // ping sockets only
	pingRaw                   // raw sockets only
)

// pingCookieLen is the size of the random payload that tells our replies apart.
const pingCookieLen = 16

// pingProbe is a PING_CHECK: one ICMP echo request per attempt to connect_ip (bindto,
// bind_if and fwmark apply), passing when the matching echo reply arrives before the
// deadline.
//
// It uses an unprivileged ICMP ("ping") socket when net.ipv4.ping_group_range allows the
// process's group, else a raw socket. A ping socket only receives the replies to its own
// requests (the kernel sets the identifier); on a raw socket, which sees every echo
// reply of the host, replies are matched on identifier, sequence number, payload and
// source. A socket is opened per attempt.
type pingProbe struct {
	target probeTarget
	mode   pingMode
	id     uint16 // echo identifier on raw sockets
	seq    atomic.Uint32
}

func newPingProbe(c *parser.Checker, rs *parser.RealServer) (*pingProbe, error) {
	t, err := newProbeTarget(c, rs, false)
	if err != nil {
		return nil, err
	}
	t.dst = netip.AddrPortFrom(t.dst.Addr(), 0)
	t.src = netip.AddrPortFrom(t.src.Addr(), 0) // bind_port means nothing to ICMP
	var id [2]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("PING_CHECK: random identifier: %w", err)
	}
	return &pingProbe{target: t, id: binary.BigEndian.Uint16(id[:])}, nil
}

// Check sends one echo request and waits for its reply.
func (p *pingProbe) Check(ctx context.Context) Result {
	start := time.Now()
	ctx, cancel := probeContext(ctx, p.target.timeout)
	defer cancel()
	dst := p.target.dst.Addr()
	fail := func(what string, err error) Result {
		return probeResult(start, fmt.Errorf("PING_CHECK %s: %s: %w", dst, what, err))
	}
	conn, raw, err := p.open(ctx)
	if err != nil {
		return fail("socket", err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(probeLongAgo) })
	defer stop()

	v6 := dst.Is6()
	seq := int(uint16(p.seq.Add(1)))
	cookie := make([]byte, pingCookieLen)
	_, _ = rand.Read(cookie) // crypto/rand.Read never fails on Linux
	var typ, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1 // ICMP
	if v6 {
		typ, replyType, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	req, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(p.id), Seq: seq, Data: cookie}}).Marshal(nil)
	if err != nil {
		return fail("build echo request", err)
	}
	zoned, err := probeZoneIndex(dst)
	if err != nil {
		return fail("destination", err)
	}
	ip := net.IP(dst.AsSlice())
	var to net.Addr = &net.UDPAddr{IP: ip, Zone: zoned.Zone()}
	if raw {
		to = &net.IPAddr{IP: ip, Zone: zoned.Zone()}
	}
	if _, err := conn.WriteTo(req, to); err != nil {
		return fail("send", err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fail("no echo reply", err)
			}
			return fail("receive", err)
		}
		if !pingFrom(from, dst) {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.Seq != seq || !bytes.Equal(echo.Data, cookie) || (raw && echo.ID != int(p.id)) {
			continue
		}
		return probeResult(start, nil)
	}
}

// pingFrom reports whether a reply's source is the target.
func pingFrom(from net.Addr, dst netip.Addr) bool {
	var ip net.IP
	switch a := from.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	}
	got, ok := netip.AddrFromSlice(ip)
	return ok && got.Unmap() == dst.WithZone("")
}

// open returns an ICMP socket for the target's family with the checker's options, and
// whether it is a raw socket.
func (p *pingProbe) open(ctx context.Context) (net.PacketConn, bool, error) {
	var dgramErr error
	if p.mode != pingRaw {
		c, err := p.openDgram()
		if err == nil {
			return c, false, nil
		}
		if p.mode == pingDgram {
			return nil, false, err
		}
		dgramErr = err
	}
	c, err := p.openRaw(ctx)
	if err != nil {
		if dgramErr != nil {
			return nil, false, fmt.Errorf("%w; raw socket: %w", dgramErr, err)
		}
		return nil, false, err
	}
	return c, true, nil
}

// openDgram opens an unprivileged ping socket (SOCK_DGRAM, IPPROTO_ICMP[V6]).
func (p *pingProbe) openDgram() (net.PacketConn, error) {
	src := p.target.src.Addr()
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	var sa unix.Sockaddr = &unix.SockaddrInet4{}
	if p.target.dst.Addr().Is6() {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
		sa6 := &unix.SockaddrInet6{}
		if src.IsValid() {
			sa6.Addr = src.As16()
			if z := src.Zone(); z != "" {
				ifi, err := net.InterfaceByName(z)
				if err != nil {
					return nil, fmt.Errorf("bindto %s: %w", src, err)
				}
				sa6.ZoneId = uint32(ifi.Index)
			}
		}
		sa = sa6
	} else if src.IsValid() {
		sa = &unix.SockaddrInet4{Addr: src.As4()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("ping socket: %w", err)
	}
	if err := p.target.setSockopts(fd); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("bind ping socket to %s: %w", src, err)
	}
	f := os.NewFile(uintptr(fd), "ping socket")
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("ping socket: %w", err)
	}
	return c, nil
}

// openRaw opens a raw ICMP socket that only receives echo replies.
func (p *pingProbe) openRaw(ctx context.Context) (net.PacketConn, error) {
	network, laddr := "ip4:icmp", "0.0.0.0"
	if p.target.dst.Addr().Is6() {
		network, laddr = "ip6:ipv6-icmp", "::"
	}
	if src := p.target.src.Addr(); src.IsValid() {
		zoned, err := probeZoneIndex(src)
		if err != nil {
			return nil, fmt.Errorf("bindto: %w", err)
		}
		laddr = zoned.String()
	}
	lc := net.ListenConfig{Control: p.target.control}
	c, err := lc.ListenPacket(ctx, network, laddr)
	if err != nil {
		return nil, fmt.Errorf("raw ICMP socket: %w", err)
	}
	if p.target.dst.Addr().Is6() {
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
