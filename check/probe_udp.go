package check

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"time"

	"gokeepalived/parser"
)

// udpRandomPayload is the size of the payload sent when UDP_CHECK sets none: keepalived
// sends a buffer of this size then.
const udpRandomPayload = 32

// udpProbe is a UDP_CHECK. A datagram (payload, else udpRandomPayload random bytes) is
// sent on a connected socket, so that an ICMP error from the target comes back as an
// error on the socket (ECONNREFUSED for port unreachable, EHOSTUNREACH...).
//
// Without require_reply the check passes unless such an error arrives before the
// deadline, so it always takes the whole connect_timeout to pass, as in keepalived.
// With require_reply the first datagram received decides: its length must be within
// min_reply_length..max_reply_length (keepalived's documented rule; keepalived itself
// checks the length only when require_reply has a hex string), and it must match the
// require_reply bytes, under their x wildcards, over the shorter of the two.
type udpProbe struct {
	target probeTarget
	cfg    parser.UDPCheck
}

func newUDPProbe(c *parser.Checker, rs *parser.RealServer) (*udpProbe, error) {
	t, err := newProbeTarget(c, rs, true)
	if err != nil {
		return nil, err
	}
	p := &udpProbe{target: t}
	if c.UDP != nil {
		p.cfg = *c.UDP
	} else {
		p.cfg.MaxReplyLength = 255 // keepalived's default
	}
	if m := p.cfg.ReplyMask; m != nil && len(m) != len(p.cfg.Reply) {
		return nil, fmt.Errorf("UDP_CHECK: require_reply mask has %d bytes for %d bytes of reply", len(m), len(p.cfg.Reply))
	}
	if p.cfg.MinReplyLength > p.cfg.MaxReplyLength {
		return nil, fmt.Errorf("UDP_CHECK: min_reply_length %d > max_reply_length %d", p.cfg.MinReplyLength, p.cfg.MaxReplyLength)
	}
	return p, nil
}

// Check sends the datagram and waits for an ICMP error or the reply.
func (p *udpProbe) Check(ctx context.Context) Result {
	start := time.Now()
	ctx, cancel := probeContext(ctx, p.target.timeout)
	defer cancel()
	fail := func(what string, err error) Result {
		return probeResult(start, fmt.Errorf("UDP_CHECK %s: %s: %w", p.target.dst, what, err))
	}
	conn, err := p.target.dial(ctx, "udp")
	if err != nil {
		return fail("connect", err)
	}
	defer conn.Close()
	stop := probeBind(ctx, conn)
	defer stop()

	payload := []byte(p.cfg.Payload)
	if payload == nil {
		payload = make([]byte, udpRandomPayload)
		_, _ = rand.Read(payload) // crypto/rand.Read never fails on Linux
	}
	if _, err := conn.Write(payload); err != nil {
		return fail("send", err)
	}
	// One byte more than the longest acceptable reply, so that a longer one shows.
	buf := make([]byte, p.cfg.MaxReplyLength+1)
	n, err := conn.Read(buf)
	switch {
	case err == nil:
	case !p.cfg.RequireReply && errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(ctx.Err(), context.Canceled):
		return probeResult(start, nil) // no ICMP error within the timeout
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fail("no reply", err)
	default:
		return fail("receive", err)
	}
	if !p.cfg.RequireReply {
		return probeResult(start, nil)
	}
	if err := p.match(buf[:n]); err != nil {
		return fail("reply", err)
	}
	return probeResult(start, nil)
}

// match checks a reply against require_reply and the length limits.
func (p *udpProbe) match(got []byte) error {
	if len(got) < p.cfg.MinReplyLength || len(got) > p.cfg.MaxReplyLength {
		return fmt.Errorf("%d bytes, want %d to %d", len(got), p.cfg.MinReplyLength, p.cfg.MaxReplyLength)
	}
	want, mask := p.cfg.Reply, p.cfg.ReplyMask
	for i := 0; i < len(got) && i < len(want); i++ {
		m := byte(0xff)
		if mask != nil {
			m = mask[i]
		}
		if (got[i]^want[i])&m != 0 {
			return fmt.Errorf("byte %d is %#02x, want %#02x (mask %#02x)", i, got[i], want[i], m)
		}
	}
	return nil
}
