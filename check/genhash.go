package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// GenhashOptions are the options of keepalived's genhash (its flag in parentheses).
// Zero values take the defaults.
type GenhashOptions struct {
	// TLS fetches over TLS, as SSL_GET does (-S). An https:// URL implies it.
	TLS bool
	// Server is the address to connect to (-s). Default: the URL's host, looked up
	// when it is a name.
	Server netip.Addr
	// Port is the port to connect to (-p). Default: the URL's port, else 80 (443 with
	// TLS).
	Port uint16
	// Virtualhost is the Host header (-V). Default: the URL's host when it is a name,
	// else address:port as an HTTP_GET without virtualhost sends.
	Virtualhost string
	// SNI is the server name sent in the TLS handshake. Default: none, as an SSL_GET
	// without enable_sni.
	SNI string
	// Protocol is the http_protocol: 1.0 (the default), 1.0C or 1.1 (-P).
	Protocol string
	// BindTo is the source address; FWMark the mark of the connection (-f).
	BindTo netip.Addr
	FWMark uint32
	// Timeout bounds the fetch when ctx has no deadline (-t). Default: 5 s.
	Timeout time.Duration
	// Verbose, when set, receives the response's status line and headers (-v).
	Verbose io.Writer
}

// Genhash fetches rawURL as an HTTP_GET or SSL_GET would and returns the MD5 digest of
// its body in lower-case hex: the value for a url's digest keyword, computed as the
// checks compute it (the bytes after the header, up to Content-Length, at most 1 MiB).
// rawURL is an http:// or https:// URL, or a path when opts.Server is set. The status
// code does not matter, as with keepalived's genhash.
func Genhash(ctx context.Context, rawURL string, opts GenhashOptions) (digest string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("genhash: %w", err)
	}
	useTLS := opts.TLS
	switch u.Scheme {
	case "https":
		useTLS = true
	case "http", "":
	default:
		return "", fmt.Errorf("genhash %s: scheme %q: want http or https", rawURL, u.Scheme)
	}
	ctx, cancel := probeContext(ctx, opts.Timeout)
	defer cancel()

	t := probeTarget{src: netip.AddrPortFrom(opts.BindTo.Unmap(), 0), mark: opts.FWMark}
	ip, port, vhost := opts.Server.Unmap(), opts.Port, opts.Virtualhost
	if host := u.Hostname(); host != "" {
		a, perr := netip.ParseAddr(host)
		switch {
		case perr == nil && !ip.IsValid():
			ip = a.Unmap()
		case perr != nil:
			if vhost == "" {
				vhost = host
			}
			if !ip.IsValid() {
				if ip, err = genhashLookup(ctx, host); err != nil {
					return "", fmt.Errorf("genhash %s: %w", rawURL, err)
				}
			}
		}
		if p := u.Port(); p != "" && port == 0 {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				return "", fmt.Errorf("genhash %s: port %q: %w", rawURL, p, err)
			}
			port = uint16(n)
		}
	}
	if !ip.IsValid() {
		return "", fmt.Errorf("genhash %s: give a full URL or a server address", rawURL)
	}
	if port == 0 {
		port = 80
		if useTLS {
			port = 443
		}
	}
	t.dst = netip.AddrPortFrom(ip, port)
	if t.src.Addr().IsValid() && t.src.Addr().Is4() != ip.Is4() {
		return "", fmt.Errorf("genhash %s: bindto %s and server %s are of different families", rawURL, t.src.Addr(), ip)
	}
	path := u.RequestURI()
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	req, err := httpRequest(path, httpHost(vhost, t), opts.Protocol)
	if err != nil {
		return "", fmt.Errorf("genhash %s: %w", rawURL, err)
	}
	resp, err := httpFetch(ctx, &t, useTLS, opts.SNI, req, true, nil)
	if err != nil {
		return "", fmt.Errorf("genhash %s: %w", httpDisplay(useTLS, t, path), err)
	}
	if opts.Verbose != nil {
		if _, err := opts.Verbose.Write(resp.header); err != nil {
			return "", fmt.Errorf("genhash: write header: %w", err)
		}
	}
	if resp.truncated {
		return "", fmt.Errorf("genhash %s: body larger than %d bytes, the most a check reads", httpDisplay(useTLS, t, path), httpMaxBody)
	}
	return httpDigest(resp.body), nil
}

// genhashLookup returns the first address of host.
func genhashLookup(ctx context.Context, host string) (netip.Addr, error) {
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("look up %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, errors.New("look up " + host + ": no address")
	}
	return addrs[0].Unmap(), nil
}
