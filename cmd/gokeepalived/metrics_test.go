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
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    version 3
    advert_int 0.05
    priority 120
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
	if err := vm.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	defer vm.Stop()
	lm := ipvs.NewManager(&ipvs.Fake{}, log)
	if err := lm.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	defer lm.Stop(false)

	srv := httptest.NewServer(metricsHandler(vm, lm))
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
