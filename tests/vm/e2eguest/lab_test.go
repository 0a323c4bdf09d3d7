//go:build vmguest

package e2eguest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
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
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The lab: the director is the VM's root namespace. Its interface out0 faces the client
// namespace (192.168.71.0/24, the VIPs); its bridge brin (192.168.72.254, the real
// servers' default gateway) joins the real servers' namespaces.
const (
	clientAddr   = "192.168.71.10/24"
	directorOut  = "192.168.71.254/24"
	directorIn   = "192.168.72.254/24"
	directorGW   = "192.168.72.254"
	vip          = "192.168.71.205" // the seed's service address
	vipMark      = "192.168.71.206" // reaches the firewall-mark service
	vipDR        = "192.168.71.207" // the DR service (table entry only)
	sorryAddr    = "192.168.72.20"
	checkerAgent = "KeepAliveClient" // keepalived's (and gokeepalived's) User-Agent
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

// do runs fn on a thread inside the namespace: sockets it opens belong to the
// namespace. The thread is discarded afterwards.
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

// vethTo connects the root namespace (interface rootName) to n (interface eth0 with
// address cidr, default route via gw if not empty, lo up) and returns the root side.
func vethTo(rootName string, n *ns, cidr, gw string) (netlink.Link, error) {
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: rootName}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(n.h))}
	if err := netlink.LinkAdd(v); err != nil {
		return nil, fmt.Errorf("veth %s to %s: %w", rootName, n.name, err)
	}
	link, err := netlink.LinkByName(rootName)
	if err != nil {
		return nil, err
	}
	h, err := netlink.NewHandleAt(n.h, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", n.name, err)
	}
	defer h.Close()
	for _, name := range []string{"lo", "eth0"} {
		l, err := h.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", name, n.name, err)
		}
		if name == "eth0" {
			a, err := netlink.ParseAddr(cidr)
			if err != nil {
				return nil, err
			}
			if err := h.AddrAdd(l, a); err != nil {
				return nil, fmt.Errorf("address %s in %s: %w", cidr, n.name, err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("%s up in %s: %w", name, n.name, err)
		}
		if name == "eth0" && gw != "" {
			if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gw)}); err != nil {
				return nil, fmt.Errorf("default route in %s: %w", n.name, err)
			}
		}
	}
	return link, nil
}

// server is a real server: HTTP on :80 and HTTPS on :443 in its own namespace, each
// answering its name at /index.html.
type server struct {
	name string
	addr string
	ns   *ns
	tls  *tls.Config

	mu   sync.Mutex
	srvs map[int]*http.Server
	// checks counts the requests with keepalived's User-Agent, per port.
	checks map[int]*atomic.Int64
}

func newServer(name, addr string, n *ns, cfg *tls.Config) *server {
	return &server{name: name, addr: addr, ns: n, tls: cfg, srvs: map[int]*http.Server{},
		checks: map[int]*atomic.Int64{80: {}, 443: {}}}
}

func (s *server) handler(port int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/index.html" {
			http.NotFound(w, r)
			return
		}
		if r.UserAgent() == checkerAgent {
			s.checks[port].Add(1)
		}
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
	srv := &http.Server{Handler: s.handler(port), ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
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

func (s *server) checkCount(port int) int64 { return s.checks[port].Load() }

// selfSigned returns a TLS configuration with a fresh self-signed ECDSA certificate.
func selfSigned() (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gokeepalived e2e real server"},
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

// lab is the whole topology with its servers.
type lab struct {
	client   *ns
	servers  []*server // rs11 .. rs16
	sorry    *server
	http     *http.Client // from the client namespace
	director *http.Client // from the root namespace
}

func httpClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	tr := &http.Transport{
		DialContext:         dial,
		DisableKeepAlives:   true,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// newLab builds the topology, starts the servers and waits until the director reaches
// each of them.
func newLab(t *testing.T) *lab {
	t.Helper()
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "brin"}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	addr := func(link netlink.Link, cidr string) {
		a, err := netlink.ParseAddr(cidr)
		if err == nil {
			err = netlink.AddrAdd(link, a)
		}
		if err != nil {
			t.Fatalf("address %s on %s: %v", cidr, link.Attrs().Name, err)
		}
	}
	up := func(link netlink.Link) {
		if err := netlink.LinkSetUp(link); err != nil {
			t.Fatalf("%s up: %v", link.Attrs().Name, err)
		}
	}
	addr(br, directorIn)
	up(br)
	plug := func(name, ip string) *server {
		n, err := newNS(name)
		if err != nil {
			t.Fatal(err)
		}
		link, err := vethTo(name, n, ip+"/24", directorGW)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetMaster(link, br); err != nil {
			t.Fatalf("%s into the bridge: %v", name, err)
		}
		up(link)
		return newServer(name, ip, n, cfg)
	}
	for i := 11; i <= 16; i++ {
		l.servers = append(l.servers, plug(fmt.Sprintf("rs%d", i), fmt.Sprintf("192.168.72.%d", i)))
	}
	l.sorry = plug("sorry", sorryAddr)

	c, err := newNS("client")
	if err != nil {
		t.Fatal(err)
	}
	l.client = c
	out, err := vethTo("out0", c, clientAddr, "")
	if err != nil {
		t.Fatal(err)
	}
	addr(out, directorOut)
	for _, a := range []string{vip, vipMark, vipDR} {
		addr(out, a+"/32")
	}
	up(out)

	for _, s := range append(slices.Clone(l.servers), l.sorry) {
		for _, port := range []int{80, 443} {
			if err := s.start(port); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.http = httpClient(c.dial)
	l.director = httpClient((&net.Dialer{}).DialContext)
	for _, s := range append(slices.Clone(l.servers), l.sorry) {
		for _, u := range []string{"http://" + s.addr + "/index.html", "https://" + s.addr + "/index.html"} {
			waitFor(t, 20*time.Second, "the director reaches "+u, func() (bool, string) {
				name, err := get(l.director, u)
				if err != nil {
					return false, err.Error()
				}
				return name == s.name, "answered " + name
			})
		}
	}
	return l
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

// waitFor polls cond every 25 ms until it holds, failing the test after timeout with
// cond's last note; it returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, note := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s; last: %s", timeout, what, note)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// sample is one client request.
type sample struct {
	start, end time.Time
	name       string
	err        error
}

// loop is a client sending requests one after another until stopped (3 minutes at most).
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
			default:
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

// countSince returns the number of requests started at or after from.
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

// waitCount waits until n requests started at or after from have completed.
func (l *loop) waitCount(t *testing.T, from time.Time, n int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d requests to %s", n, l.url), func() (bool, string) {
		c := l.countSince(from)
		return c >= n, fmt.Sprintf("%d done", c)
	})
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

// failures returns the failed samples started in [from, to) (to zero: no end).
func failures(ss []sample, from, to time.Time) (failed []sample, total int) {
	return failuresIf(ss, func(s sample) bool {
		return !s.start.Before(from) && (to.IsZero() || s.start.Before(to))
	})
}

// failuresIf returns the failed samples among those that match.
func failuresIf(ss []sample, match func(sample) bool) (failed []sample, total int) {
	for _, s := range ss {
		if !match(s) {
			continue
		}
		total++
		if s.err != nil {
			failed = append(failed, s)
		}
	}
	return failed, total
}

func describe(ss []sample, since time.Time) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "\n  +%v (%v): %v", s.start.Sub(since).Round(time.Millisecond), s.end.Sub(s.start).Round(time.Millisecond), s.err)
	}
	return b.String()
}

// table is a normalized `ipvsadm -Ln`: service line -> sorted destination lines
// ("addr:port forward weight"), counters left out.
type table map[string][]string

// readTable runs ipvsadm -Ln.
func readTable() (table, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ipvsadm -Ln: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("ipvsadm -Ln: %q", out)
	}
	tb := table{}
	svc := ""
	for _, line := range lines[3:] {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "->" && len(f) >= 4 && svc != "":
			tb[svc] = append(tb[svc], strings.Join(f[1:4], " "))
		case f[0] == "->":
			return nil, fmt.Errorf("ipvsadm -Ln: unexpected line %q", line)
		default:
			svc = strings.Join(f, " ")
			tb[svc] = nil
		}
	}
	for _, d := range tb {
		sort.Strings(d)
	}
	return tb, nil
}

func mustTable(t *testing.T) table {
	t.Helper()
	tb, err := readTable()
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// String renders the table in a stable order.
func (tb table) String() string {
	svcs := make([]string, 0, len(tb))
	for s := range tb {
		svcs = append(svcs, s)
	}
	sort.Strings(svcs)
	var b strings.Builder
	for _, s := range svcs {
		b.WriteString(s + "\n")
		for _, d := range tb[s] {
			b.WriteString("  -> " + d + "\n")
		}
	}
	return b.String()
}

func (tb table) has(svc, dest string) bool { return slices.Contains(tb[svc], dest) }

// waitTable waits until ipvsadm shows want.
func waitTable(t *testing.T, want table, timeout time.Duration, what string) time.Duration {
	t.Helper()
	return waitFor(t, timeout, what, func() (bool, string) {
		tb, err := readTable()
		if err != nil {
			return false, err.Error()
		}
		got := tb.String()
		return got == want.String(), "table:\n" + got + "want:\n" + want.String()
	})
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

// proc is a daemon the test started.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuf
	done chan struct{}
	err  error
}

// startProc starts a daemon; it is killed when the test ends if still running, and its
// output is logged then.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &logBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		t.Logf("%s output:\n%s", p.name, p.out.String())
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits for the process to exit; it returns its exit error.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) error {
	if p.exited() {
		return fmt.Errorf("%s had already exited: %v", p.name, p.err)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.Join(fmt.Errorf("%s did not exit within %v of %v; killed", p.name, timeout, sig), p.err)
	}
}

// waitLog waits until the process has printed s (and has not exited).
func (p *proc) waitLog(t *testing.T, s string, timeout time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, timeout, fmt.Sprintf("%s logs %q", p.name, s), func() (bool, string) {
		if p.exited() {
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.out.String())
		}
		return strings.Contains(p.out.String(), s), "not yet"
	})
}
