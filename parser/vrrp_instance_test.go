package parser

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// loadVRRP parses a configuration text and returns it with its diagnostics as text.
func loadVRRP(t *testing.T, text string) (*Config, string) {
	t.Helper()
	cfg, ds := LoadBytes("t.conf", []byte(text), Options{ConfigID: "main", RandomSeed: 1})
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	return cfg, b.String()
}

// instance wraps body in a vrrp_instance with an interface, a VRID and a VIP.
func instance(name, body string) string {
	return "vrrp_instance " + name + " {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1/24\n }\n" + body + "\n}\n"
}

func only(t *testing.T, cfg *Config) *VRRPInstance {
	t.Helper()
	if len(cfg.Instances) != 1 {
		t.Fatalf("want 1 instance, got %d", len(cfg.Instances))
	}
	return cfg.Instances[0]
}

func TestAdvertIntRounding(t *testing.T) {
	for _, tc := range []struct {
		body string
		want time.Duration
		warn string
	}{
		{"", time.Second, ""},
		{"advert_int 3", 3 * time.Second, ""},
		{"advert_int 1.6", 2 * time.Second, "1.6s rounded to 2s"},
		{"advert_int 1.5", 2 * time.Second, "1.5s rounded to 2s"},
		{"advert_int 1.4", time.Second, "1.4s rounded to 1s"},
		{"advert_int 0.4", time.Second, "400ms rounded to 1s"}, // never below 1s
		{"advert_int 255", 255 * time.Second, ""},
		{"version 3\n advert_int 0.333", 330 * time.Millisecond, "333ms rounded to 330ms"},
		{"version 3\n advert_int 0.335", 340 * time.Millisecond, "335ms rounded to 340ms"},
		{"version 3\n advert_int 0.001", 0, "is outside [0.01, 255]"}, // rejected: default 1s
		{"version 3\n advert_int 40.95", 4095 * 10 * time.Millisecond, ""},
		{"version 3\n advert_int 50", 4095 * 10 * time.Millisecond, "too long for VRRP version 3"},
	} {
		cfg, diags := loadVRRP(t, instance("VI", tc.body))
		v := only(t, cfg)
		want := tc.want
		if want == 0 {
			want = time.Second
		}
		if v.AdvertInt.D() != want {
			t.Errorf("%q: advert_int %s, want %s", tc.body, v.AdvertInt.D(), want)
		}
		if tc.warn == "" && diags != "" || !strings.Contains(diags, tc.warn) {
			t.Errorf("%q: diagnostics %q, want %q", tc.body, diags, tc.warn)
		}
	}
}

func TestStateMasterClearsPreemptSettings(t *testing.T) {
	cfg, diags := loadVRRP(t, instance("VI", "state MASTER\n priority 150\n nopreempt\n preempt_delay 30"))
	v := only(t, cfg)
	if v.State != "MASTER" || v.Nopreempt || v.PreemptDelay != 0 {
		t.Errorf("state %s nopreempt %v preempt_delay %s; want MASTER, cleared, cleared", v.State, v.Nopreempt, v.PreemptDelay.D())
	}
	for _, w := range []string{
		"t.conf:9:2: warning: (VI) nopreempt will not work with initial state MASTER; cleared",
		"t.conf:10:2: warning: (VI) preempt_delay will not work with initial state MASTER; cleared",
	} {
		if !strings.Contains(diags, w) {
			t.Errorf("missing %q in\n%s", w, diags)
		}
	}

	// BACKUP keeps them (preempt_delay and nopreempt together: nopreempt wins).
	cfg, _ = loadVRRP(t, instance("VI", "priority 150\n nopreempt"))
	if v := only(t, cfg); !v.Nopreempt || v.State != "BACKUP" {
		t.Errorf("BACKUP: nopreempt %v state %s", v.Nopreempt, v.State)
	}
}

func TestStateAndPriorityDefaults(t *testing.T) {
	for _, tc := range []struct {
		body      string
		state     string
		priority  int
		nopreempt bool
	}{
		{"", "BACKUP", 100, false},
		{"state MASTER", "MASTER", 255, false}, // keepalived: MASTER without priority is the owner
		{"priority 255", "MASTER", 255, false}, // and the owner starts as MASTER
		{"state BACKUP\n priority 255", "BACKUP", 255, false},
		{"state MASTER\n priority 300", "MASTER", 100, false}, // invalid: keepalived uses 100
		{"priority 255\n nopreempt", "MASTER", 255, false},
		{"state Master", "BACKUP", 100, false},
		{"state MASTER\n state BACKUP\n priority 10", "MASTER", 10, false},
		{"strict_mode\n state MASTER\n priority 10", "BACKUP", 10, false},
		{"strict_mode\n priority 255", "MASTER", 255, false},
	} {
		cfg, _ := loadVRRP(t, instance("VI", tc.body))
		v := only(t, cfg)
		if v.State != tc.state || v.Priority != tc.priority || v.Nopreempt != tc.nopreempt {
			t.Errorf("%q: state %s priority %d nopreempt %v; want %s %d %v", tc.body, v.State, v.Priority, v.Nopreempt, tc.state, tc.priority, tc.nopreempt)
		}
	}
}

func TestInheritanceFromGlobalDefsAfterInstances(t *testing.T) {
	text := instance("VI_A", "garp_master_delay 1\n down_timer_adverts 9\n version 2") +
		instance("VI_B", "") + `
global_defs {
  vrrp_version 3
  vrrp_garp_master_delay 7
  vrrp_garp_master_repeat 2
  vrrp_garp_lower_prio_repeat 4
  vrrp_down_timer_adverts 5
  vrrp_strict
}`
	cfg, _ := loadVRRP(t, strings.Replace(text, "VI_B {\n interface eth0\n virtual_router_id 1", "VI_B {\n interface eth1\n virtual_router_id 2", 1))
	a, b := cfg.Instances[0], cfg.Instances[1]
	if a.Version != 2 || a.GARPMasterDelay.D() != time.Second || a.GARPMasterRepeat != 2 || a.DownTimerAdverts != 9 {
		t.Errorf("VI_A: version %d delay %s repeat %d down %d", a.Version, a.GARPMasterDelay.D(), a.GARPMasterRepeat, a.DownTimerAdverts)
	}
	if b.Version != 3 || b.GARPMasterDelay.D() != 7*time.Second || b.DownTimerAdverts != 5 {
		t.Errorf("VI_B: version %d delay %s down %d", b.Version, b.GARPMasterDelay.D(), b.DownTimerAdverts)
	}
	// vrrp_strict: no lower-priority GARPs, lower_prio_no_advert, no accept.
	for _, v := range cfg.Instances {
		if !v.Strict || v.GARPLowerPrioRepeat != 0 || v.GARPLowerPrioDelay != 0 || !v.LowerPrioNoAdvert || v.Accept {
			t.Errorf("%s strict: %+v", v.Name, v)
		}
		if v.Explicit("garp_master_repeat") {
			t.Errorf("%s: garp_master_repeat reported as explicit", v.Name)
		}
	}
	if !a.Explicit("garp_master_delay") {
		t.Errorf("VI_A: garp_master_delay not reported as explicit")
	}
}

func TestLowerPrioGARPDefaults(t *testing.T) {
	cfg, _ := loadVRRP(t, instance("VI", "")+"global_defs {\n vrrp_garp_master_delay 3\n vrrp_garp_master_repeat 6\n}\n")
	v := only(t, cfg)
	if v.GARPLowerPrioDelay.D() != 3*time.Second || v.GARPLowerPrioRepeat != 6 {
		t.Errorf("lower prio GARP %s/%d, want the master values 3s/6", v.GARPLowerPrioDelay.D(), v.GARPLowerPrioRepeat)
	}
}

func TestVersionAndFamily(t *testing.T) {
	text := `vrrp_instance V6 {
  interface eth0
  virtual_router_id 1
  version 2
  unicast_peer {
    fe80::2
    10.0.0.2
  }
  virtual_ipaddress {
    fe80::1
    10.0.0.1
    2001:db8::1
  }
}`
	cfg, diags := loadVRRP(t, text)
	v := only(t, cfg)
	if v.Family != 6 || v.Version != 3 || len(v.VIPs) != 2 || len(v.UnicastPeers) != 1 {
		t.Errorf("family %d version %d vips %d peers %d", v.Family, v.Version, len(v.VIPs), len(v.UnicastPeers))
	}
	for _, w := range []string{
		"t.conf:4:3: warning: (V6) IPv6 needs VRRP version 3",
		"t.conf:7:5: error: (V6) unicast peer 10.0.0.2 is not IPv6",
		"t.conf:11:5: error: (V6) 10.0.0.1/32: the addresses of virtual_ipaddress must all be IPv6",
	} {
		if !strings.Contains(diags, w) {
			t.Errorf("missing %q in\n%s", w, diags)
		}
	}
}

func TestDuplicateVRID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		a, b   string
		clash  bool
		family string
	}{
		{"same interface", "interface eth0", "interface eth0", true, "IPv4"},
		{"other interface", "interface eth0", "interface eth1", false, ""},
		{"other multicast group", "interface eth0", "interface eth0\n mcast_dst_ip 224.0.0.99", false, ""},
		{"disjoint unicast peers", "interface eth0\n unicast_peer {\n 10.0.0.8\n }", "interface eth0\n unicast_peer {\n 10.0.0.9\n }", false, ""},
		{"shared unicast peer", "interface eth0\n unicast_peer {\n 10.0.0.8\n }", "interface eth0\n unicast_peer {\n 10.0.0.8\n }", true, "IPv4"},
		{"unicast and multicast", "interface eth0", "interface eth0\n unicast_peer {\n 10.0.0.8\n }", true, "IPv4"},
	} {
		mk := func(name, body, vip string) string {
			return "vrrp_instance " + name + " {\n virtual_router_id 7\n " + body + "\n virtual_ipaddress {\n " + vip + "\n }\n}\n"
		}
		_, diags := loadVRRP(t, mk("VI_A", tc.a, "10.0.0.1")+mk("VI_B", tc.b, "10.0.0.2"))
		got := strings.Contains(diags, "VI_A and VI_B both use VRID 7 with "+tc.family)
		if got != tc.clash {
			t.Errorf("%s: clash reported %v, want %v:\n%s", tc.name, got, tc.clash, diags)
		}
	}
	// Different families never clash.
	_, diags := loadVRRP(t, instance("VI_A", "")+strings.Replace(instance("VI_B", ""), "10.0.0.1/24", "fe80::1", 1))
	if strings.Contains(diags, "both use VRID") {
		t.Errorf("IPv4 and IPv6 reported as a clash:\n%s", diags)
	}
}

func TestRequiredSettingsDropInstance(t *testing.T) {
	for _, tc := range []struct {
		text string
		msg  string
	}{
		{"vrrp_instance X {\n interface eth0\n}", "(X) the virtual router id must be set"},
		{"vrrp_instance X {\n virtual_router_id 3\n}", "(X) 'interface' is missing"},
		{"vrrp_instance X {\n virtual_router_id 3\n unicast_src_ip fe80::1\n unicast_peer {\n fe80::2\n }\n virtual_ipaddress {\n fe80::3\n }\n}", "(X) 'interface' is missing"},
		{"vrrp_instance X {\n interface eth0\n virtual_router_id 3\n version 3\n}", "(X) no virtual_ipaddress"},
		{"vrrp_instance X {\n interface eth0\n virtual_router_id 3\n strict_mode\n unicast_peer {\n 10.0.0.2\n }\n virtual_ipaddress {\n 10.0.0.1\n }\n}", "unicast peers are not supported in strict mode"},
	} {
		cfg, diags := loadVRRP(t, tc.text)
		if len(cfg.Instances) != 0 || !strings.Contains(diags, tc.msg) || !strings.Contains(diags, "instance ignored") {
			t.Errorf("%q: %d instances, diagnostics:\n%s", tc.text, len(cfg.Instances), diags)
		}
	}
	// A unicast instance with a routable source address may omit the interface.
	cfg, diags := loadVRRP(t, "vrrp_instance X {\n virtual_router_id 3\n unicast_src_ip 192.0.2.1\n unicast_peer {\n 192.0.2.2\n }\n virtual_ipaddress {\n 10.0.0.1\n }\n}")
	if len(cfg.Instances) != 1 || diags != "" {
		t.Errorf("unicast without interface: %d instances, diagnostics:\n%s", len(cfg.Instances), diags)
	}
}

func TestTooManyVIPs(t *testing.T) {
	var b strings.Builder
	for i := range 260 {
		b.WriteString("  10.1." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) + "\n")
	}
	cfg, diags := loadVRRP(t, "vrrp_instance X {\n interface eth0\n virtual_router_id 3\n virtual_ipaddress {\n"+b.String()+" }\n}")
	v := only(t, cfg)
	if len(v.VIPs) != 255 || len(v.ExcludedVIPs) != 5 || !strings.Contains(diags, "virtual_ipaddress has 260 addresses") {
		t.Errorf("VIPs %d excluded %d:\n%s", len(v.VIPs), len(v.ExcludedVIPs), diags)
	}
}

// TestOwnerIgnoreAdvertsDefault: global_defs vrrp_owner_ignore_adverts is the default of
// every instance's owner_ignore_adverts, which an instance can still turn off.
func TestOwnerIgnoreAdvertsDefault(t *testing.T) {
	text := instance("VI_A", "") + strings.Replace(instance("VI_B", "owner_ignore_adverts false"), "virtual_router_id 1", "virtual_router_id 2", 1) +
		"global_defs {\n vrrp_owner_ignore_adverts\n}\n"
	cfg, diags := loadVRRP(t, text)
	if len(cfg.Instances) != 2 || !cfg.Instances[0].OwnerIgnoreAdverts || cfg.Instances[1].OwnerIgnoreAdverts {
		t.Errorf("instances %+v\n%s", cfg.Instances, diags)
	}
	cfg, _ = loadVRRP(t, instance("VI_A", ""))
	if only(t, cfg).OwnerIgnoreAdverts {
		t.Error("owner_ignore_adverts without the global keyword")
	}
}
