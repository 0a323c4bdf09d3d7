package failover

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Settings from the environment: GKA_RUNS failovers per implementation and stop mode
// (default 5), GKA_SOAK the length of the busy-CPU soak (default 10m).
var (
	runs = envInt("GKA_RUNS", 5)
	soak = envDuration("GKA_SOAK", 10*time.Minute)
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

var vip = netip.MustParseAddr("192.168.71.205")

// BenchmarkFailoverV2 is the seed scenario (VRRPv2, advert_int 1, PASS authentication):
// GKA_RUNS SIGKILLs and GKA_RUNS SIGTERMs of the master, for gokeepalived and then
// keepalived 2.2.7 on the same lab.
func BenchmarkFailoverV2(b *testing.B) { failoverBench(b, 2, time.Second) }

// BenchmarkFailoverV3 is the same with VRRPv3, advert_int 0.05, no authentication.
func BenchmarkFailoverV3(b *testing.B) { failoverBench(b, 3, 50*time.Millisecond) }

// result is one implementation's samples for one stop signal.
type result struct {
	impl    string
	sig     syscall.Signal
	samples []sample
}

func failoverBench(b *testing.B, version int, advert time.Duration) {
	l := newLab(b, 2)
	var results []result
	for _, im := range implementations(b) {
		p := newPair(l, im, version, advert, 51, vip, 0, 1)
		if err := p.startBoth(); err != nil {
			b.Fatal(err)
		}
		for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
			r := result{impl: im.name, sig: sig}
			for i := range runs {
				s, err := p.failover(sig)
				if err != nil {
					b.Fatalf("run %d: %v", i+1, err)
				}
				b.Logf("%s %s run %d: offset %v, kill->advert %v, kill->GARP %v, gap %v (bound %v), kill->prio0 %v",
					im.name, sigName(sig), i+1, ms(s.offset), ms(s.toAdvert), ms(s.toGARP), ms(s.gap), ms(s.bound), ms(s.toZero))
				r.samples = append(r.samples, s)
			}
			results = append(results, r)
			metric := func(v time.Duration, what string) {
				b.ReportMetric(float64(v)/1e6, strings.Fields(im.name)[0]+"-"+strings.ToLower(sigName(sig))+"-"+what+"-ms")
			}
			metric(median(r.samples, func(s sample) time.Duration { return s.gap - s.bound }), "excess")
		}
		p.stop()
	}
	if n := l.capt.Unstamped(); n > 0 {
		b.Logf("%d frames had no kernel timestamp", n)
	}
	p := newPair(l, impl{}, version, advert, 51, vip, 0, 1)
	fmt.Printf("\nVRRPv%d advert_int %v, master priority 150, backup priority 100: Master_Down_Interval %v, Skew_Time %v; %d runs each; ms, median (min-max)\n\n",
		version, advert, p.mdi(), p.skew(), runs)
	fmt.Println("| implementation | stop | kill → priority-0 advert | kill → new master's 1st advert | kill → its 1st GARP at the client | gap: last advert → new master's 1st advert | protocol value | gap − protocol value | kill offset in the advert cycle |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		zero := "—"
		gapFrom := "last advert"
		if r.sig == syscall.SIGTERM {
			zero = stat(r.samples, func(s sample) time.Duration { return s.toZero })
			gapFrom = "priority 0"
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s: %s | %s | %s | %s |\n", r.impl, sigName(r.sig), zero,
			stat(r.samples, func(s sample) time.Duration { return s.toAdvert }),
			stat(r.samples, func(s sample) time.Duration { return s.toGARP }),
			gapFrom, stat(r.samples, func(s sample) time.Duration { return s.gap }),
			ms(r.samples[0].bound),
			stat(r.samples, func(s sample) time.Duration { return s.gap - s.bound }),
			stat(r.samples, func(s sample) time.Duration { return s.offset }))
	}
	fmt.Println()
}

// sigName is "KILL" or "TERM".
func sigName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "KILL"
	}
	return "TERM"
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }

func median(ss []sample, f func(sample) time.Duration) time.Duration {
	v := values(ss, f)
	return v[len(v)/2]
}

func values(ss []sample, f func(sample) time.Duration) []time.Duration {
	var v []time.Duration
	for _, s := range ss {
		v = append(v, f(s))
	}
	slices.Sort(v)
	return v
}

// stat renders "median (min–max)" in milliseconds (the median of an even count is the
// upper middle value).
func stat(ss []sample, f func(sample) time.Duration) string {
	v := values(ss, f)
	return fmt.Sprintf("%s (%s–%s)", ms(v[len(v)/2]), ms(v[0]), ms(v[len(v)-1]))
}

// BenchmarkSoakV3 runs a gokeepalived pair and a keepalived pair side by side (VRRPv3,
// advert_int 0.05, virtual routers 61 and 62) for GKA_SOAK with two CPU-bound processes
// keeping both cores busy, and counts false failovers: adverts from a backup, priority-0
// adverts, and gaps in the master's advert stream longer than Master_Down_Interval.
func BenchmarkSoakV3(b *testing.B) {
	l := newLab(b, 4)
	ims := implementations(b)
	pairs := []*pair{
		newPair(l, ims[0], 3, 50*time.Millisecond, 61, netip.MustParseAddr("192.168.71.205"), 0, 1),
		newPair(l, ims[1], 3, 50*time.Millisecond, 62, netip.MustParseAddr("192.168.71.206"), 2, 3),
	}
	for _, p := range pairs {
		if err := p.startBoth(); err != nil {
			b.Fatal(err)
		}
	}
	from := l.capt.Len()
	cpu0 := readCPU()
	t0 := time.Now()
	stop := l.burners(2, soak)
	deadline := t0.Add(soak)
	for time.Now().Before(deadline) {
		time.Sleep(min(10*time.Second, time.Until(deadline)))
		b.Logf("soak: %v of %v", time.Since(t0).Round(time.Second), soak)
	}
	stop()
	t1 := time.Now()
	cpu1 := readCPU()
	busy, steal := cpu1.busySince(cpu0), cpu1.stealSince(cpu0)
	evs := l.capt.Events(from)
	fmt.Printf("\nSoak: VRRPv3 advert_int 0.05 (Master_Down_Interval %v), %v with 2 CPU burners, machine CPU busy %.0f%%, stolen by the hypervisor %.1f%%\n\n",
		pairs[0].mdi(), t1.Sub(t0).Round(time.Second), 100*busy, 100*steal)
	fmt.Println("| implementation | master adverts | master changes | adverts from the backup | priority-0 adverts | GARPs from the backup | gaps > Master_Down_Interval | gaps > 2 × advert_int | p99 / p99.9 / max gap (ms) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, p := range pairs {
		st := analyzeSoak(evs, p.vrid, p.l.addr(p.mi), p.l.addr(p.bi), p.l.macs[p.bi].String(), p.vip, t0, t1, p.advert, p.mdi())
		fmt.Printf("| %s | %d | %d | %d | %d | %d | %d | %d | %s / %s / %s |\n", p.im.name, st.adverts, st.changes,
			st.fromBackup, st.zero, st.backupGARPs, st.overMDI, st.over2x, ms(st.p99), ms(st.p999), ms(st.maxGap))
		b.ReportMetric(float64(st.changes), strings.Fields(p.im.name)[0]+"-master-changes")
		if len(st.long) > 0 {
			b.Logf("%s: gaps longer than Master_Down_Interval (start+length ms): %s", p.im.name, strings.Join(st.long, " "))
		}
	}
	fmt.Println()
	for _, p := range pairs {
		p.stop()
	}
}

// soakStats counts what a pair did during the soak.
type soakStats struct {
	adverts     int // from the master with a non-zero priority
	changes     int // the advertising router changed (a backup spoke up, or the master came back)
	fromBackup  int // adverts from the backup with a non-zero priority
	zero        int // priority-0 adverts
	backupGARPs int // gratuitous ARPs for the VIP from the backup's MAC
	overMDI     int // gaps between consecutive master adverts longer than Master_Down_Interval
	over2x      int // gaps longer than 2 x advert_int
	p99, p999   time.Duration
	maxGap      time.Duration
	long        []string // where the gaps longer than Master_Down_Interval were
}

// analyzeSoak computes soakStats from captured events within [t0, t1].
func analyzeSoak(evs []Event, vrid uint8, master, backup netip.Addr, backupMAC string, vip netip.Addr, t0, t1 time.Time, advert, mdi time.Duration) soakStats {
	var st soakStats
	var gaps []time.Duration
	var prev time.Time
	var speaker netip.Addr
	for _, e := range evs {
		if e.At.Before(t0) || e.At.After(t1) {
			continue
		}
		if e.Kind == GARP {
			if e.Src == vip && e.SrcMAC.String() == backupMAC {
				st.backupGARPs++
			}
			continue
		}
		if e.VRID != vrid {
			continue
		}
		if e.Priority == 0 {
			st.zero++
			continue
		}
		if speaker.IsValid() && e.Src != speaker {
			st.changes++
		}
		speaker = e.Src
		switch e.Src {
		case backup:
			st.fromBackup++
		case master:
			st.adverts++
			if !prev.IsZero() {
				g := e.At.Sub(prev)
				gaps = append(gaps, g)
				if g > mdi {
					st.overMDI++
					st.long = append(st.long, fmt.Sprintf("%s+%s", prev.Format("15:04:05.000"), ms(g)))
				}
				if g > 2*advert {
					st.over2x++
				}
			}
			prev = e.At
		}
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		st.p99 = gaps[len(gaps)*99/100]
		st.p999 = gaps[len(gaps)*999/1000]
		st.maxGap = gaps[len(gaps)-1]
	}
	return st
}

// cpuTimes is the aggregate "cpu" line of /proc/stat.
type cpuTimes struct{ idle, steal, total uint64 }

func readCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var t cpuTimes
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		t.total += v
		switch i {
		case 3, 4: // idle, iowait
			t.idle += v
		case 7:
			t.steal += v
		}
	}
	return t
}

// busySince is the fraction of CPU time not idle since an earlier reading.
func (t cpuTimes) busySince(then cpuTimes) float64 {
	if t.total <= then.total {
		return 0
	}
	return 1 - float64(t.idle-then.idle)/float64(t.total-then.total)
}

// stealSince is the fraction of CPU time stolen by the hypervisor since an earlier reading.
func (t cpuTimes) stealSince(then cpuTimes) float64 {
	if t.total <= then.total {
		return 0
	}
	return float64(t.steal-then.steal) / float64(t.total-then.total)
}
