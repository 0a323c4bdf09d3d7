package check

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"gokeepalived/parser"
)

// tcpProbe is a TCP_CHECK: the check passes when a TCP connection to the target is
// established within the deadline. The connection is closed at once: reset by
// default, normally (FIN, as keepalived does) with global_defs tcp_check_close fin.
// Connections are made by the process's tcpLoop, without a goroutine per attempt.
type tcpProbe struct {
	target probeTarget
	sa     *sysAddr // the target's address for the loop; nil when it has a zone
	// netns is the network namespace of the probe's last socket, for the loop to
	// give it a kept socket of the same (see tcpConnect.netns).
	netns atomic.Uint64
}

func newTCPProbe(c *parser.Checker, rs *parser.RealServer) (*tcpProbe, error) {
	t, err := newProbeTarget(c, rs, true)
	if err != nil {
		return nil, err
	}
	p := &tcpProbe{target: t}
	if t.dst.Addr().Zone() == "" { // the address never changes: make it once
		if p.sa, err = newSysAddr(t.dst.Addr(), t.dst.Port()); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Check connects to the target within ctx.
func (p *tcpProbe) Check(ctx context.Context) Result {
	timeout := p.target.timeout
	if timeout <= 0 {
		timeout = probeDefaultTimeout
	}
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return Result{Err: fmt.Errorf("TCP_CHECK %s: %w", p.target.dst, context.DeadlineExceeded)}
	}
	ch := make(chan Result, 1)
	cancel := p.startAsync(timeout, false, func(res Result) { ch <- res })
	select {
	case res := <-ch:
		return res
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			cancel() // at the deadline the loop's own timeout ends it
		}
		return <-ch
	}
}

// startAsync starts an attempt whose result done receives, from another goroutine,
// within timeout of its connect; an urgent one goes ahead of those waiting to connect.
// cancel ends it early.
func (p *tcpProbe) startAsync(timeout time.Duration, urgent bool, done func(Result)) (cancel func()) {
	finish := func(err error, took time.Duration) {
		if err != nil {
			err = fmt.Errorf("TCP_CHECK %s: %w", p.target.dst, err)
		}
		done(Result{OK: err == nil, Latency: took, Err: err})
	}
	l, err := sharedTCPLoop()
	if err != nil {
		go finish(err, 0)
		return func() {}
	}
	reuse := p.target.reusable()
	c := &tcpConnect{target: &p.target, sa: p.sa, timeout: timeout, urgent: urgent, done: finish, reuse: reuse}
	if reuse {
		c.netns = p.netns.Load()
	}
	l.submit(c)
	if reuse {
		p.netns.Store(c.netns)
	}
	return func() { l.cancel(c) }
}
