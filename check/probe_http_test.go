package check

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gokeepalived/parser"
)

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// testURL is a url block for path; set adjusts it.
func testURL(path string, set ...func(*parser.URL)) *parser.URL {
	u := &parser.URL{Path: path, StatusCodes: []parser.StatusRange{{Lo: 200, Hi: 299}}}
	for _, f := range set {
		f(u)
	}
	return u
}

func withDigest(d string) func(*parser.URL) { return func(u *parser.URL) { u.Digest = d } }

func withStatus(r ...parser.StatusRange) func(*parser.URL) {
	return func(u *parser.URL) { u.StatusCodes = r }
}

func withRegex(re string, noMatch bool, minOff, maxOff int) func(*parser.URL) {
	return func(u *parser.URL) {
		u.Regex, u.RegexNoMatch, u.RegexMinOffset, u.RegexMaxOffset = re, noMatch, minOff, maxOff
		u.Compiled = regexp.MustCompile(re)
	}
}

// httpChecker is an HTTP_GET or SSL_GET of dst for urls.
func httpChecker(typ string, dst netip.AddrPort, urls ...*parser.URL) *parser.Checker {
	c := testChecker(typ, dst)
	c.HTTP = &parser.HTTPCheck{URLs: urls, Protocol: "1.0"}
	return c
}

// testHTTPBody is what the test handlers serve at /ok.
const testHTTPBody = "hello world, this is the health page\n"

// testMux serves the paths the HTTP tests use.
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, testHTTPBody) })
	mux.HandleFunc("/503", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", http.StatusServiceUnavailable) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusMovedPermanently) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(3<<20))
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 48 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	return mux
}

func TestHTTPProbe(t *testing.T) {
	srv := httptest.NewServer(testMux())
	t.Cleanup(srv.Close)
	dst := addrPort(srv.Listener.Addr())
	okDigest := md5hex([]byte(testHTTPBody))
	off := strings.Index(testHTTPBody, "health")

	tests := []struct {
		name    string
		urls    []*parser.URL
		wantOK  bool
		wantErr string
	}{
		{"status 200", []*parser.URL{testURL("/ok")}, true, ""},
		{"not found", []*parser.URL{testURL("/nothing")}, false, "status 404, want 200-299"},
		{"503 by default", []*parser.URL{testURL("/503")}, false, "status 503"},
		{"503 in a range", []*parser.URL{testURL("/503", withStatus(parser.StatusRange{Lo: 500, Hi: 599}))}, true, ""},
		{"status list", []*parser.URL{testURL("/moved", withStatus(parser.StatusRange{Lo: 200, Hi: 200}, parser.StatusRange{Lo: 301, Hi: 301}))}, true, ""},
		{"status list miss", []*parser.URL{testURL("/moved", withStatus(parser.StatusRange{Lo: 200, Hi: 200}, parser.StatusRange{Lo: 302, Hi: 307}))}, false, "status 301, want 200 302-307"},
		{"digest", []*parser.URL{testURL("/ok", withDigest(okDigest))}, true, ""},
		{"digest mismatch", []*parser.URL{testURL("/ok", withDigest(strings.Repeat("0", 32)))}, false, "MD5 digest " + okDigest},
		{"regex", []*parser.URL{testURL("/ok", withRegex("hea.th", false, 0, 0))}, true, ""},
		{"regex no match", []*parser.URL{testURL("/ok", withRegex("sick", false, 0, 0))}, false, "does not match"},
		{"regex_no_match", []*parser.URL{testURL("/ok", withRegex("sick", true, 0, 0))}, true, ""},
		{"regex_no_match matches", []*parser.URL{testURL("/ok", withRegex("health", true, 0, 0))}, false, "regex_no_match"},
		{"regex at min offset", []*parser.URL{testURL("/ok", withRegex("health", false, off, 0))}, true, ""},
		{"regex before min offset", []*parser.URL{testURL("/ok", withRegex("health", false, off+1, 0))}, false, "does not match"},
		{"regex starts before max offset", []*parser.URL{testURL("/ok", withRegex("health", false, 0, off+1))}, true, ""},
		{"regex starts at max offset", []*parser.URL{testURL("/ok", withRegex("health", false, 0, off))}, false, "does not match"},
		{"digest and regex", []*parser.URL{testURL("/ok", withDigest(okDigest), withRegex("^hello", false, 0, 0))}, true, ""},
		{"every url passes", []*parser.URL{testURL("/ok"), testURL("/ok", withDigest(okDigest)), testURL("/moved", withStatus(parser.StatusRange{Lo: 301, Hi: 301}))}, true, ""},
		{"one url of three fails", []*parser.URL{testURL("/ok"), testURL("/503"), testURL("/ok")}, false, "/503: status 503"},
		{"big body, status only", []*parser.URL{testURL("/big")}, true, ""},
		{"big body, digest", []*parser.URL{testURL("/big", withDigest(okDigest))}, false, "body larger than 1048576 bytes"},
		{"big body, regex", []*parser.URL{testURL("/big", withRegex("y", true, 0, 0))}, false, "body larger than 1048576 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, proto := range []string{"1.0", "1.0C", "1.1"} {
				c := httpChecker("HTTP_GET", dst, tc.urls...)
				c.HTTP.Protocol = proto
				r := runProbe(t, mustNew(t, c), 2*time.Second)
				if r.OK != tc.wantOK {
					t.Fatalf("http_protocol %s: OK = %v (%v), want %v", proto, r.OK, r.Err, tc.wantOK)
				}
				if tc.wantErr != "" && !strings.Contains(r.Err.Error(), tc.wantErr) {
					t.Errorf("http_protocol %s: error %q does not mention %q", proto, r.Err, tc.wantErr)
				}
			}
		})
	}
}

// rawRequest reads a request header (up to the blank line) from c.
func rawRequest(c net.Conn) (string, error) {
	br := bufio.NewReader(c)
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// TestHTTPProbeRequest checks the exact request keepalived's checkers send.
func TestHTTPProbeRequest(t *testing.T) {
	reqs := make(chan string, 4)
	handle := func(c net.Conn) {
		defer c.Close()
		req, err := rawRequest(c)
		if err != nil {
			return
		}
		reqs <- req
		io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\n")
	}
	srv4 := serveLoopback(t, handle)
	srv6 := startTCPServer(t, "tcp6", "[::1]:0", handle)
	tests := []struct {
		name   string
		dst    netip.AddrPort
		proto  string
		vhost  string // the url's
		ckHost string // the checker's
		want   string
	}{
		{"1.0, no virtualhost", srv4.addr(), "1.0", "", "",
			"GET /p?q=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: " + srv4.addr().String() + "\r\n\r\n"},
		{"1.0C", srv4.addr(), "1.0C", "", "",
			"GET /p?q=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: " + srv4.addr().String() + "\r\n\r\n"},
		{"1.1 with the url's virtualhost", srv4.addr(), "1.1", "www.example.org", "checker.example.org",
			"GET /p?q=1 HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.org\r\n\r\n"},
		{"the checker's virtualhost", srv4.addr(), "1.0", "", "checker.example.org",
			"GET /p?q=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: checker.example.org\r\n\r\n"},
		{"IPv6", srv6.addr(), "1.0", "", "",
			"GET /p?q=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: " + srv6.addr().String() + "\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := testURL("/p?q=1", func(u *parser.URL) { u.Virtualhost = tc.vhost })
			c := httpChecker("HTTP_GET", tc.dst, u)
			c.HTTP.Protocol, c.HTTP.Virtualhost = tc.proto, tc.ckHost
			if r := runProbe(t, mustNew(t, c), time.Second); !r.OK {
				t.Fatal(r.Err)
			}
			if got := <-reqs; got != tc.want {
				t.Errorf("request\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"/a\r\nX-Injected: 1", ""} {
		if _, err := New(httpChecker("HTTP_GET", srv4.addr(), testURL(bad)), nil, nil); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}

// TestHTTPProbeRawResponses runs the probe against servers that answer by hand: hostile
// ones (that must fail by the deadline whatever they do) and odd but valid ones.
func TestHTTPProbeRawResponses(t *testing.T) {
	const body = "0123456789"
	respond := func(resp string) func(net.Conn) {
		return func(c net.Conn) {
			defer c.Close()
			if _, err := rawRequest(c); err != nil {
				return
			}
			io.WriteString(c, resp)
		}
	}
	// trickle writes prefix, then b one byte every 20 ms until the test ends.
	trickle := func(prefix string, b byte) func(net.Conn) {
		return func(c net.Conn) {
			defer c.Close()
			if _, err := rawRequest(c); err != nil {
				return
			}
			if _, err := io.WriteString(c, prefix); err != nil {
				return
			}
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for range tick.C {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
			}
		}
	}
	// flood writes prefix, then unit over and over as fast as the client reads, until
	// the test ends.
	flood := func(prefix, unit string) func(net.Conn) {
		return func(c net.Conn) {
			defer c.Close()
			if _, err := rawRequest(c); err != nil {
				return
			}
			if _, err := io.WriteString(c, prefix); err != nil {
				return
			}
			chunk := bytes.Repeat([]byte(unit), 64<<10/len(unit))
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}
	}
	// keepOpen answers and then holds the connection open without closing it.
	keepOpen := func(resp string) func(net.Conn) {
		return func(c net.Conn) {
			defer c.Close()
			if _, err := rawRequest(c); err != nil {
				return
			}
			io.WriteString(c, resp)
			sinkConn(c)
		}
	}
	chunked := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	tests := []struct {
		name    string
		handle  func(net.Conn)
		url     *parser.URL
		wantOK  bool
		wantErr string
	}{
		{"accepts, never answers", sinkConn, testURL("/"), false, "timeout"},
		{"closes at once", func(c net.Conn) { c.Close() }, testURL("/"), false, ""},
		{"closes after the request", respond(""), testURL("/"), false, "closed without a response"},
		{"slow loris header", trickle("HTTP/1.0 200 OK\r\nX-Slow: ", 'a'), testURL("/"), false, "timeout"},
		{"slow loris body, status only", trickle("HTTP/1.0 200 OK\r\n\r\n", 'a'), testURL("/"), false, "timeout"},
		{"slow loris body, digest", trickle("HTTP/1.0 200 OK\r\n\r\n", 'a'), testURL("/", withDigest(md5hex(nil))), false, "timeout"},
		{"endless body, status only", flood("HTTP/1.0 200 OK\r\n\r\n", "a"), testURL("/"), true, ""},
		{"endless body, digest", flood("HTTP/1.0 200 OK\r\n\r\n", "a"), testURL("/", withDigest(md5hex(nil))), false, "body larger than"},
		{"endless header line", flood("HTTP/1.0 200 OK\r\nX-Big: ", "a"), testURL("/"), false, "header longer than"},
		{"endless headers", flood("HTTP/1.0 200 OK\r\n", "X-Header: value\r\n"), testURL("/"), false, "header longer than"},
		{"garbage status line", respond("SSH-2.0-OpenSSH_9.2\r\n\r\n"), testURL("/"), false, "malformed status line"},
		{"status without reason", respond("HTTP/1.0 204\r\n\r\n"), testURL("/"), true, ""},
		{"status out of the list", respond("HTTP/1.0 299 Odd\r\n\r\n"), testURL("/", withStatus(parser.StatusRange{Lo: 200, Hi: 204})), false, "status 299"},
		{"body until close", respond("HTTP/1.0 200 OK\r\n\r\n" + body), testURL("/", withDigest(md5hex([]byte(body)))), true, ""},
		{"LF-only lines", respond("HTTP/1.0 200 OK\nServer: x\n\n" + body), testURL("/", withDigest(md5hex([]byte(body)))), true, ""},
		{"Content-Length bounds the digest", respond("HTTP/1.0 200 OK\r\ncontent-length: 4\r\n\r\n" + body), testURL("/", withDigest(md5hex([]byte(body[:4])))), true, ""},
		{"Content-Length ends the read on an open connection", keepOpen("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" + body), testURL("/", withDigest(md5hex([]byte(body)))), true, ""},
		{"short body: digest of what came", respond("HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n" + body), testURL("/", withDigest(md5hex([]byte(body)))), true, ""},
		{"chunked: digest of the raw bytes, as keepalived", respond(chunked), testURL("/", withDigest(md5hex([]byte("5\r\nhello\r\n0\r\n\r\n")))), true, ""},
		{"regex over the raw body", respond(chunked), testURL("/", withRegex(`^5\r\nhello`, false, 0, 0)), true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := serveLoopback(t, tc.handle)
			deadline := 400 * time.Millisecond
			start := time.Now()
			r := runProbe(t, mustNew(t, httpChecker("HTTP_GET", srv.addr(), tc.url)), deadline)
			if r.OK != tc.wantOK {
				t.Fatalf("OK = %v (%v), want %v", r.OK, r.Err, tc.wantOK)
			}
			if tc.wantErr != "" && !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", r.Err, tc.wantErr)
			}
			if tc.wantErr != "timeout" && time.Since(start) > deadline*3/4 {
				t.Errorf("took %v: should be decided before the deadline", time.Since(start))
			}
		})
	}
}

// tlsServer is an httptest TLS server serving testMux that records the server names
// clients ask for.
func tlsServer(t testing.TB) (*httptest.Server, <-chan string) {
	names := make(chan string, 16)
	srv := httptest.NewUnstartedServer(testMux())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the tests break on purpose
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		select {
		case names <- h.ServerName:
		default:
		}
		return nil, nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, names
}

func TestSSLProbe(t *testing.T) {
	srv, names := tlsServer(t)
	dst := addrPort(srv.Listener.Addr())
	tests := []struct {
		name    string
		set     func(*parser.HTTPCheck)
		url     *parser.URL
		wantOK  bool
		wantErr string
		wantSNI string
	}{
		{"status", func(*parser.HTTPCheck) {}, testURL("/ok"), true, "", ""},
		{"digest", func(*parser.HTTPCheck) {}, testURL("/ok", withDigest(md5hex([]byte(testHTTPBody)))), true, "", ""},
		{"status error", func(*parser.HTTPCheck) {}, testURL("/503"), false, "status 503", ""},
		{"virtualhost without enable_sni", func(h *parser.HTTPCheck) { h.Virtualhost = "www.example.org" }, testURL("/ok"), true, "", ""},
		{"enable_sni sends the virtualhost", func(h *parser.HTTPCheck) {
			h.Virtualhost, h.EnableSNI = "www.example.org", true
		}, testURL("/ok"), true, "", "www.example.org"},
		{"enable_sni sends the url's virtualhost", func(h *parser.HTTPCheck) {
			h.Virtualhost, h.EnableSNI = "www.example.org", true
		}, testURL("/ok", func(u *parser.URL) { u.Virtualhost = "url.example.org" }), true, "", "url.example.org"},
		{"sni_name", func(h *parser.HTTPCheck) {
			h.Virtualhost, h.EnableSNI, h.SNIName = "www.example.org", true, "sni.example.org"
		}, testURL("/ok"), true, "", "sni.example.org"},
		{"http_protocol 1.1", func(h *parser.HTTPCheck) { h.Protocol = "1.1" }, testURL("/ok", withDigest(md5hex([]byte(testHTTPBody)))), true, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := httpChecker("SSL_GET", dst, tc.url)
			tc.set(c.HTTP)
			r := runProbe(t, mustNew(t, c), 2*time.Second)
			if r.OK != tc.wantOK {
				t.Fatalf("OK = %v (%v), want %v", r.OK, r.Err, tc.wantOK)
			}
			if tc.wantErr != "" && !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", r.Err, tc.wantErr)
			}
			if got := <-names; got != tc.wantSNI {
				t.Errorf("server name %q, want %q", got, tc.wantSNI)
			}
		})
	}
	// HTTP_GET to a TLS port fails cleanly.
	if r := runProbe(t, mustNew(t, httpChecker("HTTP_GET", dst, testURL("/ok"))), time.Second); r.OK {
		t.Error("HTTP_GET passed against a TLS server")
	}
}

func TestSSLProbeHostile(t *testing.T) {
	garbage := func(c net.Conn) {
		defer c.Close()
		b := make([]byte, 4096)
		rand.Read(b)
		c.Write(b)
		sinkConn(c)
	}
	httpAnswer := func(c net.Conn) {
		defer c.Close()
		io.WriteString(c, "HTTP/1.0 400 Bad Request\r\n\r\n")
	}
	tests := []struct {
		name    string
		handle  func(net.Conn)
		wantErr string
	}{
		{"garbage instead of TLS", garbage, "TLS handshake"},
		{"plain HTTP instead of TLS", httpAnswer, "TLS handshake"},
		{"silent: no ServerHello", sinkConn, "TLS handshake"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := serveLoopback(t, tc.handle)
			r := runProbe(t, mustNew(t, httpChecker("SSL_GET", srv.addr(), testURL("/"))), 400*time.Millisecond)
			if r.OK || !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Fatalf("OK=%v err=%v, want a failure mentioning %q", r.OK, r.Err, tc.wantErr)
			}
		})
	}
}

// TestHTTPProbeConcurrent runs one probe from many goroutines: probes keep no state
// between checks.
func TestHTTPProbeConcurrent(t *testing.T) {
	srv := httptest.NewServer(testMux())
	t.Cleanup(srv.Close)
	p := mustNew(t, httpChecker("HTTP_GET", addrPort(srv.Listener.Addr()), testURL("/ok", withDigest(md5hex([]byte(testHTTPBody))))))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 10 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				r := p.Check(ctx)
				cancel()
				if !r.OK {
					t.Error(r.Err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkHTTPProbe(b *testing.B) {
	srv := httptest.NewServer(testMux())
	b.Cleanup(srv.Close)
	p := mustNew(b, httpChecker("HTTP_GET", addrPort(srv.Listener.Addr()), testURL("/ok", withDigest(md5hex([]byte(testHTTPBody))))))
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if r := p.Check(ctx); !r.OK {
			b.Fatal(r.Err)
		}
		cancel()
	}
}
