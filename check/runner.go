package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gokeepalived/parser"
)

// Check is one health check given to the Runner.
type Check struct {
	// ID is the check's stable key, such as "vs|rs|n". An Update keeps the state of the
	// IDs it already knows; a checker whose change must start afresh needs a new ID.
	ID string
	// RS is the key of the real server the check belongs to. A real server is up when
	// all its checks are up.
	RS    string
	Probe Probe
	// Timing is the check's effective timing. ConnectTimeout is the deadline of each
	// attempt (the caller puts misc_timeout there for a MISC_CHECK).
	Timing parser.CheckTiming
	// Alpha starts the check down until its first success; without it the check
	// starts up.
	Alpha bool
}

// Transition is a change of a real server's health, or its first state.
type Transition struct {
	RS string
	Up bool
	// Weight is the weight last set by one of the real server's checks (a MISC_CHECK
	// with misc_dynamic); nil when none has set one.
	Weight *int
	// Check is the ID of the check whose result caused the transition; empty when
	// it comes from Update (a new real server's first state, or checks that came or
	// went).
	Check string
	// Result is that check's result; zero when Check is empty.
	Result Result
	Reason string
	At     time.Time
}

// Options configures a Runner. The zero value is usable.
type Options struct {
	Clock Clock // nil: SystemClock
	// MaxInFlight bounds the attempts running at once. Due attempts wait for a free
	// slot; the wait shows as schedule slip. 0 sizes it on each Update for the
	// worst case, every server timing out: the sum over the checks of
	// connect_timeout / delay_loop, at least 1024 and at most the number of checks
	// (a check has one attempt at a time).
	MaxInFlight int
	// Grace is how long past its deadline a probe may run before the runner fails
	// the attempt without it and frees its slot (0: 1 s).
	Grace time.Duration
	// Slack lets attempts due close together start together: after the timer fires
	// it does not fire again for Slack, so an attempt starts up to Slack late, never
	// early. Each firing wakes threads; at thousands of checks a second, batching
	// them saves CPU. 0 fires at every planned start.
	Slack time.Duration
	// StartDelay is added before the first attempt of each new check, on top of
	// its warmup draw. keepalived waits 1 s (BOOTSTRAP_DELAY); 0 starts at once.
	StartDelay time.Duration
	// OnTransition receives the transitions in order, from one goroutine of the
	// runner's. It may take its time or call the runner: checks go on meanwhile
	// and later transitions queue up. It must not call Stop.
	OnTransition func(Transition)
	// Spawn starts the goroutine of an attempt (of every probe but TCP_CHECK's); nil:
	// `go f()`. Tests use it to make a goroutine start late.
	Spawn func(f func())
	Rand  *rand.Rand   // source of the warmup draws; nil: math/rand/v2's
	Log   *slog.Logger // probes that panic or ignore their deadline; nil: none
}

// Stats are the runner's counters since it was made.
type Stats struct {
	Checks      int
	RealServers int
	InFlight    int // attempts holding a slot
	// Running counts the probes that have not returned, including those whose
	// attempt was abandoned past its deadline.
	Running   int
	Due       uint64 // attempts whose planned start came
	Started   uint64 // attempts handed to their probe
	Completed uint64 // attempts whose probe returned in time
	Failed    uint64 // failed attempts (including panics and abandoned ones)
	Panics    uint64
	Abandoned uint64 // attempts failed at deadline + grace because the probe had not returned
	Skipped   uint64 // attempts failed at once because the probe's previous call is still running
	// NotRun counts the attempts that could not be made for a local reason (no
	// socket, bind failed); they give no verdict and the check tries again after
	// delay_loop.
	NotRun      uint64
	Transitions uint64
	// Slip is the distribution of start minus planned start: to the probe's call for
	// attempts that returned, to the dispatch for abandoned ones.
	Slip Histogram
}

// CheckStatus is the state of one check.
type CheckStatus struct {
	ID      string
	RS      string
	Up      bool
	Decided bool // a first round of attempts has ended (keepalived's has_run)
	// InFlight is set while an attempt runs; NextStart is the planned start of the
	// next attempt otherwise.
	InFlight            bool
	NextStart           time.Time
	LastResult          Result
	LastStart           time.Time // start of the last finished attempt
	ConsecutiveFailures int
	Retries             int // retries made so far in the current round
	Attempts            uint64
}

// RealServerStatus is the state of one real server.
type RealServerStatus struct {
	RS     string
	Up     bool
	Weight *int
	Checks int
	Down   int // checks down
}

// Snapshot is the state of the runner, sorted by key.
type Snapshot struct {
	Checks      []CheckStatus
	RealServers []RealServerStatus
	Stats       Stats
}

// Runner runs health checks with keepalived's timing and reports the health of real
// servers.
//
// Timing: a new check's first attempt comes after StartDelay plus a random draw in
// [0, warmup). A failed attempt is retried Retry times, each DelayBeforeRetry after
// the previous attempt ended, while the check is up or has no verdict yet; when the
// retries are spent the check goes down, and a down check's failures are not
// retried (keepalived's HTTP, SMTP, DNS and MISC checkers; its TCP_CHECK retries a
// down check too, which only polls a dead server more often). A success brings the
// check up at once. The next round starts DelayLoop after the attempt ended
// (keepalived reschedules from the end of the attempt, not its start). Each attempt
// gets ConnectTimeout as its context deadline, counted from the start of the probe's
// call, not from when it was due. An attempt that could not be made for a local
// reason (no socket, a failed bind) gives no verdict: the check tries again after
// DelayLoop, as keepalived reschedules it.
//
// Scale: one timer and two heaps (next starts, deadlines of attempts in flight)
// drive every check, at most MaxInFlight attempts at once (see Options.MaxInFlight).
// TCP_CHECK attempts are connections of one event loop (tcpLoop), whose deadline
// counts from the connect: an overloaded machine delays them but does not fail them.
// Every other attempt runs in a goroutine of its own. A probe that panics fails its
// attempt with the panic's text. A probe that has not returned Grace after its
// deadline (from its goroutine's start) fails its attempt and frees its slot; until it returns, the check's later
// attempts fail at once instead of piling up goroutines.
type Runner struct {
	clock        Clock
	maxInFlight  int
	autoInFlight bool // maxInFlight follows the checks
	grace        time.Duration
	startDelay   time.Duration
	slack        time.Duration
	spawn        func(func())
	onTransition func(Transition)
	rand         *rand.Rand
	log          *slog.Logger
	ctx          context.Context // parent of the attempts; cancelled by Stop
	cancel       context.CancelFunc
	kick         chan struct{} // transitions are pending
	quit         chan struct{} // closed by Stop
	delivered    chan struct{} // closed when the delivery goroutine is gone

	mu        sync.Mutex
	checks    map[string]*runCheck
	servers   map[string]*runServer
	starts    schedHeap[*runCheck] // next attempts of the idle checks
	deadlines schedHeap[*runCheck] // deadlines (+ grace) of the attempts in flight
	timer     Timer
	timerAt   time.Time // when the timer fires; zero when it is not armed
	firedAt   time.Time // when the timer last fired (for Slack)
	stopped   bool
	idle      chan struct{} // after Stop: closed when no attempt is in flight
	pending   []Transition
	stats     Stats

	abandonLogAt    time.Time // rate limit of the "ignored its deadline" warning
	abandonUnlogged int
}

// runCheck is a check and its state.
type runCheck struct {
	cfg       Check
	server    *runServer
	start     schedEntry[*runCheck] // its next attempt
	deadline  schedEntry[*runCheck] // the deadline of its attempt in flight
	cur       *runAttempt           // the attempt in flight
	hung      *runAttempt           // an abandoned attempt whose probe has not returned
	up        bool
	decided   bool // a round ended (keepalived's has_run)
	retries   int  // retries made in this round (keepalived's retry_it)
	failures  int  // consecutive failed attempts
	attempts  uint64
	last      Result
	lastStart time.Time
	lastEnd   time.Time
	removed   bool
}

// runServer is a real server: the AND of its checks.
type runServer struct {
	key        string
	checks     int
	down       int  // checks that are not up
	weight     *int // last dynamic weight
	weightFrom string
}

func (s *runServer) up() bool { return s.down == 0 }

// runAttempt is one call of a probe.
type runAttempt struct {
	check      *runCheck
	id         string // the check's ID, for the attempt's goroutine
	probe      Probe
	ctx        context.Context
	cancel     context.CancelFunc
	planned    time.Time
	dispatched time.Time
	timeout    time.Duration
	// begun is when the attempt's goroutine started (UnixNano of the runner's clock),
	// 0 until then: its deadline counts from there.
	begun     atomic.Int64
	abandoned bool
}

// NewRunner returns a runner without checks; Update gives it some.
func NewRunner(o Options) *Runner {
	r := &Runner{
		clock:        o.Clock,
		maxInFlight:  o.MaxInFlight,
		grace:        cmp.Or(o.Grace, time.Second),
		startDelay:   o.StartDelay,
		slack:        o.Slack,
		spawn:        o.Spawn,
		onTransition: o.OnTransition,
		rand:         o.Rand,
		log:          cmp.Or(o.Log, slog.New(slog.DiscardHandler)),
		kick:         make(chan struct{}, 1),
		quit:         make(chan struct{}),
		delivered:    make(chan struct{}),
		checks:       map[string]*runCheck{},
		servers:      map[string]*runServer{},
	}
	if r.autoInFlight = o.MaxInFlight <= 0; r.autoInFlight {
		r.maxInFlight = runAutoInFlight(nil)
	}
	if r.clock == nil {
		r.clock = SystemClock{}
	}
	if r.spawn == nil {
		r.spawn = func(f func()) { go f() }
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if r.onTransition != nil {
		go r.runDeliver()
	} else {
		close(r.delivered)
	}
	return r
}

// Update makes checks the runner's set: it adds the new IDs, removes the missing
// ones and applies the probe, timing and real server of the others while keeping
// their state (an unchanged failed real server is not brought back by a reload);
// Alpha only matters for a new check. A new real server gets a Transition with its
// first state, and a real server whose state changes because checks came or went
// gets one too. A real server whose checks are all removed is dropped without one.
// An invalid set changes nothing.
func (r *Runner) Update(checks []Check) error {
	if err := Validate(checks); err != nil {
		return fmt.Errorf("check runner update: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return errors.New("check runner update: runner is stopped")
	}
	if r.autoInFlight {
		r.maxInFlight = runAutoInFlight(checks)
	}
	now := r.clock.Now()
	wasUp := make(map[*runServer]bool, len(r.servers))
	for _, s := range r.servers {
		wasUp[s] = s.up()
	}
	want := make(map[string]bool, len(checks))
	for _, ck := range checks {
		want[ck.ID] = true
	}
	for _, id := range slices.Sorted(maps.Keys(r.checks)) {
		if !want[id] {
			r.runRemove(r.checks[id])
		}
	}
	for _, ck := range checks {
		if c := r.checks[ck.ID]; c != nil {
			r.runChange(c, ck)
		} else {
			r.runAdd(ck, now)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(r.servers)) {
		s := r.servers[key]
		up, known := wasUp[s]
		switch {
		case !known && s.up():
			r.runEmit(s, nil, "new real server: up until a check fails", now)
		case !known:
			r.runEmit(s, nil, "new real server: down until its alpha checks succeed", now)
		case up != s.up():
			r.runEmit(s, nil, fmt.Sprintf("reconfigured: %d of %d checks up", s.checks-s.down, s.checks), now)
		}
	}
	r.schedDispatch(now)
	return nil
}

// Validate reports what makes checks an invalid set for Update: empty or duplicate
// IDs, missing probes, timings that are not positive.
func Validate(checks []Check) error {
	var errs []error
	seen := make(map[string]bool, len(checks))
	for _, ck := range checks {
		t := ck.Timing
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("check %q: %s", ck.ID, fmt.Sprintf(format, args...)))
		}
		switch {
		case ck.ID == "":
			bad("empty ID")
		case seen[ck.ID]:
			bad("duplicate ID")
		case ck.Probe == nil:
			bad("no probe")
		case t.DelayLoop <= 0:
			bad("delay_loop %v is not positive", t.DelayLoop.D())
		case t.ConnectTimeout <= 0:
			bad("connect_timeout %v is not positive", t.ConnectTimeout.D())
		case t.Retry < 0 || t.DelayBeforeRetry < 0 || t.Warmup < 0:
			bad("negative retry %d, delay_before_retry %v or warmup %v", t.Retry, t.DelayBeforeRetry.D(), t.Warmup.D())
		}
		seen[ck.ID] = true
	}
	return errors.Join(errs...)
}

// runAutoInFlight is the slot count for checks that all run to their deadline:
// Σ connect_timeout / delay_loop, within [1024, len(checks)] (1024 at least).
func runAutoInFlight(checks []Check) int {
	var need float64
	for _, ck := range checks {
		need += float64(ck.Timing.ConnectTimeout) / float64(ck.Timing.DelayLoop)
	}
	return max(1024, min(len(checks), int(math.Ceil(need))))
}

// runAdd adds a new check; its first attempt comes after StartDelay and a warmup draw.
func (r *Runner) runAdd(ck Check, now time.Time) {
	c := &runCheck{cfg: ck, up: !ck.Alpha}
	c.start.index, c.start.owner = -1, c
	c.deadline.index, c.deadline.owner = -1, c
	r.checks[ck.ID] = c
	r.runAttach(c)
	r.starts.set(&c.start, now.Add(r.startDelay+r.runWarmup(ck.Timing.Warmup.D())))
}

// runWarmup draws the random delay of a first attempt in [0, w).
func (r *Runner) runWarmup(w time.Duration) time.Duration {
	switch {
	case w <= 0:
		return 0
	case r.rand != nil:
		return time.Duration(r.rand.Int64N(int64(w)))
	}
	return time.Duration(rand.Int64N(int64(w)))
}

// runAttach counts c in its real server, made if new.
func (r *Runner) runAttach(c *runCheck) {
	s := r.servers[c.cfg.RS]
	if s == nil {
		s = &runServer{key: c.cfg.RS}
		r.servers[s.key] = s
	}
	s.checks++
	if !c.up {
		s.down++
	}
	c.server = s
}

// runDetach takes c out of its real server, dropped once empty; a dynamic weight set
// by c goes with it.
func (r *Runner) runDetach(c *runCheck) {
	s := c.server
	s.checks--
	if !c.up {
		s.down--
	}
	if s.weightFrom == c.cfg.ID {
		s.weight, s.weightFrom = nil, ""
	}
	if s.checks == 0 {
		delete(r.servers, s.key)
	}
	c.server = nil
}

// runRemove forgets c; an attempt in flight is cancelled and its result ignored.
func (r *Runner) runRemove(c *runCheck) {
	c.removed = true
	r.starts.remove(&c.start)
	if c.cur != nil {
		c.cur.cancel()
	}
	r.runDetach(c)
	delete(r.checks, c.cfg.ID)
}

// runChange applies a new configuration to a known check, keeping its state. An
// attempt in flight finishes with the old probe. With a new timing, the pending
// attempt is planned again from the end of the last one.
func (r *Runner) runChange(c *runCheck, ck Check) {
	old := c.cfg
	if ck.RS != old.RS {
		r.runDetach(c)
		c.cfg.RS = ck.RS
		r.runAttach(c)
	}
	c.cfg = ck
	if ck.Timing == old.Timing || !c.start.queued() || c.attempts == 0 {
		return
	}
	delay := ck.Timing.DelayLoop.D()
	if c.retries > 0 {
		delay = ck.Timing.DelayBeforeRetry.D()
	}
	r.starts.set(&c.start, c.lastEnd.Add(delay))
}

// Stop stops every check and cancels the attempts in flight, waiting up to Grace for
// their probes to return, and for OnTransition to return if it is running. Queued
// transitions are dropped. A stopped runner stays stopped.
func (r *Runner) Stop() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.stopped = true
	if r.timer != nil {
		r.timer.Stop()
	}
	r.cancel()
	for _, c := range r.checks {
		if c.cur != nil {
			c.cur.cancel() // the attempts of an asyncProbe do not watch r.ctx
		}
	}
	var idle chan struct{}
	if r.stats.InFlight > 0 {
		idle = make(chan struct{})
		r.idle = idle
	}
	r.pending = nil
	r.mu.Unlock()
	close(r.quit)
	if idle != nil {
		expired := make(chan struct{})
		t := r.clock.AfterFunc(r.grace, func() { close(expired) })
		select {
		case <-idle:
			t.Stop()
		case <-expired:
		}
	}
	<-r.delivered
}

// Snapshot returns the state of every check and real server, and the counters.
func (r *Runner) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := Snapshot{
		Checks:      make([]CheckStatus, 0, len(r.checks)),
		RealServers: make([]RealServerStatus, 0, len(r.servers)),
	}
	snap.Stats = r.stats
	snap.Stats.Checks, snap.Stats.RealServers = len(r.checks), len(r.servers)
	for _, id := range slices.Sorted(maps.Keys(r.checks)) {
		c := r.checks[id]
		st := CheckStatus{
			ID: id, RS: c.cfg.RS, Up: c.up, Decided: c.decided, InFlight: c.cur != nil,
			LastResult: c.last, LastStart: c.lastStart,
			ConsecutiveFailures: c.failures, Retries: c.retries, Attempts: c.attempts,
		}
		if c.start.queued() {
			st.NextStart = c.start.at
		}
		snap.Checks = append(snap.Checks, st)
	}
	for _, key := range slices.Sorted(maps.Keys(r.servers)) {
		s := r.servers[key]
		snap.RealServers = append(snap.RealServers, RealServerStatus{
			RS: key, Up: s.up(), Weight: runCopyInt(s.weight), Checks: s.checks, Down: s.down,
		})
	}
	return snap
}

// Stats returns the counters, cheaper than a whole Snapshot.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	st.Checks, st.RealServers = len(r.checks), len(r.servers)
	return st
}

// runEmit queues the current state of s as a transition.
func (r *Runner) runEmit(s *runServer, c *runCheck, reason string, now time.Time) {
	t := Transition{RS: s.key, Up: s.up(), Weight: runCopyInt(s.weight), Reason: reason, At: now}
	if c != nil {
		t.Check, t.Result = c.cfg.ID, c.last
	}
	r.stats.Transitions++
	if r.onTransition == nil {
		return
	}
	r.pending = append(r.pending, t)
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// runDeliver hands the queued transitions to OnTransition until Stop.
func (r *Runner) runDeliver() {
	defer close(r.delivered)
	for {
		select {
		case <-r.quit:
			return
		case <-r.kick:
		}
		r.mu.Lock()
		batch := r.pending
		r.pending = nil
		r.mu.Unlock()
		for _, t := range batch {
			select {
			case <-r.quit:
				return
			default:
			}
			r.onTransition(t)
		}
	}
}

func runCopyInt(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
