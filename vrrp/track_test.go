package vrrp

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// trackRecorder collects the reports of a tracker under test.
type trackRecorder struct {
	mu  sync.Mutex
	all []TrackStatus
	// hook, when set before the tracker starts, runs inside report, on the tracker's
	// goroutine, before the status is recorded.
	hook func(TrackStatus)
}

func (r *trackRecorder) report(s TrackStatus) {
	if r.hook != nil {
		r.hook(s)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, s)
}

// last returns the latest report.
func (r *trackRecorder) last() TrackStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.all) == 0 {
		return TrackStatus{}
	}
	return r.all[len(r.all)-1]
}

// reports returns a copy of every report so far.
func (r *trackRecorder) reports() []TrackStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]TrackStatus(nil), r.all...)
}

// wait polls until the latest report satisfies cond, and returns it.
func (r *trackRecorder) wait(t *testing.T, timeout time.Duration, what string, cond func(TrackStatus) bool) TrackStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		n := len(r.all)
		var s TrackStatus
		if n > 0 {
			s = r.all[n-1]
		}
		r.mu.Unlock()
		if n > 0 && cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; reports: %+v", timeout, what, r.reports())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// trackRun runs a tracker's Run with rec until stop is called or the test ends. stop
// cancels Run's context and fails the test if Run does not return promptly.
func trackRun(t *testing.T, rec *trackRecorder, run func(context.Context, func(TrackStatus))) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, rec.report)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not return within 5s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// trackLogBuffer is a logger writing into a buffer safe for concurrent use.
type trackLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *trackLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *trackLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *trackLogBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
