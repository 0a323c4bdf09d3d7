package check

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// errStillRunning fails the attempts of a check whose probe has not returned from an
// abandoned call.
var errStillRunning = errors.New("the probe's previous call, abandoned past its deadline, is still running")

// schedFire is the timer's call: it runs what is due.
func (r *Runner) schedFire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.timerAt = time.Time{}
	r.firedAt = r.clock.Now()
	r.schedDispatch(r.firedAt)
}

// schedDispatch abandons the attempts past their deadline and grace, starts the due
// attempts while slots are free, and arms the timer for the next event; now is the
// caller's recent reading of the clock.
func (r *Runner) schedDispatch(now time.Time) {
	for e := r.deadlines.peek(); e != nil && !e.at.After(now); e = r.deadlines.peek() {
		r.runAbandon(e.owner, now)
	}
	for r.stats.InFlight < r.maxInFlight {
		e := r.starts.peek()
		if e == nil || e.at.After(now) {
			break
		}
		r.starts.remove(e)
		r.runStart(e.owner, e.at, now)
	}
	r.schedArm(now)
}

// schedArm makes the timer fire by the next event: the earliest deadline, or the
// earliest start when a slot is free (a full runner dispatches when a slot frees),
// but not within Slack of its last firing.
func (r *Runner) schedArm(now time.Time) {
	var next time.Time
	if e := r.deadlines.peek(); e != nil {
		next = e.at
	}
	if e := r.starts.peek(); e != nil && r.stats.InFlight < r.maxInFlight && (next.IsZero() || e.at.Before(next)) {
		next = e.at
	}
	if earliest := r.firedAt.Add(r.slack); r.slack > 0 && !next.IsZero() && next.Before(earliest) {
		next = earliest
	}
	if next.IsZero() || (!r.timerAt.IsZero() && !next.Before(r.timerAt)) {
		return
	}
	r.timerAt = next
	if r.timer == nil {
		r.timer = r.clock.AfterFunc(next.Sub(now), r.schedFire)
		return
	}
	r.timer.Reset(next.Sub(now))
}

// runStart starts an attempt of c planned for planned, unless its probe is still
// stuck in an abandoned call: then the attempt fails at once.
func (r *Runner) runStart(c *runCheck, planned, now time.Time) {
	r.stats.Due++
	if c.hung != nil {
		r.stats.Skipped++
		r.runVerdict(c, Result{Err: errStillRunning}, now, now)
		return
	}
	timeout := c.cfg.Timing.ConnectTimeout.D()
	a := &runAttempt{check: c, id: c.cfg.ID, probe: c.cfg.Probe, planned: planned, dispatched: now}
	c.cur = a
	r.stats.InFlight++
	r.stats.Running++
	r.stats.Started++
	if ap, ok := a.probe.(asyncProbe); ok {
		// A check that is retrying or down is about to change its server's health:
		// when the probe's queue is long, its attempt goes first.
		urgent := c.retries > 0 || !c.up
		a.cancel = ap.startAsync(timeout, urgent, func(res Result) { r.runAsyncDone(a, res) })
		return
	}
	// The attempt's deadline counts from its goroutine's start (runAttempt): a
	// goroutine that waits for a CPU delays the check instead of failing it.
	a.timeout = timeout
	a.ctx, a.cancel = context.WithCancel(r.ctx)
	r.deadlines.set(&c.deadline, now.Add(timeout+r.grace))
	r.spawn(func() { r.runAttempt(a) })
}

// asyncProbe is a Probe that runs without a goroutine of its own (TCP_CHECK's
// connections are made by one event loop). The runner trusts it to end every
// attempt within timeout of its start, so it sets no deadline of its own for it:
// when the machine is overloaded, its attempts start late instead of failing.
type asyncProbe interface {
	Probe
	// startAsync starts an attempt whose Result done receives once, from another
	// goroutine; an urgent attempt goes ahead of the others waiting for the probe's
	// resources; cancel ends the attempt early.
	startAsync(timeout time.Duration, urgent bool, done func(Result)) (cancel func())
}

// runAsyncDone reports the result of an asyncProbe's attempt.
func (r *Runner) runAsyncDone(a *runAttempt, res Result) {
	end := r.clock.Now()
	r.runFinish(a, res, false, end.Add(-res.Latency), end)
}

// runAttempt calls the probe in the attempt's goroutine and reports its result.
func (r *Runner) runAttempt(a *runAttempt) {
	begin := r.clock.Now()
	a.begun.Store(begin.UnixNano())
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	res, stack := runCall(ctx, a.probe)
	end := r.clock.Now()
	cancel()
	a.cancel()
	if res.Latency == 0 {
		res.Latency = end.Sub(begin)
	}
	if stack != nil {
		r.log.Error("health check probe panicked", "check", a.id, "err", res.Err, "stack", string(stack))
	}
	r.runFinish(a, res, stack != nil, begin, end)
}

// runCall calls p, turning a panic into a failed result; stack is the panic's
// stack, nil without one.
func runCall(ctx context.Context, p Probe) (res Result, stack []byte) {
	defer func() {
		if v := recover(); v != nil {
			res, stack = Result{Err: fmt.Errorf("probe panicked: %v", v)}, debug.Stack()
		}
	}()
	return p.Check(ctx), nil
}

// runFinish applies the result of an attempt whose probe returned.
func (r *Runner) runFinish(a *runAttempt, res Result, panicked bool, begin, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Running--
	if panicked {
		r.stats.Panics++
	}
	c := a.check
	if a.abandoned {
		if c.hung == a {
			c.hung = nil
		}
		return
	}
	r.stats.InFlight--
	if r.stopped {
		if r.stats.InFlight == 0 && r.idle != nil {
			close(r.idle)
			r.idle = nil
		}
		return
	}
	c.cur = nil
	r.deadlines.remove(&c.deadline)
	r.stats.Completed++
	r.stats.Slip.observe(begin.Sub(a.planned))
	if !c.removed {
		r.runVerdict(c, res, begin, end)
	}
	r.schedDispatch(end)
}

// abandonLogEvery limits the "ignored its deadline" warning.
const abandonLogEvery = 10 * time.Second

// runAbandon fails the attempt of c whose probe is past its deadline and grace counted
// from its goroutine's start, and frees its slot; the probe's call is left to end on
// its own. An attempt whose goroutine started late, or has not started, gets its time.
func (r *Runner) runAbandon(c *runCheck, now time.Time) {
	a := c.cur
	switch begun := a.begun.Load(); {
	case begun == 0:
		// The goroutine has not started: the machine is starved, the server is not
		// at fault. Look again a grace later.
		r.deadlines.set(&c.deadline, now.Add(r.grace))
		return
	case time.Unix(0, begun).Add(a.timeout + r.grace).After(now):
		// It started late: its deadline and grace count from its start.
		r.deadlines.set(&c.deadline, time.Unix(0, begun).Add(a.timeout+r.grace))
		return
	}
	r.deadlines.remove(&c.deadline)
	c.cur, c.hung = nil, a
	a.abandoned = true
	a.cancel()
	r.stats.InFlight--
	r.stats.Abandoned++
	r.stats.Slip.observe(a.dispatched.Sub(a.planned))
	timeout := c.cfg.Timing.ConnectTimeout.D()
	// Under overload many probes overrun at once: log one line per abandonLogEvery
	// with the count of the others (each is counted in Stats.Abandoned).
	if now.Sub(r.abandonLogAt) >= abandonLogEvery {
		r.log.Warn("health check probe ignored its deadline", "check", c.cfg.ID, "connect_timeout", timeout,
			"grace", r.grace, "others_since_last_log", r.abandonUnlogged)
		r.abandonLogAt, r.abandonUnlogged = now, 0
	} else {
		r.abandonUnlogged++
	}
	if !c.removed {
		err := fmt.Errorf("probe did not return within connect_timeout %v and a grace of %v", timeout, r.grace)
		r.runVerdict(c, Result{Latency: now.Sub(a.dispatched), Err: err}, a.dispatched, now)
	}
}

// runVerdict applies keepalived's rules to the result of an attempt of c that ended
// at end, plans the next attempt and reports a change of c's real server.
func (r *Runner) runVerdict(c *runCheck, res Result, begin, end time.Time) {
	t := c.cfg.Timing
	s := c.server
	wasUp, oldWeight := s.up(), s.weight
	c.last, c.lastStart, c.lastEnd = res, begin, end
	c.attempts++
	if !res.OK && errors.Is(res.Err, errNotRun) {
		r.stats.NotRun++
		r.starts.set(&c.start, end.Add(t.DelayLoop.D()))
		return
	}
	delay := t.DelayLoop.D()
	retried := c.retries
	if res.OK {
		c.failures, c.retries, c.decided = 0, 0, true
		if !c.up {
			c.up = true
			s.down--
		}
		if res.Weight != nil && (s.weight == nil || *s.weight != *res.Weight) {
			s.weight, s.weightFrom = runCopyInt(res.Weight), c.cfg.ID
		}
	} else {
		r.stats.Failed++
		c.failures++
		if (c.up || !c.decided) && c.retries < t.Retry {
			c.retries++
			delay = t.DelayBeforeRetry.D()
		} else {
			c.retries, c.decided = 0, true
			if c.up {
				c.up = false
				s.down++
			}
		}
	}
	r.starts.set(&c.start, end.Add(delay))

	weightChanged := s.weight != oldWeight
	switch {
	case s.up() != wasUp && !s.up():
		msg := fmt.Sprintf("check %s failed: %s", c.cfg.ID, runErrText(res.Err))
		if retried > 0 {
			msg = fmt.Sprintf("check %s failed after %d retries: %s", c.cfg.ID, retried, runErrText(res.Err))
		}
		r.runEmit(s, c, msg, end)
	case s.up() != wasUp && weightChanged:
		r.runEmit(s, c, fmt.Sprintf("check %s succeeded, weight %d", c.cfg.ID, *s.weight), end)
	case s.up() != wasUp:
		r.runEmit(s, c, fmt.Sprintf("check %s succeeded", c.cfg.ID), end)
	case weightChanged:
		r.runEmit(s, c, fmt.Sprintf("check %s set weight %d", c.cfg.ID, *s.weight), end)
	}
}

// runErrText describes why an attempt failed.
func runErrText(err error) string {
	if err == nil {
		return "no reason given"
	}
	return err.Error()
}
