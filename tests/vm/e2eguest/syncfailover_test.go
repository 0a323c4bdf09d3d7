//go:build vmguest

package e2eguest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"gokeepalived/tests/vm/vmlab"
)

// The connection sync lab: two directors, two DR real servers and a client in
// namespaces of their own on one bridge (10.90.0.0/24), separate from the seed lab.
const (
	syncVIP    = "10.90.0.100"
	syncConns  = 6
	syncConfig = `global_defs {
    router_id %s
    lvs_sync_daemon eth0 VI_SYNC
}
vrrp_instance VI_SYNC {
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority %d
    advert_int 1
    virtual_ipaddress {
        10.90.0.100/24
    }
}
virtual_server 10.90.0.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.90.0.11 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.90.0.12 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`
)

// lineServer answers every line of every connection with its name, in namespace n.
type lineServer struct {
	name string
	ln   net.Listener
	wg   sync.WaitGroup
}

func startLineServer(t *testing.T, n *vmlab.NS, name string) *lineServer {
	t.Helper()
	ln, err := n.Listen(":80")
	if err != nil {
		t.Fatal(err)
	}
	s := &lineServer{name: name, ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := fmt.Fprintf(c, "%s\n", name); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// ask sends a line on c and returns the server's answer.
func ask(c net.Conn, r *bufio.Reader) (string, error) {
	if err := c.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintln(c, "who"); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	return strings.TrimSpace(line), err
}

// startDirector runs gokeepalived in n with the sync lab's configuration.
func startDirector(t *testing.T, n *vmlab.NS, name string, prio int) *vmlab.Proc {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(syncConfig, name, prio)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := vmlab.NewProc(name, "/usr/sbin/gokeepalived", "-n", "-l", "-f", conf, "-p", filepath.Join(dir, "gokeepalived.pid"))
	if err := p.Start(n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.Exited() {
			_ = p.Stop(syscall.SIGTERM, 10*time.Second)
		}
		t.Logf("%s output:\n%s", name, p.Out.String())
	})
	return p
}

// TestSyncFailover is lvs_sync_daemon end to end: the master director's sync daemon
// sends the client's established connections to the backup director, which shows them
// in its table; after the master dies (SIGKILL, its link down) the backup takes the VIP
// and every one of those connections goes on to the same real server.
func TestSyncFailover(t *testing.T) {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "brsync"}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(br) })
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	plug := func(name, cidr string) *vmlab.NS {
		n, err := vmlab.NewNS(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := vmlab.PlugInto(br, "s-"+name, n, "eth0", []string{cidr}, ""); err != nil {
			t.Fatal(err)
		}
		return n
	}
	dirA, dirB := plug("dirA", "10.90.0.1/24"), plug("dirB", "10.90.0.2/24")
	client := plug("synccli", "10.90.0.10/24")
	for i, name := range []string{"srs1", "srs2"} {
		n := plug(name, fmt.Sprintf("10.90.0.%d/24", 11+i))
		// A DR real server holds the VIP on lo and does not answer ARP for it.
		for _, kv := range [][2]string{{"net.ipv4.conf.all.arp_ignore", "1"}, {"net.ipv4.conf.all.arp_announce", "2"}} {
			if err := n.Sysctl(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
		h, err := n.Netlink()
		if err != nil {
			t.Fatal(err)
		}
		lo, err := h.LinkByName("lo")
		if err == nil {
			err = h.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(syncVIP), Mask: net.CIDRMask(32, 32)}})
		}
		h.Close()
		if err != nil {
			t.Fatal(err)
		}
		startLineServer(t, n, name)
	}

	a := startDirector(t, dirA, "dirA", 150)
	vmlab.WaitFor(t, 20*time.Second, "dirA holds the VIP", func() (bool, string) { return dirA.Has("eth0", syncVIP), "" })
	b := startDirector(t, dirB, "dirB", 100)
	b.WaitLog(t, "IPVS sync daemon started", 20*time.Second)
	for _, d := range []struct {
		n    *vmlab.NS
		want string
	}{{dirA, "master sync daemon (mcast=eth0, syncid=61"}, {dirB, "backup sync daemon (mcast=eth0, syncid=61"}} {
		vmlab.WaitFor(t, 10*time.Second, d.want, func() (bool, string) {
			out, err := d.n.Run(5*time.Second, "ipvsadm", "-L", "--daemon")
			return err == nil && strings.Contains(out, d.want), out
		})
	}
	// Both directors have the service with both real servers before the client starts.
	for _, n := range []*vmlab.NS{dirA, dirB} {
		vmlab.WaitFor(t, 20*time.Second, "the service has both real servers", func() (bool, string) {
			out, err := n.Run(5*time.Second, "ipvsadm", "-Ln")
			return err == nil && strings.Contains(out, "10.90.0.11:80") && strings.Contains(out, "10.90.0.12:80"), out
		})
	}

	type conn struct {
		c  net.Conn
		r  *bufio.Reader
		rs string
	}
	var conns []conn
	for i := range syncConns {
		c, err := client.Dial(t.Context(), "tcp", syncVIP+":80")
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		rs, err := ask(c, r)
		if err != nil {
			t.Fatalf("connection %d through dirA: %v", i, err)
		}
		conns = append(conns, conn{c, r, rs})
	}
	var via []string
	for _, c := range conns {
		via = append(via, c.rs)
	}
	t.Logf("the %d connections through dirA reached %v", syncConns, via)
	// dirB learns them from dirA's sync daemon.
	synced := vmlab.WaitFor(t, 15*time.Second, "dirB's table has the client's connections", func() (bool, string) {
		out, err := dirB.Run(5*time.Second, "ipvsadm", "-Lnc")
		return err == nil && strings.Count(out, "ESTABLISHED") >= syncConns, out
	})
	t.Logf("dirB had the %d connections %v after the last one was made", syncConns, synced.Round(time.Millisecond))

	// dirA dies: SIGKILL, and its link goes down as a dead machine's would.
	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}
	h, err := dirA.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	eth0, err := h.LinkByName("eth0")
	if err == nil {
		err = h.LinkSetDown(eth0)
	}
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	took := vmlab.WaitFor(t, 15*time.Second, "dirB takes the VIP", func() (bool, string) { return dirB.Has("eth0", syncVIP), "" })
	b.WaitLog(t, "master sync daemon", 10*time.Second)
	t.Logf("dirB holds the VIP %v after dirA's death", took.Round(time.Millisecond))

	// Every connection goes on, through dirB, to the real server it had.
	for i, c := range conns {
		var rs string
		vmlab.WaitFor(t, 10*time.Second, fmt.Sprintf("connection %d answers through dirB", i), func() (bool, string) {
			var err error
			rs, err = ask(c.c, c.r)
			if err != nil {
				return false, err.Error()
			}
			return true, rs
		})
		if rs != c.rs {
			t.Errorf("connection %d: %s after the failover, %s before", i, rs, c.rs)
		}
	}
}
