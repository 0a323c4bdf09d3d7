package check

import (
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gokeepalived/parser"
)

// TestProbeNewFromConfig builds a probe for every checker type from a keepalived.conf
// read by the parser, each pointed at a server of the test on loopback, and checks them.
func TestProbeNewFromConfig(t *testing.T) {
	web := httptest.NewServer(testMux())
	t.Cleanup(web.Close)
	tlsWeb, _ := tlsServer(t)
	tcp := serveLoopback(t, func(c net.Conn) { c.Close() })
	udp, _ := udpServer(t, func(b []byte) []byte { return b })
	dns, _ := udpServer(t, func(q []byte) []byte { return dnsReply(q, 0, false, 0) })
	smtp := serveLoopback(t, fakeSMTP("220 ok\r\n", "250 ok\r\n", nil))
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.WriteFile(state, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`
global_defs {
	script_user root
	enable_script_security
}
track_file state {
	file %q
}
virtual_server 127.0.0.1 80 {
	lvs_sched rr
	protocol TCP
	delay_loop 3
	real_server 127.0.0.1 %d {
		connect_timeout 2
		TCP_CHECK {
		}
		HTTP_GET {
			connect_port %d
			url {
				path /ok
				digest %s
			}
			url {
				path /503
				status_code 500-599
			}
		}
		SSL_GET {
			connect_port %d
			enable_sni
			virtualhost www.example.org
			url {
				path /ok
			}
		}
		UDP_CHECK {
			connect_port %d
			payload 01 02 03
			require_reply 01 0x 03
		}
		DNS_CHECK {
			connect_port %d
			type A
			name example.org
		}
		SMTP_CHECK {
			connect_port %d
			helo_name lb.example.org
		}
		PING_CHECK {
		}
		MISC_CHECK {
			misc_path "/bin/sh -c 'exit 7'"
			misc_dynamic
		}
		FILE_CHECK {
			track_file state
		}
	}
}
`, state, tcp.addr().Port(), addrPort(web.Listener.Addr()).Port(), md5hex([]byte(testHTTPBody)),
		addrPort(tlsWeb.Listener.Addr()).Port(), udp.Port(), dns.Port(), smtp.addr().Port())
	cfg, diags := parser.LoadBytes("test.conf", []byte(conf), parser.Options{})
	if diags.ExitCode() != 0 {
		t.Fatalf("config: %v", diags)
	}
	vs := cfg.VirtualServers[0]
	rs := vs.RealServers[0]
	var types []string
	for _, c := range rs.Checkers {
		types = append(types, c.Type)
		var p Probe
		var err error
		p, err = New(c, rs, vs)
		if err != nil {
			t.Errorf("%s: %v", c.Type, err)
			continue
		}
		r := runProbe(t, p, 2*time.Second)
		if !r.OK {
			t.Errorf("%s: %v", c.Type, r.Err)
		}
		if c.Type == "MISC_CHECK" && (r.Weight == nil || *r.Weight != 5) {
			t.Errorf("MISC_CHECK misc_dynamic exit 7: weight %v, want 5", r.Weight)
		}
	}
	if got := strings.Join(types, " "); got != "TCP_CHECK HTTP_GET SSL_GET UDP_CHECK DNS_CHECK SMTP_CHECK PING_CHECK MISC_CHECK FILE_CHECK" {
		t.Errorf("checkers %s", got)
	}
	// New names the real server when a checker cannot be built.
	bad := *rs.Checkers[0]
	bad.Conn = &parser.ConnOpts{ConnectIP: rs.Addr, BindTo: netip.MustParseAddr("::1")}
	if _, err := New(&bad, rs, vs); err == nil || !strings.Contains(err.Error(), "real server 127.0.0.1:") || !strings.Contains(err.Error(), "virtual server 127.0.0.1:80") {
		t.Errorf("New error %v: want the real and virtual servers named", err)
	}
}
