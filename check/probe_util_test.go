package check

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// testSlack is how much later than its deadline a Check may return in a test: generous,
// so that a loaded machine (or -race) does not make the tests flaky.
const testSlack = 500 * time.Millisecond

// runProbe runs one Check with the given deadline and fails the test if it returns later
// than deadline + testSlack or with an inconsistent Result.
func runProbe(t testing.TB, p Probe, deadline time.Duration) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	r := p.Check(ctx)
	if el := time.Since(start); el > deadline+testSlack {
		t.Errorf("Check returned after %v; deadline %v", el, deadline)
	}
	if r.OK != (r.Err == nil) {
		t.Errorf("Result OK=%v with Err=%v", r.OK, r.Err)
	}
	if r.Latency <= 0 {
		t.Errorf("Result latency %v", r.Latency)
	}
	return r
}

// testChecker is a checker of type typ connecting to dst.
func testChecker(typ string, dst netip.AddrPort) *parser.Checker {
	return &parser.Checker{
		Type:   typ,
		Conn:   &parser.ConnOpts{ConnectIP: dst.Addr(), ConnectPort: dst.Port()},
		Timing: &parser.CheckTiming{ConnectTimeout: parser.Duration(time.Second), DelayLoop: parser.Duration(time.Second)},
	}
}

// mustNew is New that fails the test on error.
func mustNew(t testing.TB, c *parser.Checker) Probe {
	t.Helper()
	p, err := New(c, nil, nil)
	if err != nil {
		t.Fatalf("New(%s): %v", c.Type, err)
	}
	return p
}

// addrPort is the address of a listener or packet conn as a netip.AddrPort.
func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	panic("unexpected address type")
}

// tcpServer accepts connections on 127.0.0.1 and hands each to handle in a goroutine.
// Everything is closed and waited for when the test ends.
type tcpServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startTCPServer(t testing.TB, network, addr string, handle func(net.Conn)) *tcpServer {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, handle)
}

// serveOn serves ln as startTCPServer does.
func serveOn(t testing.TB, ln net.Listener, handle func(net.Conn)) *tcpServer {
	s := &tcpServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *tcpServer) addr() netip.AddrPort { return addrPort(s.ln.Addr()) }

// serveLoopback is startTCPServer on 127.0.0.1.
func serveLoopback(t testing.TB, handle func(net.Conn)) *tcpServer {
	t.Helper()
	return startTCPServer(t, "tcp4", "127.0.0.1:0", handle)
}

// closedPort returns a loopback port nobody listens on (for network "tcp4" or "udp4").
// It is drawn below the kernel's ephemeral range (32768 and up by default), where the
// servers of other tests, all bound to port 0, never land, and checked free by binding
// it once.
func closedPort(t testing.TB, network string) netip.AddrPort {
	t.Helper()
	for range 100 {
		a := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+rand.IntN(12000)))
		var err error
		if network == "udp4" {
			var c net.PacketConn
			if c, err = net.ListenPacket(network, a.String()); err == nil {
				c.Close()
			}
		} else {
			var ln net.Listener
			if ln, err = net.Listen(network, a.String()); err == nil {
				ln.Close()
			}
		}
		if err == nil {
			return a
		}
	}
	t.Fatalf("no free %s port found below the ephemeral range", network)
	return netip.AddrPort{}
}

// fullBacklog returns a loopback TCP port whose accept queue is full: the kernel drops
// further SYNs, so a connect hangs until its deadline.
func fullBacklog(t testing.TB) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	// With a backlog of 0 one connection fills the queue; make sure it is in.
	for i := 0; i < 4; i++ {
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		c, err := d.Dial("tcp4", dst.String())
		if err != nil {
			return dst // this one was dropped: the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("accept queue never filled")
	return dst
}

// sinkConn reads and drops everything until the peer or the test closes the connection.
func sinkConn(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}
