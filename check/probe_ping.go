package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"gokeepalived/parser"
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
	mode   PingMode
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
	conn, err := p.open(ctx)
	if err != nil {
		return fail("socket", err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(probeLongAgo) })
	defer stop()

	seq := uint16(p.seq.Add(1))
	cookie := make([]byte, pingCookieLen)
	_, _ = rand.Read(cookie) // crypto/rand.Read never fails on Linux
	zoned, err := probeZoneIndex(dst)
	if err != nil {
		return fail("destination", err)
	}
	if err := conn.WriteEcho(zoned, seq, cookie); err != nil {
		return fail("send", err)
	}
	buf := make([]byte, 1500)
	for {
		r, err := conn.ReadEcho(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fail("no echo reply", err)
			}
			return fail("receive", err)
		}
		if r.Src == dst.WithZone("") && r.Seq == seq && bytes.Equal(r.Data, cookie) {
			return probeResult(start, nil)
		}
	}
}

// open returns an ICMP socket for the target's family with the checker's options.
func (p *pingProbe) open(ctx context.Context) (*PingConn, error) {
	return OpenPing(ctx, PingConfig{
		V6: p.target.dst.Addr().Is6(), Mode: p.mode, ID: p.id,
		Src: p.target.src.Addr(), SetSockopts: p.target.setSockopts,
	})
}
