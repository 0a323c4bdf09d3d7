package vm_test

import (
	"strings"
	"testing"
	"time"

	"gokeepalived/tests/vm"
)

// TestVMSmoke is the only entry point of the guest tests in tests/vm/guest: it boots the
// VM once and runs them all there (see runGuestSuite).
func TestVMSmoke(t *testing.T) {
	runGuestSuite(t, "./tests/vm/guest", "TestIPVSPresent", 3*time.Minute, 5*time.Minute)
}

// TestVMExitCode checks that the guest binary's arguments, environment and exit code make
// the round trip, using busybox as the binary.
func TestVMExitCode(t *testing.T) {
	if err := vm.Setup(t.Context()); err != nil {
		t.Fatalf("%v\n(as root, run tests/vm/setup.sh)", err)
	}
	res, err := vm.Run(t.Context(), vm.Config{
		Binary: "/bin/busybox",
		Args:   []string{"sh", "-c", `echo "in guest: $GKA_IN_VM $X '$1'"; exit 3`, "sh", "it's"},
		Env:    []string{"X=a b"},
		Memory: "256M",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 || !strings.Contains(res.Output, "in guest: 1 a b 'it's'\n") {
		t.Errorf("exit code %d, console:\n%s", res.ExitCode, res.Output)
	}
}

// TestVMTimeout checks that a guest that never reports an exit code is an error quoting
// the console, not a hang.
func TestVMTimeout(t *testing.T) {
	if err := vm.Setup(t.Context()); err != nil {
		t.Fatalf("%v\n(as root, run tests/vm/setup.sh)", err)
	}
	start := time.Now()
	res, err := vm.Run(t.Context(), vm.Config{Binary: "/bin/busybox", Args: []string{"true"}, Timeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "no exit code") || !strings.Contains(err.Error(), "deadline exceeded") || res.ExitCode != -1 {
		t.Fatalf("Run with a 2s timeout: %+v, %v", res, err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Run with a 2s timeout took %v", d)
	}
	t.Log(err)
}
