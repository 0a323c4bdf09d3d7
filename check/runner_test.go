package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gokeepalived/parser"
)

// TestRunnerTiming checks keepalived's timing rules on one check.
func TestRunnerTiming(t *testing.T) {
	slow := func(s runStep, d float64) runStep { s.take = parser.Seconds(d).D(); return s }
	tests := []struct {
		name   string
		timing parser.CheckTiming
		alpha  bool
		script []runStep
		run    float64 // seconds of fake time
		calls  []time.Duration
		events []runEv
	}{
		{
			name: "every delay_loop", timing: runTiming(5, 1, 1, 1), script: []runStep{runPass}, run: 16,
			calls: runSecs(0, 5, 10, 15), events: []runEv{{0, "rs", true, -1}},
		},
		{
			name: "delay_loop counts from the end of the attempt", timing: runTiming(5, 2, 0, 1), script: []runStep{slow(runPass, 1)}, run: 20,
			calls: runSecs(0, 6, 12, 18), events: []runEv{{0, "rs", true, -1}},
		},
		{
			name: "down only when the retries are spent, delay_before_retry apart", timing: runTiming(10, 1, 2, 1),
			script: []runStep{runFail, runFail, runFail, runPass}, run: 13,
			calls: runSecs(0, 1, 2, 12), events: []runEv{{0, "rs", true, -1}, {2 * time.Second, "rs", false, -1}, {12 * time.Second, "rs", true, -1}},
		},
		{
			name: "a success among the retries keeps it up", timing: runTiming(10, 1, 2, 1), script: []runStep{runFail, runPass}, run: 12,
			calls: runSecs(0, 1, 11), events: []runEv{{0, "rs", true, -1}},
		},
		{
			name: "retry 0 goes down at the first failure", timing: runTiming(10, 1, 0, 1), script: []runStep{runFail}, run: 25,
			calls: runSecs(0, 10, 20), events: []runEv{{0, "rs", true, -1}, {0, "rs", false, -1}},
		},
		{
			name: "a down check's failures are not retried", timing: runTiming(10, 1, 2, 3), script: []runStep{runFail}, run: 30,
			calls: runSecs(0, 3, 6, 16, 26), events: []runEv{{0, "rs", true, -1}, {6 * time.Second, "rs", false, -1}},
		},
		{
			name: "a success brings it up at once", timing: runTiming(10, 1, 1, 1), script: []runStep{runFail, runFail, runFail, runPass}, run: 22,
			calls: runSecs(0, 1, 11, 21), events: []runEv{{0, "rs", true, -1}, {time.Second, "rs", false, -1}, {21 * time.Second, "rs", true, -1}},
		},
		{
			name: "delay_before_retry 0 retries at once", timing: runTiming(10, 1, 2, 0), script: []runStep{runFail}, run: 5,
			calls: runSecs(0, 0, 0), events: []runEv{{0, "rs", true, -1}, {0, "rs", false, -1}},
		},
		{
			name: "delay_before_retry counts from the end of the attempt", timing: runTiming(10, 5, 1, 1), script: []runStep{slow(runFail, 2), runPass}, run: 5,
			calls: runSecs(0, 3), events: []runEv{{0, "rs", true, -1}},
		},
		{
			name: "alpha starts down and comes up at the first success", timing: runTiming(10, 1, 1, 1), alpha: true, script: []runStep{runPass}, run: 1,
			calls: runSecs(0), events: []runEv{{0, "rs", false, -1}, {0, "rs", true, -1}},
		},
		{
			name: "alpha retries the first round only", timing: runTiming(10, 1, 2, 1), alpha: true, script: []runStep{runFail, runFail, runFail, runFail, runPass}, run: 25,
			calls: runSecs(0, 1, 2, 12, 22), events: []runEv{{0, "rs", false, -1}, {22 * time.Second, "rs", true, -1}},
		},
		{
			name: "without alpha the first round can take it down", timing: runTiming(10, 1, 1, 1), script: []runStep{runFail}, run: 1,
			calls: runSecs(0, 1), events: []runEv{{0, "rs", true, -1}, {time.Second, "rs", false, -1}},
		},
		{
			name: "an attempt that could not be made gives no verdict and waits delay_loop", timing: runTiming(10, 1, 1, 1),
			script: []runStep{{notRun: true}, {notRun: true}, runFail, runFail}, run: 25,
			calls: runSecs(0, 10, 20, 21), events: []runEv{{0, "rs", true, -1}, {21 * time.Second, "rs", false, -1}},
		},
		{
			name: "dynamic runWeight", timing: runTiming(10, 1, 1, 1), script: []runStep{runWeight(5), runWeight(5), runWeight(7), runFail, runFail, runWeight(7)}, run: 50,
			calls: runSecs(0, 10, 20, 30, 31, 41),
			events: []runEv{
				{0, "rs", true, -1}, {0, "rs", true, 5}, {20 * time.Second, "rs", true, 7},
				{31 * time.Second, "rs", false, 7}, {41 * time.Second, "rs", true, 7},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := runNewHarness(t, Options{})
			p := h.probe(tt.script...)
			h.update(Check{ID: "c", RS: "rs", Probe: p, Timing: tt.timing, Alpha: tt.alpha})
			h.clk.Advance(parser.Seconds(tt.run).D())
			if got := p.times(); !slices.Equal(got, tt.calls) {
				t.Errorf("calls at %v, want %v", got, tt.calls)
			}
			if got := h.events(); !slices.Equal(got, tt.events) {
				t.Errorf("transitions:\n got %v\nwant %v", got, tt.events)
			}
		})
	}
}

// TestRunnerSlack checks Options.Slack: attempts due within Slack of the timer's last
// firing start together, late and never early; with a free timer they start on time.
func TestRunnerSlack(t *testing.T) {
	ms := time.Millisecond
	slow := runPass
	slow.take = 3 * ms
	for _, tc := range []struct {
		slack      time.Duration
		fast, slow []time.Duration
	}{
		{0, []time.Duration{0, 1000 * ms, 2000 * ms}, []time.Duration{0, 1003 * ms, 2006 * ms}},
		// The timer fires at 1 s for the fast check; the slow one, due at 1.003 s,
		// waits until 1.010 s, then at 2.013 s is due after the 2 s firing's slack.
		{10 * ms, []time.Duration{0, 1000 * ms, 2000 * ms}, []time.Duration{0, 1010 * ms, 2013 * ms}},
	} {
		t.Run(fmt.Sprint(tc.slack), func(t *testing.T) {
			h := runNewHarness(t, Options{Slack: tc.slack})
			fast, slowP := h.probe(runPass), h.probe(slow)
			h.update(
				Check{ID: "fast", RS: "a", Probe: fast, Timing: runTiming(1, 1, 1, 1)},
				Check{ID: "slow", RS: "b", Probe: slowP, Timing: runTiming(1, 1, 1, 1)},
			)
			h.clk.Advance(2500 * ms)
			if got := fast.times(); !slices.Equal(got, tc.fast) {
				t.Errorf("fast check called at %v, want %v", got, tc.fast)
			}
			if got := slowP.times(); !slices.Equal(got, tc.slow) {
				t.Errorf("slow check called at %v, want %v", got, tc.slow)
			}
		})
	}
}

// TestRunnerReasons checks what the transitions say and carry.
func TestRunnerReasons(t *testing.T) {
	h := runNewHarness(t, Options{})
	p := h.probe(runFail, runFail, runPass)
	h.update(Check{ID: "c", RS: "rs", Probe: p, Timing: runTiming(10, 1, 1, 1)})
	h.clk.Advance(11 * time.Second)
	trs := h.transitions()
	if len(trs) != 3 {
		t.Fatalf("got %d transitions, want 3: %+v", len(trs), trs)
	}
	want := []string{"new real server: up until a check fails", "check c failed after 1 retries: scripted failure", "check c succeeded"}
	for i, tr := range trs {
		if tr.Reason != want[i] {
			t.Errorf("transition %d: reason %q, want %q", i, tr.Reason, want[i])
		}
	}
	if trs[1].Check != "c" || !errors.Is(trs[1].Result.Err, runErrScripted) || trs[1].Result.OK {
		t.Errorf("down transition carries check %q result %+v", trs[1].Check, trs[1].Result)
	}
	if trs[0].Check != "" {
		t.Errorf("first state names check %q", trs[0].Check)
	}
}

// TestRunnerWarmup checks that first attempts fall in [StartDelay, StartDelay+warmup).
func TestRunnerWarmup(t *testing.T) {
	for _, tt := range []struct {
		name       string
		warmup     time.Duration
		startDelay time.Duration
	}{
		{"warmup 10s", 10 * time.Second, 0},
		{"warmup 10s after a start delay of 1s", 10 * time.Second, time.Second},
		{"warmup 0 starts at once", 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := runNewHarness(t, Options{StartDelay: tt.startDelay, Rand: rand.New(rand.NewPCG(7, 7))})
			var checks []Check
			var probes []*runFakeProbe
			for i := range 200 {
				p := h.probe(runPass)
				tm := runTiming(60, 1, 1, 1)
				tm.Warmup = parser.Duration(tt.warmup)
				probes = append(probes, p)
				checks = append(checks, Check{ID: string(rune('a'+i/26)) + string(rune('a'+i%26)), RS: "rs", Probe: p, Timing: tm})
			}
			h.update(checks...)
			h.clk.Advance(30 * time.Second)
			lo, hi := time.Duration(1<<62), time.Duration(0)
			for _, p := range probes {
				calls := p.times()
				if len(calls) != 1 {
					t.Fatalf("calls at %v, want one", calls)
				}
				lo, hi = min(lo, calls[0]), max(hi, calls[0])
			}
			if lo < tt.startDelay || hi >= tt.startDelay+max(tt.warmup, 1) {
				t.Errorf("first attempts in [%v, %v], want in [%v, %v)", lo, hi, tt.startDelay, tt.startDelay+tt.warmup)
			}
			if tt.warmup > 0 && hi-lo < tt.warmup/2 {
				t.Errorf("first attempts in [%v, %v]: not spread over the warmup %v", lo, hi, tt.warmup)
			}
		})
	}
}

// TestRunnerRealServerAND checks that a real server is up only when all its checks are.
func TestRunnerRealServerAND(t *testing.T) {
	h := runNewHarness(t, Options{})
	// a fails at 10 and recovers at 40; b fails at 20 and recovers at 50.
	a := h.probe(runPass, runFail, runFail, runFail, runPass)
	b := h.probe(runPass, runPass, runFail, runFail, runFail, runPass)
	other := h.probe(runPass)
	tm := runTiming(10, 1, 0, 1)
	h.update(
		Check{ID: "a", RS: "rs1", Probe: a, Timing: tm},
		Check{ID: "b", RS: "rs1", Probe: b, Timing: tm},
		Check{ID: "o", RS: "rs2", Probe: other, Timing: tm},
	)
	h.clk.Advance(60 * time.Second)
	want := []runEv{{0, "rs1", true, -1}, {0, "rs2", true, -1}, {10 * time.Second, "rs1", false, -1}, {50 * time.Second, "rs1", true, -1}}
	if got := h.events(); !slices.Equal(got, want) {
		t.Errorf("transitions:\n got %v\nwant %v", got, want)
	}
	snap := h.r.Snapshot()
	if len(snap.RealServers) != 2 || !snap.RealServers[0].Up || snap.RealServers[0].Checks != 2 {
		t.Errorf("real servers: %+v", snap.RealServers)
	}
}

// TestRunnerUpdate checks that Update keeps the state of known checks and reports
// the real servers it adds or changes.
func TestRunnerUpdate(t *testing.T) {
	h := runNewHarness(t, Options{})
	tm := runTiming(10, 1, 0, 1)
	down := h.probe(runFail)
	up := h.probe(runPass)
	h.update(Check{ID: "down", RS: "rs1", Probe: down, Timing: tm}, Check{ID: "up", RS: "rs1", Probe: up, Timing: tm})
	h.clk.Advance(5 * time.Second)
	want := []runEv{{0, "rs1", true, -1}, {0, "rs1", false, -1}}
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("transitions:\n got %v\nwant %v", got, want)
	}

	// A reload with new probe values and the same IDs: the failed check stays down,
	// its schedule stays; a new real server appears with its first state.
	down2, up2, alpha := h.probe(runFail), h.probe(runPass), h.probe(runFail)
	h.update(
		Check{ID: "down", RS: "rs1", Probe: down2, Timing: tm},
		Check{ID: "up", RS: "rs1", Probe: up2, Timing: tm},
		Check{ID: "alpha", RS: "rs2", Probe: alpha, Timing: tm, Alpha: true},
	)
	h.clk.Advance(6 * time.Second)
	want = append(want, runEv{5 * time.Second, "rs2", false, -1})
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("after a reload:\n got %v\nwant %v", got, want)
	}
	if got := down2.times(); !slices.Equal(got, runSecs(10)) {
		t.Errorf("the kept check ran at %v, want at 10s as planned before the reload", got)
	}
	if got := down.times(); !slices.Equal(got, runSecs(0)) {
		t.Errorf("the replaced probe ran at %v after the reload", got)
	}

	// Removing the failed check brings its real server up; a new timing plans the
	// next attempt from the end of the last one.
	slower := tm
	slower.DelayLoop = parser.Seconds(30)
	h.update(Check{ID: "up", RS: "rs1", Probe: up2, Timing: slower}, Check{ID: "alpha", RS: "rs2", Probe: alpha, Timing: tm, Alpha: true})
	want = append(want, runEv{11 * time.Second, "rs1", true, -1})
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("after removing a check:\n got %v\nwant %v", got, want)
	}
	if tr := h.transitions()[len(want)-1]; tr.Reason != "reconfigured: 1 of 1 checks up" {
		t.Errorf("reason %q", tr.Reason)
	}
	h.clk.Advance(40 * time.Second)
	if got := up2.times(); !slices.Equal(got, runSecs(10, 40)) {
		t.Errorf("the retimed check ran at %v, want 10s and 40s", got)
	}

	// Removing every check of a real server drops it silently.
	h.update(Check{ID: "up", RS: "rs1", Probe: up2, Timing: slower})
	if n := len(h.r.Snapshot().RealServers); n != 1 {
		t.Errorf("%d real servers, want 1", n)
	}
	if got := h.events(); len(got) != len(want) {
		t.Errorf("transitions after dropping a real server: %v", got[len(want):])
	}
}

// TestRunnerUpdateInvalid checks that a bad set is rejected whole.
func TestRunnerUpdateInvalid(t *testing.T) {
	h := runNewHarness(t, Options{})
	good := Check{ID: "good", RS: "rs", Probe: h.probe(runPass), Timing: runTiming(10, 1, 1, 1)}
	h.update(good)
	neg := good.Timing
	neg.Retry = -1
	for _, tt := range []struct {
		name string
		bad  Check
		want string
	}{
		{"empty ID", Check{RS: "rs", Probe: good.Probe, Timing: good.Timing}, `check "": empty ID`},
		{"duplicate ID", good, `check "good": duplicate ID`},
		{"no probe", Check{ID: "x", RS: "rs", Timing: good.Timing}, `check "x": no probe`},
		{"no delay_loop", Check{ID: "x", RS: "rs", Probe: good.Probe, Timing: runTiming(0, 1, 1, 1)}, `check "x": delay_loop 0s is not positive`},
		{"no connect_timeout", Check{ID: "x", RS: "rs", Probe: good.Probe, Timing: runTiming(1, 0, 1, 1)}, `check "x": connect_timeout 0s is not positive`},
		{"negative retry", Check{ID: "x", RS: "rs", Probe: good.Probe, Timing: neg}, `check "x": negative retry -1`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := h.r.Update([]Check{good, tt.bad})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "check runner update: ") {
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
			if snap := h.r.Snapshot(); len(snap.Checks) != 1 || snap.Checks[0].ID != "good" {
				t.Errorf("checks after a rejected update: %+v", snap.Checks)
			}
		})
	}
}

// TestRunnerPanic checks that a panicking probe fails its attempt with the panic's
// text and harms nothing else.
func TestRunnerPanic(t *testing.T) {
	h := runNewHarness(t, Options{})
	bad := h.probe(runPass, runStep{panic: "boom"}, runPass)
	good := h.probe(runPass)
	tm := runTiming(10, 1, 0, 1)
	h.update(Check{ID: "bad", RS: "rs1", Probe: bad, Timing: tm}, Check{ID: "good", RS: "rs2", Probe: good, Timing: tm})
	h.clk.Advance(25 * time.Second)
	want := []runEv{{0, "rs1", true, -1}, {0, "rs2", true, -1}, {10 * time.Second, "rs1", false, -1}, {20 * time.Second, "rs1", true, -1}}
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("transitions:\n got %v\nwant %v", got, want)
	}
	if tr := h.transitions()[2]; !strings.Contains(tr.Reason, "probe panicked: boom") {
		t.Errorf("reason %q does not carry the panic", tr.Reason)
	}
	if got := good.times(); !slices.Equal(got, runSecs(0, 10, 20)) {
		t.Errorf("the other check ran at %v", got)
	}
	if st := h.r.Snapshot().Stats; st.Panics != 1 || st.Running != 0 || st.InFlight != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestRunnerLateGoroutine starts attempts' goroutines late, as a starved machine does:
// the deadline counts from the goroutine's start, so an attempt that has not started,
// or started late, is not failed, and the probe still gets its whole connect_timeout.
func TestRunnerLateGoroutine(t *testing.T) {
	var h *runHarness
	var mu sync.Mutex
	type start struct {
		pk *runPark
		f  func()
	}
	var held []start
	spawn := func(f func()) {
		pk := &runPark{}
		h.park(pk) // held on purpose: settle need not wait for it
		mu.Lock()
		held = append(held, start{pk, f})
		mu.Unlock()
	}
	h = runNewHarness(t, Options{Grace: time.Second, Spawn: spawn})
	slow := runPass
	slow.take = 1500 * time.Millisecond // within connect_timeout 2 s of its own start
	p := h.probe(slow)
	h.update(Check{ID: "c", RS: "rs", Probe: p, Timing: runTiming(10, 2, 0, 1)})
	// The goroutine does not start for 5 s, past connect_timeout + grace from the dispatch.
	h.clk.Advance(5 * time.Second)
	if st := h.r.Snapshot().Stats; st.Abandoned != 0 || st.Failed != 0 {
		t.Fatalf("an attempt whose goroutine has not started was failed: %+v", st)
	}
	mu.Lock()
	st0 := held[0]
	mu.Unlock()
	h.unpark(st0.pk) // settle now waits until the probe is in its call
	go st0.f()
	h.settle()
	// It started at 5 s; 2.5 s later (past dispatch + timeout + grace) it is not
	// abandoned, and at 6.5 s its probe returns a success.
	h.clk.Advance(2500 * time.Millisecond)
	if got := p.times(); !slices.Equal(got, runSecs(5)) {
		t.Errorf("probe called at %v, want 5s", got)
	}
	st := h.r.Snapshot().Stats
	if st.Abandoned != 0 || st.Failed != 0 || st.Completed != 1 {
		t.Errorf("stats %+v: want the late attempt completed, nothing failed", st)
	}
	if got, want := h.events(), []runEv{{0, "rs", true, -1}}; !slices.Equal(got, want) {
		t.Errorf("transitions %v, want only the first state %v", got, want)
	}
}

// TestRunnerHungProbe checks that a probe ignoring its deadline fails its attempt at
// deadline + grace, frees its slot, and has later attempts fail at once until it
// returns, while other checks keep their schedule.
func TestRunnerHungProbe(t *testing.T) {
	h := runNewHarness(t, Options{MaxInFlight: 1, Grace: time.Second})
	hung := h.probe(runPass, runStep{hang: true}, runPass)
	other := h.probe(runPass)
	tm := runTiming(10, 2, 0, 1)
	h.update(Check{ID: "hung", RS: "rs1", Probe: hung, Timing: tm}, Check{ID: "other", RS: "rs2", Probe: other, Timing: tm})
	// 10s: hung starts and holds the only slot; other waits for it until 13s
	// (deadline 2s + grace 1s), when hung's attempt fails.
	h.clk.Advance(14 * time.Second)
	want := []runEv{{0, "rs1", true, -1}, {0, "rs2", true, -1}, {13 * time.Second, "rs1", false, -1}}
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("transitions:\n got %v\nwant %v", got, want)
	}
	if got := other.times(); !slices.Equal(got, runSecs(0, 13)) {
		t.Errorf("other ran at %v, want 0s and 13s (after the slot freed)", got)
	}
	st := h.r.Snapshot().Stats
	if st.Abandoned != 1 || st.InFlight != 0 || st.Running != 1 {
		t.Errorf("stats after the abandon: %+v", st)
	}
	if q := st.Slip.Quantile(1); q < 2*time.Second {
		t.Errorf("max slip %v, want other's 3s wait recorded", q)
	}
	// 23s: the probe is still stuck, so the attempt fails without calling it.
	h.clk.Advance(10 * time.Second)
	if got := hung.times(); !slices.Equal(got, runSecs(0, 10)) {
		t.Errorf("hung probe called at %v while stuck", got)
	}
	if st := h.r.Snapshot().Stats; st.Skipped != 1 {
		t.Errorf("skipped %d, want 1", st.Skipped)
	}
	// The probe returns (its late result is ignored); at 33s it is called again.
	hung.unhang()
	h.settle()
	h.clk.Advance(10 * time.Second)
	if got := hung.times(); !slices.Equal(got, runSecs(0, 10, 33)) {
		t.Errorf("hung probe called at %v, want again at 33s", got)
	}
	want = append(want, runEv{33 * time.Second, "rs1", true, -1})
	if got := h.events(); !slices.Equal(got, want) {
		t.Errorf("transitions:\n got %v\nwant %v", got, want)
	}
	if st := h.r.Snapshot().Stats; st.Running != 0 {
		t.Errorf("running %d after the probe returned", st.Running)
	}
}

// TestRunnerDeadlineCancel checks that an abandoned attempt's context is cancelled,
// so a probe that waits on it returns, and that the next attempt runs normally.
func TestRunnerDeadlineCancel(t *testing.T) {
	h := runNewHarness(t, Options{Grace: 500 * time.Millisecond})
	p := h.probe(runStep{ctxHang: true}, runPass)
	h.update(Check{ID: "c", RS: "rs", Probe: p, Timing: runTiming(10, 30, 0, 1)})
	h.clk.Advance(31 * time.Second)
	want := []runEv{{0, "rs", true, -1}, {30*time.Second + 500*time.Millisecond, "rs", false, -1}}
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("transitions:\n got %v\nwant %v", got, want)
	}
	if tr := h.transitions()[1]; !strings.Contains(tr.Reason, "did not return within connect_timeout 30s and a grace of 500ms") {
		t.Errorf("reason %q", tr.Reason)
	}
	h.clk.Advance(10 * time.Second)
	if got := p.times(); !slices.Equal(got, runSecs(0, 40.5)) {
		t.Errorf("calls at %v", got)
	}
	if st := h.r.Snapshot().Stats; st.Skipped != 0 || st.Running != 0 || st.Abandoned != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestRunnerMaxInFlight checks that due attempts wait for a free slot, oldest first.
func TestRunnerMaxInFlight(t *testing.T) {
	h := runNewHarness(t, Options{MaxInFlight: 2})
	var probes []*runFakeProbe
	var checks []Check
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		p := h.probe(runStep{ok: true, take: time.Second})
		probes = append(probes, p)
		checks = append(checks, Check{ID: id, RS: id, Probe: p, Timing: runTiming(60, 5, 0, 1)})
	}
	h.update(checks...)
	h.clk.Advance(5 * time.Second)
	want := [][]time.Duration{runSecs(0), runSecs(0), runSecs(1), runSecs(1), runSecs(2)}
	for i, p := range probes {
		if got := p.times(); !slices.Equal(got, want[i]) {
			t.Errorf("%s ran at %v, want %v", checks[i].ID, got, want[i])
		}
	}
	st := h.r.Snapshot().Stats
	if st.Completed != 5 || st.Slip.Count != 5 || st.Slip.Sum != 4*time.Second {
		t.Errorf("completed %d, slips %d summing %v; want 5, 5, 4s", st.Completed, st.Slip.Count, st.Slip.Sum)
	}
}

// TestRunnerStop checks that Stop cancels the attempts in flight, stops the
// schedule and leaves no goroutine behind.
func TestRunnerStop(t *testing.T) {
	base := runtime.NumGoroutine()
	h := runNewHarness(t, Options{})
	var probes []*runFakeProbe
	var checks []Check
	for _, id := range []string{"a", "b", "c"} {
		p := h.probe(runPass, runStep{ctxHang: true})
		probes = append(probes, p)
		checks = append(checks, Check{ID: id, RS: "rs", Probe: p, Timing: runTiming(10, 30, 0, 1)})
	}
	h.update(checks...)
	h.clk.Advance(10 * time.Second)
	if st := h.r.Snapshot().Stats; st.InFlight != 3 {
		t.Fatalf("%d attempts in flight, want 3", st.InFlight)
	}
	n := len(h.events())
	h.r.Stop()
	if st := h.r.Snapshot().Stats; st.InFlight != 0 || st.Running != 0 {
		t.Errorf("after Stop: %+v", st)
	}
	h.clk.Advance(time.Minute)
	for _, p := range probes {
		if got := p.times(); len(got) != 2 {
			t.Errorf("calls at %v after Stop", got)
		}
	}
	if got := h.events(); len(got) != n {
		t.Errorf("transitions after Stop: %v", got[n:])
	}
	if err := h.r.Update(checks); err == nil {
		t.Error("Update after Stop succeeded")
	}
	h.r.Stop()
	runWaitGoroutines(t, base)
}

// TestRunnerStopHung checks that Stop gives up on a probe that ignores its context
// after the grace.
func TestRunnerStopHung(t *testing.T) {
	base := runtime.NumGoroutine()
	h := runNewHarness(t, Options{Grace: time.Second})
	p := h.probe(runStep{hang: true})
	h.update(Check{ID: "c", RS: "rs", Probe: p, Timing: runTiming(10, 5, 0, 1)})
	var stopped atomic.Bool
	done := make(chan struct{})
	go func() {
		h.r.Stop()
		stopped.Store(true)
		close(done)
	}()
	for !stopped.Load() {
		h.clk.Advance(100 * time.Millisecond)
		runtime.Gosched()
	}
	<-done
	p.unhang()
	runWaitGoroutines(t, base)
}

// TestRunnerSnapshot checks the per-check status.
func TestRunnerSnapshot(t *testing.T) {
	h := runNewHarness(t, Options{})
	p := h.probe(runStep{take: 300 * time.Millisecond}, runPass)
	h.update(Check{ID: "c", RS: "rs", Probe: p, Timing: runTiming(10, 1, 2, 1)})
	h.clk.Advance(time.Second)
	got := h.r.Snapshot().Checks
	want := CheckStatus{
		ID: "c", RS: "rs", Up: true, Decided: false,
		NextStart: schedT0.Add(1300 * time.Millisecond), LastStart: schedT0,
		ConsecutiveFailures: 1, Retries: 1, Attempts: 1,
	}
	if len(got) != 1 {
		t.Fatalf("checks %+v", got)
	}
	res := got[0].LastResult
	got[0].LastResult = Result{}
	if got[0] != want {
		t.Errorf("status\n got %+v\nwant %+v", got[0], want)
	}
	if res.OK || res.Latency != 300*time.Millisecond || !errors.Is(res.Err, runErrScripted) {
		t.Errorf("last result %+v", res)
	}
}

// TestRunnerSystemClock runs checks on the system clock until a few attempts are
// done; it asserts no timing.
func TestRunnerSystemClock(t *testing.T) {
	base := runtime.NumGoroutine()
	ups := make(chan Transition, 10)
	r := NewRunner(Options{OnTransition: func(tr Transition) { ups <- tr }})
	var calls atomic.Int64
	probe := runProbeFunc(func(ctx context.Context) Result {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > time.Second {
			t.Errorf("attempt deadline %v (set: %v), want within connect_timeout 1s", dl, ok)
		}
		calls.Add(1)
		return Result{OK: true}
	})
	tm := runTiming(0.001, 1, 0, 0.001)
	if err := r.Update([]Check{{ID: "c", RS: "rs", Probe: probe, Timing: tm}}); err != nil {
		t.Fatal(err)
	}
	if tr := <-ups; !tr.Up || tr.RS != "rs" {
		t.Errorf("first transition %+v", tr)
	}
	for i := 0; calls.Load() < 5; i++ {
		if i > 1000 {
			t.Fatalf("%d calls after a long wait", calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Stop()
	runWaitGoroutines(t, base)
}

// runProbeFunc adapts a function to Probe in the tests.
type runProbeFunc func(ctx context.Context) Result

func (f runProbeFunc) Check(ctx context.Context) Result { return f(ctx) }

// TestRunnerAutoInFlight checks the default slot count.
func TestRunnerAutoInFlight(t *testing.T) {
	h := runNewHarness(t, Options{})
	mk := func(n int, tm parser.CheckTiming) []Check {
		checks := make([]Check, n)
		for i := range checks {
			checks[i] = Check{ID: fmt.Sprint(i), RS: fmt.Sprint(i), Probe: h.probe(runPass), Timing: tm}
		}
		return checks
	}
	for _, tt := range []struct {
		name   string
		checks []Check
		want   int
	}{
		{"few checks", mk(10, runTiming(1, 5, 0, 1)), 1024},
		{"bounded by the checks", mk(3000, runTiming(1, 5, 0, 1)), 3000},
		{"bounded by the timeouts", mk(3000, runTiming(10, 5, 0, 1)), 1500},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h.update(tt.checks...)
			h.r.mu.Lock()
			got := h.r.maxInFlight
			h.r.mu.Unlock()
			if got != tt.want {
				t.Errorf("%d slots, want %d", got, tt.want)
			}
		})
	}
}
