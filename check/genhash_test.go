package check

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestGenhash(t *testing.T) {
	hosts := make(chan string, 16)
	mux := testMux()
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		hosts <- r.Host
		fmt.Fprint(w, testHTTPBody)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "part one;")
		w.(http.Flusher).Flush() // no Content-Length: HTTP/1.1 answers chunked
		fmt.Fprint(w, "part two")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(mux)
	t.Cleanup(tlsSrv.Close)
	addr, tlsAddr := addrPort(srv.Listener.Addr()), addrPort(tlsSrv.Listener.Addr())
	closed := closedPort(t, "tcp4")
	want := md5hex([]byte(testHTTPBody))
	timeout := 2 * time.Second

	tests := []struct {
		name     string
		url      string
		opts     GenhashOptions
		want     string
		wantHost string
		wantErr  string
	}{
		{"full URL", srv.URL + "/ok", GenhashOptions{}, want, "", ""},
		{"path and server", "/ok", GenhashOptions{Server: addr.Addr(), Port: addr.Port()}, want, "", ""},
		{"https URL", tlsSrv.URL + "/ok", GenhashOptions{}, want, "", ""},
		{"TLS option", "/ok", GenhashOptions{TLS: true, Server: tlsAddr.Addr(), Port: tlsAddr.Port()}, want, "", ""},
		{"TLS with SNI", "/ok", GenhashOptions{TLS: true, SNI: "www.example.org", Server: tlsAddr.Addr(), Port: tlsAddr.Port()}, want, "", ""},
		{"host of the URL is the virtualhost", "http://www.example.org/host", GenhashOptions{Server: addr.Addr(), Port: addr.Port()}, want, "www.example.org", ""},
		{"virtualhost option", srv.URL + "/host", GenhashOptions{Virtualhost: "vh.example.org"}, want, "vh.example.org", ""},
		{"address host", srv.URL + "/host", GenhashOptions{}, want, addr.String(), ""},
		{"status does not matter", srv.URL + "/503", GenhashOptions{}, md5hex([]byte("busy\n")), "", ""},
		{"body too large", srv.URL + "/big", GenhashOptions{}, "", "", "larger than 1048576"},
		{"path without server", "/ok", GenhashOptions{}, "", "", "server address"},
		{"bad scheme", "ftp://127.0.0.1/x", GenhashOptions{}, "", "", "scheme"},
		{"bad protocol", srv.URL + "/ok", GenhashOptions{Protocol: "2"}, "", "", "http_protocol"},
		{"nothing listens", "/ok", GenhashOptions{Server: closed.Addr(), Port: closed.Port()}, "", "", "refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Timeout = timeout
			got, err := Genhash(t.Context(), tc.url, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Genhash = %q, %v; want an error mentioning %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Genhash = %q, %v; want %s", got, err, tc.want)
			}
			if tc.wantHost != "" {
				if h := <-hosts; h != tc.wantHost {
					t.Errorf("Host %q, want %q", h, tc.wantHost)
				}
			}
		})
	}

	// What genhash prints is what the check accepts, chunked transfer coding included
	// (the server answers HTTP/1.1 requests chunked, so the digests differ).
	digests := map[string]bool{}
	for _, proto := range []string{"1.0", "1.1"} {
		d, err := Genhash(t.Context(), srv.URL+"/chunked", GenhashOptions{Protocol: proto, Timeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		digests[d] = true
		c := httpChecker("HTTP_GET", addr, testURL("/chunked", withDigest(d)))
		c.HTTP.Protocol = proto
		if r := runProbe(t, mustNew(t, c), timeout); !r.OK {
			t.Errorf("http_protocol %s: the check refuses genhash's digest: %v", proto, r.Err)
		}
	}
	if len(digests) != 2 {
		t.Error("HTTP/1.0 and HTTP/1.1 digests are the same: the chunked case is not tested")
	}

	var verbose bytes.Buffer
	if _, err := Genhash(t.Context(), srv.URL+"/ok", GenhashOptions{Verbose: &verbose, Timeout: timeout}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(verbose.String(), "HTTP/1.0 200 OK\r\n") || !strings.HasSuffix(verbose.String(), "\r\n\r\n") {
		t.Errorf("verbose output %q: want the response header", verbose.String())
	}

	// A ctx without deadline is bounded by Timeout.
	silent := serveLoopback(t, sinkConn)
	start := time.Now()
	_, err := Genhash(t.Context(), "/", GenhashOptions{Server: silent.addr().Addr(), Port: silent.addr().Port(), Timeout: 300 * time.Millisecond})
	if err == nil || time.Since(start) > 300*time.Millisecond+testSlack {
		t.Errorf("silent server: %v after %v", err, time.Since(start))
	}
}
