//go:build vmguest

package ipvsguest

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"gokeepalived/ipvs"
	"gokeepalived/tests/vm/vmlab"
)

// syncKernel counts the starts and stops that reach the real kernel.
type syncKernel struct {
	*ipvs.SyncNetlink
	writes []string
}

func (k *syncKernel) StartSyncDaemon(d ipvs.SyncDaemon) error {
	k.writes = append(k.writes, "start "+d.State.String())
	return k.SyncNetlink.StartSyncDaemon(d)
}

func (k *syncKernel) StopSyncDaemon(s ipvs.SyncState) error {
	k.writes = append(k.writes, "stop "+s.String())
	return k.SyncNetlink.StopSyncDaemon(s)
}

func (k *syncKernel) take() string {
	w := strings.Join(k.writes, ", ")
	k.writes = nil
	return w
}

// daemonsByIpvsadm returns `ipvsadm -L --daemon`, an independent reading of the
// kernel's sync daemons, one line each.
func daemonsByIpvsadm(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ipvsadm", "-L", "--daemon").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -L --daemon: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestSyncDaemonInVM drives the real kernel's sync daemons through the controller as
// the VRRP instance would (backup, master, backup), checks each step with ipvsadm,
// adopts a running daemon on a restart without touching it, restarts it when a reload
// changes its parameters, and stops it at the end.
func TestSyncDaemonInVM(t *testing.T) {
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gsync0"}, PeerName: "gsync1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	for _, name := range []string{"gsync0", "gsync1"} {
		l, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	l, _ := netlink.LinkByName("gsync0")
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 77, 0, 1), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}

	nlk, err := ipvs.NewSyncNetlink(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	k := &syncKernel{SyncNetlink: nlk}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := ipvs.SyncDaemon{Interface: "gsync0", SyncID: 51}
	c := ipvs.NewSyncController(k, cfg, log)
	t.Cleanup(func() { _ = c.Stop() })

	steps := []struct {
		role         ipvs.SyncState
		writes, want string
	}{
		{ipvs.SyncBackup, "start backup", "backup sync daemon (mcast=gsync0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"},
		{ipvs.SyncMaster, "stop backup, start master", "master sync daemon (mcast=gsync0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"},
		{ipvs.SyncMaster, "", "master sync daemon (mcast=gsync0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"},
		{ipvs.SyncBackup, "stop master, start backup", "backup sync daemon (mcast=gsync0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"},
	}
	for i, s := range steps {
		if err := c.SetRole(s.role); err != nil {
			t.Fatalf("step %d (%s): %v", i, s.role, err)
		}
		if got := k.take(); got != s.writes {
			t.Errorf("step %d (%s): kernel writes %q, want %q", i, s.role, got, s.writes)
		}
		if got := daemonsByIpvsadm(t); got != s.want {
			t.Errorf("step %d (%s): ipvsadm -L --daemon:\n%s\nwant %s", i, s.role, got, s.want)
		}
	}
	ds, err := nlk.SyncDaemons()
	if err != nil || len(ds) != 1 || ds[0].State != ipvs.SyncBackup || ds[0].Interface != "gsync0" || ds[0].SyncID != 51 ||
		ds[0].Port != 8848 || ds[0].TTL != 1 || ds[0].Group.String() != "224.0.0.81" {
		t.Fatalf("SyncDaemons() = %+v, %v; want the backup daemon with the kernel's defaults", ds, err)
	}

	// A restart (a new controller) in the same role finds its daemon and leaves it.
	c2 := ipvs.NewSyncController(k, cfg, log)
	if err := c2.SetRole(ipvs.SyncBackup); err != nil {
		t.Fatal(err)
	}
	if got := k.take(); got != "" {
		t.Errorf("restart in the same role: kernel writes %q, want none", got)
	}
	// A reload that changes the port and ttl restarts it with them.
	if err := c2.Reconfigure(ipvs.SyncDaemon{Interface: "gsync0", SyncID: 51, Port: 8849, TTL: 3}); err != nil {
		t.Fatal(err)
	}
	if got := k.take(); got != "stop backup, start backup" {
		t.Errorf("reload: kernel writes %q", got)
	}
	if ds, err := nlk.SyncDaemons(); err != nil || len(ds) != 1 || ds[0].Port != 8849 || ds[0].TTL != 3 {
		t.Errorf("after the reload: %+v, %v", ds, err)
	}
	// A missing interface is an error, not a pretended start.
	bad := ipvs.NewSyncController(k, ipvs.SyncDaemon{Interface: "nosuch0", SyncID: 1}, log)
	if err := bad.SetRole(ipvs.SyncMaster); err == nil {
		t.Error("starting a master on a missing interface reported success")
	}
	_ = bad.Stop()
	k.take()

	if err := c2.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := daemonsByIpvsadm(t); got != "" {
		t.Errorf("after Stop: ipvsadm -L --daemon:\n%s", got)
	}
}

// TestSyncDaemonSyncsConnections is the point of it all: with the controller's master
// daemon in this namespace and a backup (started by ipvsadm, as the peer director's
// would be) in another on the same link, a connection through a virtual service here
// shows up in the peer's connection table.
func TestSyncDaemonSyncsConnections(t *testing.T) {
	k, _ := newKernel(t, 10*time.Second)
	peer, err := vmlab.NewNS("dir2")
	if err != nil {
		t.Fatal(err)
	}
	link, err := vmlab.Veth("gsyncA", peer, "eth0", []string{"10.78.0.2/24"}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(link) })
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 78, 0, 1), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	// The VIP is reached through the link, so that a local client's datagrams pass
	// IPVS on their way out.
	_, vipNet, _ := net.ParseCIDR("10.79.0.0/24")
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: vipNet, Gw: net.IPv4(10, 78, 0, 2)}); err != nil {
		t.Fatal(err)
	}
	svc := ipvs.Service{Family: ipvs.IPv4, Protocol: ipvs.UDP, Addr: netip.MustParseAddr("10.79.0.1"), Port: 5353, Scheduler: "rr"}
	dst := ipvs.Destination{Addr: netip.MustParseAddr("10.78.0.2"), Port: 5353, Weight: 1}
	reconcile(t, k, []ipvs.ServiceSpec{{Service: svc, Destinations: []ipvs.Destination{dst}}}, nil)
	for _, args := range [][]string{
		{"ipvsadm", "-A", "-u", "10.79.0.1:5353", "-s", "rr"},
		{"ipvsadm", "-a", "-u", "10.79.0.1:5353", "-r", "10.78.0.2:5353", "-m"},
		{"ipvsadm", "--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "51"},
	} {
		if out, err := peer.Run(10*time.Second, args...); err != nil {
			t.Fatalf("in the peer: %v: %v\n%s", args, err, out)
		}
	}

	nlk, err := ipvs.NewSyncNetlink(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := ipvs.NewSyncController(nlk, ipvs.SyncDaemon{Interface: "gsyncA", SyncID: 51}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := c.SetRole(ipvs.SyncMaster); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })

	// Unconnected, so that the real server's port unreachable does not fail the writes.
	conn, err := net.ListenPacket("udp4", "10.78.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := &net.UDPAddr{IP: net.IPv4(10, 79, 0, 1), Port: 5353}
	send := func() {
		if _, err := conn.WriteTo([]byte("sync me"), to); err != nil {
			t.Fatal(err)
		}
	}
	const vipHex = "0A4F0001" // 10.79.0.1 in /proc/net/ip_vs_conn
	sent := 0
	took := vmlab.WaitFor(t, 10*time.Second, "a local client's datagram makes an IPVS connection here", func() (bool, string) {
		send()
		sent++
		local, err := os.ReadFile("/proc/net/ip_vs_conn")
		return err == nil && strings.Contains(string(local), vipHex), string(local)
	})
	t.Logf("IPVS connection here after %d datagram(s), %v", sent, took.Round(time.Millisecond))
	for range 5 { // the kernel syncs a UDP connection at its third packet (sync_threshold)
		send()
	}
	var seen string
	start := time.Now()
	vmlab.WaitFor(t, 15*time.Second, "the connection synced to the peer", func() (bool, string) {
		out, err := peer.Run(5*time.Second, "cat", "/proc/net/ip_vs_conn")
		seen = out
		return err == nil && strings.Contains(out, vipHex), out
	})
	t.Logf("synced to the peer %v after the datagrams:\n%s", time.Since(start).Round(time.Millisecond), seen)
}
