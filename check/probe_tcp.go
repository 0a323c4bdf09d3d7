package check

import (
	"context"
	"fmt"
	"time"

	"gokeepalived/parser"
)

// tcpProbe is a TCP_CHECK: the check passes when a TCP connection to the target is
// established within the deadline. The connection is closed at once, normally (FIN),
// as keepalived does.
type tcpProbe struct {
	target probeTarget
}

func newTCPProbe(c *parser.Checker, rs *parser.RealServer) (*tcpProbe, error) {
	t, err := newProbeTarget(c, rs, true)
	if err != nil {
		return nil, err
	}
	return &tcpProbe{target: t}, nil
}

// Check connects to the target.
func (p *tcpProbe) Check(ctx context.Context) Result {
	start := time.Now()
	ctx, cancel := probeContext(ctx, p.target.timeout)
	defer cancel()
	conn, err := p.target.dial(ctx, "tcp")
	if err != nil {
		return probeResult(start, fmt.Errorf("TCP_CHECK %s: %w", p.target.dst, err))
	}
	_ = conn.Close() // the connection was made: that is all TCP_CHECK asks
	return probeResult(start, nil)
}
