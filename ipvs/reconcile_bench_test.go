package ipvs

import (
	"fmt"
	"strings"
	"testing"
)

// Reconcile against the Fake: 1000 services x 10 destinations from empty, an idempotent
// pass, and a pass that changes 1% (the numbers of issue 4; the VM variant is
// TestReconcileScale in tests/vm/ipvsguest). Each reports the kernel calls it makes.

// reportCalls reports the calls k recorded, per pass.
func reportCalls(b *testing.B, k *Fake) {
	calls := k.Calls()
	w := k.Writes()
	b.ReportMetric(float64(w)/float64(b.N), "writes/op")
	b.ReportMetric(float64(len(calls)-w)/float64(b.N), "reads/op")
}

func BenchmarkReconcileFromEmpty(b *testing.B) {
	specs := bigSpecs(1000, 10)
	writes, reads := 0, 0
	for b.Loop() {
		k := &Fake{}
		if _, err := Reconcile(k, specs, nil); err != nil {
			b.Fatal(err)
		}
		w := k.Writes()
		writes, reads = writes+w, reads+len(k.Calls())-w
	}
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
	b.ReportMetric(float64(reads)/float64(b.N), "reads/op")
}

func BenchmarkReconcileIdempotent(b *testing.B) {
	specs := bigSpecs(1000, 10)
	k := &Fake{}
	ch, err := Reconcile(k, specs, nil)
	if err != nil {
		b.Fatal(err)
	}
	k.ResetCalls()
	for b.Loop() {
		if _, err := Reconcile(k, specs, ch.Owned); err != nil {
			b.Fatal(err)
		}
	}
	reportCalls(b, k)
}

// BenchmarkReconcileOnePercent alternates between two desired states that differ by 1%,
// so that every pass makes the 1% change.
func BenchmarkReconcileOnePercent(b *testing.B) {
	base := bigSpecs(1000, 10)
	changed := cloneSpecs(base)
	changeOnePercent(changed)
	k := &Fake{}
	ch, err := Reconcile(k, base, nil)
	if err != nil {
		b.Fatal(err)
	}
	k.ResetCalls()
	i := 0
	for b.Loop() {
		specs := changed
		if i%2 == 1 {
			specs = base
		}
		i++
		if ch, err = Reconcile(k, specs, ch.Owned); err != nil {
			b.Fatal(err)
		}
	}
	reportCalls(b, k)
}

// BenchmarkDesired computes the desired state of 1000 virtual servers with 10 real
// servers each from a parsed configuration.
func BenchmarkDesired(b *testing.B) {
	var conf strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&conf, "virtual_server 10.%d.%d.1 80 {\nlb_algo rr\nprotocol TCP\nquorum 3\n", i>>8, i&255)
		for j := range 10 {
			fmt.Fprintf(&conf, "real_server 172.16.0.%d 8080 {\nweight %d\n}\n", j+1, j+1)
		}
		conf.WriteString("}\n")
	}
	cfg := load(b, conf.String())
	h := HealthView{}
	for b.Loop() {
		if specs := Desired(cfg, h); len(specs) != 1000 {
			b.Fatalf("%d services", len(specs))
		}
	}
}

// BenchmarkHealthChange is the pass that one real server changing state runs, in 250
// virtual servers of 20 real servers (5,000 real servers): a full pass (what every
// health change ran before targeted passes) against a targeted one. Each op is one
// transition (down and up in turn) and its pass; calls/op are the kernel calls (netlink
// requests with a real kernel).
func BenchmarkHealthChange(b *testing.B) {
	cfg := load(b, farmConf(250, 20, "", ""))
	for _, full := range []bool{true, false} {
		name := "targeted"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			k := &Fake{}
			m := startManager(b, k, cfg)
			if err := m.Stop(true); err != nil { // the benchmark runs the passes itself
				b.Fatal(err)
			}
			k.ResetCalls()
			up := false
			for b.Loop() {
				setHealth(m, cfg, 125, 10, up)
				up = !up
				if m.pass(full) {
					b.Fatalf("pass failed: %v", m.Status().Errors)
				}
			}
			b.ReportMetric(float64(len(k.Calls()))/float64(b.N), "calls/op")
			reportCalls(b, k)
		})
	}
}
