package parser

import (
	"net/netip"
	"strings"
	"testing"
)

func TestLVSSyncDaemon(t *testing.T) {
	const instances = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n"
	tests := []struct {
		name, global, inst string
		want               *LVSSyncDaemon // nil: none
		diag               string         // substring of the diagnostics, "" for none
	}{
		{name: "id from the instance's VRID", global: "lvs_sync_daemon eth1 VI_1",
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51}},
		{name: "every option", global: "lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 239.1.2.3",
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 7, MaxLen: 1400, Port: 8849, TTL: 2, Group: netip.MustParseAddr("239.1.2.3")}},
		{name: "IPv6 group", global: "lvs_sync_daemon eth1 VI_1 group ff02::81",
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51, Group: netip.MustParseAddr("ff02::81")}},
		{name: "id 0 is an id", global: "lvs_sync_daemon eth1 VI_1 id 0",
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 0}},
		{name: "older bare id", global: "lvs_sync_daemon eth1 VI_1 9",
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 9}, diag: `write "id 9" for the sync id`},
		{name: "bad id falls back to the VRID", global: "lvs_sync_daemon eth1 VI_1 id 300",
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51}, diag: "300 is outside [0, 255]"},
		{name: "group not multicast", global: "lvs_sync_daemon eth1 VI_1 group 10.1.1.1",
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51}, diag: "group 10.1.1.1 is not a multicast address"},
		{name: "unknown option", global: "lvs_sync_daemon eth1 VI_1 speed 3",
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51}, diag: "unknown option 'speed'"},
		{name: "option without value", global: "lvs_sync_daemon eth1 VI_1 ttl",
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51}, diag: "'ttl' has no value"},
		{name: "no instance", global: "lvs_sync_daemon eth1", diag: "'lvs_sync_daemon' needs 2 values"},
		{name: "unknown instance", global: "lvs_sync_daemon eth1 VI_2", diag: "t.conf:2:2: error: lvs_sync_daemon: no vrrp_instance VI_2 (did you mean 'VI_1'?); sync daemon not run"},
		{name: "interface name too long", global: "lvs_sync_daemon abcdefghijklmnop VI_1", diag: "longer than 15 characters"},
		{name: "given twice", global: "lvs_sync_daemon eth1 VI_1\n lvs_sync_daemon eth2 VI_1",
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51}, diag: "t.conf:3:2: error: lvs_sync_daemon already given as eth1 VI_1 (at t.conf:2:2); ignored"},
		{name: "deprecated instance keyword", inst: "lvs_sync_daemon_interface eth3",
			want: &LVSSyncDaemon{Interface: "eth3", Instance: "VI_1", SyncID: 51}, diag: "(VI_1) lvs_sync_daemon_interface is deprecated; use global_defs lvs_sync_daemon eth3 VI_1"},
		{name: "global first, then the instance keyword", global: "lvs_sync_daemon eth1 VI_1", inst: "lvs_sync_daemon_interface eth3",
			want: &LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51}, diag: "(VI_1) lvs_sync_daemon already given as eth1 VI_1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := "global_defs {\n " + tt.global + "\n}\n" + strings.Replace(instances, " priority 100\n", " priority 100\n "+tt.inst+"\n", 1)
			cfg, diags := loadLVS(t, conf)
			got := cfg.Global.LVSSyncDaemon
			switch {
			case tt.want == nil && got != nil:
				t.Errorf("got %+v, want none", *got)
			case tt.want != nil && got == nil:
				t.Errorf("got none, want %+v", *tt.want)
			case tt.want != nil:
				g, w := *got, *tt.want
				g.Pos, g.idSet, w.idSet = Pos{}, false, false
				if g != w {
					t.Errorf("got %+v, want %+v", g, w)
				}
			}
			if tt.diag == "" && diags != "" || !strings.Contains(diags, tt.diag) {
				t.Errorf("diagnostics:\n%s\nwant %q", diags, tt.diag)
			}
		})
	}
}
