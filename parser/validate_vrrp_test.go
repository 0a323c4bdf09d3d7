package parser

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrackWeightsResolve(t *testing.T) {
	text := `vrrp_script s { 
  script /bin/true
  weight -7 reverse
}
track_file f {
  file /run/f
}
vrrp_track_process p {
  process x
  weight 4
}
vrrp_track_ping g {
  address 192.0.2.1
  weight 9
}
` + instance("VI", `track_script {
 s
 s2
}
track_file {
 f
}
track_process {
 p weight 2 reverse
}
track_ping {
 g weight 3
}
track_interface {
 eth5
}`) + "vrrp_script s2 {\n script /bin/true\n}\n"
	cfg, _ := loadVRRP(t, text)
	v := only(t, cfg)
	got := map[string][2]int{}
	for _, refs := range [][]*TrackRef{v.TrackScripts, v.TrackFiles, v.TrackProcesses, v.TrackPings, v.TrackInterfaces} {
		for _, r := range refs {
			rev := 0
			if r.Reverse {
				rev = 1
			}
			got[r.Name] = [2]int{r.Weight, rev}
		}
	}
	want := map[string][2]int{
		"s": {-7, 1}, "s2": {0, 0}, // from the scripts (s2 defined after the instance)
		"f": {1, 0}, // track_file default weight 1
		"p": {2, 1}, "g": {3, 0}, "eth5": {0, 0},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: weight/reverse %v, want %v", k, got[k], w)
		}
	}
}

func TestSyncGroupMembership(t *testing.T) {
	two := instance("VI_1", "") + strings.Replace(instance("VI_2", ""), "virtual_router_id 1", "virtual_router_id 2", 1)
	cfg, diags := loadVRRP(t, two+`
vrrp_sync_group A {
  group {
    VI_1
    VI_2
  }
}
vrrp_sync_group B {
  group {
    VI_2
    VI_3
  }
}`)
	if len(cfg.SyncGroups) != 1 || cfg.SyncGroups[0].Name != "A" {
		t.Fatalf("sync groups %d:\n%s", len(cfg.SyncGroups), diags)
	}
	if cfg.Instances[0].SyncGroup != "A" || cfg.Instances[1].SyncGroup != "A" {
		t.Errorf("members not linked to A: %q %q", cfg.Instances[0].SyncGroup, cfg.Instances[1].SyncGroup)
	}
	for _, w := range []string{
		"sync group B: VI_2 is already in sync group A",
		"sync group B: there is no vrrp_instance 'VI_3' (did you mean 'VI_1'?)",
		"sync group B has no valid members",
	} {
		if !strings.Contains(diags, w) {
			t.Errorf("missing %q in\n%s", w, diags)
		}
	}
}

func TestSyncGroupIgnoresMemberWeights(t *testing.T) {
	body := `track_script {
 w
 u
}
track_interface {
 eth3 weight 5
}`
	mk := func(extra string) string {
		return "vrrp_script w {\n script /bin/true\n weight 10\n}\nvrrp_script u {\n script /bin/true\n}\n" +
			instance("VI_1", body) + strings.Replace(instance("VI_2", ""), "virtual_router_id 1", "virtual_router_id 2", 1) +
			"vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n" + extra + "}\n"
	}
	cfg, diags := loadVRRP(t, mk(""))
	v := cfg.Instances[0]
	if len(v.TrackScripts) != 1 || v.TrackScripts[0].Name != "u" || v.TrackInterfaces[0].Weight != 0 {
		t.Errorf("scripts %v interface weight %d:\n%s", v.TrackScripts, v.TrackInterfaces[0].Weight, diags)
	}
	cfg, diags = loadVRRP(t, mk("sync_group_tracking_weight\n"))
	v = cfg.Instances[0]
	if len(v.TrackScripts) != 2 || v.TrackInterfaces[0].Weight != 5 || strings.Contains(diags, "ignoring") {
		t.Errorf("with sync_group_tracking_weight: scripts %d interface weight %d:\n%s", len(v.TrackScripts), v.TrackInterfaces[0].Weight, diags)
	}
}

func TestRouteTables(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "rt_tables")
	must(t, os.WriteFile(f, []byte("# comment\n255\tlocal\n100 isp1 # uplink\n0x65 isp2\n"), 0o644))
	old := rtTablesFiles
	rtTablesFiles = []string{filepath.Join(dir, "missing"), f}
	t.Cleanup(func() { rtTablesFiles = old })
	for name, want := range map[string]uint32{"main": 254, "local": 255, "default": 253, "42": 42, "0x10": 16, "isp1": 100, "isp2": 101} {
		if got, ok := routeTable(name); !ok || got != want {
			t.Errorf("table %s: %d %v, want %d", name, got, ok, want)
		}
	}
	if _, ok := routeTable("isp3"); ok {
		t.Errorf("unknown table isp3 resolved")
	}
}

func TestBroadcastOf(t *testing.T) {
	for _, tc := range []struct {
		pfx  string
		set  bool
		want string
	}{
		{"192.168.1.17/24", true, "192.168.1.255"},
		{"192.168.1.17/24", false, "192.168.1.0"},
		{"10.1.2.3/8", true, "10.255.255.255"},
		{"10.1.2.3/30", true, "10.1.2.3"},
		{"10.1.2.3/0", true, "255.255.255.255"},
	} {
		if got := broadcastOf(netip.MustParsePrefix(tc.pfx), tc.set); got.String() != tc.want {
			t.Errorf("%s %v: %s, want %s", tc.pfx, tc.set, got, tc.want)
		}
	}
}
