// Package check runs the health checks of keepalived's real_server blocks: probes
// (TCP, UDP, ICMP, HTTP/HTTPS, SMTP, DNS, MISC script, FILE) and the runner that applies
// keepalived's timing (delay_loop, retry, delay_before_retry, warmup, alpha) and reports
// health transitions. It knows nothing about IPVS or VRRP.
package check

import (
	"context"
	"errors"
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

// errNotRun marks an attempt that could not be made for a local reason (no socket, a
// bind that failed): keepalived reschedules such a check without a verdict ("TCP
// socket bind failed. Rescheduling."), and so does the Runner, so that a director
// out of file descriptors does not take its real servers out.
var errNotRun = errors.New("the check could not be made")

// Probe performs one check attempt. Check must return by ctx's deadline (the
// checker's connect_timeout) and must never block past it, whatever the server does.
type Probe interface {
	Check(ctx context.Context) Result
}
