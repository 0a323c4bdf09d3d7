package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"gokeepalived/parser"
)

// schedT0 is when the fake clocks of the tests start.
var schedT0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// schedFakeClock is a Clock that moves only when told. Advance fires the due timers in
// time order, each at its time and in the caller's goroutine, and calls settle after
// each so that what a timer set off is done before time moves on.
type schedFakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*schedFakeTimer
	seq    uint64
	settle func()
}

type schedFakeTimer struct {
	c      *schedFakeClock
	at     time.Time
	seq    uint64
	f      func()
	active bool
}

func schedNewFakeClock() *schedFakeClock { return &schedFakeClock{now: schedT0} }

func (c *schedFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *schedFakeClock) AfterFunc(d time.Duration, f func()) Timer {
	t := &schedFakeTimer{c: c, f: f}
	t.Reset(d)
	return t
}

func (t *schedFakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

func (t *schedFakeTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	was := t.active
	c.seq++
	t.at, t.seq, t.active = c.now.Add(d), c.seq, true
	if !slices.Contains(c.timers, t) {
		c.timers = append(c.timers, t)
	}
	return was
}

// next returns the earliest active timer due by until, made inactive, and moves the
// clock to its time.
func (c *schedFakeClock) next(until time.Time) *schedFakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *schedFakeTimer
	for _, t := range c.timers {
		if t.active && !t.at.After(until) && (best == nil || t.at.Before(best.at) || t.at.Equal(best.at) && t.seq < best.seq) {
			best = t
		}
	}
	if best != nil {
		best.active = false
		if best.at.After(c.now) {
			c.now = best.at
		}
	}
	return best
}

// Advance moves the clock d ahead, firing the timers due on the way.
func (c *schedFakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	until := c.now.Add(d)
	c.mu.Unlock()
	for t := c.next(until); t != nil; t = c.next(until) {
		t.f()
		if c.settle != nil {
			c.settle()
		}
	}
	c.mu.Lock()
	c.now = until
	c.mu.Unlock()
}

// runHarness is a Runner on a fake clock with a recorder of its transitions and a
// register of the probes parked on purpose, which settle does not wait for.
type runHarness struct {
	t   *testing.T
	clk *schedFakeClock
	r   *Runner

	mu     sync.Mutex
	got    []Transition
	parked map[*runPark]bool
}

// runPark is a probe call waiting for the test or the fake clock; with ctx, only as
// long as ctx is live.
type runPark struct{ ctx context.Context }

func runNewHarness(t *testing.T, o Options) *runHarness {
	t.Helper()
	h := &runHarness{t: t, clk: schedNewFakeClock(), parked: map[*runPark]bool{}}
	o.Clock = h.clk
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(1, 2))
	}
	o.OnTransition = func(tr Transition) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.got = append(h.got, tr)
	}
	h.r = NewRunner(o)
	h.clk.settle = h.settle
	t.Cleanup(h.r.Stop)
	return h
}

func (h *runHarness) park(p *runPark) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.parked[p] = true
}

func (h *runHarness) unpark(p *runPark) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.parked, p)
}

// quiet reports whether every running probe is parked and every transition delivered.
func (h *runHarness) quiet() bool {
	h.r.mu.Lock()
	running, emitted := h.r.stats.Running, h.r.stats.Transitions
	h.r.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	parked := 0
	for p := range h.parked {
		if p.ctx == nil || p.ctx.Err() == nil {
			parked++
		}
	}
	return running == parked && emitted == uint64(len(h.got))
}

// settle waits until the runner has done all it can without the clock moving. The
// real-time bound only catches a deadlock; no test depends on it.
func (h *runHarness) settle() {
	for i := 0; !h.quiet(); i++ {
		if i > 100000 {
			h.t.Fatal("the runner does not settle")
		}
		if i > 100 {
			time.Sleep(100 * time.Microsecond)
		} else {
			runtime.Gosched()
		}
	}
}

func (h *runHarness) update(checks ...Check) {
	h.t.Helper()
	if err := h.r.Update(checks); err != nil {
		h.t.Fatal(err)
	}
	h.settle()
}

// runSince is the offset of tm from schedT0.
func runSince(tm time.Time) time.Duration { return tm.Sub(schedT0) }

// runEv is a transition reduced to what the tables compare.
type runEv struct {
	At     time.Duration
	RS     string
	Up     bool
	Weight int // -1: nil
}

func (e runEv) String() string { return fmt.Sprintf("%v %s up=%v w=%d", e.At, e.RS, e.Up, e.Weight) }

// events returns the transitions received so far, reduced.
func (h *runHarness) events() []runEv {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]runEv, 0, len(h.got))
	for _, tr := range h.got {
		w := -1
		if tr.Weight != nil {
			w = *tr.Weight
		}
		out = append(out, runEv{runSince(tr.At), tr.RS, tr.Up, w})
	}
	return out
}

func (h *runHarness) transitions() []Transition {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// runStep is one scripted answer of a runFakeProbe.
type runStep struct {
	ok      bool
	weight  *int
	panic   string
	take    time.Duration // the call lasts this long on the fake clock
	hang    bool          // the call lasts until unhang, whatever its context
	ctxHang bool          // the call lasts until its context ends
	notRun  bool          // the attempt could not be made (errNotRun)
}

var (
	runPass = runStep{ok: true}
	runFail = runStep{}
)

func runWeight(n int) runStep { return runStep{ok: true, weight: &n} }

// runFakeProbe answers with its script, repeating the last step, and records the times
// of its calls.
type runFakeProbe struct {
	h     *runHarness
	mu    sync.Mutex
	steps []runStep
	calls []time.Duration
	hung  chan struct{}
	hungP *runPark
}

func (h *runHarness) probe(steps ...runStep) *runFakeProbe {
	return &runFakeProbe{h: h, steps: steps}
}

var runErrScripted = errors.New("scripted failure")

func (p *runFakeProbe) Check(ctx context.Context) Result {
	h := p.h
	p.mu.Lock()
	st := p.steps[min(len(p.calls), len(p.steps)-1)]
	p.calls = append(p.calls, runSince(h.clk.Now()))
	p.mu.Unlock()
	switch {
	case st.panic != "":
		panic(st.panic)
	case st.take > 0:
		pk, done := &runPark{}, make(chan struct{})
		h.clk.AfterFunc(st.take, func() {
			h.unpark(pk)
			close(done)
		})
		h.park(pk)
		<-done
	case st.hang:
		pk, done := &runPark{}, make(chan struct{})
		p.mu.Lock()
		p.hung, p.hungP = done, pk
		p.mu.Unlock()
		h.park(pk)
		<-done
	case st.ctxHang:
		pk := &runPark{ctx: ctx}
		h.park(pk)
		<-ctx.Done()
		h.unpark(pk)
		return Result{Err: ctx.Err()}
	}
	switch {
	case st.ok:
		return Result{OK: true, Weight: st.weight}
	case st.notRun:
		return Result{Err: fmt.Errorf("%w: scripted", errNotRun)}
	}
	return Result{Err: runErrScripted}
}

// unhang ends the call parked by a hang step.
func (p *runFakeProbe) unhang() {
	p.mu.Lock()
	done, pk := p.hung, p.hungP
	p.hung, p.hungP = nil, nil
	p.mu.Unlock()
	p.h.unpark(pk)
	close(done)
}

func (p *runFakeProbe) times() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// runTiming builds a CheckTiming from seconds; warmup 0.
func runTiming(delayLoop, connectTimeout float64, retry int, delayBeforeRetry float64) parser.CheckTiming {
	return parser.CheckTiming{
		DelayLoop:        parser.Seconds(delayLoop),
		ConnectTimeout:   parser.Seconds(connectTimeout),
		Retry:            retry,
		DelayBeforeRetry: parser.Seconds(delayBeforeRetry),
	}
}

// runSecs turns seconds into durations.
func runSecs(s ...float64) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, v := range s {
		out[i] = parser.Seconds(v).D()
	}
	return out
}

// runWaitGoroutines waits for the number of goroutines to drop to n, and fails if it
// does not within a generous bound.
func runWaitGoroutines(t *testing.T, n int) {
	t.Helper()
	for i := 0; runtime.NumGoroutine() > n; i++ {
		if i > 1000 {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, want ≤ %d\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
