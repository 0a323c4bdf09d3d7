package ipvs

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// concurrentFake is a Fake that says it takes n calls at once, and records how many
// writes were in flight together at most.
type concurrentFake struct {
	*Fake
	n        int
	inFlight atomic.Int32
	most     atomic.Int32
}

func (c *concurrentFake) Concurrency() int { return c.n }

// slow makes each service write wait, so that the workers overlap.
func (c *concurrentFake) slow(Call) error {
	now := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for {
		m := c.most.Load()
		if now <= m || c.most.CompareAndSwap(m, now) {
			break
		}
	}
	time.Sleep(200 * time.Microsecond)
	return nil
}

// TestReconcileConcurrent: a Concurrent kernel is written several services at a time,
// and the outcome is the sequential one: the same table, the same Changes in plan
// order (errors included), the same ownership after deletions.
func TestReconcileConcurrent(t *testing.T) {
	seq, par := &Fake{}, &concurrentFake{Fake: &Fake{}, n: 4}
	par.SetHook(par.slow)
	specs := bigSpecs(40, 5)
	chSeq := mustReconcile(t, seq, specs, nil)
	chPar := mustReconcile(t, par, specs, nil)
	if seq.Dump() != par.Dump() {
		t.Fatalf("tables differ:\nsequential\n%s\nconcurrent\n%s", seq.Dump(), par.Dump())
	}
	if !slices.EqualFunc(chSeq.Ops, chPar.Ops, func(a, b Op) bool { return a.String() == b.String() }) {
		t.Errorf("Changes.Ops differ:\n%s\n%s", chSeq.String(), chPar.String())
	}
	if m := par.most.Load(); m < 2 || m > 4 {
		t.Errorf("at most %d writes in flight together, want 2..4", m)
	}

	// A pass that drops 10 services (deleted, no longer owned) and fails one add.
	boom := errors.New("boom")
	bad := bigSpecs(41, 5)[40].Service.Key()
	fail := func(k *Fake) {
		k.SetHook(func(c Call) error {
			if c.Op == "add-service" && c.Service == bad {
				return boom
			}
			return nil
		})
	}
	fail(seq)
	fail(par.Fake)
	next := bigSpecs(41, 5)[10:]
	chSeq, errSeq := Reconcile(seq, next, chSeq.Owned)
	chPar, errPar := Reconcile(par, next, chPar.Owned)
	if !errors.Is(errSeq, boom) || !errors.Is(errPar, boom) || len(chPar.Errors) != 1 {
		t.Fatalf("errors: sequential %v, concurrent %v (%d)", errSeq, errPar, len(chPar.Errors))
	}
	if seq.Dump() != par.Dump() || chSeq.String() != chPar.String() {
		t.Errorf("second pass differs:\n%s\n%s", chSeq.String(), chPar.String())
	}
	if len(chPar.Owned) != 31 || chPar.Owned.Has(bigSpecs(1, 5)[0].Service.Key()) || !chPar.Owned.Has(bad) {
		t.Errorf("owned after the pass: %d services", len(chPar.Owned))
	}
}
