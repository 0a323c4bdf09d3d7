package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// lan simulates routers running the pure state machine on one link with a virtual clock:
// every advert reaches every other live router after latency.
type lan struct {
	t       *testing.T
	now     time.Time
	latency time.Duration
	routers []*simRouter
	pending []delivery
}

type simRouter struct {
	m     Machine
	alive bool
}

type delivery struct {
	at   time.Time
	from int
	ev   Event
}

func newLAN(t *testing.T, prios ...uint8) *lan {
	l := &lan{t: t, now: t0, latency: time.Millisecond}
	for i, p := range prios {
		par := baseParams()
		par.Priority = p
		par.PrimaryAddr = netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})
		l.routers = append(l.routers, &simRouter{m: NewMachine(par)})
	}
	return l
}

func (l *lan) step(i int, ev Event) {
	r := l.routers[i]
	var acts []Action
	r.m, acts = r.m.Step(ev)
	for _, a := range acts {
		if a.Kind != ActSendAdvert {
			continue
		}
		for j := range l.routers {
			if j != i {
				l.pending = append(l.pending, delivery{at: ev.Now.Add(l.latency), from: j, ev: Event{
					Kind: EvAdvert, Advert: RxAdvert{Src: r.m.P.PrimaryAddr, Priority: a.Priority, Interval: r.m.P.AdvertInt}}})
			}
		}
	}
}

func (l *lan) boot(i int) {
	l.routers[i].alive = true
	l.step(i, Event{Kind: EvStart, Now: l.now})
}

// run advances the clock to until, processing deliveries and timers in time order, and
// fails the test if two live routers are ever MASTER at once for longer than the latency.
func (l *lan) run(until time.Time) {
	var dualSince time.Time
	for {
		next, who, isDelivery := time.Time{}, -1, -1
		for i, r := range l.routers {
			if d := r.m.NextDeadline(); r.alive && !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next, who = d, i
			}
		}
		for k, d := range l.pending {
			if next.IsZero() || d.at.Before(next) {
				next, isDelivery = d.at, k
			}
		}
		if next.IsZero() || next.After(until) {
			l.now = until
			return
		}
		l.now = next
		if isDelivery >= 0 {
			d := l.pending[isDelivery]
			l.pending = append(l.pending[:isDelivery], l.pending[isDelivery+1:]...)
			if l.routers[d.from].alive {
				d.ev.Now = l.now
				l.step(d.from, d.ev)
			}
		} else {
			l.step(who, Event{Kind: EvTimer, Now: l.now})
		}
		if l.masters() > 1 {
			if dualSince.IsZero() {
				dualSince = l.now
			} else if l.now.Sub(dualSince) > 2*l.latency {
				l.t.Fatalf("two masters since %v", dualSince.Sub(t0))
			}
		} else {
			dualSince = time.Time{}
		}
	}
}

func (l *lan) masters() int {
	n := 0
	for _, r := range l.routers {
		if r.alive && r.m.State == StateMaster {
			n++
		}
	}
	return n
}

func (l *lan) master() int {
	for i, r := range l.routers {
		if r.alive && r.m.State == StateMaster {
			return i
		}
	}
	return -1
}

func (l *lan) wantMaster(i int) {
	l.t.Helper()
	if got := l.master(); got != i || l.masters() != 1 {
		l.t.Fatalf("at %v master is %d (%d masters), want %d", l.now.Sub(t0), got, l.masters(), i)
	}
}

// TestSimulatedCluster runs the seed scenario's three directors (priorities 150, 100, 50)
// through election, crash, graceful stop and return, on the pure state machine alone.
func TestSimulatedCluster(t *testing.T) {
	t.Run("startup elects the highest priority", func(t *testing.T) {
		l := newLAN(t, 150, 100, 50)
		for i := range l.routers {
			l.boot(i)
		}
		l.run(t0.Add(10 * time.Second))
		l.wantMaster(0)
	})
	t.Run("crash of the master: the next takes over after Master_Down_Interval", func(t *testing.T) {
		l := newLAN(t, 150, 100, 50)
		for i := range l.routers {
			l.boot(i)
		}
		l.run(t0.Add(10 * time.Second))
		lastAdvert := l.routers[0].m.AdvertAt.Add(-time.Second)
		l.routers[0].alive = false // SIGKILL: no priority-0 advert
		l.run(lastAdvert.Add(3*time.Second + skew2(100) - time.Millisecond))
		if l.masters() != 0 {
			t.Fatalf("master before Master_Down_Interval: %d", l.master())
		}
		l.run(lastAdvert.Add(3*time.Second + skew2(100) + 2*time.Millisecond))
		l.wantMaster(1)
	})
	t.Run("graceful stop: takeover after the skew only", func(t *testing.T) {
		l := newLAN(t, 150, 100, 50)
		for i := range l.routers {
			l.boot(i)
		}
		l.run(t0.Add(10 * time.Second))
		stopAt := l.now
		l.step(0, Event{Kind: EvShutdown, Now: l.now})
		l.routers[0].alive = false
		l.run(stopAt.Add(l.latency + skew2(100) + time.Millisecond))
		l.wantMaster(1)
	})
	t.Run("the old master returns and preempts", func(t *testing.T) {
		l := newLAN(t, 150, 100, 50)
		for i := range l.routers {
			l.boot(i)
		}
		l.run(t0.Add(10 * time.Second))
		l.routers[0].alive = false
		l.run(t0.Add(20 * time.Second))
		l.wantMaster(1)
		l.routers[0].m = NewMachine(l.routers[0].m.P)
		l.boot(0)
		l.run(t0.Add(30 * time.Second))
		l.wantMaster(0)
	})
	t.Run("with nopreempt the returning router stays backup", func(t *testing.T) {
		l := newLAN(t, 150, 100, 50)
		for _, r := range l.routers {
			r.m.P.Preempt = false
		}
		for i := range l.routers {
			l.boot(i)
		}
		l.run(t0.Add(10 * time.Second))
		l.routers[0].alive = false
		l.run(t0.Add(20 * time.Second))
		l.routers[0].m = NewMachine(l.routers[0].m.P)
		l.boot(0)
		l.run(t0.Add(40 * time.Second))
		l.wantMaster(1)
	})
	t.Run("equal priorities: the highest address wins", func(t *testing.T) {
		l := newLAN(t, 100, 100, 100)
		for i := range l.routers {
			l.boot(i)
		}
		l.run(t0.Add(10 * time.Second))
		l.wantMaster(2)
	})
}
