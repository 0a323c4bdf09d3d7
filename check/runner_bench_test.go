//go:build linux

package check

import (
	"context"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// runSleepProbe succeeds after waiting d on a timer: an attempt that waits on the
// network without using the CPU.
type runSleepProbe struct{ d time.Duration }

func (p runSleepProbe) Check(ctx context.Context) Result {
	t := time.NewTimer(p.d)
	defer t.Stop()
	select {
	case <-t.C:
		return Result{OK: true}
	case <-ctx.Done():
		return Result{Err: ctx.Err()}
	}
}

// benchChecks makes n checks, one per real server, each with a probe from probe, every
// delayLoop, their first attempts spread over one delayLoop.
func benchChecks(n int, delayLoop time.Duration, probe func() Probe) []Check {
	checks := make([]Check, n)
	for i := range checks {
		checks[i] = Check{
			ID: fmt.Sprintf("vs|rs%d|0", i), RS: fmt.Sprintf("vs|rs%d", i), Probe: probe(),
			Timing: parser.CheckTiming{
				DelayLoop: parser.Duration(delayLoop), ConnectTimeout: parser.Seconds(1),
				Retry: 1, DelayBeforeRetry: parser.Seconds(1), Warmup: parser.Duration(delayLoop),
			},
		}
	}
	return checks
}

// runCPUTime is the CPU time (user + system) the process has used.
func runCPUTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRunner5000 runs 5,000 checks (one per real server) every second on the
// system clock, each attempt waiting 1 ms, and measures a steady 3 s after a 2 s
// warmup: checks done per second against the schedule's rate, the schedule slip
// (start minus planned start) and the CPU per check.
func BenchmarkRunner5000(b *testing.B) {
	const (
		n         = 5000
		delayLoop = time.Second
		latency   = time.Millisecond
		warm      = 2 * time.Second
		measure   = 3 * time.Second
	)
	for b.Loop() {
		r := NewRunner(Options{})
		if err := r.Update(benchChecks(n, delayLoop, func() Probe { return runSleepProbe{latency} })); err != nil {
			b.Fatal(err)
		}
		time.Sleep(warm)
		s0, cpu0 := r.Stats(), runCPUTime(b)
		time.Sleep(measure)
		s1, cpu1 := r.Stats(), runCPUTime(b)
		r.Stop()

		done := s1.Completed - s0.Completed
		slip := s1.Slip.Sub(s0.Slip)
		if s1.Failed != 0 {
			b.Errorf("%d attempts failed", s1.Failed)
		}
		b.ReportMetric(float64(done)/measure.Seconds(), "checks/s")
		b.ReportMetric(float64(s1.Due-s0.Due)/measure.Seconds(), "due/s")
		b.ReportMetric(n/(delayLoop+latency).Seconds(), "scheduled/s")
		b.ReportMetric(float64(slip.Quantile(0.5))/float64(time.Microsecond), "slip-p50-µs")
		b.ReportMetric(float64(slip.Quantile(0.99))/float64(time.Microsecond), "slip-p99-µs")
		b.ReportMetric(float64(cpu1-cpu0)/float64(done)/float64(time.Microsecond), "cpu-µs/check")
		b.ReportMetric(0, "ns/op")
	}
}

// runCPUSplit is the user and system CPU time the process has used.
func runCPUSplit(b *testing.B) (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// deferredListener listens on loopback with TCP_DEFER_ACCEPT and never accepts: a
// TCP_CHECK, which resets its connection without sending data, costs this process
// nothing on the server's side.
func deferredListener(b *testing.B) netip.AddrPort {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 30); err != nil {
		b.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		b.Fatal(err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		b.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		b.Fatal(err)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
}

// BenchmarkRunnerTCP1000 runs 1,000 real TCP_CHECKs every second through the runner
// and the TCP loop, with the engine's slack, against a loopback listener that defers
// accept, and measures a steady 3 s after a 2 s warmup: checks done per second and the
// user and system CPU per check (the director's side of the VM benchmark, without the
// VM).
func BenchmarkRunnerTCP1000(b *testing.B) {
	const (
		n         = 1000
		delayLoop = time.Second
		warm      = 2 * time.Second
		measure   = 3 * time.Second
	)
	dst := deferredListener(b)
	for b.Loop() {
		r := NewRunner(Options{Slack: 10 * time.Millisecond})
		if err := r.Update(benchChecks(n, delayLoop, func() Probe { return mustNew(b, testChecker("TCP_CHECK", dst)) })); err != nil {
			b.Fatal(err)
		}
		time.Sleep(warm)
		s0 := r.Stats()
		u0, y0 := runCPUSplit(b)
		time.Sleep(measure)
		s1 := r.Stats()
		u1, y1 := runCPUSplit(b)
		r.Stop()

		done := s1.Completed - s0.Completed
		if s1.Failed != 0 {
			b.Errorf("%d attempts failed", s1.Failed)
		}
		b.ReportMetric(float64(done)/measure.Seconds(), "checks/s")
		b.ReportMetric(float64(u1-u0)/float64(done)/float64(time.Microsecond), "user-µs/check")
		b.ReportMetric(float64(y1-y0)/float64(done)/float64(time.Microsecond), "sys-µs/check")
		b.ReportMetric(0, "ns/op")
	}
}
