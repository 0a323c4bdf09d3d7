//go:build vmguest

package scaleguest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"
)

// TestMain refuses to run outside the VM: the tests change the kernel's IPVS table and
// create interfaces and routes.
func TestMain(m *testing.M) {
	if os.Getenv("GKA_IN_VM") != "1" {
		fmt.Fprintln(os.Stderr, "tests/vm/scaleguest: guest-only benchmark; run it in the VM with `go test ./tests/bench/lvsscale -run '^$' -bench . -benchtime 1x` (GKA_IN_VM is not 1)")
		os.Exit(2)
	}
	if conf := os.Getenv(engineHelperEnv); conf != "" {
		os.Exit(engineHelper(conf))
	}
	os.Exit(m.Run())
}

// Settings, from the environment the host-side benchmark passes:
// GKA_SCALE_RS real servers (default 1000, 20 per virtual server), GKA_SCALE_DAEMONS a
// comma-separated subset of "gokeepalived,keepalived,gokeepalived1,engine" (default the
// first two; gokeepalived1: with GOMAXPROCS=1; engine: gokeepalived's LVS engine in this
// binary, CPU-profiled during the window), GKA_SCALE_SETTLE the wait between
// the table being programmed and the measuring window (default 10s), GKA_SCALE_WINDOW
// the window (default 20s), GKA_DETECT_RUNS the detection samples (default 10),
// GKA_SCALE_FARM how the farm's listener serves, accept (default) or defer (see farm).

// envInt reads a positive integer setting.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// envDuration reads a positive duration setting.
func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// selected returns the daemons GKA_SCALE_DAEMONS names, in the order of daemons.
func selected() []daemon {
	want := os.Getenv("GKA_SCALE_DAEMONS")
	if want == "" {
		return daemons
	}
	var out []daemon
	for _, d := range append(slices.Clone(daemons), gokeepalivedOneCPU, engineDaemon) {
		if slices.Contains(strings.Split(want, ","), d.key) {
			out = append(out, d)
		}
	}
	return out
}

const (
	perVS      = 20
	numVictims = 10
)

// result is one measurement, printed as "LVSSCALE {json}" for the host.
type result struct {
	Kind           string `json:"kind"` // "scale" or "detection"
	Daemon         string `json:"daemon"`
	RealServers    int    `json:"real_servers"`
	VirtualServers int    `json:"virtual_servers"`
	Retry          int    `json:"retry"` // -1: the default (1)
	CPUs           int    `json:"cpus"`

	ProgrammedMs float64 `json:"programmed_ms"` // daemon start -> every destination in the table
	FirstPassMs  float64 `json:"first_pass_ms"` // daemon start -> gokeepalived's first "IPVS table updated" line; -1: none
	TableReadMs  float64 `json:"table_read_ms"` // median read of /proc/net/ip_vs meanwhile
	IpvsadmMs    float64 `json:"ipvsadm_ms"`    // one `ipvsadm -Ln` of the whole table
	IpvsadmDests int     `json:"ipvsadm_dests"`

	WindowS          float64        `json:"window_s"`
	Scheduled        float64        `json:"scheduled_per_s"` // real servers / delay_loop
	ChecksPerSec     float64        `json:"checks_per_s"`    // handshakes completed per second (see farm)
	Farm             string         `json:"farm"`            // how the farm's listener serves: defer or accept
	PerSecond        []float64      `json:"per_second"`
	IntervalMedianMs float64        `json:"interval_median_ms"` // per server: mean time between its checks
	IntervalP99Ms    float64        `json:"interval_p99_ms"`
	IntervalMaxMs    float64        `json:"interval_max_ms"`
	FewerThanTwo     int            `json:"checked_fewer_than_twice"`
	Timed            int            `json:"timed"`  // servers whose interval was measured
	CPUMs            float64        `json:"cpu_ms"` // the daemon's processes, user + system, in the window
	SysMs            float64        `json:"sys_ms"` // of which system
	CPUPerCheckMs    float64        `json:"cpu_per_check_ms"`
	SysPerCheckMs    float64        `json:"sys_per_check_ms"`
	SwitchesPerCheck float64        `json:"switches_per_check"` // context switches of the daemon's threads
	CPUPercent       float64        `json:"cpu_percent"`        // of one CPU
	VMCPUPercent     float64        `json:"vm_cpu_percent"`     // the whole guest, of one CPU (max 100 x CPUs)
	ListenerCPU      float64        `json:"listener_cpu_pct"`   // this test process (the listeners), of one CPU
	RSSMB            float64        `json:"rss_mb"`             // summed over the daemon's processes
	HWMMB            float64        `json:"hwm_mb"`
	Processes        string         `json:"processes"` // per process: pid rss/hwm
	DestsAfterWindow int            `json:"dests_after_window"`
	TCPSockets       string         `json:"tcp_sockets"`            // /proc/net/sockstat of the director at the window's end
	EngineStats      string         `json:"engine_stats,omitempty"` // the runner's counters in the window (engine only)
	LogCounts        map[string]int `json:"log_counts"`             // daemon log lines from the start to the end of the window

	Samples          []sample `json:"samples"`
	RemovalMedianMs  float64  `json:"removal_median_ms"`
	RemovalMinMs     float64  `json:"removal_min_ms"`
	RemovalMaxMs     float64  `json:"removal_max_ms"`
	FailToRemovalMs  float64  `json:"fail_to_removal_median_ms"`     // first refused check -> out of the table
	DecisionToRemMs  float64  `json:"decision_to_removal_median_ms"` // DOWN log line -> out of the table
	FailToDecisionMs float64  `json:"fail_to_decision_median_ms"`
	PollMs           float64  `json:"poll_ms"` // polling period of the table while waiting for removals

	StopMs   float64  `json:"stop_ms"`
	Warnings []string `json:"warnings,omitempty"`
}

// sample is one real server whose listener closed. Times are from the close, in ms;
// -1 when not seen.
type sample struct {
	Addr      string  `json:"addr"`
	FirstFail float64 `json:"first_fail_ms"` // the first SYN after the close (refused)
	Decision  float64 `json:"decision_ms"`   // the daemon's DOWN / "Removing service" log line
	Removal   float64 `json:"removal_ms"`    // the destination is out of the IPVS table
}

func (r *result) warn(t *testing.T, format string, args ...any) {
	t.Helper()
	s := fmt.Sprintf(format, args...)
	t.Log("WARNING: " + s)
	r.Warnings = append(r.Warnings, s)
}

func (r *result) print(t *testing.T) {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("LVSSCALE %s\n", b)
}

// lab is the farm and the victims.
type lab struct {
	farm *farm
	vic  *victims
	ipvs *mobyipvs.Handle
}

func newLab(t *testing.T) *lab {
	t.Helper()
	start := time.Now()
	f, err := newFarm()
	if err != nil {
		t.Fatal(err)
	}
	v, err := newVictims()
	if err != nil {
		t.Fatal(err)
	}
	h, err := mobyipvs.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		v.capt.close()
		if f.capt != nil {
			f.capt.close()
		}
	})
	l := &lab{farm: f, vic: v, ipvs: h}
	for k := range numVictims {
		if err := v.open(k); err != nil {
			t.Fatal(err)
		}
	}
	// The director reaches a farm address and a victim.
	for _, a := range []netip.Addr{farmAddr(0), farmAddr(4999), victimAddr(0)} {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(a, 80).String(), 5*time.Second)
		if err != nil {
			t.Fatalf("the director cannot reach %s: %v", a, err)
		}
		c.Close()
	}
	cs, _ := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	t.Logf("lab ready in %v; guest clocksource %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(cs)))
	return l
}

// checks is the number of checks the real servers have seen so far.
func (l *lab) checks() int64 { return l.farm.checks() + l.vic.total.Load() }

// watchRemovals polls the service of each victim in vs (one netlink dump of its
// destinations) every period until the victim is gone from it, and returns when each
// was first seen gone.
func (l *lab) watchRemovals(t *testing.T, vs []victimPos, every, timeout time.Duration) map[int]time.Time {
	t.Helper()
	removed := map[int]time.Time{}
	deadline := time.Now().Add(timeout)
	for len(removed) < len(vs) {
		for _, v := range vs {
			if _, done := removed[v.k]; done {
				continue
			}
			svc := &mobyipvs.Service{AddressFamily: syscall.AF_INET, Protocol: syscall.IPPROTO_TCP, Address: net.IP(v.vip.AsSlice()), Port: 80}
			ds, err := l.ipvs.GetDestinations(svc)
			now := time.Now()
			if err != nil {
				t.Fatalf("destinations of %s: %v", v.vip, err)
			}
			if !slices.ContainsFunc(ds, func(d *mobyipvs.Destination) bool { return d.Address.Equal(net.IP(v.addr.AsSlice())) }) {
				removed[v.k] = now
			}
		}
		if time.Now().After(deadline) {
			var left []string
			for _, v := range vs {
				if _, done := removed[v.k]; !done {
					left = append(left, v.addr.String())
				}
			}
			t.Fatalf("after %v still in the table: %s", timeout, strings.Join(left, " "))
		}
		time.Sleep(every)
	}
	return removed
}

// samples assembles the removal samples and their medians into r.
func (l *lab) samples(r *result, p *proc, d daemon, vs []victimPos, closed, removed map[int]time.Time) {
	var rem, fail2rem, dec2rem, fail2dec []float64
	for _, v := range vs {
		c := closed[v.k]
		s := sample{Addr: v.addr.String(), FirstFail: -1, Decision: -1, Removal: ms(removed[v.k].Sub(c))}
		rem = append(rem, s.Removal)
		if at, ok := l.vic.capt.firstSYN(v.addr, c); ok {
			s.FirstFail = ms(at.Sub(c))
			fail2rem = append(fail2rem, s.Removal-s.FirstFail)
		}
		if at, ok := p.lineTime(d.down, v.addr, c); ok {
			s.Decision = ms(at.Sub(c))
			dec2rem = append(dec2rem, s.Removal-s.Decision)
			if s.FirstFail >= 0 {
				fail2dec = append(fail2dec, s.Decision-s.FirstFail)
			}
		}
		r.Samples = append(r.Samples, s)
	}
	r.RemovalMedianMs, r.RemovalMinMs, r.RemovalMaxMs = median(rem), slices.Min(rem), slices.Max(rem)
	r.FailToRemovalMs, r.DecisionToRemMs, r.FailToDecisionMs = median(fail2rem), median(dec2rem), median(fail2dec)
}

// TestScale runs GKA_SCALE_RS real servers (20 per virtual server, TCP_CHECK with
// delay_loop 1, connect_timeout 1 and the default retry) with each daemon in turn and
// measures the checks, the CPU, the memory, the time to program the table and the
// removal of 10 real servers whose listeners close at once.
func TestScale(t *testing.T) {
	n := envInt("GKA_SCALE_RS", 1000)
	settle := envDuration("GKA_SCALE_SETTLE", 10*time.Second)
	window := envDuration("GKA_SCALE_WINDOW", 20*time.Second)
	if n%perVS != 0 || n/perVS < numVictims {
		t.Fatalf("GKA_SCALE_RS=%d: want a multiple of %d, at least %d", n, perVS, perVS*numVictims)
	}
	lay := layout{vs: n / perVS, perVS: perVS, retry: -1, victimAt: map[int]int{}}
	for k := range numVictims {
		v := k*lay.vs/numVictims + lay.vs/(2*numVictims)
		lay.victimAt[v*perVS+perVS-1] = k
	}
	l := newLab(t)
	conf := fmt.Sprintf("/tmp/scale-%d.conf", n)
	if err := os.WriteFile(conf, []byte(lay.conf()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range selected() {
		t.Run(d.key, func(t *testing.T) {
			r := l.scale(t, d, lay, conf, settle, window)
			r.print(t)
		})
	}
}

// scale runs daemon d on the layout's configuration: the time until the table is whole,
// then, after settle, the checks, CPU and memory over window, then the removal of the
// victims whose listeners close; it stops the daemon and empties the table.
func (l *lab) scale(t *testing.T, d daemon, lay layout, conf string, settle, window time.Duration) *result {
	r := &result{Kind: "scale", Daemon: d.name, RealServers: lay.total(), VirtualServers: lay.vs, Retry: lay.retry,
		Farm: l.farm.mode(),
		CPUs: numCPU(), WindowS: window.Seconds(), Scheduled: float64(lay.total())}
	if !d.profile {
		configTest(t, d.args(conf), conf)
	}
	clearIPVS(t)
	for k := range numVictims {
		if err := l.vic.open(k); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	p := startProc(t, d.name, d.args(conf), d.envFor(conf))
	took, read := waitProgrammed(t, p, lay, start, 250*time.Millisecond, 3*time.Minute)
	r.ProgrammedMs, r.TableReadMs = ms(took), ms(read)
	r.FirstPassMs = -1
	if at, ok := p.firstLine("IPVS table updated"); ok {
		r.FirstPassMs = ms(at.Sub(start))
	}
	t.Logf("%s: %d destinations in %d services programmed %v after the start (reading /proc/net/ip_vs: %v)",
		d.name, lay.total(), lay.vs, took.Round(time.Millisecond), read.Round(time.Microsecond))
	t.Logf("%s: its log until then, stamped from the start:\n%s", d.name, p.headSince(start, 12))
	var err error
	var cmdTook time.Duration
	if r.IpvsadmDests, cmdTook, err = ipvsadmDests(); err != nil {
		t.Fatalf("ipvsadm -Ln: %v", err)
	}
	r.IpvsadmMs = ms(cmdTook)
	if r.IpvsadmDests != lay.total() {
		r.warn(t, "ipvsadm -Ln lists %d destinations, want %d", r.IpvsadmDests, lay.total())
	}

	time.Sleep(settle)
	if p.Exited() {
		t.Fatalf("%s exited: %v\n%s", d.name, p.Err(), p.tail(40))
	}

	// The measuring window.
	pids := p.pids()
	l.farm.tal.reset()
	l.vic.tal.reset()
	self := []int{os.Getpid()}
	c0, s0 := readUsage(pids), readUsage(self)
	th0 := readThreads(pids[0])
	b0, t0 := vmCPU()
	n0 := l.checks()
	if d.profile {
		_ = syscall.Kill(p.Cmd.Process.Pid, syscall.SIGUSR1)
	}
	w0 := time.Now()
	l.farm.tal.from.Store(w0.UnixNano())
	l.vic.tal.from.Store(w0.UnixNano())
	prev := n0
	secs := int(window / time.Second)
	for i := 1; i <= secs; i++ {
		time.Sleep(time.Until(w0.Add(time.Duration(i) * time.Second)))
		cur := l.checks()
		r.PerSecond = append(r.PerSecond, float64(cur-prev))
		prev = cur
	}
	w1 := time.Now()
	l.farm.tal.to.Store(w1.UnixNano())
	l.vic.tal.to.Store(w1.UnixNano())
	n1 := l.checks()
	c1, s1 := readUsage(pids), readUsage(self)
	th1 := readThreads(pids[0])
	if d.profile {
		_ = syscall.Kill(p.Cmd.Process.Pid, syscall.SIGUSR2)
		time.Sleep(time.Second)
		for wait := time.Now().Add(20 * time.Second); r.EngineStats == "" && time.Now().Before(wait); time.Sleep(100 * time.Millisecond) {
			r.EngineStats = p.lastLine("ENGINE-STATS ")
		}
		t.Logf("%s: %s", d.name, r.EngineStats)
		b, err := os.ReadFile(engineProfile)
		if err != nil || len(b) == 0 {
			r.warn(t, "no CPU profile: %v", err)
		} else {
			fmt.Printf("LVSPROF %d %s\n", lay.total(), base64.StdEncoding.EncodeToString(b))
		}
	}
	b1, t1 := vmCPU()
	span := w1.Sub(w0).Seconds()
	checks := float64(n1 - n0)
	r.ChecksPerSec = checks / span
	du := c1.sub(c0)
	r.CPUMs = float64(du.ticks) * 1000 / userHZ
	r.SysMs = float64(du.sysTicks) * 1000 / userHZ
	if checks > 0 {
		r.CPUPerCheckMs = r.CPUMs / checks
		r.SysPerCheckMs = r.SysMs / checks
		r.SwitchesPerCheck = float64(du.switches) / checks
	}
	r.CPUPercent = float64(du.ticks) / userHZ / span * 100
	r.ListenerCPU = float64(s1.sub(s0).ticks) / userHZ / span * 100
	if t1 > t0 {
		r.VMCPUPercent = float64(b1-b0) / float64(t1-t0) * float64(r.CPUs) * 100
	}
	var ivs []time.Duration
	for i := range lay.total() {
		var iv time.Duration
		var ok bool
		if k, victim := lay.victimAt[i]; victim {
			iv, _, ok = l.vic.tal.interval(k)
		} else if l.farm.timed(i) {
			iv, _, ok = l.farm.tal.interval(farmIndex(farmAddr(i)))
		} else {
			continue
		}
		r.Timed++
		if !ok {
			r.FewerThanTwo++
			continue
		}
		ivs = append(ivs, iv)
	}
	if len(ivs) > 0 {
		slices.Sort(ivs)
		r.IntervalMedianMs = ms(ivs[len(ivs)/2])
		r.IntervalP99Ms = ms(ivs[len(ivs)*99/100])
		r.IntervalMaxMs = ms(ivs[len(ivs)-1])
	}
	var procs []string
	for _, pid := range pids {
		rss, hwm := readMem(pid)
		r.RSSMB += float64(rss) / 1024
		r.HWMMB += float64(hwm) / 1024
		procs = append(procs, fmt.Sprintf("pid %d: VmRSS %.1f MB, VmHWM %.1f MB", pid, float64(rss)/1024, float64(hwm)/1024))
	}
	r.Processes = strings.Join(procs, "; ")
	kt, err := readTable()
	if err != nil {
		t.Fatal(err)
	}
	r.DestsAfterWindow = kt.destCount()
	r.LogCounts = p.logCounts(start)
	r.TCPSockets = tcpSockets()
	if r.DestsAfterWindow != lay.total() {
		r.warn(t, "after the window the table holds %d destinations, want %d (real servers taken out by failed checks)", r.DestsAfterWindow, lay.total())
	}
	involuntary := 0.0
	if checks > 0 {
		involuntary = float64(du.involuntary) / checks
	}
	t.Logf("%s: threads of pid %d over the window: %s", d.name, pids[0], threadReport(th0, th1, span, max(checks, 1)))
	t.Logf("%s: %.0f checks/s (scheduled %d/s; per second %v), each server every %.0f ms (median; p99 %.0f, max %.0f; %d checked fewer than twice), CPU %.0f%% = %.3f ms per check (system %.3f ms, %.1f context switches, %.2f of them involuntary), VM %.0f%%, listeners %.0f%%; %s; director TCP sockets: %s",
		d.name, r.ChecksPerSec, lay.total(), r.PerSecond, r.IntervalMedianMs, r.IntervalP99Ms, r.IntervalMaxMs, r.FewerThanTwo,
		r.CPUPercent, r.CPUPerCheckMs, r.SysPerCheckMs, r.SwitchesPerCheck, involuntary, r.VMCPUPercent, r.ListenerCPU, r.Processes, r.TCPSockets)

	// The removal: the listeners of the 10 victims close at once. A victim the daemon
	// has already taken out (a false failure under load) gives no sample.
	now := time.Now()
	vs := slices.DeleteFunc(lay.victims(), func(v victimPos) bool {
		if _, in := kt.dests[v.addr]; !in {
			r.warn(t, "victim %s was out of the table before its listener closed", v.addr)
			return true
		}
		if p.markedDown(d, v.addr, now) {
			r.warn(t, "victim %s was still in the table but already marked down before its listener closed", v.addr)
			return true
		}
		return false
	})
	if len(vs) == 0 {
		r.warn(t, "every victim was out of the table before its listener closed: no removal sample")
	} else {
		closed := map[int]time.Time{}
		l.vic.capt.trim(time.Now().Add(-time.Second))
		for _, v := range vs {
			at, err := l.vic.close(v.k)
			if err != nil {
				t.Fatal(err)
			}
			closed[v.k] = at
		}
		r.PollMs = 50
		removed := l.watchRemovals(t, vs, 50*time.Millisecond, 2*time.Minute)
		l.samples(r, p, d, vs, closed, removed)
		t.Logf("%s: removal after the listener closed: median %.0f ms (%.0f-%.0f); first refused check -> removal %.0f ms, DOWN log -> removal %.0f ms; samples %+v",
			d.name, r.RemovalMedianMs, r.RemovalMinMs, r.RemovalMaxMs, r.FailToRemovalMs, r.DecisionToRemMs, r.Samples)
	}

	stop, err := p.stop(3 * time.Minute)
	if err != nil {
		r.warn(t, "%v", err)
	}
	r.StopMs = ms(stop)
	clearIPVS(t)
	return r
}

// TestDetection measures, GKA_DETECT_RUNS times per daemon, the time from a real
// server's listener closing to its removal from IPVS, with one virtual server of 20 real
// servers (10 of them victims), TCP_CHECK, connect_timeout 1, retry 0, delay_loop 1.
// The victims close one at a time, a random 0-1 s apart.
func TestDetection(t *testing.T) {
	runs := min(envInt("GKA_DETECT_RUNS", 10), numVictims)
	lay := layout{vs: 1, perVS: perVS, retry: 0, victimAt: map[int]int{}}
	for k := range numVictims {
		lay.victimAt[perVS-numVictims+k] = k
	}
	l := newLab(t)
	conf := "/tmp/detect.conf"
	if err := os.WriteFile(conf, []byte(lay.conf()), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range selected() {
		t.Run(d.key, func(t *testing.T) {
			r := &result{Kind: "detection", Daemon: d.name, RealServers: lay.total(), VirtualServers: 1, Retry: 0, CPUs: numCPU(), PollMs: 5}
			configTest(t, d.args(conf), conf)
			clearIPVS(t)
			for k := range numVictims {
				if err := l.vic.open(k); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			p := startProc(t, d.name, d.args(conf), d.envFor(conf))
			took, _ := waitProgrammed(t, p, lay, start, 20*time.Millisecond, time.Minute)
			r.ProgrammedMs = ms(took)
			time.Sleep(3 * time.Second) // every check has run
			vs := lay.victims()[:runs]
			closed, removed := map[int]time.Time{}, map[int]time.Time{}
			for _, v := range vs {
				time.Sleep(time.Duration(rng.Int64N(int64(time.Second))))
				at, err := l.vic.close(v.k)
				if err != nil {
					t.Fatal(err)
				}
				closed[v.k] = at
				for k, at := range l.watchRemovals(t, []victimPos{v}, 5*time.Millisecond, 20*time.Second) {
					removed[k] = at
				}
			}
			l.samples(r, p, d, vs, closed, removed)
			t.Logf("%s: listener closed -> removed: median %.0f ms (%.0f-%.0f); first refused check -> removed %.0f ms; DOWN log -> removed %.0f ms; samples %+v",
				d.name, r.RemovalMedianMs, r.RemovalMinMs, r.RemovalMaxMs, r.FailToRemovalMs, r.DecisionToRemMs, r.Samples)
			stop, err := p.stop(time.Minute)
			if err != nil {
				r.warn(t, "%v", err)
			}
			r.StopMs = ms(stop)
			clearIPVS(t)
			r.print(t)
		})
	}
}

func numCPU() int { return runtime.NumCPU() }
