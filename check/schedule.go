package check

import (
	"math"
	"time"
)

// Clock is the runner's source of time. The system clock is used unless a test
// injects its own.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call made by Clock.AfterFunc.
type Timer interface {
	// Stop cancels the call; false if it already ran or was stopped.
	Stop() bool
	// Reset makes the call happen d from now, whether or not it already ran.
	Reset(d time.Duration) bool
}

// SystemClock is the Clock of the system's time.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// schedEntry is one pending event in a schedHeap, of its owner: the next attempt or
// the deadline of the attempt in flight of a check (the runner's heaps), the deadline
// of a connection (the TCP loop's).
type schedEntry[T any] struct {
	at    time.Time
	seq   uint64 // push order: entries due at the same time come out first in, first out
	index int    // position in the heap; -1 when not queued
	owner T
}

// queued reports whether the entry is in a heap.
func (e *schedEntry[T]) queued() bool { return e.index >= 0 }

// schedHeap is a binary min-heap of entries by time. It replaces container/heap to
// keep entries typed and their index in step.
type schedHeap[T any] struct {
	items []*schedEntry[T]
	seq   uint64
}

func (h *schedHeap[T]) less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return a.seq < b.seq
}

func (h *schedHeap[T]) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}

func (h *schedHeap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *schedHeap[T]) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

// set queues e at time at, or moves it there if it is queued already.
func (h *schedHeap[T]) set(e *schedEntry[T], at time.Time) {
	h.seq++
	e.at, e.seq = at, h.seq
	if e.queued() {
		h.up(e.index)
		h.down(e.index)
		return
	}
	e.index = len(h.items)
	h.items = append(h.items, e)
	h.up(e.index)
}

// remove takes e out of the heap if it is queued.
func (h *schedHeap[T]) remove(e *schedEntry[T]) {
	if !e.queued() {
		return
	}
	i, last := e.index, len(h.items)-1
	if i != last {
		h.swap(i, last)
	}
	h.items[last] = nil
	h.items = h.items[:last]
	e.index = -1
	if i != last {
		h.up(i)
		h.down(i)
	}
}

// peek returns the earliest entry, nil if the heap is empty.
func (h *schedHeap[T]) peek() *schedEntry[T] {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

// Histogram counts durations in buckets whose upper bounds double from 1µs to about
// 17 s, and a last bucket for anything longer.
type Histogram struct {
	Counts [schedBuckets + 1]uint64 // Counts[i]: durations ≤ Bound(i) and > Bound(i-1)
	Count  uint64
	Sum    time.Duration
}

// schedBuckets is the number of bounded buckets of a Histogram.
const schedBuckets = 25

// Bound returns the upper bound of bucket i; the last bucket has none (math.MaxInt64).
func (h *Histogram) Bound(i int) time.Duration {
	if i >= schedBuckets {
		return math.MaxInt64
	}
	return time.Microsecond << i
}

// observe adds d (negative counts as 0).
func (h *Histogram) observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < schedBuckets && d > h.Bound(i) {
		i++
	}
	h.Counts[i]++
	h.Count++
	h.Sum += d
}

// Sub returns the counts of h minus those of an earlier copy, prev: what was observed
// in between.
func (h Histogram) Sub(prev Histogram) Histogram {
	for i := range h.Counts {
		h.Counts[i] -= prev.Counts[i]
	}
	h.Count -= prev.Count
	h.Sum -= prev.Sum
	return h
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) by linear interpolation inside its
// bucket; 0 when empty. A quantile in the last bucket is reported as its lower bound.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	var seen float64
	for i, n := range h.Counts {
		if n == 0 || seen+float64(n) < rank {
			seen += float64(n)
			continue
		}
		var lo time.Duration
		if i > 0 {
			lo = h.Bound(i - 1)
		}
		if i == schedBuckets {
			return lo
		}
		frac := (rank - seen) / float64(n)
		return lo + time.Duration(frac*float64(h.Bound(i)-lo))
	}
	return h.Bound(schedBuckets - 1)
}
