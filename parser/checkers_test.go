package parser

import (
	"strings"
	"testing"
)

// checkersOf parses body inside a real server and returns its checkers.
func checkersOf(t *testing.T, body string) ([]*Checker, string) {
	t.Helper()
	cfg, diags := loadLVS(t, "track_file tf {\n file /tmp/tf\n weight 3 reverse\n}\n"+
		"virtual_server 10.0.0.1 80 {\n lvs_sched rr\n protocol TCP\n real_server 10.0.0.2 8080 {\n"+body+"\n }\n}\n")
	if len(cfg.VirtualServers) != 1 {
		t.Fatalf("virtual server dropped:\n%s", diags)
	}
	return cfg.VirtualServers[0].RealServers[0].Checkers, diags
}

func TestStatusCodes(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"200", 200, 200, true},
		{"200-299", 200, 299, true},
		{"100-599", 100, 599, true},
		{"404-404", 404, 404, true},
		{"99", 0, 0, false},
		{"600", 0, 0, false},
		{"300-200", 0, 0, false},
		{"200-", 0, 0, false},
		{"-200", 0, 0, false},
		{"2xx", 0, 0, false},
		{"200-600", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, ok := parseStatusRange(tt.in)
		if ok != tt.ok || ok && (lo != tt.lo || hi != tt.hi) {
			t.Errorf("%s: got %d-%d %v, want %d-%d %v", tt.in, lo, hi, ok, tt.lo, tt.hi, tt.ok)
		}
	}
	cks, diags := checkersOf(t, "HTTP_GET {\n url {\n path /\n }\n url {\n path /x\n status_code 200 301-302\n status_code 404 700\n }\n}")
	u0, u1 := cks[0].HTTP.URLs[0], cks[0].HTTP.URLs[1]
	if len(u0.StatusCodes) != 1 || u0.StatusCodes[0] != (StatusRange{200, 299}) {
		t.Errorf("default status codes %v, want 200-299", u0.StatusCodes)
	}
	if want := []StatusRange{{200, 200}, {301, 302}, {404, 404}}; len(u1.StatusCodes) != 3 || u1.StatusCodes[0] != want[0] || u1.StatusCodes[1] != want[1] || u1.StatusCodes[2] != want[2] {
		t.Errorf("status codes %v, want %v", u1.StatusCodes, want)
	}
	if !strings.Contains(diags, `'status_code': "700" is not a status code`) {
		t.Errorf("diagnostics %q", diags)
	}
}

func TestHexStr(t *testing.T) {
	tests := []struct {
		in         string
		wild       bool
		data, mask string
		ok         bool
	}{
		{"Ab12f 3 456 546443123", false, "ab120f0345065464431203", "", true},
		{"00ff", false, "00ff", "", true},
		{"0x", false, "", "", false},
		{"01xx 0X", true, "010000", "ff00f0", true},
		{"x", true, "00", "f0", true},
		{"", false, "", "", false},
		{"gg", true, "", "", false},
	}
	for _, tt := range tests {
		data, mask, ok := parseHexStr(tt.in, tt.wild)
		d, _ := data.MarshalText()
		m, _ := mask.MarshalText()
		if ok != tt.ok || string(d) != tt.data || string(m) != tt.mask {
			t.Errorf("%q: got %s/%s %v, want %s/%s %v", tt.in, d, m, ok, tt.data, tt.mask, tt.ok)
		}
	}
}

func TestRegex(t *testing.T) {
	cks, diags := checkersOf(t, `HTTP_GET {
  url {
    path /
    regex "^ok$"
    regex_options caseless multiline utf
  }
  url {
    path /b
    regex "a(?!b)"
  }
}`)
	u := cks[0].HTTP.URLs[0]
	if u.Compiled == nil || !u.Compiled.MatchString("x\nOK\ny") {
		t.Errorf("caseless multiline regex did not match")
	}
	if !strings.Contains(diags, "regex option 'utf' has no equivalent") || !strings.Contains(diags, "invalid or unsupported Perl syntax") {
		t.Errorf("diagnostics %q", diags)
	}
	if u := cks[0].HTTP.URLs[1]; u.Regex != "" || u.Compiled != nil {
		t.Errorf("unusable regex kept: %+v", u)
	}
}

func TestSMTPHosts(t *testing.T) {
	cks, diags := checkersOf(t, `SMTP_CHECK {
  helo_name mx.example
  retry 4
  host {
    connect_ip 10.0.0.20
  }
  connect_timeout 7
  host {
    connect_ip 10.0.0.21
    connect_port 2525
  }
}
SMTP_CHECK {
  connect_ip 10.0.0.22
  host {
    connect_port 26
  }
}`)
	if strings.Count(diags, "blocks are deprecated") != 3 {
		t.Errorf("diagnostics %q", diags)
	}
	type want struct {
		ip      string
		port    uint16
		timeout Duration
	}
	wants := []want{
		{"10.0.0.2", 8080, Seconds(7)},  // the block itself: connect_timeout written
		{"10.0.0.20", 8080, Seconds(5)}, // first host: started before connect_timeout, so the real server's
		{"10.0.0.21", 2525, Seconds(7)},
		{"10.0.0.22", 8080, Seconds(5)}, // second SMTP_CHECK: its own options
		{"10.0.0.22", 26, Seconds(5)},   // its host inherits connect_ip written before it
	}
	if len(cks) != len(wants) {
		t.Fatalf("%d checkers, want %d", len(cks), len(wants))
	}
	for i, w := range wants {
		ck := cks[i]
		if ck.Conn.ConnectIP.String() != w.ip || ck.Conn.ConnectPort != w.port || ck.Timing.ConnectTimeout != w.timeout {
			t.Errorf("checker %d: %s:%d timeout %v, want %s:%d %v", i, ck.Conn.ConnectIP, ck.Conn.ConnectPort, ck.Timing.ConnectTimeout, w.ip, w.port, w.timeout)
		}
		if i < 3 && (ck.SMTP.HeloName != "mx.example" || ck.Timing.Retry != 4) {
			t.Errorf("checker %d: helo %q retry %d", i, ck.SMTP.HeloName, ck.Timing.Retry)
		}
	}
	// The first host started before connect_timeout was written: the timeout it has is
	// inherited at resolution, not written in the host.
	if cks[1].Set.Has("connect_timeout") || !cks[2].Set.Has("connect_timeout") {
		t.Errorf("host keys: %v / %v", cks[1].Set, cks[2].Set)
	}
}

func TestCheckerTypes(t *testing.T) {
	cks, diags := checkersOf(t, `UDP_CHECK {
  require_reply
}
DNS_CHECK {
  type mx
}
PING_CHECK {
}
FILE_CHECK {
  track_file tf
}
FILE_CHECK {
  track_file tf
  weight 5 noreverse
}
MISC_CHECK {
  misc_path "/bin/true a 'b c'" nobody
  user daemon
}
BFD_CHECK {
  name b1
}`)
	if !strings.Contains(diags, "error: BFD_CHECK is not supported by gokeepalived; the real server gets no BFD checker") {
		t.Errorf("diagnostics %q", diags)
	}
	if len(cks) != 6 {
		t.Fatalf("%d checkers, want 6 (BFD dropped)", len(cks))
	}
	if u := cks[0].UDP; !u.RequireReply || u.Reply != nil || u.MaxReplyLength != 255 || u.MinReplyLength != 0 {
		t.Errorf("UDP_CHECK: %+v", u)
	}
	if d := cks[1]; d.DNS.Type != "MX" || d.DNS.Name != "." {
		t.Errorf("DNS_CHECK: %+v", d.DNS)
	}
	if p := cks[2].Conn; p.ConnectPort != 0 || p.ConnectIP.String() != "10.0.0.2" {
		t.Errorf("PING_CHECK conn: %+v", p)
	}
	if f := cks[3].File; f.Weight != 3 || !f.Reverse || cks[3].Timing != nil || cks[3].Conn != nil {
		t.Errorf("FILE_CHECK without weight: %+v", f)
	}
	if f := cks[4].File; f.Weight != 5 || f.Reverse {
		t.Errorf("FILE_CHECK weight 5 noreverse: %+v", f)
	}
	if m := cks[5].Misc.Path; strings.Join(m.Args, "|") != "/bin/true|a|b c" || m.User != "daemon" || cks[5].Conn != nil {
		t.Errorf("MISC_CHECK: %+v", m)
	}
}

func TestLVSScripts(t *testing.T) {
	cfg, _ := loadLVS(t, `virtual_server 10.0.0.1 80 {
  lvs_sched rr
  protocol TCP
  quorum_up /bin/up
  quorum_down /bin/down
  real_server 10.0.0.2 80 {
    notify_up /bin/rs-up
    notify_down /bin/rs-down
    MISC_CHECK {
      misc_path /bin/check
    }
  }
}`)
	var got []string
	for _, s := range cfg.lvsScripts() {
		got = append(got, s.Path())
	}
	if strings.Join(got, " ") != "/bin/up /bin/down /bin/rs-up /bin/rs-down /bin/check" {
		t.Errorf("lvsScripts: %v", got)
	}
}

// TestTCPCheckClose checks global_defs tcp_check_close: the TCP_CHECKs of every real
// server reset their connections unless it says fin; other values are errors.
func TestTCPCheckClose(t *testing.T) {
	vs := "virtual_server 10.0.0.1 80 {\n lvs_sched rr\n protocol TCP\n real_server 10.0.0.2 8080 {\n TCP_CHECK {\n }\n HTTP_GET {\n url {\n path /\n }\n }\n }\n}\n"
	for _, tc := range []struct {
		global   string
		wantFIN  bool
		wantDiag string
	}{
		{"", false, ""},
		{"tcp_check_close rst", false, ""},
		{"tcp_check_close fin", true, ""},
		{"tcp_check_close linger", false, "linger"},
	} {
		cfg, diags := loadLVS(t, "global_defs {\n "+tc.global+"\n}\n"+vs)
		cks := cfg.VirtualServers[0].RealServers[0].Checkers
		if got := cks[0].Conn.CloseFIN; got != tc.wantFIN {
			t.Errorf("%q: TCP_CHECK CloseFIN = %v, want %v", tc.global, got, tc.wantFIN)
		}
		if cks[1].Conn.CloseFIN {
			t.Errorf("%q: HTTP_GET has CloseFIN; only TCP_CHECK closes at once", tc.global)
		}
		if tc.wantDiag == "" && diags != "" || tc.wantDiag != "" && !strings.Contains(diags, tc.wantDiag) {
			t.Errorf("%q: diagnostics %q, want %q", tc.global, diags, tc.wantDiag)
		}
	}
}
