package check

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// probeDefaultTimeout bounds an attempt whose context has no deadline and whose checker
// has no connect_timeout: keepalived's default connect_timeout.
const probeDefaultTimeout = 5 * time.Second

// probeLongAgo is a deadline in the past: setting it makes pending I/O return at once.
var probeLongAgo = time.Unix(1, 0)

// probeTarget is where a probe sends its packets and how its socket is set up: the
// connect_ip/connect_port, bindto/bind_port, bind_if and fwmark of a checker.
type probeTarget struct {
	dst     netip.AddrPort
	src     netip.AddrPort // the zero address lets the kernel choose; port 0 likewise
	bindIf  string         // bind_if: the socket is bound to this device (SO_BINDTODEVICE)
	mark    uint32         // fwmark: SO_MARK of the socket
	timeout time.Duration  // connect_timeout, used when the context has no deadline
	// closeFIN closes a TCP_CHECK's connection normally; without it the connection is
	// reset (tcp_check_close).
	closeFIN bool
}

// newProbeTarget resolves where checker c of real server rs connects. The port is
// required when needPort is set (every checker but PING_CHECK).
func newProbeTarget(c *parser.Checker, rs *parser.RealServer, needPort bool) (probeTarget, error) {
	var co parser.ConnOpts
	if c.Conn != nil {
		co = *c.Conn
	}
	ip, port := co.ConnectIP, co.ConnectPort
	if rs != nil {
		if !ip.IsValid() {
			ip = rs.Addr
		}
		if port == 0 {
			port = rs.Port
		}
	}
	if !ip.IsValid() {
		return probeTarget{}, fmt.Errorf("%s: no address to connect to (connect_ip or the real server's address)", c.Type)
	}
	if needPort && port == 0 {
		return probeTarget{}, fmt.Errorf("%s: no port to connect to (connect_port or the real server's port)", c.Type)
	}
	ip = probeZone(ip.Unmap(), co.BindIf)
	src := co.BindTo
	if src.IsValid() {
		src = probeZone(src.Unmap(), co.BindIf)
		if src.Is4() != ip.Is4() {
			return probeTarget{}, fmt.Errorf("%s: bindto %s and connect address %s are of different families", c.Type, src, ip)
		}
	}
	t := probeTarget{
		dst:    netip.AddrPortFrom(ip, port),
		src:    netip.AddrPortFrom(src, co.BindPort),
		bindIf: co.BindIf,
		mark:   co.FWMark,
		// closeFIN only matters to TCP_CHECK, the one probe whose sockets tcpLoop makes.
		closeFIN: co.CloseFIN,
	}
	if c.Timing != nil {
		t.timeout = c.Timing.ConnectTimeout.D()
	}
	return t, nil
}

// probeZone gives an IPv6 link-local address without a zone the zone bindIf.
func probeZone(a netip.Addr, bindIf string) netip.Addr {
	if a.Is6() && a.Zone() == "" && bindIf != "" && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		return a.WithZone(bindIf)
	}
	return a
}

// hasSource reports whether bindto or bind_port is set.
func (t *probeTarget) hasSource() bool {
	return t.src.Addr().IsValid() || t.src.Port() != 0
}

// sourceIP is the bindto address as a net.IP (nil when unset).
func (t *probeTarget) sourceIP() net.IP {
	if !t.src.Addr().IsValid() {
		return nil
	}
	return t.src.Addr().AsSlice()
}

// dial connects a "tcp" or "udp" socket to the target with the checker's socket
// options, within ctx.
func (t *probeTarget) dial(ctx context.Context, network string) (net.Conn, error) {
	dst, err := probeZoneIndex(t.dst.Addr())
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Control: t.control, KeepAlive: -1}
	if t.hasSource() {
		src, err := probeZoneIndex(t.src.Addr())
		if err != nil {
			return nil, err
		}
		ip, zone := t.sourceIP(), src.Zone()
		if network == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: ip, Port: int(t.src.Port()), Zone: zone}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: ip, Port: int(t.src.Port()), Zone: zone}
		}
	}
	return d.DialContext(ctx, network, netip.AddrPortFrom(dst, t.dst.Port()).String())
}

// probeZoneIndex replaces the interface name in a's zone by the interface's index,
// looked up now: the net package caches names for up to a minute, so an interface
// created again under the same name would otherwise be missed.
func probeZoneIndex(a netip.Addr) (netip.Addr, error) {
	z := a.Zone()
	if z == "" {
		return a, nil
	}
	if _, err := strconv.Atoi(z); err == nil {
		return a, nil
	}
	ifi, err := net.InterfaceByName(z)
	if err != nil {
		return a, fmt.Errorf("zone of %s: %w", a, err)
	}
	return a.WithZone(strconv.Itoa(ifi.Index)), nil
}

// control applies bind_if, fwmark and, with a fixed bind_port, SO_REUSEADDR to a socket
// before it is bound and connected.
func (t *probeTarget) control(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = t.setSockopts(int(fd)) }); err != nil {
		return err
	}
	return serr
}

func (t *probeTarget) setSockopts(fd int) error {
	if t.bindIf != "" {
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, t.bindIf); err != nil {
			return fmt.Errorf("bind_if %s: %w", t.bindIf, err)
		}
	}
	if t.mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(t.mark)); err != nil {
			return fmt.Errorf("fwmark %d: %w", t.mark, err)
		}
	}
	if t.src.Port() != 0 {
		// A fixed source port would otherwise wait out TIME_WAIT between checks.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("bind_port %d: SO_REUSEADDR: %w", t.src.Port(), err)
		}
	}
	return nil
}

// probeContext bounds ctx by fallback (else probeDefaultTimeout) when it has no
// deadline, so that no attempt can run forever.
func probeContext(ctx context.Context, fallback time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	if fallback <= 0 {
		fallback = probeDefaultTimeout
	}
	return context.WithTimeout(ctx, fallback)
}

// probeBind makes every read and write on conn fail once ctx's deadline passes or ctx
// is cancelled. The returned function releases the watch on ctx.
func probeBind(ctx context.Context, conn net.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(probeLongAgo) })
}

// probeResult is the Result of an attempt that started at start and failed with err
// (nil: passed).
func probeResult(start time.Time, err error) Result {
	return Result{OK: err == nil, Latency: time.Since(start), Err: err}
}

// probeQuote shortens what a server sent for an error message.
func probeQuote(b []byte) string {
	const limit = 80
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
