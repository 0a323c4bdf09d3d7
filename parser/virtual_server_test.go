package parser

import (
	"net/netip"
	"strings"
	"testing"
)

// loadLVS parses conf and returns the config and the diagnostics joined one a line.
func loadLVS(t *testing.T, conf string) (*Config, string) {
	t.Helper()
	cfg, ds := LoadBytes("t.conf", []byte(conf), testOptions())
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	return cfg, b.String()
}

// oneVS parses conf, which must yield exactly one virtual server.
func oneVS(t *testing.T, conf string) (*VirtualServer, string) {
	t.Helper()
	cfg, diags := loadLVS(t, conf)
	if len(cfg.VirtualServers) != 1 {
		t.Fatalf("want 1 virtual server, got %d\n%s", len(cfg.VirtualServers), diags)
	}
	return cfg.VirtualServers[0], diags
}

func TestVirtualServerDefaults(t *testing.T) {
	vs, diags := oneVS(t, "virtual_server 10.0.0.1 80 {\n lvs_sched rr\n protocol TCP\n real_server 10.0.0.2 {\n }\n}\n")
	if diags != "" {
		t.Fatalf("unexpected diagnostics:\n%s", diags)
	}
	rs := vs.RealServers[0]
	switch {
	case vs.Protocol != "TCP", vs.Forwarding.Method != "NAT", vs.DelayLoop != Seconds(60),
		vs.ConnectTimeout != Seconds(5), vs.Quorum != 1, vs.Hysteresis != 0, vs.PersistenceTimeout != 0,
		vs.Retry != nil, vs.DelayBeforeRetry != nil, vs.Warmup != nil, vs.SMTPAlert:
		t.Errorf("virtual server defaults: %+v", vs)
	case rs.Port != 80, rs.Weight != 1, rs.Forwarding.Method != "NAT", !rs.SMTPAlert, rs.DelayLoop != Seconds(60):
		t.Errorf("real server defaults: %+v", rs)
	}
}

func TestVirtualServerHeader(t *testing.T) {
	tests := []struct {
		head, body string
		want       func(*VirtualServer) bool
		diag       string // substring of the diagnostics, "" for none
	}{
		{"10.0.0.1 80", "", func(vs *VirtualServer) bool { return vs.Addr == netip.MustParseAddr("10.0.0.1") && vs.Port == 80 }, ""},
		{"2001:db8::1 443", "", func(vs *VirtualServer) bool { return vs.IPFamily == "inet6" && vs.Port == 443 }, ""},
		{"fwmark 7", "", func(vs *VirtualServer) bool { return vs.FWMark == 7 && vs.Protocol == "" && vs.IPFamily == "inet" }, "'protocol' has no effect"},
		// The only real server is dropped, and with it the virtual server.
		{"fwmark 7", "ip_family inet6", nil, "real_server 10.0.0.2 is IPv4 but the virtual server is IPv6"},
		{"10.0.0.1 80 extra", "", func(vs *VirtualServer) bool { return vs.Port == 80 }, "extra arguments to 'virtual_server' ignored"},
		{"10.0.0.1 65536", "", nil, "65536 is outside [0, 65535]"},
		{"fwmark 0", "", nil, "0 is outside [1, 4294967295]"},
		{"host.example 80", "", nil, `"host.example" is not an IP address`},
		{"", "", nil, "'virtual_server' needs 'IP [PORT]', 'fwmark N' or 'group NAME'"},
	}
	for _, tt := range tests {
		t.Run(tt.head+tt.body, func(t *testing.T) {
			rs := "10.0.0.2"
			if strings.Contains(tt.head, ":") {
				rs = "2001:db8::2"
			}
			cfg, diags := loadLVS(t, "virtual_server "+tt.head+" {\n lvs_sched rr\n protocol TCP\n"+tt.body+"\n real_server "+rs+" 80 {\n }\n}\n")
			if tt.diag == "" && diags != "" || !strings.Contains(diags, tt.diag) {
				t.Errorf("diagnostics %q, want %q", diags, tt.diag)
			}
			if tt.want == nil {
				if len(cfg.VirtualServers) != 0 {
					t.Errorf("virtual server kept: %+v", cfg.VirtualServers[0])
				}
				return
			}
			if len(cfg.VirtualServers) != 1 || !tt.want(cfg.VirtualServers[0]) {
				t.Errorf("unexpected model %+v", cfg.VirtualServers)
			}
		})
	}
}

func TestPersistence(t *testing.T) {
	tests := []struct {
		lines   string
		timeout uint32
		gran    int
		diag    string
	}{
		{"persistence_timeout", 360, 0, ""},
		{"persistence_timeout 50", 50, 0, ""},
		{"persistence_timeout 2678401", 0, 0, "outside [1, 2678400]"},
		{"persistence_timeout 60\npersistence_granularity 255.255.255.0", 60, 24, ""},
		{"persistence_timeout 60\npersistence_granularity 255.255.255.255", 60, 32, ""},
		{"persistence_timeout 60\npersistence_granularity 255.0.255.0", 60, 0, "not an IPv4 netmask"},
		{"persistence_timeout 60\npersistence_granularity 24", 60, 0, "not an IPv4 netmask"},
		{"persistence_granularity 255.255.0.0", 360, 16, "without persistence_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.lines, func(t *testing.T) {
			vs, diags := oneVS(t, "virtual_server 10.0.0.1 80 {\n lvs_sched rr\n protocol TCP\n"+tt.lines+"\n real_server 10.0.0.2 80 {\n }\n}\n")
			if tt.diag == "" && diags != "" || !strings.Contains(diags, tt.diag) {
				t.Errorf("diagnostics %q, want %q", diags, tt.diag)
			}
			if vs.PersistenceTimeout != tt.timeout || vs.PersistenceGranularity != tt.gran {
				t.Errorf("timeout %d granularity %d, want %d %d", vs.PersistenceTimeout, vs.PersistenceGranularity, tt.timeout, tt.gran)
			}
		})
	}
	vs, _ := oneVS(t, "virtual_server 2001:db8::1 80 {\n lvs_sched rr\n protocol TCP\n persistence_timeout 9\n persistence_granularity 48\n real_server 2001:db8::2 80 {\n }\n}\n")
	if vs.PersistenceGranularity != 48 {
		t.Errorf("IPv6 granularity %d, want 48", vs.PersistenceGranularity)
	}
}

func TestForwarding(t *testing.T) {
	tests := []struct {
		args string
		want Forwarding
		diag string
	}{
		{"NAT", Forwarding{Method: "NAT"}, ""},
		{"DR", Forwarding{Method: "DR"}, ""},
		{"TUN", Forwarding{Method: "TUN", TunType: "ipip"}, ""},
		{"TUN type gre", Forwarding{Method: "TUN", TunType: "gre"}, ""},
		{"TUN type gre csum", Forwarding{Method: "TUN", TunType: "gre", TunCsum: "csum"}, ""},
		{"TUN type gue port 6080", Forwarding{Method: "TUN", TunType: "gue", TunPort: 6080}, ""},
		{"TUN type gue port 6080 remcsum", Forwarding{Method: "TUN", TunType: "gue", TunPort: 6080, TunCsum: "remcsum"}, ""},
		{"nat", Forwarding{}, "did you mean 'NAT'?"},
		{"TUN type gue", Forwarding{}, "needs 'port N'"},
		{"TUN type gue port 0", Forwarding{}, "0 is outside [1, 65535]"},
		{"TUN type ipip nocsum", Forwarding{}, "need tunnel type gue or gre"},
		{"TUN type gre remcsum", Forwarding{}, "unknown value 'remcsum'"},
		{"TUN typo gre", Forwarding{}, "expected 'type ipip'"},
		{"DR now", Forwarding{Method: "DR"}, "extra arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			c := &ctx{ds: &diagSet{}, cfg: &Config{}}
			s := &Stmt{Key: "lvs_method"}
			for _, w := range strings.Fields(tt.args) {
				s.Args = append(s.Args, Arg{text: w})
			}
			got, ok := c.forwarding(s)
			var diags string
			for _, d := range c.ds.list {
				diags += d.Msg + "\n"
			}
			if tt.diag == "" && diags != "" || !strings.Contains(diags, tt.diag) {
				t.Errorf("diagnostics %q, want %q", diags, tt.diag)
			}
			if ok != (tt.want.Method != "") || got != tt.want {
				t.Errorf("got %+v %v, want %+v", got, ok, tt.want)
			}
		})
	}
}

func TestSchedulerAndFlags(t *testing.T) {
	vs, diags := oneVS(t, "virtual_server 10.0.0.1 80 {\n protocol UDP\n ops\n sh-port\n flag-2\n mh-port\n lb_algo sh\n real_server 10.0.0.2 80 {\n }\n}\n")
	if vs.Scheduler != "sh" || !vs.OPS || strings.Join(vs.SchedFlags, ",") != "sh-port,flag-2" {
		t.Errorf("scheduler %q flags %v ops %v", vs.Scheduler, vs.SchedFlags, vs.OPS)
	}
	if !strings.Contains(diags, "t.conf:6:2: warning: 'mh-port' only applies to the mh scheduler") {
		t.Errorf("diagnostics %q", diags)
	}
	vs, diags = oneVS(t, "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n }\n}\n")
	if vs.Scheduler != "wlc" || !strings.Contains(diags, "t.conf:1:1: error: virtual_server 10.0.0.1 port 80 has no scheduler (lvs_sched); using wlc") {
		t.Errorf("scheduler %q, diagnostics %q", vs.Scheduler, diags)
	}
	// An invalid scheduler is reported once, not again as a missing one.
	vs, diags = oneVS(t, "virtual_server 10.0.0.1 80 {\n lvs_sched RR\n protocol TCP\n real_server 10.0.0.2 80 {\n }\n}\n")
	if vs.Scheduler != "wlc" || strings.Count(diags, "\n") != 1 || !strings.Contains(diags, "did you mean 'rr'?") {
		t.Errorf("scheduler %q, diagnostics %q", vs.Scheduler, diags)
	}
}

func TestProtocol(t *testing.T) {
	for in, want := range map[string]string{"tcp": "TCP", "Udp": "UDP", "SCTP": "SCTP"} {
		vs, diags := oneVS(t, "virtual_server 10.0.0.1 80 {\n lvs_sched rr\n protocol "+in+"\n real_server 10.0.0.2 80 {\n }\n}\n")
		if vs.Protocol != want || diags != "" {
			t.Errorf("protocol %s: got %q, diagnostics %q", in, vs.Protocol, diags)
		}
	}
	vs, diags := oneVS(t, "virtual_server 10.0.0.1 80 {\n lvs_sched rr\n real_server 10.0.0.2 80 {\n }\n}\n")
	if vs.Protocol != "TCP" || !strings.Contains(diags, "warning: virtual_server 10.0.0.1 port 80 has no protocol; using TCP") {
		t.Errorf("no protocol: got %q, diagnostics %q", vs.Protocol, diags)
	}
}

// TestInheritance follows each inherited value from the virtual server down to a checker.
func TestInheritance(t *testing.T) {
	conf := `
global_defs {
    smtp_alert off
}
virtual_server 10.0.0.1 80 {
    lvs_sched rr
    protocol TCP
    delay_loop 10
    connect_timeout 2
    retry 5
    alpha
    inhibit_on_failure
    virtualhost vs.example
    weight 4
    real_server 10.0.0.2 80 {
        delay_before_retry 7
        HTTP_GET {
            url {
                path /
            }
        }
        DNS_CHECK {
            delay_loop 30
            retry 2
        }
    }
    real_server 10.0.0.3 80 {
        weight 1
        warmup 1
        alpha off
        inhibit_on_failure no
        virtualhost rs.example
        smtp_alert on
        connect_timeout 9
        SSL_GET {
            url {
                path /
                virtualhost url.example
            }
            url {
                path /b
            }
        }
        MISC_CHECK {
            misc_path /bin/true
            delay_loop 8
        }
    }
}
virtual_server 10.0.0.1 81 {
    lvs_sched rr
    protocol TCP
    real_server 10.0.0.2 81 {
        DNS_CHECK {
        }
        HTTP_GET {
            url {
                path /
            }
        }
        TCP_CHECK {
            delay_loop 4
        }
    }
}
`
	cfg, diags := loadLVS(t, conf)
	if strings.Contains(diags, "error") {
		t.Fatalf("unexpected errors:\n%s", diags)
	}
	vs := cfg.VirtualServers[0]
	rs2, rs3 := vs.RealServers[0], vs.RealServers[1]
	if !rs2.Alpha || !rs2.InhibitOnFailure || rs2.Virtualhost != "vs.example" || rs2.Weight != 4 ||
		rs2.DelayLoop != Seconds(10) || rs2.ConnectTimeout != Seconds(2) || *rs2.Retry != 5 || rs2.SMTPAlert {
		t.Errorf("real server 10.0.0.2 did not inherit: %+v", rs2)
	}
	if rs3.Alpha || rs3.InhibitOnFailure || rs3.Virtualhost != "rs.example" || rs3.Weight != 1 || !rs3.SMTPAlert ||
		rs3.ConnectTimeout != Seconds(9) || rs3.Set.Has("delay_loop") || !rs3.Set.Has("connect_timeout") {
		t.Errorf("real server 10.0.0.3 overrides lost: %+v", rs3)
	}
	timing := func(ck *Checker) CheckTiming { return *ck.Timing }
	tests := []struct {
		name string
		ck   *Checker
		want CheckTiming
	}{
		{"HTTP_GET: delay_before_retry from the real server", rs2.Checkers[0],
			CheckTiming{DelayLoop: Seconds(10), ConnectTimeout: Seconds(2), Retry: 5, DelayBeforeRetry: Seconds(7), Warmup: Seconds(10)}},
		{"DNS_CHECK: own delay_loop and retry", rs2.Checkers[1],
			CheckTiming{DelayLoop: Seconds(30), ConnectTimeout: Seconds(2), Retry: 2, DelayBeforeRetry: Seconds(7), Warmup: Seconds(30)}},
		{"SSL_GET: warmup from the real server", rs3.Checkers[0],
			CheckTiming{DelayLoop: Seconds(10), ConnectTimeout: Seconds(9), Retry: 5, DelayBeforeRetry: Seconds(3), Warmup: Seconds(1)}},
		{"MISC_CHECK: retry from the virtual server", rs3.Checkers[1],
			CheckTiming{DelayLoop: Seconds(8), ConnectTimeout: Seconds(9), Retry: 5, DelayBeforeRetry: Seconds(1), Warmup: Seconds(1)}},
		{"DNS_CHECK defaults: retry 3, delay_before_retry = delay_loop", cfg.VirtualServers[1].RealServers[0].Checkers[0],
			CheckTiming{DelayLoop: Seconds(60), ConnectTimeout: Seconds(5), Retry: 3, DelayBeforeRetry: Seconds(60), Warmup: Seconds(60)}},
		{"HTTP_GET defaults: delay_before_retry 3", cfg.VirtualServers[1].RealServers[0].Checkers[1],
			CheckTiming{DelayLoop: Seconds(60), ConnectTimeout: Seconds(5), Retry: 1, DelayBeforeRetry: Seconds(3), Warmup: Seconds(60)}},
		{"TCP_CHECK defaults: warmup = own delay_loop", cfg.VirtualServers[1].RealServers[0].Checkers[2],
			CheckTiming{DelayLoop: Seconds(4), ConnectTimeout: Seconds(5), Retry: 1, DelayBeforeRetry: Seconds(1), Warmup: Seconds(4)}},
	}
	for _, tt := range tests {
		if got := timing(tt.ck); got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
	if ck := rs2.Checkers[0]; !ck.Alpha || ck.HTTP.Virtualhost != "vs.example" || ck.HTTP.URLs[0].Virtualhost != "vs.example" ||
		ck.Conn.ConnectIP != rs2.Addr || ck.Conn.ConnectPort != 80 {
		t.Errorf("HTTP_GET of 10.0.0.2: %+v %+v", ck, ck.HTTP)
	}
	if h := rs3.Checkers[0].HTTP; h.Virtualhost != "rs.example" || h.URLs[0].Virtualhost != "url.example" || h.URLs[1].Virtualhost != "rs.example" {
		t.Errorf("SSL_GET virtualhosts: checker %q urls %q %q", h.Virtualhost, h.URLs[0].Virtualhost, h.URLs[1].Virtualhost)
	}
	if m := rs3.Checkers[1].Misc; m.Timeout != Seconds(8) {
		t.Errorf("misc_timeout %v, want the checker's delay_loop", m.Timeout)
	}
	if rs3.Checkers[1].Alpha {
		t.Errorf("MISC_CHECK alpha should come from real server 10.0.0.3 (off)")
	}
}

func TestRealServerPorts(t *testing.T) {
	cfg, diags := loadLVS(t, `
virtual_server 10.0.0.1 80 {
    lvs_sched rr
    protocol TCP
    lvs_method DR
    real_server 10.0.0.2 {
    }
    real_server 10.0.0.3 8080 {
    }
    real_server 10.0.0.4 8080 {
        lvs_method NAT
    }
    real_server 10.0.0.2 80 {
    }
}
virtual_server fwmark 1 {
    lvs_sched rr
    lvs_method DR
    real_server 10.0.0.2 80 {
    }
}
`)
	rss := cfg.VirtualServers[0].RealServers
	if len(rss) != 3 || rss[0].Port != 80 || rss[1].Port != 80 || rss[2].Port != 8080 {
		t.Errorf("ports: %+v", rss)
	}
	for _, want := range []string{
		"t.conf:8:5: warning: real_server 10.0.0.3: port 8080 differs from the virtual server's 80",
		"t.conf:13:5: error: duplicate real_server 10.0.0.2 port 80",
		"t.conf:19:5: warning: real_server 10.0.0.2: a port is meaningless for a fwmark service",
	} {
		if !strings.Contains(diags, want) {
			t.Errorf("missing %q in\n%s", want, diags)
		}
	}
	if p := cfg.VirtualServers[1].RealServers[0].Port; p != 0 {
		t.Errorf("fwmark DR real server port %d, want 0", p)
	}
}

func TestQuorum(t *testing.T) {
	vs, diags := oneVS(t, "virtual_server 10.0.0.1 80 {\n lvs_sched rr\n protocol TCP\n quorum 5\n hysteresis 4\n real_server 10.0.0.2 80 {\n weight 2\n }\n real_server 10.0.0.3 80 {\n }\n}\n")
	if vs.Quorum != 3 || vs.Hysteresis != 2 {
		t.Errorf("quorum %d hysteresis %d, want 3 2", vs.Quorum, vs.Hysteresis)
	}
	if !strings.Contains(diags, "t.conf:4:2: warning: quorum 5 of virtual_server 10.0.0.1 port 80 exceeds the total weight 3") ||
		!strings.Contains(diags, "t.conf:5:2: warning: hysteresis 4 is not below quorum 3; hysteresis set to 2") {
		t.Errorf("diagnostics %q", diags)
	}
}

func TestGroupRanges(t *testing.T) {
	tests := []struct {
		in, first, last, err string
	}{
		{"10.0.0.1", "10.0.0.1", "10.0.0.1", ""},
		{"192.168.200.3-10", "192.168.200.3", "192.168.200.10", ""},
		{"192.168.200.250-192.168.201.10", "192.168.200.250", "192.168.201.10", ""},
		{"192.168.202.8/29", "192.168.202.8", "192.168.202.15", ""},
		{"10.0.0.0/8", "10.0.0.0", "10.255.255.255", ""},
		{"ae00::2-a", "ae00::2", "ae00::a", ""},
		{"ae00::1:2-1ff", "ae00::1:2", "ae00::1:1ff", ""},
		{"ae00::/112", "ae00::", "ae00::ffff", ""},
		{"ae00::ff00/120", "ae00::ff00", "ae00::ffff", ""},
		{"10.0.0.5-5", "", "", "must be a number above 5"},
		{"10.0.0.5-256", "", "", "at most 255"},
		{"10.0.0.5-x", "", "", "must be a number above 5"},
		{"10.0.0.9-10.0.0.1", "", "", "ends before it starts"},
		{"10.0.0.1-::1", "", "", "mixes IPv4 and IPv6"},
		{"10.0.0.1/24", "", "", "host bits set (use 10.0.0.0/24)"},
		{"10.0.0.0/33", "", "", "not an address/prefix-length"},
		{"ae00::9-9", "", "", "hex number above 9"},
		{"nope", "", "", "not an IP address"},
	}
	for _, tt := range tests {
		first, last, msg := parseAddrRange(tt.in)
		if tt.err != "" {
			if !strings.Contains(msg, tt.err) {
				t.Errorf("%s: message %q, want %q", tt.in, msg, tt.err)
			}
			continue
		}
		if msg != "" || first.String() != tt.first || last.String() != tt.last {
			t.Errorf("%s: got %s-%s %q, want %s-%s", tt.in, first, last, msg, tt.first, tt.last)
		}
	}
}

func TestGroupFamilies(t *testing.T) {
	cfg, diags := loadLVS(t, `
virtual_server_group V4 {
    10.0.0.1 80
}
virtual_server_group MIX {
    10.0.0.1 80
    fwmark 3 inet6
}
virtual_server_group MARKS {
    fwmark 3
}
virtual_server group V4 {
    lvs_sched rr
    protocol TCP
    real_server 2001:db8::2 80 {
    }
    real_server 10.0.0.2 80 {
    }
}
virtual_server group MIX {
    lvs_sched rr
    protocol TCP
    real_server 2001:db8::2 80 {
        lvs_method TUN
    }
}
virtual_server group MARKS {
    lvs_sched rr
    lvs_method DR
    real_server 2001:db8::2 {
    }
}
`)
	vss := cfg.VirtualServers
	if len(vss) != 3 || vss[0].IPFamily != "inet" || vss[1].IPFamily != "" || vss[2].IPFamily != "inet6" || vss[2].Protocol != "" {
		t.Fatalf("families: %+v\n%s", vss, diags)
	}
	if len(vss[0].RealServers) != 1 || !strings.Contains(diags, "t.conf:15:5: error: real_server 2001:db8::2 is IPv6 but the virtual server is IPv4") {
		t.Errorf("family mismatch not reported: %s", diags)
	}
}

// TestSorryServer checks that sorry_server_inhibit and sorry_server_lvs_method apply
// wherever they are written in the block (keepalived ignores them before sorry_server).
func TestSorryServer(t *testing.T) {
	vs, diags := oneVS(t, "virtual_server 10.0.0.1 80 {\n lvs_sched rr\n protocol TCP\n lvs_method DR\n sorry_server_inhibit\n sorry_server_lvs_method TUN\n sorry_server 10.0.0.9\n real_server 10.0.0.2 80 {\n }\n}\n")
	ss := vs.SorryServer
	if diags != "" || ss == nil || !ss.Inhibit || ss.Forwarding.Method != "TUN" || ss.Port != 80 {
		t.Errorf("sorry server %+v, diagnostics %q", ss, diags)
	}
	vs, _ = oneVS(t, "virtual_server 10.0.0.1 80 {\n lvs_sched rr\n protocol TCP\n lvs_method DR\n sorry_server 10.0.0.9 8080\n real_server 10.0.0.2 80 {\n }\n}\n")
	if ss := vs.SorryServer; ss.Inhibit || ss.Forwarding.Method != "DR" || ss.Port != 80 {
		t.Errorf("sorry server defaults: %+v", ss)
	}
}
