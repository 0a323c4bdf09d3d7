package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gokeepalived/tests/netns"
)

var binary string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		// netns.RequireRoot skips each test; nothing to build.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "gka-lab-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	binary, err = BuildBinary(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// seedConfig is a director of the seed scenario: one VIP, v2 with PASS authentication.
func seedConfig(prio int, extra string) string {
	return fmt.Sprintf(`
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    %s
    authentication {
        auth_type PASS
        auth_pass seedpass
    }
    virtual_ipaddress {
        %s/24
    }
}
`, prio, extra, VIP)
}

// watchHolders polls who holds addr and reports the longest time two or more directors
// held it at once; stop returns that duration.
func watchHolders(l *Lab, addr string) (stop func() time.Duration) {
	var (
		mu      sync.Mutex
		worst   time.Duration
		since   time.Time
		stopped = make(chan struct{})
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			select {
			case <-stopped:
				return
			case <-time.After(50 * time.Millisecond):
			}
			n := len(l.Holders(addr))
			mu.Lock()
			now := time.Now()
			if n > 1 {
				if since.IsZero() {
					since = now
				}
				worst = max(worst, now.Sub(since))
			} else {
				since = time.Time{}
			}
			mu.Unlock()
		}
	}()
	return func() time.Duration {
		close(stopped)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return worst
	}
}

func waitHolder(t *testing.T, l *Lab, addr string, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	netns.Eventually(t, timeout, fmt.Sprintf("director %d alone holds %s", want+1, addr), func() bool {
		return slices.Equal(l.Holders(addr), []int{want})
	})
	return time.Since(start)
}

// TestSeedCluster runs three gokeepalived directors with the seed's priorities through
// election, crash, graceful stop and return, checking that two directors never hold the
// VIP at once and that the client learns the new master from its gratuitous ARP.
func TestSeedCluster(t *testing.T) {
	l := New(t, 3)
	stop := watchHolders(l, VIP)
	d1 := l.Start(0, "d1", seedConfig(150, ""), binary)
	l.Start(1, "d2", seedConfig(100, ""), binary)
	l.Start(2, "d3", seedConfig(50, ""), binary)

	waitHolder(t, l, VIP, 0, 10*time.Second)
	// The client talks to the VIP: its neighbour table now points at director 1.
	l.Client.Run("ping", "-c1", "-W2", VIP)
	if got := l.ClientNeigh(VIP); got != l.MAC(0) {
		t.Fatalf("client resolves the VIP to %q, want director 1 %q", got, l.MAC(0))
	}

	// SIGKILL: no priority-0 advert; director 2 takes over after Master_Down_Interval
	// (3 x 1 s + (256-100)/256 s) and its gratuitous ARP updates the client.
	d1.Signal(syscall.SIGKILL)
	d1.Wait(5 * time.Second)
	took := waitHolder(t, l, VIP, 1, 8*time.Second)
	t.Logf("SIGKILL takeover seen after %v", took)
	netns.Eventually(t, 3*time.Second, "client learns director 2's MAC from its gratuitous ARP", func() bool {
		return l.ClientNeigh(VIP) == l.MAC(1)
	})

	// The crashed director still has the VIP on its interface (nobody removed it). When
	// it comes back it first removes that leftover, then preempts.
	if !slices.Contains(l.HoldersAll(VIP), 0) {
		t.Fatal("expected the killed director to keep its VIP, as after a crash")
	}
	l.Start(0, "d1-again", seedConfig(150, ""), binary)
	netns.Eventually(t, 2*time.Second, "leftover VIP removed at start", func() bool {
		return !slices.Contains(l.HoldersAll(VIP), 0)
	})
	waitHolder(t, l, VIP, 0, 10*time.Second)
	if got := l.HoldersAll(VIP); !slices.Equal(got, []int{0}) {
		t.Errorf("after preemption the VIP is on %v", got)
	}

	if worst := stop(); worst > 200*time.Millisecond {
		t.Errorf("two directors held the VIP at once for %v", worst)
	}
}

// TestGracefulStop: SIGTERM makes the master send priority 0, so the backup takes over
// after its skew time only (0.61 s at priority 100), well before Master_Down_Interval.
func TestGracefulStop(t *testing.T) {
	l := New(t, 2)
	d1 := l.Start(0, "d1", seedConfig(150, ""), binary)
	d2 := l.Start(1, "d2", seedConfig(100, ""), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	start := time.Now()
	d1.Signal(syscall.SIGTERM)
	waitHolder(t, l, VIP, 1, 5*time.Second)
	took := time.Since(start)
	t.Logf("graceful takeover after %v", took)
	if took > 3*time.Second {
		t.Errorf("takeover took %v: the priority-0 advert was not honoured", took)
	}
	if !d1.Wait(5 * time.Second) {
		t.Fatal("d1 did not exit on SIGTERM")
	}
	_ = d2
}

// TestNopreempt: a returning higher-priority director does not take the VIP back.
func TestNopreempt(t *testing.T) {
	l := New(t, 2)
	d1 := l.Start(0, "d1", seedConfig(150, "nopreempt"), binary)
	l.Start(1, "d2", seedConfig(100, "nopreempt"), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	d1.Signal(syscall.SIGKILL)
	d1.Wait(5 * time.Second)
	waitHolder(t, l, VIP, 1, 8*time.Second)
	l.Start(0, "d1-again", seedConfig(150, "nopreempt"), binary)
	netns.Eventually(t, 2*time.Second, "leftover VIP removed at start", func() bool {
		return !slices.Contains(l.HoldersAll(VIP), 0)
	})
	// Give the returning director well over its Master_Down_Interval to misbehave.
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		if h := l.Holders(VIP); !slices.Equal(h, []int{1}) {
			t.Fatalf("holders %v: nopreempt director took the VIP back", h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestInteropKeepalived: a mixed cluster with Debian's keepalived 2.2.7 (v2, PASS auth)
// elects by priority and fails over in both directions.
func TestInteropKeepalived(t *testing.T) {
	ka, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatal("keepalived is not installed (tests/setup.sh installs it)")
	}
	l := New(t, 2)
	gk := l.Start(0, "gk", seedConfig(150, ""), binary)
	kd := l.Start(1, "ka", seedConfig(100, ""), ka, "-P", "-r", l.dir+"/ka-vrrp.pid")
	waitHolder(t, l, VIP, 0, 10*time.Second)

	// gokeepalived master stops: keepalived takes over.
	gk.Signal(syscall.SIGTERM)
	waitHolder(t, l, VIP, 1, 5*time.Second)

	// gokeepalived returns with the higher priority: keepalived yields.
	l.Start(0, "gk-again", seedConfig(150, ""), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)

	// keepalived with a higher priority takes over from gokeepalived.
	kd.Signal(syscall.SIGTERM)
	kd.Wait(5 * time.Second)
	l.Start(1, "ka-high", seedConfig(200, ""), ka, "-P", "-r", l.dir+"/ka-high-vrrp.pid")
	waitHolder(t, l, VIP, 1, 10*time.Second)
}

// vip6 is the IPv6 service address of ipv6Config.
const vip6 = "fd71::205"

// ipv6Config is a director with an IPv6 instance: VRID 61, vip6/64, adverts every 0.5 s.
func ipv6Config(prio int, extra string) string {
	return fmt.Sprintf(`
vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 61
    priority %d
    advert_int 0.5
    %s
    virtual_ipaddress {
        %s/64
    }
}
`, prio, extra, vip6)
}

// TestIPv6v3: VRRPv3 over IPv6 (ff02::12 from link-local sources) moves an IPv6 VIP,
// and the client learns the new master from its unsolicited neighbour advertisement.
func TestIPv6v3(t *testing.T) {
	l := New(t, 2)
	d1 := l.Start(0, "d1", ipv6Config(150, "version 3"), binary)
	l.Start(1, "d2", ipv6Config(100, "version 3"), binary)
	waitHolder(t, l, vip6, 0, 10*time.Second)
	l.Client.Run("ping", "-6", "-c1", "-W2", vip6)
	if got := l.ClientNeigh(vip6); got != l.MAC(0) {
		t.Fatalf("client resolves %s to %q, want %q", vip6, got, l.MAC(0))
	}
	d1.Signal(syscall.SIGTERM)
	waitHolder(t, l, vip6, 1, 5*time.Second)
	netns.Eventually(t, 3*time.Second, "client learns director 2 from its neighbour advertisement", func() bool {
		return l.ClientNeigh(vip6) == l.MAC(1)
	})
}

// TestUnicast: with unicast_src_ip and unicast_peer the directors elect and fail over
// without multicast.
func TestUnicast(t *testing.T) {
	conf := func(self, prio int) string {
		peers := ""
		for i := 1; i <= 3; i++ {
			if i != self {
				peers += fmt.Sprintf("        192.168.71.%d\n", i)
			}
		}
		return fmt.Sprintf(`
vrrp_instance VI_U {
    interface eth0
    virtual_router_id 71
    priority %d
    advert_int 1
    unicast_src_ip 192.168.71.%d
    unicast_peer {
%s    }
    virtual_ipaddress {
        %s/24
    }
}
`, prio, self, peers, VIP)
	}
	l := New(t, 3)
	// Multicast VRRP is dropped on the bridge: only unicast can elect.
	l.Switch.Run("nft", "add table bridge f; add chain bridge f vrrpdrop { type filter hook forward priority 0; }; add rule bridge f vrrpdrop ip daddr 224.0.0.18 counter drop")
	d1 := l.Start(0, "d1", conf(1, 150), binary)
	l.Start(1, "d2", conf(2, 100), binary)
	l.Start(2, "d3", conf(3, 50), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	d1.Signal(syscall.SIGTERM)
	waitHolder(t, l, VIP, 1, 5*time.Second)
	if out := l.Switch.Run("nft", "list chain bridge f vrrpdrop"); !strings.Contains(out, "packets 0 ") {
		t.Logf("multicast VRRP dropped by the bridge: %s", strings.TrimSpace(out))
	}
}

// TestPingTargetMovesVIP: the mission's ping-target tracking. Both directors ping the
// upstream router (the client here); director 1's base priority 120 plus 30 for the
// target beats director 2's 140. When director 1 loses the target, its priority drops by
// the weight and the VIP moves; when the target answers again, it preempts back.
func TestPingTargetMovesVIP(t *testing.T) {
	conf := func(prio int) string {
		return fmt.Sprintf(`
vrrp_track_ping upstream {
    address 192.168.71.100
    interval 0.2
    timeout 0.2
    fall 2
    rise 1
    weight 30
}
`) + seedConfig(prio, "track_ping {\n        upstream\n    }")
	}
	l := New(t, 2)
	l.Start(0, "d1", conf(120), binary)
	l.Start(1, "d2", seedConfig(140, ""), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	// The upstream stops answering director 1 only.
	l.Client.Run("nft", "add table inet f; add chain inet f in { type filter hook input priority 0; }; add rule inet f in ip saddr 192.168.71.1 icmp type echo-request drop")
	took := waitHolder(t, l, VIP, 1, 10*time.Second)
	t.Logf("VIP moved %v after the target stopped answering", took)
	l.Client.Run("nft", "flush table inet f")
	waitHolder(t, l, VIP, 0, 10*time.Second)
}

// TestPingQuorumFault: with quorum 1, an isolated director (no target answers) goes to
// FAULT and gives up the VIP even though nobody else can see it either.
func TestPingQuorumFault(t *testing.T) {
	conf := `
vrrp_track_ping upstream {
    address 192.168.71.100
    interval 0.2
    timeout 0.2
    fall 2
    quorum 1
}
` + seedConfig(150, "track_ping {\n        upstream\n    }")
	l := New(t, 1)
	d := l.Start(0, "d1", conf, binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	l.Client.Run("ip", "link", "set", "eth0", "down")
	netns.Eventually(t, 5*time.Second, "isolated director releases the VIP", func() bool {
		return len(l.Holders(VIP)) == 0
	})
	if !strings.Contains(d.Log(), "FAULT") {
		t.Errorf("no FAULT in the log:\n%s", d.Log())
	}
}

// TestTrackInterfaceFault: track_interface down puts the master in FAULT; the backup
// takes the VIP; the link coming back makes it master again.
func TestTrackInterfaceFault(t *testing.T) {
	l := New(t, 2)
	l.Directors[0].Run("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
	l.Directors[0].Run("ip", "link", "set", "eth1", "up")
	l.Directors[0].Run("ip", "link", "set", "eth1p", "up")
	l.Start(0, "d1", seedConfig(150, "track_interface {\n        eth1\n    }"), binary)
	l.Start(1, "d2", seedConfig(100, ""), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	l.Directors[0].Run("ip", "link", "set", "eth1", "down")
	waitHolder(t, l, VIP, 1, 5*time.Second)
	l.Directors[0].Run("ip", "link", "set", "eth1", "up")
	waitHolder(t, l, VIP, 0, 10*time.Second)
}

// TestSyncGroup: the outside VIP and the inside gateway move together when one member's
// tracked link fails.
func TestSyncGroup(t *testing.T) {
	const gw = "192.168.71.254"
	conf := func(prio int) string {
		return fmt.Sprintf(`
vrrp_sync_group LVS {
    group {
        VI_OUT
        VI_IN
    }
}
vrrp_instance VI_OUT {
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    virtual_ipaddress {
        %s/24
    }
}
vrrp_instance VI_IN {
    interface eth0
    virtual_router_id 52
    priority %d
    advert_int 1
    track_interface {
        eth1
    }
    virtual_ipaddress {
        %s/24
    }
}
`, prio, VIP, prio, gw)
	}
	l := New(t, 2)
	for _, d := range l.Directors {
		d.Run("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
		d.Run("ip", "link", "set", "eth1", "up")
		d.Run("ip", "link", "set", "eth1p", "up")
	}
	l.Start(0, "d1", conf(150), binary)
	l.Start(1, "d2", conf(100), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	waitHolder(t, l, gw, 0, 5*time.Second)
	l.Directors[0].Run("ip", "link", "set", "eth1", "down")
	waitHolder(t, l, VIP, 1, 8*time.Second)
	waitHolder(t, l, gw, 1, 5*time.Second)
}

// TestPreemptDelay: a returning higher-priority director waits preempt_delay (keepalived
// §3) after hearing the lower-priority master before it takes over.
func TestPreemptDelay(t *testing.T) {
	l := New(t, 2)
	d1 := l.Start(0, "d1", seedConfig(150, "preempt_delay 4"), binary)
	l.Start(1, "d2", seedConfig(100, ""), binary)
	// No master is heard at first: preempt_delay has no effect then.
	waitHolder(t, l, VIP, 0, 10*time.Second)
	d1.Signal(syscall.SIGTERM)
	d1.Wait(5 * time.Second)
	waitHolder(t, l, VIP, 1, 5*time.Second)
	back := time.Now()
	l.Start(0, "d1-again", seedConfig(150, "preempt_delay 4"), binary)
	took := waitHolder(t, l, VIP, 0, 15*time.Second)
	t.Logf("preempted %v after returning", took)
	// 4 s delay from the first lower-priority advert, then Master_Down_Interval (3.4 s).
	if since := time.Since(back); since < 4*time.Second {
		t.Errorf("preempted after %v, before preempt_delay 4 s", since)
	}
}

// TestInteropKeepalivedV3: the same mixed cluster with VRRPv3 (IPv4, the pseudo-header
// checksum both implementations use by default) and a 0.5 s interval.
func TestInteropKeepalivedV3(t *testing.T) {
	ka, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatal("keepalived is not installed (tests/setup.sh installs it)")
	}
	conf := func(prio int) string {
		return fmt.Sprintf(`
vrrp_instance VI_3 {
    interface eth0
    virtual_router_id 53
    version 3
    priority %d
    advert_int 0.5
    virtual_ipaddress {
        %s/24
    }
}
`, prio, VIP)
	}
	l := New(t, 2)
	gk := l.Start(0, "gk", conf(150), binary)
	kd := l.Start(1, "ka", conf(100), ka, "-P", "-r", l.dir+"/ka-vrrp.pid")
	waitHolder(t, l, VIP, 0, 10*time.Second)
	gk.Signal(syscall.SIGTERM)
	waitHolder(t, l, VIP, 1, 5*time.Second)
	l.Start(0, "gk-again", conf(150), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	if strings.Contains(kd.Log(), "bogus") || strings.Contains(kd.Log(), "checksum") {
		t.Errorf("keepalived complained about our adverts:\n%s", kd.Log())
	}
}

// TestVIPReadded: while master, a VIP removed by someone else (an operator, another tool)
// is put back at once and announced again (kube-vip#173 is the failure this prevents).
func TestVIPReadded(t *testing.T) {
	l := New(t, 1)
	d := l.Start(0, "d1", seedConfig(150, ""), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	l.Directors[0].Run("ip", "addr", "del", VIP+"/24", "dev", "eth0")
	waitHolder(t, l, VIP, 0, 3*time.Second)
	if !strings.Contains(d.Log(), "adding it back") {
		t.Errorf("log does not mention the re-add:\n%s", d.Log())
	}
}

// TestSignalDumps: SIGUSR1, SIGUSR2 and the JSON signal (SIGRTMIN+2) write keepalived's
// data, stats and JSON dumps to the configured paths.
func TestSignalDumps(t *testing.T) {
	dir := t.TempDir()
	conf := fmt.Sprintf(`
global_defs {
    state_dump_file %[1]s/k.data
    stats_dump_file %[1]s/k.stats
    json_dump_file %[1]s/k.json
}
`, dir) + seedConfig(150, "")
	l := New(t, 1)
	d := l.Start(0, "d1", conf, binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	for _, c := range []struct {
		sig  syscall.Signal
		file string
		want string
	}{
		{syscall.SIGUSR1, "k.data", "   State = MASTER\n"},
		{syscall.SIGUSR2, "k.stats", "VRRP Instance: VI_1\n  Advertisements:\n"},
		{syscall.Signal(36), "k.json", `"iname": "VI_1"`},
	} {
		d.Signal(c.sig)
		netns.Eventually(t, 3*time.Second, c.file+" written", func() bool {
			b, err := os.ReadFile(dir + "/" + c.file)
			return err == nil && strings.Contains(string(b), c.want)
		})
	}
	var doc []struct {
		Data  map[string]any `json:"data"`
		Stats map[string]any `json:"stats"`
	}
	if b, err := os.ReadFile(dir + "/k.json"); err != nil || json.Unmarshal(b, &doc) != nil || len(doc) != 1 || doc[0].Data["iname"] != "VI_1" {
		t.Errorf("JSON dump does not parse as keepalived's layout: %v\n%s", err, b)
	}
	if d.Wait(100 * time.Millisecond) {
		t.Fatalf("daemon exited after a dump signal:\n%s", d.Log())
	}
}

// TestStatusSocket: `gokeepalived status --json` reads the running daemon's state over
// its control socket (by default the pid file's name with .sock).
func TestStatusSocket(t *testing.T) {
	l := New(t, 2)
	l.Start(0, "d1", seedConfig(150, ""), binary)
	l.Start(1, "d2", seedConfig(100, ""), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	status := func(name string) map[string]any {
		out, err := exec.Command(binary, "status", "--json", "-S", l.dir+"/"+name+".sock").Output()
		if err != nil {
			t.Fatalf("status %s: %v", name, err)
		}
		var doc map[string]any
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("status %s: %v\n%s", name, err, out)
		}
		return doc
	}
	inst := func(doc map[string]any) map[string]any {
		return doc["vrrp_instances"].([]any)[0].(map[string]any)
	}
	if i := inst(status("d1")); i["state"] != "MASTER" || i["effective_priority"] != float64(150) {
		t.Errorf("d1 status: %v", i)
	}
	i := inst(status("d2"))
	if i["state"] != "BACKUP" || i["master"] != "192.168.71.1" || i["master_priority"] != float64(150) {
		t.Errorf("d2 status: %v", i)
	}
	mib, err := exec.Command(binary, "status", "--mib", "-S", l.dir+"/d1.sock").Output()
	for _, want := range []string{
		".1.3.6.1.4.1.9586.100.5.2.3.1.4.1 KEEPALIVED-MIB::vrrpInstanceState.1 = INTEGER: master(2)",
		"KEEPALIVED-MIB::vrrpInstanceEffectivePriority.1 = INTEGER: 150",
		"VRRP-MIB::vrrpOperState.",
		".51 = INTEGER: master(3)",
		"VRRP-MIB::vrrpStatsBecomeMaster.",
	} {
		if err != nil || !strings.Contains(string(mib), want) {
			t.Errorf("MIB walk lacks %q (%v):\n%s", want, err, mib)
		}
	}
	out, err := exec.Command(binary, "status", "-S", l.dir+"/d2.sock").Output()
	if err != nil || !strings.Contains(string(out), "VRRP VI_1: BACKUP, priority 100 (base 100), master 192.168.71.1 priority 150") {
		t.Errorf("text status: %v\n%s", err, out)
	}
}

// TestReloadSIGHUP: keepalived's reload semantics over SIGHUP, watched with an address
// subscription (ip monitor): an unchanged file causes zero address events; one added VIP
// is the only event; a file with a syntax error is rejected and the running
// configuration keeps serving.
func TestReloadSIGHUP(t *testing.T) {
	const vip2 = "192.168.71.206"
	l := New(t, 1)
	d := l.Start(0, "d1", seedConfig(150, ""), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	mon := l.Directors[0].Command("ip", "-o", "monitor", "address")
	var events strings.Builder
	var mu sync.Mutex
	mon.Stdout = writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return events.Write(p)
	})
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	seen := func() string {
		mu.Lock()
		defer mu.Unlock()
		return events.String()
	}
	reloads := func() int { return strings.Count(d.Log(), "reload done") + strings.Count(d.Log(), "reload rejected") }

	d.Signal(syscall.SIGHUP)
	netns.Eventually(t, 5*time.Second, "first reload done", func() bool { return reloads() == 1 })
	// Give the kernel's events time to arrive if there were any: wait for a marker
	// event we cause ourselves, which comes after any event of the reload.
	l.Directors[0].Run("ip", "addr", "add", "10.255.255.1/32", "dev", "lo")
	netns.Eventually(t, 3*time.Second, "marker event", func() bool { return strings.Contains(seen(), "10.255.255.1") })
	if ev := seen(); strings.Count(ev, "inet ") != 1 {
		t.Fatalf("unchanged reload caused address events:\n%s", ev)
	}

	conf := l.dir + "/d1.conf"
	if err := os.WriteFile(conf, []byte(strings.Replace(seedConfig(150, ""), VIP+"/24", VIP+"/24\n        "+vip2+"/24", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	netns.Eventually(t, 5*time.Second, "second VIP added", func() bool { return strings.Contains(seen(), vip2) })
	if got := l.Holders(vip2); !slices.Equal(got, []int{0}) {
		t.Errorf("%s on %v", vip2, got)
	}
	if ev := seen(); strings.Count(ev, "inet ") != 2 || strings.Contains(ev, "Deleted") {
		t.Errorf("adding one VIP caused other address events:\n%s", ev)
	}

	if err := os.WriteFile(conf, []byte("vrrp_instance VI_1 {\n    priorty 150\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	netns.Eventually(t, 5*time.Second, "bad reload rejected", func() bool { return strings.Contains(d.Log(), "reload rejected") })
	if !strings.Contains(d.Log(), "d1.conf:2:5: error: unknown keyword 'priorty'") {
		t.Errorf("rejection does not name file:line:col:\n%s", d.Log())
	}
	if got := l.Holders(VIP); !slices.Equal(got, []int{0}) {
		t.Errorf("after a rejected reload the VIP is on %v", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestReloadDryRun: `gokeepalived reload --dry-run -f FILE` prints what a reload would
// change, including instances that would be recreated, and changes nothing; `gokeepalived
// reload` applies the daemon's file.
func TestReloadDryRun(t *testing.T) {
	l := New(t, 1)
	l.Start(0, "d1", seedConfig(150, ""), binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	sock := l.dir + "/d1.sock"
	next := l.dir + "/next.conf"
	withVIP := strings.Replace(seedConfig(150, ""), VIP+"/24", VIP+"/24\n        192.168.71.206/24", 1)
	if err := os.WriteFile(next, []byte(withVIP), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "reload", "--dry-run", "-f", next, "-S", sock).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "instance VI_1: add address 192.168.71.206/24 dev eth0") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if len(l.Holders("192.168.71.206")) != 0 {
		t.Fatal("the dry run changed the addresses")
	}
	recreate := strings.Replace(seedConfig(150, ""), "virtual_router_id 51", "virtual_router_id 52", 1)
	if err := os.WriteFile(next, []byte(recreate), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command(binary, "reload", "--dry-run", "-f", next, "-S", sock).CombinedOutput()
	if !strings.Contains(string(out), "recreate instance VI_1") || !strings.Contains(string(out), "it will flap") {
		t.Errorf("dry run does not warn about the recreated instance:\n%s", out)
	}
	if err := os.WriteFile(l.dir+"/d1.conf", []byte(withVIP), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(binary, "reload", "-S", sock).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "reloaded") {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	waitHolder(t, l, "192.168.71.206", 0, 3*time.Second)
}
