package lab

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gokeepalived/tests/netns"
)

// vmacName is keepalived's default name of use_vmac's macvlan for VRID 51.
const vmacName = "vrrp.51"

// vmacMAC is the VRRP virtual MAC of VRID 51 (IPv4).
const vmacMAC = "00:00:5e:00:01:33"

// TestVMACFailover: two gokeepalived directors with use_vmac. Both have the macvlan
// vrrp.51 with the virtual MAC (the backup too); the client resolves the VIP to that
// MAC; when the master dies the other director answers for the VIP with the same MAC,
// so the client's neighbour entry never changes; SIGTERM removes the macvlan and puts
// the parent's ARP settings back.
func TestVMACFailover(t *testing.T) {
	l := New(t, 2)
	sysctl := func(i int, dev, key string) string {
		return strings.TrimSpace(l.Directors[i].Run("cat", "/proc/sys/net/ipv4/conf/"+dev+"/"+key))
	}
	if a, f := sysctl(1, "eth0", "arp_ignore"), sysctl(1, "eth0", "arp_filter"); a != "0" || f != "0" {
		t.Fatalf("eth0 arp_ignore %s arp_filter %s in a new namespace, want 0 0", a, f)
	}
	// A distribution's strict reverse path filter: the backups must still hear the
	// master's adverts on their macvlans (else both would be master).
	for _, d := range l.Directors {
		d.Run("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1")
	}
	d1 := l.Start(0, "d1", seedConfig(150, "use_vmac"), binary)
	d2 := l.Start(1, "d2", seedConfig(100, "use_vmac"), binary)
	netns.Eventually(t, 10*time.Second, "director 1 alone holds the VIP on its macvlan", func() bool {
		return slices.Equal(l.HoldersOn(vmacName, VIP), []int{0})
	})
	for i := range 2 {
		if mac := l.LinkMAC(i, vmacName); mac != vmacMAC {
			t.Fatalf("director %d: %s has MAC %q, want %s", i+1, vmacName, mac, vmacMAC)
		}
	}
	if got := l.HoldersAll(VIP); len(got) != 0 {
		t.Errorf("the VIP is on eth0 of %v", got)
	}
	if a, f := sysctl(1, "eth0", "arp_ignore"), sysctl(1, "eth0", "arp_filter"); a != "1" || f != "1" {
		t.Errorf("parent eth0 arp_ignore %s arp_filter %s, want 1 1", a, f)
	}

	l.Client.Run("ping", "-c1", "-W2", VIP)
	if got := l.ClientNeigh(VIP); got != vmacMAC {
		t.Fatalf("client resolves the VIP to %q, want the virtual MAC %s (director 1's eth0 is %s)", got, vmacMAC, l.MAC(0))
	}
	stopWatch := l.WatchNeigh(VIP)

	// The master dies: the daemon is killed and the machine leaves the network.
	d1.Signal(syscall.SIGKILL)
	d1.Wait(5 * time.Second)
	l.Directors[0].Run("ip", "link", "set", "eth0", "down")
	netns.Eventually(t, 8*time.Second, "director 2 holds the VIP on its macvlan", func() bool {
		return slices.Equal(l.HoldersOn(vmacName, VIP), []int{1})
	})
	// Only director 2 can answer now, from the same MAC: no neighbour update needed.
	l.Client.Run("ping", "-c3", "-i0.2", "-W2", VIP)
	if seen := stopWatch(); !slices.Equal(seen, []string{vmacMAC}) {
		t.Errorf("the client's neighbour entry for the VIP took %v, want only %s", seen, vmacMAC)
	}

	d2.Signal(syscall.SIGTERM)
	if !d2.Wait(10 * time.Second) {
		t.Fatal("director 2 did not exit on SIGTERM")
	}
	if mac := l.LinkMAC(1, vmacName); mac != "" {
		t.Errorf("%s still there after SIGTERM (MAC %s)", vmacName, mac)
	}
	if a, f := sysctl(1, "eth0", "arp_ignore"), sysctl(1, "eth0", "arp_filter"); a != "0" || f != "0" {
		t.Errorf("after SIGTERM eth0 arp_ignore %s arp_filter %s, want 0 0 (restored)", a, f)
	}
	if all, eth0 := sysctl(1, "all", "rp_filter"), sysctl(1, "eth0", "rp_filter"); all != "1" || eth0 != "0" {
		t.Errorf("after SIGTERM rp_filter all %s eth0 %s, want 1 0 (restored)", all, eth0)
	}
}

// TestVMACXmitBaseAndLeftover: with vmac_xmit_base the adverts use eth0 and the VIP
// still lives on the macvlan; a macvlan left by a killed daemon (with its VIP) is
// adopted by the next one: the same interface, the leftover VIP removed at start.
func TestVMACXmitBaseAndLeftover(t *testing.T) {
	l := New(t, 1)
	d := l.Start(0, "d1", seedConfig(150, "use_vmac\n    vmac_xmit_base"), binary)
	netns.Eventually(t, 10*time.Second, "the VIP on the macvlan", func() bool {
		return slices.Equal(l.HoldersOn(vmacName, VIP), []int{0})
	})
	l.Client.Run("ping", "-c1", "-W2", VIP)
	if got := l.ClientNeigh(VIP); got != vmacMAC {
		t.Errorf("client resolves the VIP to %q, want %s", got, vmacMAC)
	}
	index := func() string {
		return strings.TrimSpace(l.Directors[0].Run("cat", "/sys/class/net/"+vmacName+"/ifindex"))
	}
	before := index()
	d.Signal(syscall.SIGKILL)
	d.Wait(5 * time.Second)
	if !slices.Equal(l.HoldersAllOn(vmacName, VIP), []int{0}) {
		t.Fatal("the killed daemon's macvlan lost its VIP")
	}
	l.Start(0, "d1-again", seedConfig(100, "use_vmac\n    vmac_xmit_base"), binary)
	netns.Eventually(t, 5*time.Second, "leftover VIP removed at start", func() bool {
		return len(l.HoldersAllOn(vmacName, VIP)) == 0
	})
	if after := index(); after != before {
		t.Errorf("the leftover macvlan was replaced (ifindex %s -> %s), not adopted", before, after)
	}
	netns.Eventually(t, 10*time.Second, "master again, VIP on the adopted macvlan", func() bool {
		return slices.Equal(l.HoldersOn(vmacName, VIP), []int{0})
	})
}

// TestVMACIPv6: an IPv6 instance with use_vmac gets the virtual MAC 00:00:5e:00:02:VRID;
// the backup hears the master's adverts (one holder) and the client resolves the VIP to
// that MAC before and after a failover.
func TestVMACIPv6(t *testing.T) {
	const dev, mac = "vrrp.61", "00:00:5e:00:02:3d"
	l := New(t, 2)
	d1 := l.Start(0, "d1", ipv6Config(150, "use_vmac"), binary)
	l.Start(1, "d2", ipv6Config(100, "use_vmac"), binary)
	holds := func(i int) func() bool {
		return func() bool { return slices.Equal(l.HoldersOn(dev, vip6), []int{i}) }
	}
	netns.Eventually(t, 10*time.Second, "director 1 alone holds the VIP on its macvlan", holds(0))
	if got := l.LinkMAC(1, dev); got != mac {
		t.Fatalf("director 2's %s has MAC %q, want %s", dev, got, mac)
	}
	// The macvlan has no link-local address of its own (it would be every router's,
	// from the same MAC), only eth0's: the source of the adverts.
	linkLocal := func(ifname string) []string {
		var out []string
		for _, f := range strings.Fields(l.Directors[1].Run("ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "link")) {
			if strings.HasPrefix(f, "fe80::") {
				out = append(out, f)
			}
		}
		return out
	}
	if got, base := linkLocal(dev), linkLocal("eth0"); len(base) != 1 || !slices.Equal(got, base) {
		t.Errorf("%s link-local addresses %v, want eth0's %v", dev, got, base)
	}
	l.Client.Run("ping", "-6", "-c1", "-W2", vip6)
	if got := l.ClientNeigh(vip6); got != mac {
		t.Fatalf("client resolves %s to %q, want %s", vip6, got, mac)
	}
	d1.Signal(syscall.SIGTERM)
	netns.Eventually(t, 5*time.Second, "director 2 holds the VIP on its macvlan", holds(1))
	l.Client.Run("ping", "-6", "-c1", "-W2", vip6)
	if got := l.ClientNeigh(vip6); got != mac {
		t.Errorf("after the failover the client resolves %s to %q, want %s", vip6, got, mac)
	}
}

// TestVMACReload: SIGHUP adding use_vmac moves the VIP onto a new macvlan (the instance
// restarts and is elected again), and the client follows to the virtual MAC; SIGHUP
// removing it deletes the macvlan and brings the VIP back to eth0.
func TestVMACReload(t *testing.T) {
	l := New(t, 1)
	d := l.Start(0, "d1", seedConfig(150, ""), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	reload := func(extra string, n int) {
		t.Helper()
		if err := os.WriteFile(l.dir+"/d1.conf", []byte(seedConfig(150, extra)), 0o644); err != nil {
			t.Fatal(err)
		}
		d.Signal(syscall.SIGHUP)
		netns.Eventually(t, 5*time.Second, "reload done", func() bool { return strings.Count(d.Log(), "reload done") == n })
	}

	reload("use_vmac", 1)
	netns.Eventually(t, 10*time.Second, "the VIP on the new macvlan, not on eth0", func() bool {
		return slices.Equal(l.HoldersOn(vmacName, VIP), []int{0}) && len(l.HoldersAll(VIP)) == 0
	})
	netns.Eventually(t, 5*time.Second, "the client on the virtual MAC", func() bool {
		_, _ = l.Client.Try("ping", "-c1", "-W1", VIP)
		return l.ClientNeigh(VIP) == vmacMAC
	})

	reload("", 2)
	netns.Eventually(t, 10*time.Second, "the macvlan gone, the VIP back on eth0", func() bool {
		return l.LinkMAC(0, vmacName) == "" && slices.Equal(l.Holders(VIP), []int{0})
	})
	netns.Eventually(t, 5*time.Second, "the client back on eth0's MAC", func() bool {
		_, _ = l.Client.Try("ping", "-c1", "-W1", VIP)
		return l.ClientNeigh(VIP) == l.MAC(0)
	})
}
