package parser

import (
	"fmt"
	"strings"
	"testing"
)

func TestUseVMAC(t *testing.T) {
	for _, tc := range []struct {
		name, global, body string
		want               *VMAC  // nil: no VMAC
		dev                string // the interface of the VIP without dev
		diag               string // expected in the diagnostics ("" = none at all)
	}{
		{name: "absent", body: "", dev: "eth0"},
		{name: "default", body: "use_vmac",
			want: &VMAC{Name: "vrrp.1", MAC: "00:00:5e:00:01:01"}, dev: "vrrp.1"},
		{name: "named", body: "use_vmac vip1",
			want: &VMAC{Name: "vip1", MAC: "00:00:5e:00:01:01"}, dev: "vip1"},
		{name: "named with MAC", body: "use_vmac vip1 02:11:22:33:44:55",
			want: &VMAC{Name: "vip1", MAC: "02:11:22:33:44:55"}, dev: "vip1"},
		{name: "MAC only, upper case", body: "use_vmac 02:AA:22:33:44:55",
			want: &VMAC{Name: "vrrp.1", MAC: "02:aa:22:33:44:55"}, dev: "vrrp.1"},
		{name: "xmit base before use_vmac", body: "vmac_xmit_base\n use_vmac",
			want: &VMAC{Name: "vrrp.1", MAC: "00:00:5e:00:01:01", XmitBase: true}, dev: "vrrp.1"},
		{name: "prefix", global: "vmac_prefix vm", body: "use_vmac",
			want: &VMAC{Name: "vm.1", MAC: "00:00:5e:00:01:01"}, dev: "vm.1"},
		{name: "long prefix is shortened", global: "vmac_prefix abcdefghijklmnop", body: "use_vmac",
			want: &VMAC{Name: "abcdefghijklm.1", MAC: "00:00:5e:00:01:01"}, dev: "abcdefghijklm.1"},
		{name: "name too long", body: "use_vmac abcdefghijklmnop",
			want: &VMAC{Name: "vrrp.1", MAC: "00:00:5e:00:01:01"}, dev: "vrrp.1",
			diag: "t.conf:7:10: error: (VI) use_vmac: interface name 'abcdefghijklmnop' is longer than 15 characters"},
		{name: "name with slash", body: "use_vmac a/b",
			want: &VMAC{Name: "vrrp.1", MAC: "00:00:5e:00:01:01"}, dev: "vrrp.1", diag: "contains '/'"},
		{name: "bad MAC", body: "use_vmac vip1 00:00:5e:00:01",
			want: &VMAC{Name: "vip1", MAC: "00:00:5e:00:01:01"}, dev: "vip1", diag: "error: (VI) use_vmac"},
		{name: "multicast MAC", body: "use_vmac 01:00:5e:00:01:01",
			want: &VMAC{Name: "vrrp.1", MAC: "00:00:5e:00:01:01"}, dev: "vrrp.1", diag: "multicast MAC"},
		{name: "too many arguments", body: "use_vmac a b c",
			want: &VMAC{Name: "a", MAC: "00:00:5e:00:01:01"}, dev: "a", diag: "second interface name 'b'"},
		{name: "xmit base alone", body: "vmac_xmit_base", dev: "eth0",
			diag: "vmac_xmit_base is only valid with use_vmac"},
		{name: "unicast sets xmit base", body: "use_vmac\n unicast_peer {\n  10.0.0.9\n }",
			want: &VMAC{Name: "vrrp.1", MAC: "00:00:5e:00:01:01", XmitBase: true}, dev: "vrrp.1",
			diag: "unicast with use_vmac needs vmac_xmit_base"},
		{name: "strict clears xmit base", body: "strict_mode\n use_vmac\n vmac_xmit_base",
			want: &VMAC{Name: "vrrp.1", MAC: "00:00:5e:00:01:01"}, dev: "vrrp.1",
			diag: "vmac_xmit_base is incompatible with strict mode"},
		{name: "named like the interface", body: "use_vmac eth0", dev: "eth0",
			diag: "cannot be named like the interface"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := instance("VI", tc.body)
			if tc.global != "" {
				text = "global_defs {\n " + tc.global + "\n}\n" + text
			}
			cfg, diags := loadVRRP(t, text)
			v := only(t, cfg)
			if tc.want == nil && v.VMAC != nil {
				t.Errorf("VMAC %+v, want none", *v.VMAC)
			}
			if tc.want != nil {
				if v.VMAC == nil {
					t.Fatalf("no VMAC, want %+v; diagnostics:\n%s", *tc.want, diags)
				}
				got := *v.VMAC
				got.Pos, got.defaultName = Pos{}, false
				if got != *tc.want {
					t.Errorf("VMAC %+v, want %+v", got, *tc.want)
				}
			}
			if v.VIPs[0].Dev != tc.dev {
				t.Errorf("VIP dev %q, want %q", v.VIPs[0].Dev, tc.dev)
			}
			if tc.diag == "" && strings.Contains(diags, "vmac") {
				t.Errorf("unexpected diagnostics:\n%s", diags)
			}
			if tc.diag != "" && !strings.Contains(diags, tc.diag) {
				t.Errorf("diagnostics lack %q:\n%s", tc.diag, diags)
			}
		})
	}
}

func TestUseVMACFamilyAndDevs(t *testing.T) {
	cfg, diags := loadVRRP(t, `vrrp_instance V6 {
 interface eth0
 virtual_router_id 200
 use_vmac
 virtual_ipaddress {
  fe80::1
  2001:db8::1/64 dev eth1
 }
 virtual_ipaddress_excluded {
  10.1.1.1/24
 }
}
`)
	v := only(t, cfg)
	if v.VMAC == nil || v.VMAC.MAC != "00:00:5e:00:02:c8" || v.VMAC.Name != "vrrp.200" {
		t.Fatalf("VMAC %+v; diagnostics:\n%s", v.VMAC, diags)
	}
	if got := []string{v.VIPs[0].Dev, v.VIPs[1].Dev, v.ExcludedVIPs[0].Dev}; got[0] != "vrrp.200" || got[1] != "eth1" || got[2] != "vrrp.200" {
		t.Errorf("devs %v: the addresses without dev go on the macvlan, the others stay", got)
	}
}

// vmacInstance is a vrrp_instance with one address and a use_vmac line.
func vmacInstance(name, ifname string, vrid int, useVMAC, vip string) string {
	return fmt.Sprintf("vrrp_instance %s {\n interface %s\n virtual_router_id %d\n %s\n virtual_ipaddress {\n  %s\n }\n}\n", name, ifname, vrid, useVMAC, vip)
}

func TestUseVMACSameName(t *testing.T) {
	cfg, diags := loadVRRP(t, vmacInstance("A", "eth0", 1, "use_vmac vm", "10.0.0.1")+vmacInstance("B", "eth0", 2, "use_vmac vm", "10.0.0.2"))
	if len(cfg.Instances) != 2 {
		t.Fatalf("instances: %d\n%s", len(cfg.Instances), diags)
	}
	a, b := cfg.Instances[0], cfg.Instances[1]
	if a.VMAC == nil || b.VMAC != nil {
		t.Fatalf("A %+v, B %+v: the second instance asking for vm runs without VMAC", a.VMAC, b.VMAC)
	}
	if b.VIPs[0].Dev != "eth0" {
		t.Errorf("B's address is on %s, want eth0", b.VIPs[0].Dev)
	}
	if !strings.Contains(diags, "t.conf:12:2: error: (B) VRRP instance A already uses the VMAC interface vm") {
		t.Errorf("diagnostics:\n%s", diags)
	}
}

func TestVMACGlobals(t *testing.T) {
	cfg, diags := loadVRRP(t, "global_defs {\n vmac_prefix a:b\n vmac_addr_prefix vx\n}\n")
	if cfg.Global.VMACPrefix != "vrrp" || cfg.Global.VMACAddrPrefix != "vx" {
		t.Errorf("prefixes %q %q", cfg.Global.VMACPrefix, cfg.Global.VMACAddrPrefix)
	}
	if !strings.Contains(diags, "t.conf:2:14: error: 'vmac_prefix': prefix 'a:b' contains") {
		t.Errorf("diagnostics:\n%s", diags)
	}
}

func TestVMACGarpIntvlAlias(t *testing.T) {
	cfg, diags := loadVRRP(t, instance("VI", "vmac_garp_intvl all 10"))
	v := only(t, cfg)
	if v.GARPExtraIf == nil || !v.GARPExtraIf.All || v.GARPExtraIf.Interval.D().Seconds() != 10 {
		t.Errorf("garp_extra_if %+v", v.GARPExtraIf)
	}
	if !strings.Contains(diags, "'vmac_garp_intvl' is deprecated") {
		t.Errorf("diagnostics:\n%s", diags)
	}
}

func TestUseVMACDefaultNameTaken(t *testing.T) {
	cfg, diags := loadVRRP(t, vmacInstance("V4", "eth0", 51, "use_vmac", "10.0.0.1")+
		vmacInstance("V6", "eth0", 51, "use_vmac", "fe80::1")+vmacInstance("V4B", "eth1", 51, "use_vmac", "10.0.1.1"))
	var got []string
	for _, v := range cfg.Instances {
		if v.VMAC == nil {
			t.Fatalf("%s lost use_vmac:\n%s", v.Name, diags)
		}
		got = append(got, v.VMAC.Name+" "+v.VIPs[0].Dev)
	}
	if want := []string{"vrrp.51 vrrp.51", "vrrp6.51 vrrp6.51", "vrrp1.51 vrrp1.51"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("names %v, want %v (keepalived's choice)", got, want)
	}
}
