package lab

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"gokeepalived/tests/netns"
)

// noAcceptConfig is one fast VRRPv3 director for the virtual address cidr with global
// and instance settings added.
func noAcceptConfig(global, extra, cidr string) string {
	return fmt.Sprintf(`
global_defs {
    %s
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 61
    version 3
    priority 150
    advert_int 0.2
    %s
    virtual_ipaddress {
        %s
    }
}
`, global, extra, cidr)
}

// listenIn listens on TCP port in ns, on every address. Nothing accepts: the kernel
// completes the handshakes into the backlog, which is all a connect needs.
func listenIn(t *testing.T, ns *netns.NS, port int) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
}

// connectFrom tries a TCP connection from ns, with a short timeout.
func connectFrom(ns *netns.NS, addr string, port int) error {
	return ns.Do(func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", addr, port), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// TestNoAcceptDropsVIPTraffic: a master in strict mode (no_accept by default, the
// distro sample's trap) holds the VIP, answers ARP for it, and drops the client's ping
// and TCP connection to it through gokeepalived's nftables table, while its own address
// serves; its start-up log says why. When it stops the table is gone. With accept the
// same connection works and there is no table.
func TestNoAcceptDropsVIPTraffic(t *testing.T) {
	l := New(t, 1)
	const port = 8080
	dir := l.Directors[0]
	listenIn(t, dir, port)
	ruleset := func() string { return dir.Run("nft", "list", "ruleset") }

	d := l.Start(0, "strict", noAcceptConfig("vrrp_strict", "", VIP+"/24"), binary)
	netns.Eventually(t, 10*time.Second, "the director holds the VIP", func() bool { return len(l.HoldersAll(VIP)) == 1 })
	netns.Eventually(t, 5*time.Second, "the VIP in table ip keepalived", func() bool {
		rs := ruleset()
		return strings.Contains(rs, "table ip keepalived") && strings.Contains(rs, VIP) && strings.Contains(rs, "ip daddr @vips drop")
	})
	if log := d.Log(); !strings.Contains(log, "drops all traffic") || !strings.Contains(log, "because=vrrp_strict") {
		t.Errorf("no start-up line explaining the drop:\n%s", log)
	}
	if err := connectFrom(l.Client, "192.168.71.1", port); err != nil {
		t.Fatalf("the director's own address should serve: %v", err)
	}
	l.Client.Run("ip", "neigh", "flush", "dev", "eth0")
	if err := connectFrom(l.Client, VIP, port); err == nil {
		t.Error("a TCP connection to the VIP of a no_accept master succeeded")
	}
	if out, err := l.Client.Try("ping", "-c", "1", "-W", "1", VIP); err == nil {
		t.Errorf("the VIP of a no_accept master answers ping:\n%s", out)
	}
	if got, want := l.ClientNeigh(VIP), l.MAC(0); got != want {
		t.Errorf("the client resolved the VIP to %q, want the master's %q: ARP must still be answered", got, want)
	}

	d.Signal(syscall.SIGTERM)
	if !d.Wait(10 * time.Second) {
		t.Fatal("the daemon did not stop")
	}
	if rs := ruleset(); strings.Contains(rs, "keepalived") {
		t.Errorf("table left after stop:\n%s", rs)
	}

	l.Start(0, "accept", noAcceptConfig("", "accept", VIP+"/24"), binary)
	netns.Eventually(t, 10*time.Second, "the director holds the VIP again", func() bool { return len(l.HoldersAll(VIP)) == 1 })
	netns.Eventually(t, 5*time.Second, "a TCP connection to the VIP of an accept master", func() bool {
		return connectFrom(l.Client, VIP, port) == nil
	})
	if out, err := l.Client.Try("ping", "-c", "1", "-W", "1", VIP); err != nil {
		t.Errorf("the VIP of an accept master does not answer ping: %v\n%s", err, out)
	}
	if rs := ruleset(); strings.Contains(rs, "keepalived") {
		t.Errorf("an accept master installed a table:\n%s", rs)
	}
}

// TestNoAcceptIPv6: with an IPv6 VIP the drop rules live in table ip6 keepalived and
// let neighbour discovery through: the client resolves the VIP to the master, whose
// answer comes from the VIP itself, yet its ping gets no answer.
func TestNoAcceptIPv6(t *testing.T) {
	l := New(t, 1)
	l.Start(0, "v6", noAcceptConfig("", "no_accept", vip6+"/64"), binary)
	netns.Eventually(t, 10*time.Second, "the director holds the VIP", func() bool { return len(l.HoldersAll(vip6)) == 1 })
	netns.Eventually(t, 5*time.Second, "the VIP in table ip6 keepalived", func() bool {
		rs := l.Directors[0].Run("nft", "list", "ruleset")
		return strings.Contains(rs, "table ip6 keepalived") && strings.Contains(rs, vip6)
	})
	l.Client.Run("ip", "neigh", "flush", "dev", "eth0")
	if out, err := l.Client.Try("ping", "-6", "-c", "1", "-W", "1", vip6); err == nil {
		t.Errorf("the VIP of a no_accept master answers ping:\n%s", out)
	}
	if got, want := l.ClientNeigh(vip6), l.MAC(0); got != want {
		t.Errorf("the client resolved the VIP to %q, want the master's %q: neighbour discovery must pass", got, want)
	}
}
