//go:build vmguest

package vmlab

import (
	"testing"
	"time"
)

// WaitFor polls cond every 25 ms until it holds, failing the test after timeout with
// cond's last note; it returns how long it took.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, note := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s; last: %s", timeout, what, note)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
