// Package check runs the health checks of keepalived's real_server blocks: probes
// (TCP, UDP, ICMP, HTTP/HTTPS, SMTP, DNS, MISC script, FILE) and the runner that applies
// keepalived's timing (delay_loop, retry, delay_before_retry, warmup, alpha) and reports
// health transitions. It knows nothing about IPVS or VRRP.
package check

import (
	"context"
	"time"
)

// Result is the outcome of one probe attempt.
type Result struct {
	OK      bool
	Latency time.Duration // time the attempt took
	Err     error         // why it failed (nil when OK)
	// Weight is set by a MISC_CHECK with misc_dynamic: the exit status minus 2
	// becomes the real server's weight (keepalived). Nil otherwise.
	Weight *int
}

// Probe performs one check attempt. Check must return by ctx's deadline (the
// checker's connect_timeout) and must never block past it, whatever the server does.
type Probe interface {
	Check(ctx context.Context) Result
}
