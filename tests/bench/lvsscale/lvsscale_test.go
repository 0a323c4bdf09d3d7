package lvsscale

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gokeepalived/tests/vm"
)

// result mirrors the guest's "LVSSCALE {json}" lines (tests/vm/scaleguest).
type result struct {
	Kind           string `json:"kind"`
	Daemon         string `json:"daemon"`
	RealServers    int    `json:"real_servers"`
	VirtualServers int    `json:"virtual_servers"`
	Retry          int    `json:"retry"`
	CPUs           int    `json:"cpus"`

	ProgrammedMs float64 `json:"programmed_ms"`
	FirstPassMs  float64 `json:"first_pass_ms"`
	TableReadMs  float64 `json:"table_read_ms"`
	IpvsadmMs    float64 `json:"ipvsadm_ms"`
	IpvsadmDests int     `json:"ipvsadm_dests"`

	WindowS          float64        `json:"window_s"`
	Scheduled        float64        `json:"scheduled_per_s"`
	ChecksPerSec     float64        `json:"checks_per_s"`
	PerSecond        []float64      `json:"per_second"`
	IntervalMedianMs float64        `json:"interval_median_ms"`
	IntervalP99Ms    float64        `json:"interval_p99_ms"`
	IntervalMaxMs    float64        `json:"interval_max_ms"`
	FewerThanTwo     int            `json:"checked_fewer_than_twice"`
	Timed            int            `json:"timed"`
	Farm             string         `json:"farm"`
	CPUMs            float64        `json:"cpu_ms"`
	SysMs            float64        `json:"sys_ms"`
	CPUPerCheckMs    float64        `json:"cpu_per_check_ms"`
	SysPerCheckMs    float64        `json:"sys_per_check_ms"`
	SwitchesPerCheck float64        `json:"switches_per_check"`
	CPUPercent       float64        `json:"cpu_percent"`
	VMCPUPercent     float64        `json:"vm_cpu_percent"`
	ListenerCPU      float64        `json:"listener_cpu_pct"`
	RSSMB            float64        `json:"rss_mb"`
	HWMMB            float64        `json:"hwm_mb"`
	Processes        string         `json:"processes"`
	DestsAfterWindow int            `json:"dests_after_window"`
	TCPSockets       string         `json:"tcp_sockets"`
	EngineStats      string         `json:"engine_stats"`
	LogCounts        map[string]int `json:"log_counts"`

	Samples []struct {
		Addr      string  `json:"addr"`
		FirstFail float64 `json:"first_fail_ms"`
		Decision  float64 `json:"decision_ms"`
		Removal   float64 `json:"removal_ms"`
	} `json:"samples"`
	RemovalMedianMs  float64 `json:"removal_median_ms"`
	RemovalMinMs     float64 `json:"removal_min_ms"`
	RemovalMaxMs     float64 `json:"removal_max_ms"`
	FailToRemovalMs  float64 `json:"fail_to_removal_median_ms"`
	DecisionToRemMs  float64 `json:"decision_to_removal_median_ms"`
	FailToDecisionMs float64 `json:"fail_to_decision_median_ms"`
	PollMs           float64 `json:"poll_ms"`

	StopMs   float64  `json:"stop_ms"`
	Warnings []string `json:"warnings"`
}

// BenchmarkLVSScale1000 is 1,000 real servers (50 virtual servers x 20) with each daemon.
func BenchmarkLVSScale1000(b *testing.B) { scaleBench(b, 1000, "accept") }

// BenchmarkLVSScale5000 is 5,000 real servers (250 virtual servers x 20) with each daemon.
func BenchmarkLVSScale5000(b *testing.B) { scaleBench(b, 5000, "accept") }

// BenchmarkLVSScale5000Deferred is BenchmarkLVSScale5000 with real servers that defer
// accept (see tests/vm/scaleguest's farm): a check that resets its connection costs
// the real servers no accept, so the VM's CPUs measure the checker rather than the
// farm.
func BenchmarkLVSScale5000Deferred(b *testing.B) { scaleBench(b, 5000, "defer") }

// BenchmarkLVSDetection is the detection time with retry 0, median of 10, each daemon.
func BenchmarkLVSDetection(b *testing.B) {
	rs, _ := runGuest(b, "^TestDetection$", nil)
	fmt.Printf("\nDetection: 1 virtual server x 20 real servers, TCP_CHECK delay_loop 1, connect_timeout 1, retry 0; a listener closes, a random 0-1 s after the previous removal; %d samples each; ms from the close, median (min-max)\n\n", len(rs[0].Samples))
	fmt.Println("| implementation | close → removed from IPVS | close → first refused check | first refused check → removed | DOWN log line → removed | table polled every |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rs {
		fmt.Printf("| %s | **%.0f** (%.0f–%.0f) | %s | %s | %s | %.0f ms |\n", r.Daemon, r.RemovalMedianMs, r.RemovalMinMs, r.RemovalMaxMs,
			spread(r, func(i int) float64 { return r.Samples[i].FirstFail }), msOr(r.FailToRemovalMs), msOr(r.DecisionToRemMs), r.PollMs)
		b.ReportMetric(r.RemovalMedianMs, short(r.Daemon)+"-detect-ms")
	}
	fmt.Println()
	warnings(rs)
}

func scaleBench(b *testing.B, n int, farm string) {
	rs, out := runGuest(b, "^TestScale$", []string{fmt.Sprintf("GKA_SCALE_RS=%d", n), "GKA_SCALE_FARM=" + farm})
	r0 := rs[0]
	fmt.Printf("\n%d real servers (%d virtual servers x %d), TCP_CHECK delay_loop 1, connect_timeout 1, retry 1 (default), %d vCPUs; farm listener %s; window %.0f s after the table was whole\n\n",
		r0.RealServers, r0.VirtualServers, r0.RealServers/r0.VirtualServers, r0.CPUs, r0.Farm, r0.WindowS)
	fmt.Println("| implementation | start → all destinations in IPVS | checks/s done (scheduled) | per second, min–max | each server checked every (median / p99 / max) | CPU per check (of which system) | context switches per check | daemon CPU | whole VM CPU | RSS (VmHWM) | removal of a closed listener, median (min–max) | first refused check → removed | DOWN log line → removed | SIGTERM → exit |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		lo, hi := minMax(r.PerSecond)
		removal := "— (no victim left to close) | — | —"
		if len(r.Samples) > 0 {
			removal = fmt.Sprintf("**%.0f ms** (%.0f–%.0f), %d samples | %s | %s", r.RemovalMedianMs, r.RemovalMinMs, r.RemovalMaxMs, len(r.Samples), msOr(r.FailToRemovalMs), msOr(r.DecisionToRemMs))
		}
		fmt.Printf("| %s | %.1f s | **%.0f** (%.0f) | %.0f–%.0f | %.2f / %.2f / %.2f s | **%.3f ms** (%.3f) | %.1f | %.0f %% | %.0f %% of %d00 %% | %.1f MB (%.1f MB) | %s | %.1f s |\n",
			r.Daemon, r.ProgrammedMs/1000, r.ChecksPerSec, r.Scheduled, lo, hi,
			r.IntervalMedianMs/1000, r.IntervalP99Ms/1000, r.IntervalMaxMs/1000,
			r.CPUPerCheckMs, r.SysPerCheckMs, r.SwitchesPerCheck, r.CPUPercent, r.VMCPUPercent, r.CPUs, r.RSSMB, r.HWMMB,
			removal, r.StopMs/1000)
		d := short(r.Daemon)
		b.ReportMetric(r.ChecksPerSec, d+"-checks/s")
		b.ReportMetric(r.CPUPerCheckMs, d+"-cpu-ms/check")
		b.ReportMetric(r.RSSMB, d+"-rss-MB")
		b.ReportMetric(r.ProgrammedMs, d+"-programmed-ms")
		b.ReportMetric(r.RemovalMedianMs, d+"-removal-ms")
	}
	fmt.Println()
	for _, r := range rs {
		pass := ""
		if r.FirstPassMs >= 0 {
			pass = fmt.Sprintf("first reconcile pass logged %.1f s after the start; ", r.FirstPassMs/1000)
		}
		fmt.Printf("- %s: %s%s; farm listener %s, listeners' CPU %.0f %%; intervals of %d servers timed, %d of them checked fewer than twice in the window; %d destinations after the window; director TCP sockets %s; one `ipvsadm -Ln` %.0f ms (%d destinations), one read of /proc/net/ip_vs %.1f ms\n",
			r.Daemon, pass, r.Processes, r.Farm, r.ListenerCPU, r.Timed, r.FewerThanTwo, r.DestsAfterWindow, r.TCPSockets, r.IpvsadmMs, r.IpvsadmDests, r.TableReadMs)
		if len(r.LogCounts) > 0 {
			keys := slices.Sorted(maps.Keys(r.LogCounts))
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%q %d", k, r.LogCounts[k]))
			}
			fmt.Printf("  log lines from the start to the end of the window: %s\n", strings.Join(parts, ", "))
		}
		if r.EngineStats != "" {
			fmt.Printf("  %s\n", r.EngineStats)
		}
	}
	fmt.Println()
	warnings(rs)
	profiles(b, out)
}

// profiles decodes the CPU profiles the guest printed (GKA_SCALE_DAEMONS=engine), keeps
// them in the temporary directory and logs pprof's top functions.
func profiles(b *testing.B, out string) {
	for _, m := range profRe.FindAllStringSubmatch(out, -1) {
		raw, err := base64.StdEncoding.DecodeString(m[2])
		if err != nil {
			b.Errorf("profile: %v", err)
			continue
		}
		file := filepath.Join(os.TempDir(), fmt.Sprintf("lvsscale-engine-%s-%d.pprof", m[1], time.Now().Unix()))
		if err := os.WriteFile(file, raw, 0o644); err != nil {
			b.Error(err)
			continue
		}
		for _, args := range [][]string{{"-top", "-nodecount=40"}, {"-top", "-cum", "-nodecount=40"}} {
			cmd := exec.Command("go", append(append([]string{"tool", "pprof"}, args...), prepBin, file)...)
			text, err := cmd.CombinedOutput()
			// Printed, not logged: a benchmark's log is cut to 10 lines.
			fmt.Printf("\ngo tool pprof %s %s %s (%s real servers): %v\n%s\n", strings.Join(args, " "), prepBin, file, m[1], err, text)
		}
	}
}

func warnings(rs []result) {
	for _, r := range rs {
		for _, w := range r.Warnings {
			fmt.Printf("WARNING %s: %s\n", r.Daemon, w)
		}
	}
}

// msOr renders milliseconds, or a dash for a missing value (negative).
func msOr(v float64) string {
	if v < 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f ms", v)
}

func short(daemon string) string { return strings.Fields(daemon)[0] }

func minMax(v []float64) (lo, hi float64) {
	for i, x := range v {
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	return lo, hi
}

// spread renders the median (min-max) of a per-sample value, skipping samples without it.
func spread(r result, f func(int) float64) string {
	var v []float64
	for i := range r.Samples {
		if x := f(i); x >= 0 {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return "—"
	}
	slices.Sort(v)
	return fmt.Sprintf("%.0f (%.0f–%.0f)", v[len(v)/2], v[0], v[len(v)-1])
}

// hostCPU returns the host's busy, steal and total jiffies from /proc/stat.
func hostCPU() (busy, steal, total int64) {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		if i >= 8 { // guest and guest_nice are counted in user and nice
			break
		}
		v, _ := strconv.ParseInt(f, 10, 64)
		total += v
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			steal += v
		default:
			busy += v
		}
	}
	return busy, steal, total
}

// loadavg is the host's 1-minute load average.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

var (
	prepVersion = "from GKA_BIN"
	prepOnce    sync.Once
	prepDir     string
	prepBin     string
	prepFile    []vm.File
	prepErr     error
)

// prepare builds gokeepalived and the guest binary once and lists the files the guest
// needs: gokeepalived, keepalived and ipvsadm with their libraries.
func prepare(b *testing.B) (string, []vm.File) {
	b.Helper()
	prepOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if prepErr = vm.Setup(ctx); prepErr != nil {
			prepErr = fmt.Errorf("%w\n(as root, run tests/vm/setup.sh)", prepErr)
			return
		}
		if prepDir, prepErr = os.MkdirTemp("", "gka-lvsscale-"); prepErr != nil {
			return
		}
		root, err := filepath.Abs(filepath.Join("..", "..", ".."))
		if err != nil {
			prepErr = err
			return
		}
		daemon := os.Getenv("GKA_BIN") // a static gokeepalived built elsewhere
		if daemon == "" {
			daemon = filepath.Join(prepDir, "gokeepalived")
			cmd := exec.CommandContext(ctx, "go", "build", "-o", daemon, "./cmd/gokeepalived")
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				prepErr = fmt.Errorf("go build ./cmd/gokeepalived: %v\n%s", err, out)
				return
			}
			prepVersion = "(working tree)"
			if out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
				prepVersion = strings.TrimSpace(string(out))
			}
		}
		if prepBin, prepErr = vm.BuildTest(ctx, "./tests/vm/scaleguest", prepDir, "vmguest"); prepErr != nil {
			return
		}
		prepFile = []vm.File{{Src: daemon, Dst: "/usr/sbin/gokeepalived", Mode: 0o755}}
		for _, p := range []struct{ name, pkg string }{{"ipvsadm", "tests/vm/setup.sh"}, {"keepalived", "tests/setup.sh"}} {
			src, err := exec.LookPath(p.name)
			if err != nil {
				prepErr = fmt.Errorf("%v (as root, run %s)", err, p.pkg)
				return
			}
			fs, err := vm.BinaryWithLibs(src, "/usr/sbin/"+p.name)
			if err != nil {
				prepErr = err
				return
			}
			prepFile = append(prepFile, fs...)
		}
	})
	if prepErr != nil {
		b.Fatal(prepErr)
	}
	return prepBin, prepFile
}

// TestMain removes the binaries built for the benchmarks.
func TestMain(m *testing.M) {
	code := m.Run()
	if prepDir != "" {
		os.RemoveAll(prepDir)
	}
	os.Exit(code)
}

var (
	resultRe = regexp.MustCompile(`(?m)^LVSSCALE (\{.*\})$`)
	profRe   = regexp.MustCompile(`(?m)^LVSPROF (\d+) (\S+)$`)
)

// passEnv are the host variables handed to the guest (see tests/vm/scaleguest).
var passEnv = []string{"GKA_SCALE_DAEMONS", "GKA_SCALE_SETTLE", "GKA_SCALE_WINDOW", "GKA_DETECT_RUNS"}

// runGuest boots the VM with two vCPUs, runs the guest test named by run with env, and
// returns its results and console output.
func runGuest(b *testing.B, run string, env []string) ([]result, string) {
	b.Helper()
	bin, files := prepare(b)
	for _, k := range passEnv {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	load0 := loadavg()
	hb0, hs0, ht0 := hostCPU()
	b.ResetTimer()
	start := time.Now()
	res, err := vm.Run(b.Context(), vm.Config{
		Binary: bin, Args: []string{"-test.v", "-test.run=" + run, "-test.timeout=9m30s"},
		Env: env, Files: files, CPUs: 2, Memory: "1536M", Timeout: 10 * time.Minute,
	})
	b.StopTimer()
	out := res.Output
	if i := strings.Index(out, "GKA-VM-START"); i >= 0 {
		out = out[i:]
	}
	// The guest's test output goes to a file (a benchmark's log is cut to 10 lines); on
	// failure its tail is printed too.
	out = profRe.ReplaceAllString(resultRe.ReplaceAllString(out, "LVSSCALE ..."), "LVSPROF ...")
	logFile := filepath.Join(os.TempDir(), fmt.Sprintf("lvsscale-%s-%d.log", strings.TrimPrefix(b.Name(), "Benchmark"), time.Now().Unix()))
	if werr := os.WriteFile(logFile, []byte(out), 0o644); werr != nil {
		b.Error(werr)
	}
	fmt.Printf("\nguest console (%s, boot %v, whole run %v): %s\n", run, res.Boot.Round(time.Millisecond), time.Since(start).Round(time.Second), logFile)
	if err != nil || res.ExitCode != 0 {
		lines := strings.Split(out, "\n")
		fmt.Printf("guest console, last 100 lines:\n%s\n", strings.Join(lines[max(0, len(lines)-100):], "\n"))
	}
	if err != nil {
		b.Fatal(err)
	}
	if res.ExitCode != 0 {
		b.Fatalf("guest test failed with exit code %d (console in %s)", res.ExitCode, logFile)
	}
	var rs []result
	for _, m := range resultRe.FindAllStringSubmatch(res.Output, -1) {
		var r result
		if err := json.Unmarshal([]byte(m[1]), &r); err != nil {
			b.Fatalf("guest result %s: %v", m[1], err)
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		b.Fatal("the guest printed no result")
	}
	hb1, hs1, ht1 := hostCPU()
	hostBusy, hostSteal := 0.0, 0.0
	if ht1 > ht0 {
		hostBusy = float64(hb1-hb0) / float64(ht1-ht0) * 100
		hostSteal = float64(hs1-hs0) / float64(ht1-ht0) * 100
	}
	fmt.Printf("\n`go test ./tests/bench/lvsscale -run '^$' -bench %s -benchtime 1x`, %s, gokeepalived %s, VM (TCG, %d vCPUs) booted in %v, whole run %v; host: load average %s before, %s after, CPU busy %.0f %% and stolen %.0f %% of its %d CPUs during the run\n",
		b.Name(), time.Now().UTC().Format("2006-01-02 15:04 UTC"), prepVersion, rs[0].CPUs, res.Boot.Round(time.Second), time.Since(start).Round(time.Second),
		load0, loadavg(), hostBusy, hostSteal, runtime.NumCPU())
	return rs, res.Output
}
