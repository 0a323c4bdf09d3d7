package check

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// tcpLoopMaxEvents is how many ready sockets one epoll_wait returns at most.
const tcpLoopMaxEvents = 256

// tcpIdleMax bounds the disconnected sockets one loop keeps for reuse.
const tcpIdleMax = 256

// tcpLoopBatch is how many queued connects the loop makes before it looks at the
// sockets that are ready again: a long queue does not delay the verdicts of the
// connections already made.
const tcpLoopBatch = 64

// errTCPTimeout fails a connection that was not established by its deadline.
var errTCPTimeout = errors.New("connect: timeout")

// errTCPCancelled fails a connection whose attempt was cancelled.
var errTCPCancelled = errors.New("connect: cancelled")

// tcpConnect is one connection attempt of the loop: from the request to its verdict.
type tcpConnect struct {
	target  *probeTarget
	timeout time.Duration
	// urgent requests are connected before the others that wait: when the loop runs
	// behind, a retry of a failing server is not stuck behind a round of healthy ones.
	urgent bool
	// done receives the verdict, once, from the loop's goroutine: nil when the
	// connection was established; took is the time from the connect(2) call.
	done func(err error, took time.Duration)

	fd int // the socket, made or taken by submit; -1 when it could not be
	// netns identifies the network namespace of a reusable socket (SO_NETNS_COOKIE):
	// given by the probe, the namespace of its last socket, and set by submit when it
	// makes one. 0 when unknown (a kernel without the cookie): the socket is closed
	// after the attempt instead of kept.
	netns uint64
	// reuse asks for a reusable socket: the target sets no socket option and closes
	// with a reset.
	reuse bool
	// registered is set once the socket is in the loop's epoll set (a reused socket
	// stays there between attempts).
	registered bool
	// sa is where to connect: given by the probe when its address has no zone, made
	// by submit otherwise (the zone's interface looked up in the caller's namespace).
	sa        *sysAddr
	err       error                   // why the socket could not be made
	begin     time.Time               // the connect(2) call
	due       schedEntry[*tcpConnect] // begin + timeout, in the loop's deadline heap
	cancelled bool                    // guarded by the loop's mu until the loop takes the attempt
}

// tcpIdle is a socket that a loop keeps for reuse.
type tcpIdle struct {
	fd     int
	family int
	netns  uint64
}

// tcpLoop makes TCP_CHECK connections without a goroutine or a thread per attempt:
// one goroutine issues non-blocking connects, waits for them in its own epoll set and
// ends each connection as soon as it is established (with a reset, or a FIN as
// keepalived does with tcp_check_close fin) or has failed. A connection ended by a
// reset is ended by disconnecting its socket (connect to AF_UNSPEC), which the loop
// keeps in its epoll set and reuses for a later attempt: a check then costs two
// system calls where a new socket costs five (socket, setsockopt, epoll_ctl, close),
// and the kernel does not build and tear down a socket per check. An attempt's deadline
// counts from its connect(2) call, and the loop looks at the ready sockets before it
// expires any deadline, so a loop that runs late (CPU starvation) delays checks but
// never fails a connection that was established in time.
type tcpLoop struct {
	epfd int
	evfd int // eventfd that wakes the loop for new requests

	mu       sync.Mutex
	queue    []*tcpConnect // requests not yet connected
	urgent   []*tcpConnect // requests to connect before those of queue
	cancels  []*tcpConnect // cancellations of requests already taken by the loop
	sleeping bool          // the loop waits in epoll_wait with a timeout other than 0
	// idle are disconnected sockets in the epoll set, ready for another connect.
	idle []tcpIdle
	// queued counts the requests in queue and urgent, for sharedTCPLoop to read
	// without the lock.
	queued atomic.Int32

	// Owned by the loop's goroutine.
	open      []*tcpConnect          // sockets in the epoll set, indexed by descriptor
	batch     []*tcpConnect          // connectQueued's buffer
	deadlines schedHeap[*tcpConnect] // the connections in the epoll set, by deadline
}

var (
	tcpLoopOnce  sync.Once
	tcpLoopErr   error
	tcpLoopsInst []*tcpLoop
	tcpLoopNext  atomic.Uint32
)

// sharedTCPLoop returns one of the process's loops, which are started on first use,
// one per P (GOMAXPROCS at that time): the first whose queue holds fewer than a batch,
// else the next in turn. A light load stays on one loop, whose thread sleeps and wakes
// once for many checks; a load that one thread cannot keep up with spreads over the
// CPUs.
func sharedTCPLoop() (*tcpLoop, error) {
	tcpLoopOnce.Do(func() {
		for range runtime.GOMAXPROCS(0) {
			l, err := newTCPLoop()
			if err != nil {
				tcpLoopErr = err
				return
			}
			tcpLoopsInst = append(tcpLoopsInst, l)
		}
	})
	if tcpLoopErr != nil && len(tcpLoopsInst) == 0 {
		return nil, tcpLoopErr
	}
	for _, l := range tcpLoopsInst {
		if l.queued.Load() < tcpLoopBatch {
			return l, nil
		}
	}
	return tcpLoopsInst[int(tcpLoopNext.Add(1))%len(tcpLoopsInst)], nil
}

// newTCPLoop makes the epoll set and its wake-up eventfd and starts the goroutine.
func newTCPLoop() (*tcpLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("TCP_CHECK loop: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("TCP_CHECK loop: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, fmt.Errorf("TCP_CHECK loop: adding the eventfd: %w", err)
	}
	l := &tcpLoop{epfd: epfd, evfd: evfd, batch: make([]*tcpConnect, 0, tcpLoopBatch)}
	go l.run()
	return l, nil
}

// submit gives c a socket, a disconnected one of the same network namespace if the
// loop keeps one, else a new one made in the calling thread (so that it belongs to the
// caller's network namespace), and queues its connect; the verdict comes through
// c.done, also when no socket could be had. It never blocks on the network.
func (l *tcpLoop) submit(c *tcpConnect) {
	c.due.index, c.due.owner = -1, c
	c.fd = -1
	if c.sa == nil {
		c.sa, c.err = c.target.connectAddr()
	}
	if c.err == nil && c.reuse && c.netns != 0 {
		c.fd = l.takeIdle(c.sa.family(), c.netns)
		c.registered = c.fd >= 0
	}
	if c.err == nil && c.fd < 0 {
		c.fd, c.err = c.target.socket(c.sa, c.reuse)
		c.netns = 0
		if c.err == nil && c.reuse {
			c.netns = tcpNetnsCookie(c.fd) // 0 (not kept) when the kernel has none
		}
	}
	if c.err != nil {
		c.err = fmt.Errorf("%w: %w", errNotRun, c.err)
	}
	l.mu.Lock()
	if c.urgent {
		l.urgent = append(l.urgent, c)
	} else {
		l.queue = append(l.queue, c)
	}
	l.queued.Add(1)
	l.wakeLocked()
	l.mu.Unlock()
}

// takeIdle returns a kept socket of family and namespace netns, taken out of the
// idle list, or -1.
func (l *tcpLoop) takeIdle(family int, netns uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.idle) - 1; i >= 0; i-- {
		if s := l.idle[i]; s.family == family && s.netns == netns {
			l.idle[i] = l.idle[len(l.idle)-1]
			l.idle = l.idle[:len(l.idle)-1]
			return s.fd
		}
	}
	return -1
}

// tcpNetnsCookie is sysNetnsCookie; tests stand in a kernel without the cookie.
var tcpNetnsCookie = sysNetnsCookie

// release ends the connection of c's socket. A reusable socket has no SO_LINGER: it is
// disconnected (a reset when it was established), then kept for another attempt if it
// is in the epoll set, its namespace is known and the loop keeps fewer than
// tcpIdleMax, else closed. Any other socket is closed (a reset by SO_LINGER 0, or a
// FIN with tcp_check_close fin).
func (l *tcpLoop) release(c *tcpConnect) {
	if !c.reuse {
		sysClose(c.fd)
		return
	}
	err := sysDisconnect(c.fd)
	if err == nil {
		// The disconnect leaves ECONNRESET pending, which the next connect would
		// report as its own failure: read it away.
		_, err = sysSoError(c.fd)
	}
	if err == nil && c.registered && c.netns != 0 {
		l.mu.Lock()
		if len(l.idle) < tcpIdleMax {
			l.idle = append(l.idle, tcpIdle{fd: c.fd, family: c.sa.family(), netns: c.netns})
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
	}
	sysClose(c.fd)
}

// cancel ends c with errTCPCancelled unless its verdict is in already.
func (l *tcpLoop) cancel(c *tcpConnect) {
	l.mu.Lock()
	if !c.cancelled {
		c.cancelled = true
		l.cancels = append(l.cancels, c)
		l.wakeLocked()
	}
	l.mu.Unlock()
}

// wakeLocked interrupts the loop's wait; l.mu is held.
func (l *tcpLoop) wakeLocked() {
	if !l.sleeping {
		return
	}
	l.sleeping = false
	one := [8]byte{1}
	_, _ = unix.Write(l.evfd, one[:]) // a full counter is still a wake-up
}

// run is the loop: wait for ready sockets or the next deadline, finish the ready
// ones, expire the late ones, connect the queued ones.
func (l *tcpLoop) run() {
	events := make([]unix.EpollEvent, tcpLoopMaxEvents)
	for {
		// Sockets not ready at the wait's return were not ready at checked either: a
		// deadline not after it has passed for them.
		checked := time.Now()
		timeout := l.waitTimeout(checked)
		if timeout != 0 {
			// Pass through the scheduler before blocking. The loop goroutine never
			// yields otherwise, and Go's sysmon treats a goroutine that has held its
			// P for 10 ms as running too long: it takes the P from the blocked
			// thread and polls every 20 µs again for a while. In the VM benchmark
			// at 1,000 checks a second this cut the whole VM's CPU per check by
			// about a tenth, down to keepalived's (docs/benchmarks.md).
			runtime.Gosched()
		}
		n, err := unix.EpollWait(l.epfd, events, timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			// Only a broken epoll descriptor gets here; nothing can be checked.
			panic(fmt.Sprintf("TCP_CHECK loop: epoll_wait: %v", err))
		}
		l.mu.Lock()
		l.sleeping = false
		l.mu.Unlock()
		woke := time.Now() // the end of the connections this wait reports, for their latency
		for _, ev := range events[:max(n, 0)] {
			l.ready(ev, woke)
		}
		if n < len(events) {
			l.expire(checked, woke)
		}
		l.takeCancels()
		l.connectQueued()
	}
}

// waitTimeout is epoll_wait's timeout in ms: 0 when requests are queued, until the
// next deadline (rounded up) otherwise, -1 without one. A timeout other than 0 marks
// the loop as sleeping, so that submit wakes it.
func (l *tcpLoop) waitTimeout(now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) > 0 || len(l.urgent) > 0 || len(l.cancels) > 0 {
		return 0
	}
	timeout := -1
	if e := l.deadlines.peek(); e != nil {
		d := e.at.Sub(now)
		timeout = int((d + time.Millisecond - 1) / time.Millisecond)
		if timeout <= 0 {
			return 0
		}
	}
	l.sleeping = true
	return timeout
}

// ready handles one event: the wake-up eventfd, or a socket whose connect ended.
func (l *tcpLoop) ready(ev unix.EpollEvent, now time.Time) {
	if int(ev.Fd) == l.evfd {
		var buf [8]byte
		_, _ = unix.Read(l.evfd, buf[:])
		return
	}
	var c *tcpConnect
	if int(ev.Fd) < len(l.open) {
		c = l.open[ev.Fd]
	}
	if c == nil {
		return
	}
	if ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) == 0 {
		l.finish(c, nil, now) // writable without an error: established
		return
	}
	soerr, err := sysSoError(c.fd)
	switch {
	case err != nil:
		err = fmt.Errorf("connect: getsockopt SO_ERROR: %w", err)
	case soerr != 0:
		err = fmt.Errorf("connect: %w", unix.Errno(soerr))
	default:
		err = errors.New("connect: the connection was closed before it was established")
	}
	l.finish(c, err, now)
}

// expire fails the connections whose deadline is not after checked; now is the time
// of their verdict.
func (l *tcpLoop) expire(checked, now time.Time) {
	for e := l.deadlines.peek(); e != nil && !e.at.After(checked); e = l.deadlines.peek() {
		l.finish(e.owner, errTCPTimeout, now)
	}
}

// takeCancels ends the cancelled attempts the loop holds; queued ones are dropped
// by connectQueued.
func (l *tcpLoop) takeCancels() {
	l.mu.Lock()
	cancels := l.cancels
	l.cancels = nil
	l.mu.Unlock()
	for _, c := range cancels {
		if c.due.queued() {
			l.finish(c, errTCPCancelled, time.Now())
		}
	}
}

// connectQueued starts up to tcpLoopBatch queued requests, the urgent ones first.
func (l *tcpLoop) connectQueued() {
	l.mu.Lock()
	batch := l.batch[:0]
	batch, l.urgent = tcpTake(batch, l.urgent)
	batch, l.queue = tcpTake(batch, l.queue)
	l.queued.Add(-int32(len(batch)))
	l.mu.Unlock()
	defer clear(batch) // no references kept to finished attempts
	for _, c := range batch {
		l.mu.Lock()
		cancelled := c.cancelled
		l.mu.Unlock()
		if cancelled {
			if c.err == nil {
				l.release(c)
			}
			c.done(errTCPCancelled, 0)
			continue
		}
		l.start(c)
	}
}

// tcpTake moves requests from the head of q to batch, up to its capacity.
func tcpTake(batch, q []*tcpConnect) ([]*tcpConnect, []*tcpConnect) {
	n := min(len(q), cap(batch)-len(batch))
	batch = append(batch, q[:n]...)
	if n == len(q) {
		return batch, nil
	}
	return batch, q[n:]
}

// start connects c's socket; a connection that cannot be made at once waits in the
// epoll set.
func (l *tcpLoop) start(c *tcpConnect) {
	c.begin = time.Now()
	if c.err != nil {
		c.done(c.err, time.Since(c.begin))
		return
	}
	if err := sysConnect(c.fd, c.sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		l.release(c)
		c.done(fmt.Errorf("connect: %w", err), time.Since(c.begin))
		return
	}
	if !c.registered {
		// Edge-triggered: a kept socket stays in the set without being reported
		// over and over while it is idle (disconnected sockets poll as writable).
		if err := sysEpollAdd(l.epfd, c.fd, unix.EPOLLOUT|unix.EPOLLET); err != nil {
			l.release(c)
			c.done(fmt.Errorf("%w: epoll_ctl: %w", errNotRun, err), time.Since(c.begin))
			return
		}
		c.registered = true
	}
	if c.fd >= len(l.open) {
		l.open = append(l.open, make([]*tcpConnect, c.fd+1-len(l.open))...)
	}
	l.open[c.fd] = c
	l.deadlines.set(&c.due, c.begin.Add(c.timeout))
}

// finish ends c's connection (see release) and gives its verdict, reached at now.
func (l *tcpLoop) finish(c *tcpConnect, err error, now time.Time) {
	took := now.Sub(c.begin)
	l.open[c.fd] = nil
	l.deadlines.remove(&c.due)
	l.release(c)
	l.mu.Lock()
	c.cancelled = true // a later cancel is a no-op
	l.mu.Unlock()
	c.done(err, took)
}

// socket opens a non-blocking TCP socket of sa's family with the checker's options,
// bound to bindto/bind_port. Without reuse it is closed with a reset unless the
// checker says tcp_check_close fin; a reusable socket is reset by release instead.
// Interface names are looked up here, in the caller's network namespace.
func (t *probeTarget) socket(sa *sysAddr, reuse bool) (int, error) {
	fd, err := sysSocket(sa.family())
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := t.prepare(fd); err != nil {
		sysClose(fd)
		return -1, err
	}
	if !t.closeFIN && !reuse {
		// SO_LINGER 0: close resets the connection. The director keeps no TIME_WAIT
		// socket per check, and neither side exchanges FINs: in the VM benchmark a
		// quarter less CPU per check for the director (docs/benchmarks.md).
		if err := sysLingerZero(fd); err != nil {
			sysClose(fd)
			return -1, fmt.Errorf("SO_LINGER: %w", os.NewSyscallError("setsockopt", err))
		}
	}
	return fd, nil
}

// reusable reports whether a connection to t can be made on a kept socket: no
// socket option or bind, closed with a reset.
func (t *probeTarget) reusable() bool {
	return !t.closeFIN && t.bindIf == "" && t.mark == 0 && !t.hasSource()
}

// connectAddr is the address to connect to, with the interface of a zone looked up
// now (see probeZoneIndex).
func (t *probeTarget) connectAddr() (*sysAddr, error) {
	dst, err := probeZoneIndex(t.dst.Addr())
	if err != nil {
		return nil, err
	}
	return newSysAddr(dst, t.dst.Port())
}

// prepare sets the checker's socket options on fd and binds it to bindto/bind_port.
func (t *probeTarget) prepare(fd int) error {
	if err := t.setSockopts(fd); err != nil {
		return err
	}
	if !t.hasSource() {
		return nil
	}
	src, err := probeZoneIndex(t.src.Addr())
	if err != nil {
		return err
	}
	if !src.IsValid() { // bind_port without bindto: any address of the family
		src = netip.IPv6Unspecified()
		if t.dst.Addr().Is4() {
			src = netip.IPv4Unspecified()
		}
	}
	sa, err := newSysAddr(src, t.src.Port())
	if err != nil {
		return err
	}
	if err := sysBind(fd, sa); err != nil {
		return fmt.Errorf("bind %s: %w", t.src, err)
	}
	return nil
}
