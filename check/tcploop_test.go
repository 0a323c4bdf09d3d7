package check

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// loopVerdict is what a tcpConnect's done received.
type loopVerdict struct {
	err  error
	took time.Duration
}

// loopSubmit queues a connect to dst on l; the verdict arrives on the returned channel.
// before, when set, runs in the loop's goroutine ahead of the delivery.
func loopSubmit(t *testing.T, l *tcpLoop, dst netip.AddrPort, bindIf string, timeout time.Duration, before func()) <-chan loopVerdict {
	t.Helper()
	target, err := newProbeTarget(&parser.Checker{Type: "TCP_CHECK", Conn: &parser.ConnOpts{ConnectIP: dst.Addr(), ConnectPort: dst.Port(), BindIf: bindIf}}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan loopVerdict, 1)
	l.submit(&tcpConnect{target: &target, timeout: timeout, done: func(err error, took time.Duration) {
		if before != nil {
			before()
		}
		ch <- loopVerdict{err, took}
	}})
	return ch
}

// loopWait returns the verdict, failing the test after a minute without one.
func loopWait(t *testing.T, ch <-chan loopVerdict) loopVerdict {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatal("no verdict from the TCP loop within a minute")
		return loopVerdict{}
	}
}

// TestTCPLoopLateLoopDoesNotFail stalls the loop past a connection's deadline after its
// connect was made: the connection, established meanwhile, must pass, because the
// loop reads the ready sockets before it expires deadlines.
func TestTCPLoopLateLoopDoesNotFail(t *testing.T) {
	l, err := newTCPLoop()
	if err != nil {
		t.Fatal(err)
	}
	open := serveLoopback(t, func(c net.Conn) { c.Close() })
	unknown := netip.MustParseAddrPort("127.0.0.1:9")

	// The loop blocks in the first verdict while the other two requests queue up.
	gate1, in1 := make(chan struct{}), make(chan struct{})
	first := loopSubmit(t, l, unknown, "nosuchdev0", time.Second, func() { close(in1); <-gate1 })
	<-in1
	const timeout = 50 * time.Millisecond
	submitted := time.Now()
	conn := loopSubmit(t, l, open.addr(), "", timeout, nil)
	// Queued after conn: its verdict, in the same batch, stalls the loop once conn's
	// connect has been made.
	gate2, in2 := make(chan struct{}), make(chan struct{})
	stall := loopSubmit(t, l, unknown, "nosuchdev0", time.Second, func() { close(in2); <-gate2 })
	close(gate1)
	<-in2
	for time.Since(submitted) < 3*timeout { // the point of the test: the loop is late
		time.Sleep(timeout)
	}
	close(gate2)

	if v := loopWait(t, first); v.err == nil || !strings.Contains(v.err.Error(), "bind_if") {
		t.Errorf("unknown bind_if: %v, want a bind_if error", v.err)
	}
	loopWait(t, stall)
	v := loopWait(t, conn)
	if v.err != nil {
		t.Fatalf("connection established while the loop was stalled: %v, want success", v.err)
	}
	if v.took < timeout {
		t.Errorf("took %v, want the stall (> %v) in it", v.took, timeout)
	}
}

// TestTCPLoopMany runs a thousand connects at once through one loop: all pass, and
// those to a port whose accept queue is full time out at their deadline.
func TestTCPLoopMany(t *testing.T) {
	l, err := newTCPLoop()
	if err != nil {
		t.Fatal(err)
	}
	open := serveLoopback(t, func(c net.Conn) { c.Close() })
	full := fullBacklog(t)
	const n = 1000
	var oks []<-chan loopVerdict
	for range n {
		oks = append(oks, loopSubmit(t, l, open.addr(), "", 10*time.Second, nil))
	}
	const timeout = 200 * time.Millisecond
	var lates []<-chan loopVerdict
	for range 10 {
		lates = append(lates, loopSubmit(t, l, full, "", timeout, nil))
	}
	for i, ch := range oks {
		if v := loopWait(t, ch); v.err != nil {
			t.Fatalf("connect %d of %d: %v", i, n, v.err)
		}
	}
	for _, ch := range lates {
		v := loopWait(t, ch)
		if v.err != errTCPTimeout {
			t.Fatalf("full accept queue: %v, want a timeout", v.err)
		}
		if v.took < timeout {
			t.Errorf("timed out after %v, before its deadline %v", v.took, timeout)
		}
	}
}

// TestTCPLoopCancel cancels queued and connecting attempts: each gets exactly one
// verdict, the cancellation.
func TestTCPLoopCancel(t *testing.T) {
	l, err := newTCPLoop()
	if err != nil {
		t.Fatal(err)
	}
	full := fullBacklog(t)
	target, err := newProbeTarget(testChecker("TCP_CHECK", full), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 10)
	var cs []*tcpConnect
	for range 5 {
		c := &tcpConnect{target: &target, timeout: time.Minute, done: func(err error, _ time.Duration) { ch <- err }}
		l.submit(c)
		cs = append(cs, c)
	}
	for _, c := range cs {
		l.cancel(c)
		l.cancel(c) // twice: still one verdict
	}
	for range cs {
		select {
		case err := <-ch:
			if err != errTCPCancelled {
				t.Errorf("verdict %v, want the cancellation", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("a cancelled attempt had no verdict within a minute")
		}
	}
	select {
	case err := <-ch:
		t.Fatalf("a second verdict: %v", err)
	default:
	}
}

// TestRunnerTCPChecks runs real TCP_CHECKs through the runner: the attempts go to the
// loop (no deadline of the runner's), a listening server stays up, a refusing one goes
// down, and Stop ends an attempt still connecting at once.
func TestRunnerTCPChecks(t *testing.T) {
	open := serveLoopback(t, func(c net.Conn) { c.Close() })
	refused := closedPort(t, "tcp4")
	full := fullBacklog(t)
	timing := parser.CheckTiming{DelayLoop: parser.Duration(50 * time.Millisecond), ConnectTimeout: parser.Duration(time.Minute)}
	var checks []Check
	for i, dst := range []netip.AddrPort{open.addr(), refused, full} {
		checks = append(checks, Check{ID: dst.String(), RS: dst.String(), Probe: mustNew(t, testChecker("TCP_CHECK", dst)), Timing: timing})
		if i == 1 {
			checks[i].Timing.ConnectTimeout = parser.Duration(time.Second)
		}
	}
	r := NewRunner(Options{})
	if err := r.Update(checks); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		snap := r.Snapshot()
		byRS := map[string]RealServerStatus{}
		for _, s := range snap.RealServers {
			byRS[s.RS] = s
		}
		var openChecks uint64
		for _, c := range snap.Checks {
			if c.ID == open.addr().String() {
				openChecks = c.Attempts
			}
		}
		if openChecks >= 5 && !byRS[refused.String()].Up {
			if !byRS[open.addr().String()].Up || !byRS[full.String()].Up {
				t.Fatalf("real servers %+v: the listening one and the one still connecting must be up", byRS)
			}
			if snap.Stats.Abandoned != 0 || snap.Stats.Skipped != 0 {
				t.Fatalf("stats %+v: nothing may be abandoned or skipped", snap.Stats)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %+v", snap)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Stop waits up to Grace (1 s) for the attempts; the one connecting has a minute
	// left, so nothing in flight afterwards means Stop cancelled it.
	r.Stop()
	if st := r.Stats(); st.InFlight != 0 {
		t.Errorf("after Stop %d attempts are in flight: the connecting one must be cancelled", st.InFlight)
	}
}

// TestTCPLoopUrgentFirst queues requests while the loop is busy: the urgent one is
// taken first.
func TestTCPLoopUrgentFirst(t *testing.T) {
	l, err := newTCPLoop()
	if err != nil {
		t.Fatal(err)
	}
	// Requests with an unknown bind_if fail when the loop takes them, in its order.
	target, err := newProbeTarget(&parser.Checker{Type: "TCP_CHECK", Conn: &parser.ConnOpts{
		ConnectIP: netip.MustParseAddr("127.0.0.1"), ConnectPort: 9, BindIf: "nosuchdev0"}}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 4)
	gate, in := make(chan struct{}), make(chan struct{})
	submit := func(name string, urgent bool, before func()) {
		l.submit(&tcpConnect{target: &target, timeout: time.Second, urgent: urgent, done: func(error, time.Duration) {
			if before != nil {
				before()
			}
			order <- name
		}})
	}
	submit("blocker", false, func() { close(in); <-gate })
	<-in
	submit("a", false, nil)
	submit("b", false, nil)
	submit("retry", true, nil)
	close(gate)
	var got []string
	for range 4 {
		select {
		case n := <-order:
			got = append(got, n)
		case <-time.After(time.Minute):
			t.Fatalf("verdicts so far %v; the rest did not come within a minute", got)
		}
	}
	if want := "blocker retry a b"; strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
}

// TestTCPLoopReuse makes one attempt after another on reusable sockets: a success, a
// refusal, a timeout and a success again all use the same kept socket, the server
// sees each established connection reset, and no attempt inherits the error of the
// previous one.
func TestTCPLoopReuse(t *testing.T) {
	l, err := newTCPLoop()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan error, 10)
	open := serveLoopback(t, func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		seen <- err
		c.Close()
	})
	steps := []struct {
		dst     netip.AddrPort
		timeout time.Duration
		want    func(error) bool
	}{
		{open.addr(), 10 * time.Second, func(err error) bool { return err == nil }},
		{closedPort(t, "tcp4"), 10 * time.Second, func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }},
		{fullBacklog(t), 100 * time.Millisecond, func(err error) bool { return err == errTCPTimeout }},
		{open.addr(), 10 * time.Second, func(err error) bool { return err == nil }},
	}
	var netns uint64
	fd := -1
	for i, st := range steps {
		target, err := newProbeTarget(testChecker("TCP_CHECK", st.dst), nil, true)
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan loopVerdict, 1)
		c := &tcpConnect{target: &target, timeout: st.timeout, reuse: true, netns: netns,
			done: func(err error, took time.Duration) { ch <- loopVerdict{err, took} }}
		l.submit(c)
		v := loopWait(t, ch)
		if !st.want(v.err) {
			t.Fatalf("step %d (%s): verdict %v", i, st.dst, v.err)
		}
		if c.netns == 0 {
			t.Fatal("no SO_NETNS_COOKIE: the kernel is older than 5.14")
		}
		if fd >= 0 && c.fd != fd {
			t.Errorf("step %d used socket %d, want the kept socket %d", i, c.fd, fd)
		}
		fd, netns = c.fd, c.netns
	}
	for range 2 {
		if err := <-seen; !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("server read %v, want a reset", err)
		}
	}
	l.mu.Lock()
	idle := len(l.idle)
	l.mu.Unlock()
	if idle != 1 {
		t.Errorf("%d kept sockets, want 1", idle)
	}
	if got := l.takeIdle(unix.AF_INET6, netns); got >= 0 {
		t.Errorf("an IPv4 socket was given for IPv6")
	}
	if got := l.takeIdle(unix.AF_INET, netns+1); got >= 0 {
		t.Errorf("a socket of another namespace was given")
	}
}

// TestTCPLoopReuseBounded runs more attempts at once than a loop keeps sockets: the
// extra sockets are closed, tcpIdleMax are kept.
func TestTCPLoopReuseBounded(t *testing.T) {
	l, err := newTCPLoop()
	if err != nil {
		t.Fatal(err)
	}
	open := serveLoopback(t, func(c net.Conn) { c.Close() })
	target, err := newProbeTarget(testChecker("TCP_CHECK", open.addr()), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	// The loop is held in the first verdict until every attempt is submitted, so at
	// most one finds a kept socket: there are far more sockets than tcpIdleMax.
	const n = tcpIdleMax + 20
	release := make(chan struct{})
	ch := make(chan error, n)
	for range n {
		l.submit(&tcpConnect{target: &target, timeout: 10 * time.Second, reuse: true,
			done: func(err error, _ time.Duration) { <-release; ch <- err }})
	}
	close(release)
	for range n {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	l.mu.Lock()
	idle := len(l.idle)
	l.mu.Unlock()
	if idle != tcpIdleMax {
		t.Errorf("%d kept sockets, want %d", idle, tcpIdleMax)
	}
}

// TestTCPLoopResetWithoutCookie stands in a kernel without SO_NETNS_COOKIE: the
// reusable socket, which has no SO_LINGER, still resets its connection, and is closed
// instead of kept.
func TestTCPLoopResetWithoutCookie(t *testing.T) {
	saved := tcpNetnsCookie
	tcpNetnsCookie = func(int) uint64 { return 0 }
	t.Cleanup(func() { tcpNetnsCookie = saved })
	l, err := newTCPLoop()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan error, 1)
	open := serveLoopback(t, func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		seen <- err
		c.Close()
	})
	target, err := newProbeTarget(testChecker("TCP_CHECK", open.addr()), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan loopVerdict, 1)
	l.submit(&tcpConnect{target: &target, timeout: 10 * time.Second, reuse: true,
		done: func(err error, took time.Duration) { ch <- loopVerdict{err, took} }})
	if v := loopWait(t, ch); v.err != nil {
		t.Fatal(v.err)
	}
	if err := <-seen; !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("server read %v, want a reset", err)
	}
	l.mu.Lock()
	idle := len(l.idle)
	l.mu.Unlock()
	if idle != 0 {
		t.Errorf("%d sockets kept without a namespace cookie, want 0", idle)
	}
}

// TestTCPLoopReuseIPv6 makes two IPv6 checks, one after the other, and an IPv4 one:
// the second IPv6 check reuses the first one's socket, the IPv4 one does not.
func TestTCPLoopReuseIPv6(t *testing.T) {
	l, err := newTCPLoop()
	if err != nil {
		t.Fatal(err)
	}
	srv6 := startTCPServer(t, "tcp6", "[::1]:0", func(c net.Conn) { c.Close() })
	srv4 := serveLoopback(t, func(c net.Conn) { c.Close() })
	var netns uint64
	check := func(dst netip.AddrPort) int {
		t.Helper()
		target, err := newProbeTarget(testChecker("TCP_CHECK", dst), nil, true)
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan loopVerdict, 1)
		c := &tcpConnect{target: &target, timeout: 10 * time.Second, reuse: true, netns: netns,
			done: func(err error, took time.Duration) { ch <- loopVerdict{err, took} }}
		l.submit(c)
		if v := loopWait(t, ch); v.err != nil {
			t.Fatalf("%s: %v", dst, v.err)
		}
		netns = c.netns
		return c.fd
	}
	first := check(srv6.addr())
	if second := check(srv6.addr()); second != first {
		t.Errorf("the second IPv6 check used socket %d, want the kept %d", second, first)
	}
	if v4 := check(srv4.addr()); v4 == first {
		t.Errorf("the IPv4 check used the kept IPv6 socket %d", v4)
	}
}

// TestTCPLoopReuseMany runs rounds of reusable attempts, a thousand at once, to an open
// port and a closed one mixed: kept sockets go from one attempt to the next (of either
// kind) and no verdict is another's — a refusal never shows as a success nor the other
// way round.
func TestTCPLoopReuseMany(t *testing.T) {
	l, err := newTCPLoop()
	if err != nil {
		t.Fatal(err)
	}
	open := serveLoopback(t, func(c net.Conn) { c.Close() })
	closed := closedPort(t, "tcp4")
	targets := map[bool]probeTarget{}
	for _, ok := range []bool{true, false} {
		dst := closed
		if ok {
			dst = open.addr()
		}
		tg, err := newProbeTarget(testChecker("TCP_CHECK", dst), nil, true)
		if err != nil {
			t.Fatal(err)
		}
		targets[ok] = tg
	}
	var netns uint64
	fds := map[int]bool{}
	for round := range 3 {
		const n = 1000
		type result struct {
			want bool
			err  error
			c    *tcpConnect
		}
		ch := make(chan result, n)
		for i := range n {
			want := i%3 != 0
			tg := targets[want]
			c := &tcpConnect{target: &tg, timeout: 10 * time.Second, reuse: true, netns: netns}
			c.done = func(err error, _ time.Duration) { ch <- result{want, err, c} }
			l.submit(c)
			netns = c.netns
		}
		for range n {
			var r result
			select {
			case r = <-ch:
			case <-time.After(time.Minute):
				t.Fatalf("round %d: a verdict is missing after a minute", round)
			}
			switch {
			case r.want && r.err != nil:
				t.Fatalf("round %d: connect to the open port: %v", round, r.err)
			case !r.want && !errors.Is(r.err, syscall.ECONNREFUSED):
				t.Fatalf("round %d: connect to the closed port: %v, want refused", round, r.err)
			}
			fds[r.c.fd] = true
		}
	}
	l.mu.Lock()
	idle := len(l.idle)
	l.mu.Unlock()
	if idle == 0 || idle > tcpIdleMax {
		t.Errorf("%d kept sockets, want 1..%d", idle, tcpIdleMax)
	}
	t.Logf("3 rounds of 1,000 attempts used %d distinct descriptors; %d kept", len(fds), idle)
}
