//go:build vmguest

package vmlab

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Sample is one client request: when it started and ended, the name it got, or its
// error.
type Sample struct {
	Start, End time.Time
	Name       string
	Err        error
}

// Loop is a client sending requests one after another until stopped (3 minutes at
// most).
type Loop struct {
	url  string
	quit chan struct{}
	done chan struct{}
	mu   sync.Mutex
	got  []Sample
}

// StartLoop starts a loop of GET url with c, pause apart (0: none).
func StartLoop(c *http.Client, url string, pause time.Duration) *Loop {
	l := &Loop{url: url, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			if pause > 0 {
				select {
				case <-l.quit:
					return
				case <-time.After(pause):
				}
			} else {
				select {
				case <-l.quit:
					return
				default:
				}
			}
			s := Sample{Start: time.Now()}
			s.Name, s.Err = Get(c, url)
			s.End = time.Now()
			l.mu.Lock()
			l.got = append(l.got, s)
			l.mu.Unlock()
		}
	}()
	return l
}

// CountSince returns the number of requests started at or after from and completed.
func (l *Loop) CountSince(from time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.got {
		if !s.Start.Before(from) {
			n++
		}
	}
	return n
}

// WaitCount waits until n requests started at or after from have completed, failing
// the test after timeout.
func (l *Loop) WaitCount(t testing.TB, from time.Time, n int, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, fmt.Sprintf("%d requests to %s", n, l.url), func() (bool, string) {
		c := l.CountSince(from)
		return c >= n, fmt.Sprintf("%d done", c)
	})
}

// Samples returns the samples so far; the loop goes on.
func (l *Loop) Samples() []Sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// Stop ends the loop and returns its samples; it may be called more than once.
func (l *Loop) Stop() []Sample {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	<-l.done
	return l.Samples()
}

// Failures returns the failed samples started in [from, to) (to zero: no end), and the
// number of samples started then.
func Failures(ss []Sample, from, to time.Time) (failed []Sample, total int) {
	return FailuresIf(ss, func(s Sample) bool {
		return !s.Start.Before(from) && (to.IsZero() || s.Start.Before(to))
	})
}

// FailuresIf returns the failed samples among those that match, and the number that
// match.
func FailuresIf(ss []Sample, match func(Sample) bool) (failed []Sample, total int) {
	for _, s := range ss {
		if !match(s) {
			continue
		}
		total++
		if s.Err != nil {
			failed = append(failed, s)
		}
	}
	return failed, total
}

// Describe renders samples one a line: start relative to since, duration and error.
func Describe(ss []Sample, since time.Time) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "\n  +%v (%v): %v", s.Start.Sub(since).Round(time.Millisecond), s.End.Sub(s.Start).Round(time.Millisecond), s.Err)
	}
	return b.String()
}
