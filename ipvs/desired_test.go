package ipvs

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// poolConf is a virtual server with the given extra keywords and real servers
// 10.0.0.2, .3, .4 (port 80) with the given bodies.
func poolConf(vs string, rs ...string) string {
	var b strings.Builder
	b.WriteString("virtual_server 10.0.0.1 80 {\nlb_algo wrr\nprotocol TCP\n" + vs + "\n")
	for i, body := range rs {
		fmt.Fprintf(&b, "real_server 10.0.0.%d 80 {\n%s\n}\n", i+2, body)
	}
	b.WriteString("}\n")
	return b.String()
}

var poolVS = VirtualServerKey{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Protocol: TCP, Family: IPv4}

// health builds a HealthView of the pool's real servers: "10.0.0.2" -> state.
func health(rs map[string]RSHealth, quorum ...bool) HealthView {
	h := HealthView{RealServers: map[RealServerKey]RSHealth{}}
	for a, st := range rs {
		h.RealServers[RealServerKey{VS: poolVS, Addr: netip.MustParseAddr(a), Port: 80}] = st
	}
	if len(quorum) > 0 {
		h.Quorum = map[VirtualServerKey]bool{poolVS: quorum[0]}
	}
	return h
}

var (
	up   = RSHealth{Up: true}
	down = RSHealth{Up: false}
)

// TestPool has one row per keepalived pool rule (keepalived.md §2.4 and
// keepalived.conf(5)).
func TestPool(t *testing.T) {
	tcpCheck := "TCP_CHECK {\nconnect_timeout 1\n}"
	tests := []struct {
		name     string
		conf     string
		health   HealthView
		want     []string // destinations, in order
		quorumUp bool
		sorry    bool
		weight   int64
	}{
		{
			name: "§2.4 real server without checkers is live at its configured weight",
			conf: poolConf("", "weight 1", "weight 2", "weight 0"),
			want: []string{"10.0.0.2:80 NAT weight 1", "10.0.0.3:80 NAT weight 2", "10.0.0.4:80 NAT weight 0"}, quorumUp: true, weight: 3,
		},
		{
			name: "§2.4 weight defaults to the virtual server's weight",
			conf: poolConf("weight 4", "", "weight 2"),
			want: []string{"10.0.0.2:80 NAT weight 4", "10.0.0.3:80 NAT weight 2"}, quorumUp: true, weight: 6,
		},
		{
			name: "§2.4 real server up before any report when no checker has alpha",
			conf: poolConf("", tcpCheck),
			want: []string{"10.0.0.2:80 NAT weight 1"}, quorumUp: true, weight: 1,
		},
		{
			name: "§2.4 alpha: real server starts down until its checkers report",
			conf: poolConf("alpha", tcpCheck, tcpCheck),
			want: nil, quorumUp: false,
		},
		{
			name:   "§2.4 alpha: real server up once its checkers succeed",
			conf:   poolConf("alpha", tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.3": up}),
			want:   []string{"10.0.0.3:80 NAT weight 1"}, quorumUp: true, weight: 1,
		},
		{
			name: "§2.4 alpha on a real server without checkers has nothing to wait for",
			conf: poolConf("", "alpha"),
			want: []string{"10.0.0.2:80 NAT weight 1"}, quorumUp: true, weight: 1,
			health: HealthView{},
		},
		{
			name:   "§2.4 real server down: removed from the pool",
			conf:   poolConf("", tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.2": down}),
			want:   []string{"10.0.0.3:80 NAT weight 1"}, quorumUp: true, weight: 1,
		},
		{
			name:   "§2.4 inhibit_on_failure: real server down kept at weight 0",
			conf:   poolConf("", "weight 5\ninhibit_on_failure\n"+tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.2": down}),
			want:   []string{"10.0.0.2:80 NAT weight 0", "10.0.0.3:80 NAT weight 1"}, quorumUp: true, weight: 1,
		},
		{
			name:   "§2.4 inhibit_on_failure inherited from the virtual server",
			conf:   poolConf("inhibit_on_failure", tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.2": down}),
			want:   []string{"10.0.0.2:80 NAT weight 0"}, quorumUp: false,
		},
		{
			name:   "§2.5 misc_dynamic: the reported weight replaces the configured one",
			conf:   poolConf("", "weight 3", "weight 3"),
			health: health(map[string]RSHealth{"10.0.0.2": {Up: true, Weight: intp(7)}}),
			want:   []string{"10.0.0.2:80 NAT weight 7", "10.0.0.3:80 NAT weight 3"}, quorumUp: true, weight: 10,
		},
		{
			name:   "§2.5 misc_dynamic: weights capped to 0..65535",
			conf:   poolConf("", "", ""),
			health: health(map[string]RSHealth{"10.0.0.2": {Up: true, Weight: intp(70000)}, "10.0.0.3": {Up: true, Weight: intp(-4)}}),
			want:   []string{"10.0.0.2:80 NAT weight 65535", "10.0.0.3:80 NAT weight 0"}, quorumUp: true, weight: 65535,
		},
		{
			name: "§2.4 quorum: starts up when the live weight reaches quorum + hysteresis",
			conf: poolConf("quorum 2\nhysteresis 1", "", "", ""),
			want: []string{"10.0.0.2:80 NAT weight 1", "10.0.0.3:80 NAT weight 1", "10.0.0.4:80 NAT weight 1"}, quorumUp: true, weight: 3,
		},
		{
			name:   "§2.4 quorum: starts down below quorum + hysteresis",
			conf:   poolConf("quorum 2\nhysteresis 1", tcpCheck, tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.4": down}),
			want:   []string{"10.0.0.2:80 NAT weight 1", "10.0.0.3:80 NAT weight 1"}, quorumUp: false, weight: 2,
		},
		{
			name:   "§2.4 hysteresis: quorum kept while the live weight is at least quorum - hysteresis",
			conf:   poolConf("quorum 2\nhysteresis 1", tcpCheck, tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.3": down, "10.0.0.4": down}, true),
			want:   []string{"10.0.0.2:80 NAT weight 1"}, quorumUp: true, weight: 1,
		},
		{
			name:   "§2.4 hysteresis: quorum lost below quorum - hysteresis",
			conf:   poolConf("quorum 3\nhysteresis 1", tcpCheck, tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.3": down, "10.0.0.4": down}, true),
			want:   []string{"10.0.0.2:80 NAT weight 1"}, quorumUp: false, weight: 1,
		},
		{
			name:   "§2.4 hysteresis: quorum stays lost below quorum + hysteresis",
			conf:   poolConf("quorum 2\nhysteresis 1", tcpCheck, tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.4": down}, false),
			want:   []string{"10.0.0.2:80 NAT weight 1", "10.0.0.3:80 NAT weight 1"}, quorumUp: false, weight: 2,
		},
		{
			name:   "§2.4 hysteresis: quorum gained at quorum + hysteresis",
			conf:   poolConf("quorum 2\nhysteresis 1", tcpCheck, tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{}, false),
			want:   []string{"10.0.0.2:80 NAT weight 1", "10.0.0.3:80 NAT weight 1", "10.0.0.4:80 NAT weight 1"}, quorumUp: true, weight: 3,
		},
		{
			name:   "§2.4 quorum lost when no weight is live, even if quorum - hysteresis is 0",
			conf:   poolConf("quorum 1\nhysteresis 0", "weight 0\n"+tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.3": down}, true),
			want:   []string{"10.0.0.2:80 NAT weight 0"}, quorumUp: false, weight: 0,
		},
		{
			name:   "§2.4 quorum lost without a sorry_server: the pool is left as the checks say",
			conf:   poolConf("quorum 2", tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.3": down}, true),
			want:   []string{"10.0.0.2:80 NAT weight 1"}, quorumUp: false, weight: 1,
		},
		{
			name:   "§2.4 sorry_server: quorum lost, every real server removed and the sorry server added",
			conf:   poolConf("quorum 2\nsorry_server 10.0.0.9 8080", tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.3": down}, true),
			want:   []string{"10.0.0.9:8080 NAT weight 1"}, quorumUp: false, sorry: true, weight: 1,
		},
		{
			name:   "§2.4 sorry_server: not in the pool while the quorum is up",
			conf:   poolConf("quorum 2\nsorry_server 10.0.0.9 8080", tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{}, false),
			want:   []string{"10.0.0.2:80 NAT weight 1", "10.0.0.3:80 NAT weight 1"}, quorumUp: true, weight: 2,
		},
		{
			name:   "§2.4 sorry_server with inhibit_on_failure real servers: they stay at weight 0",
			conf:   poolConf("quorum 2\nsorry_server 10.0.0.9 8080\ninhibit_on_failure", tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.3": down}, true),
			want:   []string{"10.0.0.2:80 NAT weight 0", "10.0.0.3:80 NAT weight 0", "10.0.0.9:8080 NAT weight 1"}, quorumUp: false, sorry: true, weight: 1,
		},
		{
			name:   "§2.4 sorry_server_inhibit: the sorry server stays at weight 0 while the quorum is up",
			conf:   poolConf("quorum 2\nsorry_server 10.0.0.9 8080\nsorry_server_inhibit", tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{}, true),
			want:   []string{"10.0.0.2:80 NAT weight 1", "10.0.0.3:80 NAT weight 1", "10.0.0.9:8080 NAT weight 0"}, quorumUp: true, weight: 2,
		},
		{
			name:   "§2.4 sorry_server_inhibit: weight 1 once the quorum is lost",
			conf:   poolConf("quorum 2\nsorry_server 10.0.0.9 8080\nsorry_server_inhibit", tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.2": down}, true),
			want:   []string{"10.0.0.9:8080 NAT weight 1"}, quorumUp: false, sorry: true, weight: 1,
		},
		{
			name:   "§2.4 sorry_server_lvs_method: DR sorry server in a NAT pool",
			conf:   poolConf("quorum 2\nsorry_server 10.0.0.9 80\nsorry_server_lvs_method DR", tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.2": down}, true),
			want:   []string{"10.0.0.9:80 DR weight 1"}, quorumUp: false, sorry: true, weight: 1,
		},
		{
			name:   "§2.4 sorry_server sharing a real server's address replaces it while active",
			conf:   poolConf("quorum 2\nsorry_server 10.0.0.2 80\nsorry_server_inhibit\ninhibit_on_failure", "weight 5\n"+tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{"10.0.0.2": down, "10.0.0.3": down}, true),
			want:   []string{"10.0.0.2:80 NAT weight 1", "10.0.0.3:80 NAT weight 0"}, quorumUp: false, sorry: true, weight: 0,
		},
		{
			name:   "§2.4 sorry_server sharing a real server's address: the real server wins while the quorum is up",
			conf:   poolConf("quorum 2\nsorry_server 10.0.0.2 80\nsorry_server_inhibit", "weight 5\n"+tcpCheck, tcpCheck),
			health: health(map[string]RSHealth{}, true),
			want:   []string{"10.0.0.2:80 NAT weight 5", "10.0.0.3:80 NAT weight 1"}, quorumUp: true, weight: 6,
		},
		{
			name: "§2.4 uthreshold and lthreshold are carried to the destination",
			conf: poolConf("", "uthreshold 100\nlthreshold 10"),
			want: []string{"10.0.0.2:80 NAT weight 1 thresholds 10-100"}, quorumUp: true, weight: 1,
		},
		{
			name: "§2.4 lvs_method per real server, else the virtual server's",
			conf: poolConf("lvs_method DR", "", "lvs_method NAT", "lvs_method TUN type gue port 6080 csum"),
			want: []string{"10.0.0.2:80 DR weight 1", "10.0.0.3:80 NAT weight 1", "10.0.0.4:80 TUN weight 1"}, quorumUp: true, weight: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := load(t, tc.conf)
			st := Pool(cfg.VirtualServers[0], tc.health)
			var got []string
			for _, d := range st.Destinations {
				got = append(got, d.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("destinations:\n got %q\nwant %q", got, tc.want)
			}
			if st.QuorumUp != tc.quorumUp || st.SorryActive != tc.sorry || st.LiveWeight != tc.weight {
				t.Errorf("quorum up %v, sorry active %v, live weight %d; want %v, %v, %d",
					st.QuorumUp, st.SorryActive, st.LiveWeight, tc.quorumUp, tc.sorry, tc.weight)
			}
		})
	}
}

// TestPoolTunnel checks the tunnel options of lvs_method TUN.
func TestPoolTunnel(t *testing.T) {
	cfg := load(t, poolConf("", "lvs_method TUN", "lvs_method TUN type gue port 6080 remcsum", "lvs_method TUN type gre csum"))
	st := Pool(cfg.VirtualServers[0], HealthView{})
	want := []Tunnel{{}, {Type: TunnelGUE, Port: 6080, Csum: CsumRemote}, {Type: TunnelGRE, Csum: CsumOn}}
	for i, d := range st.Destinations {
		if d.Forwarding != TUN || d.Tunnel != want[i] {
			t.Errorf("destination %d: %v %+v, want TUN %+v", i, d.Forwarding, d.Tunnel, want[i])
		}
	}
}

// TestSchedulers checks that every lb_algo, its flags and persistence reach the service.
func TestSchedulers(t *testing.T) {
	for _, sched := range []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "mh", "dh", "sed", "nq", "fo", "ovf", "twos"} {
		specs := Desired(load(t, poolConf("lb_algo "+sched, "")), HealthView{})
		if len(specs) != 1 || specs[0].Service.Scheduler != sched {
			t.Errorf("lb_algo %s: %s", sched, specLines(specs))
		}
	}
	tests := []struct {
		vs   string
		want Service
	}{
		{"lb_algo sh\nsh-port\nsh-fallback", Service{Scheduler: "sh", Flags: FlagSched1 | FlagSched2}},
		{"lb_algo mh\nmh-port", Service{Scheduler: "mh", Flags: FlagSched2}},
		{"lb_algo mh\nmh-fallback", Service{Scheduler: "mh", Flags: FlagSched1}},
		{"lb_algo rr\nflag-1\nflag-2\nflag-3\nhashed", Service{Scheduler: "rr", Flags: FlagSched1 | FlagSched2 | FlagSched3}},
		{"lb_algo rr\nprotocol UDP\nops", Service{Scheduler: "rr", Protocol: UDP, Flags: FlagOnePacket}},
		{"lb_algo rr\npersistence_timeout", Service{Scheduler: "rr", Timeout: 360}},
		{"lb_algo rr\npersistence_timeout 60\npersistence_granularity 255.255.255.0", Service{Scheduler: "rr", Timeout: 60, Granularity: 24}},
		{"lb_algo rr\npersistence_timeout 60\npersistence_granularity 255.255.255.255", Service{Scheduler: "rr", Timeout: 60}},
		{"lb_algo rr\nprotocol UDP\npersistence_timeout 60\npersistence_engine sip", Service{Scheduler: "rr", Protocol: UDP, Timeout: 60, PEName: "sip"}},
		{"lb_algo rr\nprotocol SCTP", Service{Scheduler: "rr", Protocol: SCTP}},
	}
	for _, tc := range tests {
		// "protocol TCP" comes first in poolConf; a later protocol line wins.
		specs := Desired(load(t, poolConf(tc.vs, "")), HealthView{})
		want := tc.want
		want.Family, want.Addr, want.Port = IPv4, netip.MustParseAddr("10.0.0.1"), 80
		if want.Protocol == 0 {
			want.Protocol = TCP
		}
		if len(specs) != 1 || specs[0].Service != want {
			t.Errorf("%q:\n got %s\nwant %s", tc.vs, specLines(specs), want)
		}
	}
}

// TestDesired checks the desired state of a whole configuration: address, fwmark and
// IPv6 services, health applied, ha_suspend flagged, configuration order kept.
func TestDesired(t *testing.T) {
	cfg := load(t, `
virtual_server 192.168.1.10 443 {
	lb_algo wlc
	protocol TCP
	ha_suspend
	persistence_timeout 300
	real_server 10.1.0.1 8443 {
		weight 2
		TCP_CHECK {
		}
	}
	real_server 10.1.0.2 8443 {
		TCP_CHECK {
		}
	}
}
virtual_server fwmark 7 {
	lb_algo wrr
	lb_kind DR
	real_server 10.1.0.3 {
		weight 3
	}
}
virtual_server fd00::10 53 {
	lb_algo rr
	protocol UDP
	real_server fd00::1 53 {
	}
}
`)
	vs0 := VSKey(cfg.VirtualServers[0])
	h := HealthView{RealServers: map[RealServerKey]RSHealth{
		{VS: vs0, Addr: netip.MustParseAddr("10.1.0.2"), Port: 8443}: down,
	}}
	specs := Desired(cfg, h)
	want := `TCP 192.168.1.10:443 wlc persistent 300
  -> 10.1.0.1:8443 NAT weight 2
FWM 7 IPv4 wrr
  -> 10.1.0.3:0 DR weight 3
UDP [fd00::10]:53 rr
  -> [fd00::1]:53 NAT weight 1
`
	if got := specLines(specs); got != want {
		t.Errorf("desired state:\n%s\nwant:\n%s", got, want)
	}
	if !specs[0].HASuspend || specs[1].HASuspend || specs[0].VS != vs0 || !specs[0].QuorumUp {
		t.Errorf("spec flags: %+v", specs[0])
	}
	if s := vs0.String(); s != "192.168.1.10 443 TCP" {
		t.Errorf("VSKey.String() = %q", s)
	}
	if s := specs[1].VS.String(); s != "fwmark 7 IPv4" {
		t.Errorf("VSKey.String() = %q", s)
	}
}

// TestGroupExpansion checks virtual_server_group expansion: single addresses, a-b
// ranges, prefixes, IPv6 ranges, ports per entry, and fwmarks with and without a family.
func TestGroupExpansion(t *testing.T) {
	cfg := load(t, `
virtual_server_group web {
	10.0.0.1 80
	10.0.0.5-7 80
	10.0.1.0/30 8080
	fwmark 9
}
virtual_server_group web6 {
	fd00::1-3 443
	fwmark 10 inet6
}
virtual_server group web {
	lb_algo rr
	protocol TCP
	persistence_timeout 60
	persistence_granularity 255.255.0.0
	real_server 10.1.0.1 80 {
	}
}
virtual_server group web6 {
	lb_algo sh
	protocol TCP
	real_server fd01::1 443 {
	}
}
`)
	var got []string
	for _, s := range Desired(cfg, HealthView{}) {
		got = append(got, s.Service.String())
	}
	want := []string{
		"TCP 10.0.0.1:80 rr persistent 60 /16",
		"TCP 10.0.0.5:80 rr persistent 60 /16", "TCP 10.0.0.6:80 rr persistent 60 /16", "TCP 10.0.0.7:80 rr persistent 60 /16",
		"TCP 10.0.1.0:8080 rr persistent 60 /16", "TCP 10.0.1.1:8080 rr persistent 60 /16",
		"TCP 10.0.1.2:8080 rr persistent 60 /16", "TCP 10.0.1.3:8080 rr persistent 60 /16",
		"FWM 9 IPv4 rr persistent 60 /16",
		"TCP [fd00::1]:443 sh", "TCP [fd00::2]:443 sh", "TCP [fd00::3]:443 sh",
		"FWM 10 IPv6 sh",
	}
	if !slices.Equal(got, want) {
		t.Errorf("group expansion:\n got %q\nwant %q", got, want)
	}
	if errs := Validate(cfg); len(errs) != 0 {
		t.Errorf("Validate: %v", errs)
	}
}

// TestGroupLimits checks that an oversized range is left out and reported, that the
// rest of the group is kept, and that a service defined twice is taken from the first.
func TestGroupLimits(t *testing.T) {
	cfg := load(t, `
virtual_server_group big {
	10.0.0.0/8 80
	10.255.255.1 81
}
virtual_server group big {
	lb_algo rr
	protocol TCP
	real_server 10.1.0.1 80 {
	}
}
virtual_server 10.255.255.1 81 {
	lb_algo wrr
	protocol TCP
	real_server 10.1.0.2 81 {
	}
}
`)
	specs := Desired(cfg, HealthView{})
	if got := specLines(specs); got != "TCP 10.255.255.1:81 rr\n  -> 10.1.0.1:80 NAT weight 1\n" {
		t.Errorf("desired state:\n%s", got)
	}
	errs := Validate(cfg)
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "more than 65536 addresses") ||
		!strings.Contains(errs[1].Error(), "already defined by virtual_server group big TCP") {
		t.Errorf("Validate: %v", errs)
	}
}

// TestOmegaNotifies checks the shutdown notifications of omega virtual servers.
func TestOmegaNotifies(t *testing.T) {
	cfg := load(t, "global_defs {\nenable_script_security\nscript_user root\n}\n"+poolConf("omega\nquorum_down /bin/true qd", "notify_down /bin/true rs2\nTCP_CHECK {\n}", "TCP_CHECK {\n}", "")+
		"virtual_server 10.0.0.50 80 {\nlb_algo rr\nprotocol TCP\nreal_server 10.0.0.51 80 {\nnotify_down /bin/true x\n}\n}\n")
	notes := OmegaNotifies(cfg, health(map[string]RSHealth{"10.0.0.3": down}))
	var got []string
	for _, n := range notes {
		who := "quorum"
		if n.RealServer != nil {
			who = n.RealServer.Addr.String()
		}
		got = append(got, fmt.Sprintf("%s %s %q", n.VS, who, n.Script.Path()))
	}
	want := []string{`10.0.0.1 80 TCP 10.0.0.2 "/bin/true"`, `10.0.0.1 80 TCP 10.0.0.4 ""`, `10.0.0.1 80 TCP quorum "/bin/true"`}
	if !slices.Equal(got, want) {
		t.Errorf("OmegaNotifies:\n got %q\nwant %q", got, want)
	}
}

// TestTimeoutsOf checks lvs_timeouts, rounded up to whole seconds.
func TestTimeoutsOf(t *testing.T) {
	cfg := load(t, "global_defs {\nlvs_timeouts tcp 7200 tcpfin 0.5 udp 30\n}\n")
	got := TimeoutsOf(cfg.Global.LVSTimeouts)
	if want := (Timeouts{TCP: 7200e9, TCPFin: 1e9, UDP: 30e9}); got != want {
		t.Errorf("TimeoutsOf = %+v, want %+v", got, want)
	}
	if !(Timeouts{}).IsZero() || got.IsZero() {
		t.Error("zero Timeouts is not IsZero")
	}
}

// TestDesiredOf checks that the desired state of any set of virtual servers is the part
// of Desired that comes from them, in the same order: a service defined by two virtual
// servers belongs to the first whether or not the first is in the set.
func TestDesiredOf(t *testing.T) {
	cfg := load(t, `
virtual_server_group g {
	10.0.0.1-2 80
	fwmark 7
}
virtual_server 10.0.0.2 80 {
	lb_algo rr
	protocol TCP
	real_server 10.1.0.1 80 {
	}
}
virtual_server group g {
	lb_algo wrr
	protocol TCP
	quorum 2
	sorry_server 10.9.9.9 80
	real_server 10.1.0.2 80 {
	}
	real_server 10.1.0.3 80 {
	}
}
virtual_server fwmark 7 {
	lb_algo rr
	real_server 10.1.0.4 80 {
	}
}
virtual_server 10.0.0.3 80 {
	lb_algo rr
	protocol TCP
	real_server 10.1.0.5 80 {
	}
}
`)
	vss := cfg.VirtualServers
	h := HealthView{RealServers: map[RealServerKey]RSHealth{RSKey(vss[1], vss[1].RealServers[0]): down}}
	all := Desired(cfg, h)
	render := func(specs []ServiceSpec) string {
		var b strings.Builder
		for _, s := range specs {
			fmt.Fprintf(&b, "%s quorum=%v sorry=%v\n", s.VS, s.QuorumUp, s.SorryActive)
		}
		return b.String() + specLines(specs)
	}
	for set := range 1 << len(vss) {
		only := map[VirtualServerKey]bool{}
		for i, vs := range vss {
			if set&(1<<i) != 0 {
				only[VSKey(vs)] = true
			}
		}
		want := slices.DeleteFunc(slices.Clone(all), func(s ServiceSpec) bool { return !only[s.VS] })
		if got := desiredOf(cfg, h, only); render(got) != render(want) {
			t.Errorf("virtual servers %v:\n%s\nwant:\n%s", slices.Collect(maps.Keys(only)), render(got), render(want))
		}
	}
	if got := render(desiredOf(cfg, h, nil)); got != render(all) {
		t.Errorf("all virtual servers:\n%s\nwant:\n%s", got, render(all))
	}
}
