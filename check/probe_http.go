package check

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"gokeepalived/parser"
)

const (
	// httpMaxBody is the most of a response body a check reads. A digest or regex
	// over a longer body fails; a status-only check stops reading there.
	httpMaxBody = 1 << 20
	// httpMaxHeader bounds the status line and headers of a response.
	httpMaxHeader = 64 << 10
	// httpUserAgent is keepalived's User-Agent, which servers' filters may know.
	httpUserAgent = "KeepAliveClient"
)

// httpProbe is an HTTP_GET or SSL_GET. Every url is fetched in turn, each on a
// connection of its own, within the one deadline of the attempt; all must pass.
//
// The request is written and the response read on a raw connection, not with net/http,
// because keepalived's semantics need it: the request line carries the configured
// http_protocol (1.0, 1.0C or 1.1; 1.0C and 1.1 add "Connection: close"), and the digest
// and regex apply to the body bytes as they come over the wire after the header,
// limited by Content-Length when there is one, without undoing a chunked transfer
// coding: the MD5 is the one keepalived's genhash prints. The body is read until the
// server closes the connection or Content-Length bytes have come, all within the
// deadline: a response that does not complete in time fails, as in keepalived.
//
// SSL_GET does not verify the server's certificate (keepalived does not either). With
// enable_sni or sni_name the handshake names sni_name, else the url's virtualhost.
type httpProbe struct {
	kind   string // HTTP_GET or SSL_GET
	target probeTarget
	tls    bool
	urls   []httpURL
}

// httpURL is one url block with its request, prepared once.
type httpURL struct {
	cfg     *parser.URL
	request []byte // the whole GET request
	sni     string // server name of the TLS handshake; empty: none
	display string // scheme://host:port/path, for messages
}

func newHTTPProbe(c *parser.Checker, rs *parser.RealServer) (*httpProbe, error) {
	t, err := newProbeTarget(c, rs, true)
	if err != nil {
		return nil, err
	}
	h := c.HTTP
	if h == nil || len(h.URLs) == 0 {
		return nil, fmt.Errorf("%s: no url", c.Type)
	}
	p := &httpProbe{kind: c.Type, target: t, tls: c.Type == "SSL_GET"}
	for _, u := range h.URLs {
		vhost := u.Virtualhost
		if vhost == "" {
			vhost = h.Virtualhost
		}
		req, err := httpRequest(u.Path, httpHost(vhost, t), h.Protocol)
		if err != nil {
			return nil, fmt.Errorf("%s url %s: %w", c.Type, u.Path, err)
		}
		hu := httpURL{cfg: u, request: req, display: httpDisplay(p.tls, t, u.Path)}
		if p.tls && (h.EnableSNI || h.SNIName != "") {
			hu.sni = h.SNIName
			if hu.sni == "" {
				hu.sni = vhost
			}
		}
		p.urls = append(p.urls, hu)
	}
	return p, nil
}

// httpHost is the Host header: the virtualhost, else the target's address and port
// (keepalived's rule).
func httpHost(vhost string, t probeTarget) string {
	if vhost != "" {
		return vhost
	}
	return httpHostPort(t)
}

// httpHostPort renders the target as host:port without an IPv6 zone.
func httpHostPort(t probeTarget) string {
	return net.JoinHostPort(t.dst.Addr().WithZone("").String(), strconv.Itoa(int(t.dst.Port())))
}

// httpDisplay is the URL a check fetches, for messages.
func httpDisplay(useTLS bool, t probeTarget, path string) string {
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + httpHostPort(t) + path
}

// httpRequest builds the GET request keepalived sends for path, with the Host header
// host and the http_protocol protocol.
func httpRequest(path, host, protocol string) ([]byte, error) {
	if strings.ContainsAny(path, "\r\n") || path == "" {
		return nil, fmt.Errorf("path %q: empty or with a line break", path)
	}
	if strings.ContainsAny(host, "\r\n") {
		return nil, fmt.Errorf("virtualhost %q has a line break", host)
	}
	minor, closeConn := "0", false
	switch protocol {
	case "", "1.0":
	case "1.0C", "1.0c":
		closeConn = true
	case "1.1":
		minor, closeConn = "1", true
	default:
		return nil, fmt.Errorf("http_protocol %q: want 1.0, 1.0C or 1.1", protocol)
	}
	var b bytes.Buffer
	b.WriteString("GET " + path + " HTTP/1." + minor + "\r\n")
	b.WriteString("User-Agent: " + httpUserAgent + "\r\n")
	if closeConn {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("Host: " + host + "\r\n\r\n")
	return b.Bytes(), nil
}

// Check fetches every url.
func (p *httpProbe) Check(ctx context.Context) Result {
	start := time.Now()
	ctx, cancel := probeContext(ctx, p.target.timeout)
	defer cancel()
	for i := range p.urls {
		if err := p.checkURL(ctx, &p.urls[i]); err != nil {
			return probeResult(start, fmt.Errorf("%s %s: %w", p.kind, p.urls[i].display, err))
		}
	}
	return probeResult(start, nil)
}

func (p *httpProbe) checkURL(ctx context.Context, u *httpURL) error {
	needBody := u.cfg.Digest != "" || u.cfg.Compiled != nil
	resp, err := httpFetch(ctx, &p.target, p.tls, u.sni, u.request, needBody, func(status int) error {
		return httpCheckStatus(status, u.cfg.StatusCodes)
	})
	if err != nil {
		return err
	}
	if !needBody {
		return nil
	}
	if resp.truncated {
		return fmt.Errorf("body larger than %d bytes: too large for digest or regex", httpMaxBody)
	}
	if u.cfg.Digest != "" {
		if got := httpDigest(resp.body); got != u.cfg.Digest {
			return fmt.Errorf("MD5 digest %s, want %s", got, u.cfg.Digest)
		}
	}
	if u.cfg.Compiled != nil {
		return httpCheckRegex(u.cfg, resp.body)
	}
	return nil
}

// httpCheckStatus checks a status code against status_code (200-299 when empty).
func httpCheckStatus(status int, ranges []parser.StatusRange) error {
	if len(ranges) == 0 {
		ranges = []parser.StatusRange{{Lo: 200, Hi: 299}}
	}
	for _, r := range ranges {
		if status >= r.Lo && status <= r.Hi {
			return nil
		}
	}
	var want []string
	for _, r := range ranges {
		if r.Lo == r.Hi {
			want = append(want, strconv.Itoa(r.Lo))
		} else {
			want = append(want, fmt.Sprintf("%d-%d", r.Lo, r.Hi))
		}
	}
	return fmt.Errorf("status %d, want %s", status, strings.Join(want, " "))
}

// httpCheckRegex applies regex (or regex_no_match) to the body: a match must start at or
// after regex_min_offset and before regex_max_offset (0: anywhere), as in keepalived.
func httpCheckRegex(u *parser.URL, body []byte) error {
	from := min(u.RegexMinOffset, len(body))
	matched := false
	if loc := u.Compiled.FindIndex(body[from:]); loc != nil {
		matched = u.RegexMaxOffset == 0 || from+loc[0] < u.RegexMaxOffset
	}
	switch {
	case matched && u.RegexNoMatch:
		return fmt.Errorf("regex %q matches (regex_no_match)", u.Regex)
	case !matched && !u.RegexNoMatch:
		return fmt.Errorf("regex %q does not match", u.Regex)
	}
	return nil
}

// httpDigest is the lower-case hex MD5 of body.
func httpDigest(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// httpResponse is what httpFetch read.
type httpResponse struct {
	status    int
	header    []byte // status line and headers, with the blank line
	body      []byte // when kept: at most httpMaxBody bytes
	truncated bool   // the body went on past httpMaxBody
}

// httpFetch connects (with TLS and server name sni when useTLS), sends request and
// reads the response within ctx. checkStatus, when not nil, is applied to the status
// code before the body is read; its error ends the fetch. The body is kept when
// keepBody is set, else read and dropped; either way no more than httpMaxBody bytes
// are read.
func httpFetch(ctx context.Context, t *probeTarget, useTLS bool, sni string, request []byte, keepBody bool, checkStatus func(int) error) (*httpResponse, error) {
	raw, err := t.dial(ctx, "tcp")
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	stop := probeBind(ctx, raw)
	defer stop()
	var conn net.Conn = raw
	if useTLS {
		tc := tls.Client(raw, &tls.Config{
			ServerName:         sni,
			InsecureSkipVerify: true, // #nosec G402 -- keepalived checks do not verify either
			MinVersion:         tls.VersionTLS10,
		})
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		conn = tc
	}
	if _, err := conn.Write(request); err != nil {
		return nil, fmt.Errorf("send request: %w", err)
	}
	br := bufio.NewReader(conn)
	resp := &httpResponse{}
	var contentLength int64
	resp.header, resp.status, contentLength, err = httpReadHeader(br)
	if err != nil {
		return nil, err
	}
	if checkStatus != nil {
		if err := checkStatus(resp.status); err != nil {
			return nil, err
		}
	}
	var body io.Reader = br
	if contentLength >= 0 {
		body = io.LimitReader(br, contentLength)
	}
	var buf bytes.Buffer
	var dst io.Writer = io.Discard
	if keepBody {
		dst = &buf
	}
	n, err := io.Copy(dst, io.LimitReader(body, httpMaxBody+1))
	if err != nil && !httpEOF(err) {
		return nil, fmt.Errorf("read body (%d bytes read): %w", n, err)
	}
	resp.truncated = n > httpMaxBody
	if keepBody {
		resp.body = buf.Bytes()[:min(n, httpMaxBody)]
	}
	return resp, nil
}

// httpEOF reports whether err only says that the server closed the connection:
// io.ErrUnexpectedEOF is how a TLS connection closed without close_notify ends.
func httpEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// httpReadHeader reads the status line and headers (at most httpMaxHeader bytes) and
// returns them with the status code and the Content-Length (-1 when absent or invalid).
func httpReadHeader(br *bufio.Reader) (header []byte, status int, contentLength int64, err error) {
	contentLength = -1
	for first := true; ; first = false {
		start := len(header)
		for {
			chunk, err := br.ReadSlice('\n')
			header = append(header, chunk...)
			if len(header) > httpMaxHeader {
				return nil, 0, 0, fmt.Errorf("response header longer than %d bytes", httpMaxHeader)
			}
			if err == nil {
				break
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				if len(header) == 0 && httpEOF(err) {
					return nil, 0, 0, errors.New("connection closed without a response")
				}
				return nil, 0, 0, fmt.Errorf("read response header (%d bytes read): %w", len(header), err)
			}
		}
		line := bytes.TrimRight(header[start:], "\r\n")
		if first {
			if status, err = httpParseStatus(line); err != nil {
				return nil, 0, 0, err
			}
			continue
		}
		if len(line) == 0 {
			return header, status, contentLength, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && contentLength < 0 && strings.EqualFold(string(bytes.TrimSpace(name)), "Content-Length") {
			if n, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64); err == nil && n >= 0 {
				contentLength = n
			}
		}
	}
}

// httpParseStatus reads the code of a status line "HTTP/x.y NNN reason".
func httpParseStatus(line []byte) (int, error) {
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	code, _, _ := bytes.Cut(bytes.TrimLeft(rest, " "), []byte(" "))
	n, err := strconv.Atoi(string(code))
	if !bytes.HasPrefix(proto, []byte("HTTP/")) || err != nil || len(code) != 3 || n < 100 {
		return 0, fmt.Errorf("malformed status line %q", probeQuote(line))
	}
	return n, nil
}
