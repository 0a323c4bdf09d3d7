//go:build vmguest

package demoguest

// The lab's building blocks, adapted from tests/vm/e2eguest: network namespaces, veth
// pairs into bridges, Go real servers, an HTTP client loop and daemons started inside a
// namespace.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ns is an unnamed network namespace, kept alive by its handle.
type ns struct {
	name string
	h    netns.NsHandle
}

// newNS creates a network namespace. The thread that creates it is discarded.
func newNS(name string) (*ns, error) {
	type res struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// Never unlocked: the thread has left the root namespace and ends with the goroutine.
		runtime.LockOSThread()
		h, err := netns.New()
		ch <- res{h, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("new namespace %s: %w", name, r.err)
	}
	return &ns{name: name, h: r.h}, nil
}

// do runs fn on a thread inside the namespace: sockets it opens and processes it starts
// belong to the namespace. The thread is discarded afterwards.
func (n *ns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see newNS
		if err := netns.Set(n.h); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// dial opens a connection from inside the namespace.
func (n *ns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// listen opens a TCP listener inside the namespace.
func (n *ns) listen(addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// sysctl writes a value under /proc/sys of the namespace.
func (n *ns) sysctl(key, value string) error {
	return n.do(func() error {
		return os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(value+"\n"), 0o644)
	})
}

// run runs a command inside the namespace and returns its combined output.
func (n *ns) run(timeout time.Duration, args ...string) (string, error) {
	var out []byte
	err := n.do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var err error
		out, err = exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s in %s: %v: %s", strings.Join(args, " "), n.name, err, out)
		}
		return nil
	})
	return string(out), err
}

// addrs returns the IPv4 addresses (without prefix length) of interface dev.
func (n *ns) addrs(dev string) ([]string, error) {
	h, err := netlink.NewHandleAt(n.h, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	l, err := h.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", dev, n.name, err)
	}
	as, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range as {
		out = append(out, a.IP.String())
	}
	return out, nil
}

func (n *ns) has(dev, ip string) bool {
	as, err := n.addrs(dev)
	return err == nil && slices.Contains(as, ip)
}

// plug connects namespace n to bridge br: a veth pair with rootName in the root
// namespace (a port of br) and peer in n, with the addresses cidrs, up, lo up too, and a
// default route via gw when not empty.
func plug(br netlink.Link, rootName string, n *ns, peer string, cidrs []string, gw string) error {
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: rootName}, PeerName: peer, PeerNamespace: netlink.NsFd(int(n.h))}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s to %s: %w", rootName, n.name, err)
	}
	link, err := netlink.LinkByName(rootName)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMaster(link, br); err != nil {
		return fmt.Errorf("%s into %s: %w", rootName, br.Attrs().Name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(n.h, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", n.name, err)
	}
	defer h.Close()
	for _, name := range []string{"lo", peer} {
		l, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", name, n.name, err)
		}
		if name == peer {
			for _, cidr := range cidrs {
				a, err := netlink.ParseAddr(cidr)
				if err != nil {
					return err
				}
				if err := h.AddrAdd(l, a); err != nil {
					return fmt.Errorf("address %s in %s: %w", cidr, n.name, err)
				}
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s up in %s: %w", name, n.name, err)
		}
		if name == peer && gw != "" {
			if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gw)}); err != nil {
				return fmt.Errorf("default route in %s: %w", n.name, err)
			}
		}
	}
	return nil
}

// server is a real server: HTTP on :80 and HTTPS on :443 in its own namespace, each
// answering its name.
type server struct {
	name string
	addr string
	ns   *ns
	tls  *tls.Config

	mu   sync.Mutex
	srvs map[int]*http.Server
}

func newServer(name, addr string, n *ns, cfg *tls.Config) *server {
	return &server{name: name, addr: addr, ns: n, tls: cfg, srvs: map[int]*http.Server{}}
}

func (s *server) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, s.name+"\n")
	})
}

// start opens the listener of port (80: HTTP, 443: HTTPS) and serves it.
func (s *server) start(port int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srvs[port] != nil {
		return fmt.Errorf("%s:%d already started", s.name, port)
	}
	ln, err := s.ns.listen(fmt.Sprintf("%s:%d", s.addr, port))
	if err != nil {
		return fmt.Errorf("%s: listen :%d: %w", s.name, port, err)
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	srv.SetKeepAlivesEnabled(false)
	if port == 443 {
		srv.TLSConfig = s.tls
		go srv.ServeTLS(ln, "", "")
	} else {
		go srv.Serve(ln)
	}
	s.srvs[port] = srv
	return nil
}

// stop closes the listener of port, so that new connections are refused, and lets the
// requests in progress finish (5 s at most).
func (s *server) stop(port int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv := s.srvs[port]
	if srv == nil {
		return fmt.Errorf("%s:%d not started", s.name, port)
	}
	delete(s.srvs, port)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// selfSigned returns a TLS configuration with a fresh self-signed ECDSA certificate.
func selfSigned() (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gokeepalived demo real server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, nil
}

func httpClient(dial func(ctx context.Context, network, addr string) (net.Conn, error), timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext:         dial,
		DisableKeepAlives:   true,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		TLSHandshakeTimeout: timeout,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// get fetches url and returns the body (a server's name) without the newline.
func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// sample is one client request.
type sample struct {
	start, end time.Time
	name       string
	err        error
}

// loop is a client sending requests one after another (20 ms apart) until stopped
// (3 minutes at most).
type loop struct {
	url  string
	quit chan struct{}
	done chan struct{}
	mu   sync.Mutex
	got  []sample
}

func startLoop(c *http.Client, url string) *loop {
	l := &loop{url: url, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			select {
			case <-l.quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
			s := sample{start: time.Now()}
			s.name, s.err = get(c, url)
			s.end = time.Now()
			l.mu.Lock()
			l.got = append(l.got, s)
			l.mu.Unlock()
		}
	}()
	return l
}

// countSince returns the number of requests started at or after from and completed.
func (l *loop) countSince(from time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.got {
		if !s.start.Before(from) {
			n++
		}
	}
	return n
}

// stop ends the loop and returns its samples; it may be called more than once.
func (l *loop) stop() []sample {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// logBuf is a goroutine-safe buffer for a process's output.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a daemon started inside a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuf
	done chan struct{}
	err  error
}

// startIn starts a daemon inside namespace n.
func startIn(n *ns, name string, args ...string) (*proc, error) {
	p := &proc{name: name, out: &logBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The child is forked by the calling thread, so it inherits the thread's namespace.
	if err := n.do(p.cmd.Start); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be gone (10 s at most).
func (p *proc) kill() error {
	if p.exited() {
		return fmt.Errorf("%s had already exited: %v", p.name, p.err)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s still running 10 s after SIGKILL", p.name)
	}
}
