package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/spf13/pflag"

	"gokeepalived/check"
)

// runGenhash is "gokeepalived genhash": the MD5 digest of a URL's body, computed exactly
// as HTTP_GET/SSL_GET compare it, for the digest keyword (keepalived's genhash).
func runGenhash(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("genhash", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts    check.GenhashOptions
		server  = fs.StringP("server", "s", "", "address to connect to (default: the URL's host)")
		port    = fs.Uint16P("port", "p", 0, "port to connect to (default: the URL's, else 80 or 443)")
		url     = fs.StringP("url", "u", "", "URL or path to fetch (required)")
		timeout = fs.DurationP("timeout", "t", 5*time.Second, "timeout of the fetch")
		verbose = fs.BoolP("verbose", "v", false, "print the response's status line and headers")
	)
	fs.BoolVarP(&opts.TLS, "use-ssl", "S", false, "fetch over TLS, as SSL_GET")
	fs.StringVarP(&opts.Virtualhost, "virtualhost", "V", "", "Host header to send")
	fs.StringVar(&opts.SNI, "sni", "", "TLS server name to send")
	fs.StringVarP(&opts.Protocol, "protocol", "P", "1.0", "http_protocol: 1.0, 1.0C or 1.1")
	fs.Uint32VarP(&opts.FWMark, "fwmark", "f", 0, "firewall mark of the connection")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *url == "" {
		fmt.Fprintln(stderr, "genhash: -u/--url is required")
		return exitUsage
	}
	if *server != "" {
		a, err := netip.ParseAddr(*server)
		if err != nil {
			fmt.Fprintf(stderr, "genhash: --server %q is not an IP address\n", *server)
			return exitUsage
		}
		opts.Server = a
	}
	opts.Port, opts.Timeout = *port, *timeout
	if *verbose {
		opts.Verbose = stdout
	}
	digest, err := check.Genhash(context.Background(), *url, opts)
	if err != nil {
		fmt.Fprintf(stderr, "genhash: %v\n", err)
		return exitDaemon
	}
	fmt.Fprintf(stdout, "MD5SUM = %s\n", digest)
	return exitOK
}
