package vrrp

import (
	"strings"
	"testing"

	"gokeepalived/parser"
)

func planConfig(t *testing.T, body string) *parser.Config {
	t.Helper()
	cfg, ds := parser.LoadBytes("p.conf", []byte(body), parser.Options{ConfigID: "x"})
	if ds.ExitCode() != parser.ExitOK {
		t.Fatalf("config: %v", ds)
	}
	return cfg
}

const planBase = `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.0.0.1/24
        10.0.0.2/24
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        10.0.1.1/24
    }
}
`

// TestPlanReload: identity, not the name, decides whether an instance keeps its state
// (keepalived §4 reload semantics).
func TestPlanReload(t *testing.T) {
	tests := []struct{ name, new, want string }{
		{"unchanged", planBase, "no change\n"},
		{"one VIP added, priority changed: kept", `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 110
    virtual_ipaddress {
        10.0.0.1/24
        10.0.0.2/24
        10.0.0.3/24
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        10.0.1.1/24
    }
}
`, "instance VI_1: add address 10.0.0.3/24 dev eth0\ninstance VI_1: priority 100 -> 110\n"},
		{"renamed: kept", `
vrrp_instance OUTSIDE {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.0.0.1/24
        10.0.0.2/24
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        10.0.1.1/24
    }
}
`, "rename instance VI_1 -> OUTSIDE (state kept)\n"},
		{"VRID changed: recreated; instance removed", `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 61
    priority 100
    virtual_ipaddress {
        10.0.0.1/24
        10.0.0.2/24
    }
}
`, "remove instance VI_2\nrecreate instance VI_1: VRID 51 IPv4 on eth0, multicast 224.0.0.18 -> VRID 61 IPv4 on eth0, multicast 224.0.0.18 (identity changed: it will flap)\n"},
		{"static entries and virtual routes", `
static_ipaddress {
    10.9.9.9/32 dev eth0
}
static_routes {
    10.96.0.0/24 via 10.0.0.254
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.0.0.1/24
        10.0.0.2/24
    }
    virtual_routes {
        10.99.0.0/24 via 10.0.0.254
    }
    virtual_rules {
        from 10.0.0.1 table 100
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        10.0.1.1/24
    }
}
`, "instance VI_1: add virtual route 10.99.0.0/24 via 10.0.0.254\ninstance VI_1: add virtual rule from 10.0.0.1 table 100\n" +
			"add static address 10.9.9.9/32 dev eth0\nadd static route 10.96.0.0/24 via 10.0.0.254\n"},
		{"use_vmac added: recreated, the macvlan made", strings.Replace(planBase, "priority 100\n", "priority 100\n    use_vmac\n", 1),
			"recreate instance VI_1: VRID 51 IPv4 on eth0, multicast 224.0.0.18 -> VRID 51 IPv4 on eth0, multicast 224.0.0.18, vmac vrrp.51 00:00:5e:00:01:33 (identity changed: it will flap)\n" +
				"add vmac vrrp.51 00:00:5e:00:01:33 on eth0\n"},
	}
	old := planConfig(t, planBase)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := PlanReload(old, planConfig(t, tc.new)).String()
			if got != tc.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
