//go:build vmguest

package ipvsguest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"

	"gokeepalived/ipvs"
	"gokeepalived/parser"
)

// TestMain refuses to run outside the VM: these tests change the kernel's IPVS table.
func TestMain(m *testing.M) {
	if os.Getenv("GKA_IN_VM") != "1" {
		fmt.Fprintln(os.Stderr, "tests/vm/ipvsguest: guest-only tests; run them in the VM with `go test ./tests/vm -run VMIPVSReconcile` (GKA_IN_VM is not 1)")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// counting is a Kernel that counts and logs the write calls that reach the real one.
type counting struct {
	ipvs.Kernel
	mu  sync.Mutex
	log []string
}

func (c *counting) note(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, s)
}

// take returns the writes logged since the last take.
func (c *counting) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.log
	c.log = nil
	return out
}

func (c *counting) AddService(s ipvs.Service) error {
	c.note("add-service " + s.Key().String())
	return c.Kernel.AddService(s)
}

func (c *counting) UpdateService(s ipvs.Service) error {
	c.note("update-service " + s.Key().String())
	return c.Kernel.UpdateService(s)
}

func (c *counting) DelService(s ipvs.Service) error {
	c.note("del-service " + s.Key().String())
	return c.Kernel.DelService(s)
}

func (c *counting) AddDest(s ipvs.Service, d ipvs.Destination) error {
	c.note("add-dest " + d.Key().String())
	return c.Kernel.AddDest(s, d)
}

func (c *counting) UpdateDest(s ipvs.Service, d ipvs.Destination) error {
	c.note("update-dest " + d.Key().String())
	return c.Kernel.UpdateDest(s, d)
}

func (c *counting) DelDest(s ipvs.Service, d ipvs.Destination) error {
	c.note("del-dest " + d.Key().String())
	return c.Kernel.DelDest(s, d)
}

func (c *counting) Flush() error {
	c.note("flush")
	return c.Kernel.Flush()
}

// newKernel returns a Moby on an empty table, wrapped to count writes; the table is
// flushed again at the end.
func newKernel(t *testing.T, timeout time.Duration) (*counting, *ipvs.Moby) {
	t.Helper()
	m, err := ipvs.NewMoby(timeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Flush(); err != nil {
			t.Error(err)
		}
		m.Close()
	})
	return &counting{Kernel: m}, m
}

// load parses a keepalived.conf text, which must have no error.
func load(t *testing.T, conf string) *parser.Config {
	t.Helper()
	cfg, ds := parser.LoadBytes("t.conf", []byte(conf), parser.Options{ConfigID: "t", RandomSeed: 1, Getenv: func(string) string { return "" }})
	if ds.ExitCode() != parser.ExitOK {
		t.Fatalf("config: %v", ds)
	}
	return cfg
}

// reconcile runs a pass that must not fail and returns the writes it made.
func reconcile(t *testing.T, k *counting, specs []ipvs.ServiceSpec, owned ipvs.OwnedSet) (ipvs.Changes, []string) {
	t.Helper()
	k.take()
	ch, err := ipvs.Reconcile(k, specs, owned)
	if err != nil {
		t.Fatalf("Reconcile: %v\n%s", err, ch.String())
	}
	return ch, k.take()
}

// ipvsadm returns `ipvsadm -Ln` (its args appended) without the three header lines,
// blanks squeezed.
func ipvsadm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ipvsadm", append([]string{"-Ln"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -Ln: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("ipvsadm -Ln:\n%s", out)
	}
	var b strings.Builder
	for _, l := range lines[3:] {
		b.WriteString(strings.Join(strings.Fields(l), " ") + "\n")
	}
	return b.String()
}

func wantTable(t *testing.T, what, want string) {
	t.Helper()
	if got := ipvsadm(t); got != want {
		t.Errorf("%s: ipvsadm -Ln:\n%s\nwant:\n%s", what, got, want)
	}
}

// TestIPVSProbeInVM checks that the probe finds IPVS in the VM's kernel.
func TestIPVSProbeInVM(t *testing.T) {
	if err := ipvs.Probe(); err != nil {
		t.Fatalf("ipvs.Probe() in the VM: %v", err)
	}
}

const natConf = `
virtual_server 10.0.0.1 80 {
	lb_algo rr
	lb_kind NAT
	protocol TCP
	real_server 10.0.1.1 8080 {
	}
	real_server 10.0.1.2 8080 {
	}
	real_server 10.0.1.3 8080 {
	}
	real_server 10.0.1.4 8080 {
	}
	real_server 10.0.1.5 8080 {
	}
	real_server 10.0.1.6 8080 {
	}
}
`

// TestReconcileNAT programs the seed's pool (one service, 6 NAT real servers, rr)
// from the configuration, checks it with ipvsadm, then checks that a second pass makes
// no netlink write and that a weight change or a real server going down changes only
// that destination.
func TestReconcileNAT(t *testing.T) {
	k, _ := newKernel(t, 0)
	cfg := load(t, natConf)
	ch, writes := reconcile(t, k, ipvs.Desired(cfg, ipvs.HealthView{}), nil)
	if len(writes) != 7 {
		t.Errorf("from empty: %d writes: %q", len(writes), writes)
	}
	wantTable(t, "from empty", `TCP 10.0.0.1:80 rr
-> 10.0.1.1:8080 Masq 1 0 0
-> 10.0.1.2:8080 Masq 1 0 0
-> 10.0.1.3:8080 Masq 1 0 0
-> 10.0.1.4:8080 Masq 1 0 0
-> 10.0.1.5:8080 Masq 1 0 0
-> 10.0.1.6:8080 Masq 1 0 0
`)

	ch, writes = reconcile(t, k, ipvs.Desired(cfg, ipvs.HealthView{}), ch.Owned)
	if len(writes) != 0 || ch.Unchanged != 1 {
		t.Errorf("second pass: writes %q, %s", writes, ch.Summary())
	}

	vs := cfg.VirtualServers[0]
	rs3, rs5 := ipvs.RSKey(vs, vs.RealServers[2]), ipvs.RSKey(vs, vs.RealServers[4])
	five := 5
	h := ipvs.HealthView{RealServers: map[ipvs.RealServerKey]ipvs.RSHealth{rs3: {Up: true, Weight: &five}}}
	ch, writes = reconcile(t, k, ipvs.Desired(cfg, h), ch.Owned)
	if !slices.Equal(writes, []string{"update-dest 10.0.1.3:8080"}) {
		t.Errorf("weight change: writes %q", writes)
	}
	h.RealServers[rs5] = ipvs.RSHealth{Up: false}
	ch, writes = reconcile(t, k, ipvs.Desired(cfg, h), ch.Owned)
	if !slices.Equal(writes, []string{"del-dest 10.0.1.5:8080"}) {
		t.Errorf("real server down: writes %q", writes)
	}
	wantTable(t, "after a weight change and a real server down", `TCP 10.0.0.1:80 rr
-> 10.0.1.1:8080 Masq 1 0 0
-> 10.0.1.2:8080 Masq 1 0 0
-> 10.0.1.3:8080 Masq 5 0 0
-> 10.0.1.4:8080 Masq 1 0 0
-> 10.0.1.6:8080 Masq 1 0 0
`)
}

// TestReconcileFWMarkDR programs a firewall-mark service with DR and TUN destinations,
// and persistent services whose netmask and scheduler flags must read back equal: a
// second pass makes no write.
func TestReconcileFWMarkDR(t *testing.T) {
	k, _ := newKernel(t, 0)
	cfg := load(t, `
virtual_server fwmark 7 {
	lb_algo wrr
	lb_kind DR
	persistence_timeout 600
	persistence_granularity 255.255.255.0
	real_server 10.0.1.1 {
		weight 3
	}
	real_server 10.0.1.2 {
		lvs_method TUN
		uthreshold 100
		lthreshold 10
	}
}
virtual_server 10.0.0.2 443 {
	lb_algo sh
	sh-port
	sh-fallback
	protocol TCP
	persistence_timeout 60
	real_server 10.0.1.3 443 {
		lvs_method DR
	}
}
virtual_server 10.0.0.3 53 {
	lb_algo lc
	protocol UDP
	ops
	real_server 10.0.1.4 53 {
	}
}
virtual_server fd00::1 443 {
	lb_algo mh
	protocol SCTP
	persistence_timeout 60
	persistence_granularity 64
	real_server fd00::2 443 {
	}
}
`)
	ch, _ := reconcile(t, k, ipvs.Desired(cfg, ipvs.HealthView{}), nil)
	wantTable(t, "fwmark, DR, TUN, persistence", `TCP 10.0.0.2:443 sh (sh-fallback,sh-port) persistent 60
-> 10.0.1.3:443 Route 1 0 0
UDP 10.0.0.3:53 lc ops
-> 10.0.1.4:53 Masq 1 0 0
SCTP [fd00::1]:443 mh persistent 60 mask 64
-> [fd00::2]:443 Masq 1 0 0
FWM 7 wrr persistent 600 mask 255.255.255.0
-> 10.0.1.1:0 Route 3 0 0
-> 10.0.1.2:0 Tunnel 1 0 0
`)
	if got := ipvsadm(t, "--thresholds"); !strings.Contains(got, "-> 10.0.1.2:0 100 10") {
		t.Errorf("ipvsadm -Ln --thresholds:\n%s", got)
	}
	ch, writes := reconcile(t, k, ipvs.Desired(cfg, ipvs.HealthView{}), ch.Owned)
	if len(writes) != 0 || ch.Unchanged != 4 {
		t.Errorf("second pass: writes %q, %s", writes, ch.Summary())
	}
}

// TestReconcileSorry loses the quorum: the sorry server replaces the pool, then the
// real servers come back and it leaves.
func TestReconcileSorry(t *testing.T) {
	k, _ := newKernel(t, 0)
	cfg := load(t, `
virtual_server 10.0.0.1 80 {
	lb_algo rr
	protocol TCP
	quorum 3
	sorry_server 10.0.2.9 8080
	real_server 10.0.1.1 8080 {
		TCP_CHECK {
		}
	}
	real_server 10.0.1.2 8080 {
		TCP_CHECK {
		}
	}
	real_server 10.0.1.3 8080 {
		TCP_CHECK {
		}
	}
}
`)
	vs := cfg.VirtualServers[0]
	vsKey := ipvs.VSKey(vs)
	ch, _ := reconcile(t, k, ipvs.Desired(cfg, ipvs.HealthView{}), nil)

	h := ipvs.HealthView{
		RealServers: map[ipvs.RealServerKey]ipvs.RSHealth{ipvs.RSKey(vs, vs.RealServers[1]): {Up: false}},
		Quorum:      map[ipvs.VirtualServerKey]bool{vsKey: true},
	}
	specs := ipvs.Desired(cfg, h)
	if specs[0].QuorumUp || !specs[0].SorryActive {
		t.Fatalf("quorum should be lost: %+v", specs[0])
	}
	ch, writes := reconcile(t, k, specs, ch.Owned)
	if len(writes) > 1 {
		slices.Sort(writes[1:]) // deletions come in the kernel's order
	}
	want := []string{"add-dest 10.0.2.9:8080", "del-dest 10.0.1.1:8080", "del-dest 10.0.1.2:8080", "del-dest 10.0.1.3:8080"}
	if !slices.Equal(writes, want) {
		t.Errorf("quorum lost: writes %q, want %q", writes, want)
	}
	wantTable(t, "quorum lost", "TCP 10.0.0.1:80 rr\n-> 10.0.2.9:8080 Masq 1 0 0\n")

	h = ipvs.HealthView{Quorum: map[ipvs.VirtualServerKey]bool{vsKey: false}}
	ch, _ = reconcile(t, k, ipvs.Desired(cfg, h), ch.Owned)
	wantTable(t, "quorum regained", `TCP 10.0.0.1:80 rr
-> 10.0.1.1:8080 Masq 1 0 0
-> 10.0.1.2:8080 Masq 1 0 0
-> 10.0.1.3:8080 Masq 1 0 0
`)
}

// TestReconcileRestart adopts the table a previous process left: a new handle, nothing
// recorded as owned, zero writes; a foreign service (made with ipvsadm) survives the
// deletion of an owned one, and Stop.
func TestReconcileRestart(t *testing.T) {
	k, m := newKernel(t, 0)
	cfg := load(t, natConf)
	specs := ipvs.Desired(cfg, ipvs.HealthView{})
	reconcile(t, k, specs, nil)
	before := ipvsadm(t)
	m.Close()

	m2, err := ipvs.NewMoby(0)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	k2 := &counting{Kernel: m2}
	ch, writes := reconcile(t, k2, specs, nil)
	if len(writes) != 0 || ch.Unchanged != 1 || ipvsadm(t) != before {
		t.Errorf("restart: writes %q, %s; table:\n%s", writes, ch.Summary(), ipvsadm(t))
	}

	if out, err := exec.Command("ipvsadm", "-A", "-u", "10.9.9.9:53", "-s", "lc").CombinedOutput(); err != nil {
		t.Fatalf("ipvsadm -A: %v\n%s", err, out)
	}
	ch, writes = reconcile(t, k2, nil, ch.Owned)
	if !slices.Equal(writes, []string{"del-service TCP 10.0.0.1:80"}) || ipvsadm(t) != "UDP 10.9.9.9:53 lc\n" {
		t.Errorf("owned service dropped: writes %q; table:\n%s", writes, ipvsadm(t))
	}
	ch, _ = reconcile(t, k2, specs, ch.Owned)
	if _, err := ipvs.Stop(k2, ch.Owned, &cfg.Global, false); err != nil {
		t.Fatal(err)
	}
	if got := ipvsadm(t); got != "UDP 10.9.9.9:53 lc\n" {
		t.Errorf("after Stop:\n%s", got)
	}
}

// TestReconcileBadService checks that a service the kernel refuses (the twos scheduler
// is not in this kernel; an IPv6 destination in an IPv4 service cannot be sent) fails
// alone, named in the error, while the others are programmed; the next pass retries.
func TestReconcileBadService(t *testing.T) {
	k, _ := newKernel(t, 0)
	cfg := load(t, `
virtual_server 10.0.0.1 80 {
	lb_algo twos
	protocol TCP
	real_server 10.0.1.1 80 {
	}
}
virtual_server 10.0.0.2 80 {
	lb_algo rr
	protocol TCP
	real_server 10.0.1.2 80 {
	}
	real_server fd00::9 80 {
		lvs_method TUN
	}
}
virtual_server 10.0.0.3 80 {
	lb_algo wlc
	protocol TCP
	real_server 10.0.1.3 80 {
	}
}
`)
	specs := ipvs.Desired(cfg, ipvs.HealthView{})
	ch, err := ipvs.Reconcile(k, specs, nil)
	if err == nil || len(ch.Errors) != 2 {
		t.Fatalf("Reconcile: %v\n%s", err, ch.String())
	}
	if !strings.Contains(ch.Errors[0].Error(), "TCP 10.0.0.1:80") || !strings.Contains(ch.Errors[1].Error(), "TCP 10.0.0.2:80") ||
		!errors.Is(ch.Errors[1], ipvs.ErrUnsupported) {
		t.Errorf("errors: %v", ch.Errors)
	}
	t.Logf("errors, as logged:\n%v", err)
	wantTable(t, "with two failures", `TCP 10.0.0.2:80 rr
-> 10.0.1.2:80 Masq 1 0 0
TCP 10.0.0.3:80 wlc
-> 10.0.1.3:80 Masq 1 0 0
`)
	k.take()
	ch, err = ipvs.Reconcile(k, specs, ch.Owned)
	if writes := k.take(); err == nil || !slices.Equal(writes, []string{"add-service TCP 10.0.0.1:80", "add-dest [fd00::9]:80"}) {
		t.Errorf("retry pass: %v, writes %q", err, writes)
	}
}

// bigSpecs returns n services (TCP 10.x.y.1:80, rr) with d NAT destinations each.
func bigSpecs(n, d int) []ipvs.ServiceSpec {
	specs := make([]ipvs.ServiceSpec, n)
	for i := range specs {
		svc := ipvs.Service{Family: ipvs.IPv4, Protocol: ipvs.TCP, Addr: netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), Port: 80, Scheduler: "rr"}
		dests := make([]ipvs.Destination, d)
		for j := range dests {
			dests[j] = ipvs.Destination{Addr: netip.AddrFrom4([4]byte{172, 16, byte(j >> 8), byte(j + 1)}), Port: 8080, Weight: 1}
		}
		specs[i] = ipvs.ServiceSpec{Service: svc, Destinations: dests}
	}
	return specs
}

// TestReconcileScale is the VM variant of the reconcile benchmark: 1000 services x 10
// destinations from empty, an idempotent pass, and a pass that changes 1% (100
// destination weights), in the real kernel. It logs the times and the writes.
func TestReconcileScale(t *testing.T) {
	k, m := newKernel(t, 10*time.Second)
	specs := bigSpecs(1000, 10)
	start := time.Now()
	ch, writes := reconcile(t, k, specs, nil)
	fromEmpty := time.Since(start)
	if len(writes) != 11000 {
		t.Errorf("from empty: %d writes", len(writes))
	}

	start = time.Now()
	ch, writes = reconcile(t, k, specs, ch.Owned)
	idem := time.Since(start)
	if len(writes) != 0 {
		t.Errorf("idempotent pass: %d writes", len(writes))
	}

	for i := range 100 {
		s := &specs[i*10]
		s.Destinations = slices.Clone(s.Destinations)
		s.Destinations[i%10].Weight = 7
	}
	start = time.Now()
	_, writes = reconcile(t, k, specs, ch.Owned)
	onePct := time.Since(start)
	if len(writes) != 100 {
		t.Errorf("1%% change: %d writes", len(writes))
	}
	out, err := os.ReadFile("/proc/net/ip_vs")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "\n  -> ") - 1; n != 10000 { // less the header line
		t.Errorf("/proc/net/ip_vs lists %d destinations, want 10000", n)
	}
	// The cost of the deadline wrapper: the same 1000 destination dumps through Moby and
	// straight through a moby/ipvs handle, twice each, alternating.
	h, err := mobyipvs.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var wrapped, raw [2]time.Duration
	for round := range 2 {
		start = time.Now()
		for _, s := range specs {
			ms := &mobyipvs.Service{AddressFamily: uint16(s.Service.Family), Protocol: uint16(s.Service.Protocol), Address: s.Service.Addr.AsSlice(), Port: s.Service.Port, SchedName: s.Service.Scheduler, Netmask: 0xFFFFFFFF}
			if _, err := h.GetDestinations(ms); err != nil {
				t.Fatal(err)
			}
		}
		raw[round] = time.Since(start)
		start = time.Now()
		for _, s := range specs {
			if _, err := m.Destinations(s.Service); err != nil {
				t.Fatal(err)
			}
		}
		wrapped[round] = time.Since(start)
	}
	t.Logf("1000 destination dumps: %v, %v through Moby (deadline watchdog); %v, %v straight through moby/ipvs",
		wrapped[0].Round(time.Millisecond), wrapped[1].Round(time.Millisecond), raw[0].Round(time.Millisecond), raw[1].Round(time.Millisecond))
	t.Logf("VM reconcile, 1000 services x 10 destinations: from empty %v (11000 writes, %v/write); idempotent pass %v (0 writes, 1001 reads); 1%% change %v (100 writes)",
		fromEmpty.Round(time.Millisecond), (fromEmpty / 11000).Round(time.Microsecond), idem.Round(time.Millisecond), onePct.Round(time.Millisecond))

	// The same table written by a C client, one netlink request per entry as keepalived
	// does: ipvsadm -R from empty. The difference per write is our side's cost.
	if out, err := exec.Command("ipvsadm", "-C").CombinedOutput(); err != nil {
		t.Fatalf("ipvsadm -C: %v\n%s", err, out)
	}
	var rules strings.Builder
	for _, s := range specs {
		fmt.Fprintf(&rules, "-A -t %s -s rr\n", netip.AddrPortFrom(s.Service.Addr, s.Service.Port))
		for _, d := range s.Destinations {
			fmt.Fprintf(&rules, "-a -t %s -r %s -m -w %d\n", netip.AddrPortFrom(s.Service.Addr, s.Service.Port), netip.AddrPortFrom(d.Addr, d.Port), d.Weight)
		}
	}
	restore := exec.Command("ipvsadm", "-R")
	restore.Stdin = strings.NewReader(rules.String())
	start = time.Now()
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("ipvsadm -R: %v\n%s", err, out)
	}
	viaC := time.Since(start)
	if out, err := exec.Command("ipvsadm", "-C").CombinedOutput(); err != nil {
		t.Errorf("ipvsadm -C: %v\n%s", err, out)
	}
	t.Logf("the same 11000 entries from empty through ipvsadm -R: %v (%v/write)", viaC.Round(time.Millisecond), (viaC / 11000).Round(time.Microsecond))

	// The daemon's way: Moby itself, whose lanes let a full pass write several services
	// at once (the counting wrapper above keeps the passes sequential, for exact write
	// lists).
	start = time.Now()
	ch, err = ipvs.Reconcile(m, specs, nil)
	lanes := time.Since(start)
	if err != nil || ch.Count(ipvs.OpAddService)+ch.Count(ipvs.OpAddDest) != 11000 {
		t.Fatalf("Reconcile through Moby's lanes: %v: %s", err, ch.Summary())
	}
	if got := strings.Count(ipvsadm(t), "\n-> "); got != 10000 {
		t.Errorf("ipvsadm -Ln lists %d destinations after the pass through the lanes, want 10000", got)
	}
	t.Logf("from empty through Moby (%d lane(s), one per CPU): %v (%v/write)", m.Concurrency(), lanes.Round(time.Millisecond), (lanes / 11000).Round(time.Microsecond))
}
