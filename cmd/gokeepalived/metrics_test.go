package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gokeepalived/ipvs"
	"gokeepalived/parser"
	"gokeepalived/vrrp"
)

// TestMetrics scrapes a daemon's engines (fake kernel interfaces, a real loopback real
// server) and checks keepalived-exporter's series and ours.
func TestMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	text := fmt.Sprintf(`
global_defs {
    lvs_sync_daemon eth1 VI_1
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    version 3
    advert_int 0.05
    priority 120
    no_accept
    virtual_ipaddress {
        192.168.71.205/24
    }
}
virtual_server 192.168.71.205 80 {
    delay_loop 1
    lb_algo rr
    protocol TCP
    real_server 127.0.0.1 %d {
        weight 3
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`, port)
	cfg, ds := parser.LoadBytes("m.conf", []byte(text), parser.Options{ConfigID: "x"})
	if ds.ExitCode() != parser.ExitOK {
		t.Fatalf("config: %v", ds)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	link := vrrp.NewFakeLink()
	self := netip.MustParseAddr("10.0.0.1")
	vm := vrrp.NewManager(vrrp.Kernel{
		Listen: func(_ string, f vrrp.Family, o vrrp.ConnOptions) (vrrp.AdvertConn, error) {
			return link.Listen(f, o, self)
		},
		Addrs: &vrrp.FakeAddrs{}, Announcer: &vrrp.FakeAnnouncer{},
		PrimaryAddr: func(string, vrrp.Family) (netip.Addr, error) { return self, nil },
	}, log)
	syncd := newSyncDaemons(cfg, func() (ipvs.SyncKernel, error) { return &ipvs.FakeSync{}, nil }, log)
	vm.OnTransition = syncd.transition
	if err := vm.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	defer vm.Stop()
	lm := ipvs.NewManager(&ipvs.Fake{}, log)
	if err := lm.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	defer lm.Stop(false)

	srv := httptest.NewServer(metricsHandler(vm, lm, syncd))
	defer srv.Close()
	scrape := func() string {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	want := []string{
		"keepalived_up 1",
		`keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="192.168.71.205",vrid="51"} 2`,
		`keepalived_become_master_total{iname="VI_1",intf="eth0",state="MASTER",vrid="51"} 1`,
		`gokeepalived_vrrp_effective_priority{iname="VI_1",vrid="51"} 120`,
		fmt.Sprintf(`gokeepalived_real_server_up{real_server="127.0.0.1:%d",virtual_server="[192.168.71.205]:tcp:80"} 1`, port),
		fmt.Sprintf(`gokeepalived_real_server_weight{real_server="127.0.0.1:%d",virtual_server="[192.168.71.205]:tcp:80"} 3`, port),
		`gokeepalived_vrrp_firewall_errors_total{iname="VI_1",vrid="51"} 0`,
		`gokeepalived_lvs_sync_daemon_state{instance="VI_1",interface="eth1",syncid="51"} 1`,
		`gokeepalived_lvs_sync_daemon_failing{instance="VI_1",interface="eth1",syncid="51"} 0`,
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		body := scrape()
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %s:\n%s", missing, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMIBWalk checks the OIDs and values of the walk against KEEPALIVED-MIB and
// VRRP-MIB (RFC 2787).
func TestMIBWalk(t *testing.T) {
	cfg, ds := parser.LoadBytes("m.conf", []byte(`
vrrp_instance VI_1 {
    interface gka-none0
    virtual_router_id 51
    priority 150
    virtual_ipaddress {
        192.168.71.205/24
    }
}
virtual_server 192.168.71.205 80 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 192.168.72.11 80 {
        weight 3
        TCP_CHECK {
        }
    }
}
`), parser.Options{ConfigID: "x"})
	if ds.ExitCode() == parser.ExitFatal {
		t.Fatal(ds)
	}
	st := []vrrp.InstanceStatus{{Name: "VI_1", State: vrrp.StateMaster, Priority: 150, BasePriority: 150, Config: cfg.Instances[0]}}
	vs := cfg.VirtualServers[0]
	rs := []ipvs.RealServerStatus{{VS: vs, RS: vs.RealServers[0], Up: true, Weight: 3}}
	var b strings.Builder
	writeMIB(&b, &cfg.Global, st, rs, map[ipvs.VirtualServerKey]bool{ipvs.VSKey(vs): true}, time.Now())
	for _, want := range []string{
		".1.3.6.1.4.1.9586.100.5.2.3.1.2.1 KEEPALIVED-MIB::vrrpInstanceName.1 = STRING: \"VI_1\"",
		".1.3.6.1.4.1.9586.100.5.2.3.1.4.1 KEEPALIVED-MIB::vrrpInstanceState.1 = INTEGER: master(2)",
		".1.3.6.1.4.1.9586.100.5.3.3.1.9.1 KEEPALIVED-MIB::virtualServerLoadBalancingAlgo.1 = INTEGER: wrr(2)",
		".1.3.6.1.4.1.9586.100.5.3.3.1.10.1 KEEPALIVED-MIB::virtualServerLoadBalancingKind.1 = INTEGER: dr(2)",
		".1.3.6.1.4.1.9586.100.5.3.3.1.21.1 KEEPALIVED-MIB::virtualServerRealServersUp.1 = Gauge32: 1",
		".1.3.6.1.4.1.9586.100.5.3.4.1.6.1.1 KEEPALIVED-MIB::realServerStatus.1.1 = INTEGER: alive(1)",
		".1.3.6.1.4.1.9586.100.5.3.4.1.7.1.1 KEEPALIVED-MIB::realServerWeight.1.1 = INTEGER: 3",
		// ifIndex 0: the interface does not exist on this host
		".1.3.6.1.2.1.68.1.3.1.3.0.51 VRRP-MIB::vrrpOperState.0.51 = INTEGER: master(3)",
		".1.3.6.1.2.1.68.1.3.1.5.0.51 VRRP-MIB::vrrpOperPriority.0.51 = INTEGER: 150",
		".1.3.6.1.2.1.68.2.4.1.1.0.51 VRRP-MIB::vrrpStatsBecomeMaster.0.51 = Counter32: 0",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("walk lacks %q:\n%s", want, b.String())
		}
	}
}
