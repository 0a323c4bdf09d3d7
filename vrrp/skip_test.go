package vrrp

import (
	"os"
	"testing"
)

// skipUnlessCI skips a test that needs what this machine lacks (root, a user), but fails
// it in CI (CI=true, root, everything installed): a test must not pass in CI by not
// running.
func skipUnlessCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
