package check

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestSchedHeap drives the heap with random sets and removals and checks that it
// yields its entries in time order, first in first out among equal times.
func TestSchedHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		var h schedHeap[int]
		entries := make([]*schedEntry[int], 64)
		for i := range entries {
			entries[i] = &schedEntry[int]{index: -1}
		}
		for range 500 {
			e := entries[rng.IntN(len(entries))]
			if rng.IntN(4) == 0 {
				h.remove(e)
			} else {
				h.set(e, schedT0.Add(time.Duration(rng.IntN(20))*time.Second))
			}
		}
		var want []*schedEntry[int]
		for _, e := range entries {
			if e.queued() {
				want = append(want, e)
			}
		}
		slices.SortFunc(want, func(a, b *schedEntry[int]) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		})
		for i, w := range want {
			e := h.peek()
			if e != w {
				t.Fatalf("round %d, entry %d: got %v/%d, want %v/%d", round, i, e.at, e.seq, w.at, w.seq)
			}
			h.remove(e)
			if e.queued() {
				t.Fatalf("round %d: a removed entry is still queued", round)
			}
		}
		if h.peek() != nil {
			t.Fatalf("round %d: entries left over", round)
		}
	}
}

// TestSchedHistogram checks the buckets, quantiles and differences of a Histogram.
func TestSchedHistogram(t *testing.T) {
	var h Histogram
	if q := h.Quantile(0.5); q != 0 {
		t.Errorf("empty p50 %v", q)
	}
	h.observe(-time.Second) // counts as 0
	h.observe(time.Microsecond)
	if h.Counts[0] != 2 {
		t.Errorf("bucket 0 has %d, want 2", h.Counts[0])
	}
	prev := h
	for range 100 {
		h.observe(3 * time.Millisecond) // in (2.048ms, 4.096ms]
	}
	h.observe(time.Hour)
	d := h.Sub(prev)
	if d.Count != 101 || d.Sum != 300*time.Millisecond+time.Hour || d.Counts[0] != 0 || d.Counts[schedBuckets] != 1 {
		t.Errorf("difference %+v", d)
	}
	lo, hi := d.Bound(11), d.Bound(12)
	if lo != 2048*time.Microsecond || hi != 4096*time.Microsecond {
		t.Fatalf("bounds %v %v", lo, hi)
	}
	if q := d.Quantile(0.5); q <= lo || q > hi {
		t.Errorf("p50 %v, want in (%v, %v]", q, lo, hi)
	}
	if q := d.Quantile(1); q != d.Bound(schedBuckets-1) {
		t.Errorf("p100 %v, want the last bucket's lower bound %v", q, d.Bound(schedBuckets-1))
	}
}
