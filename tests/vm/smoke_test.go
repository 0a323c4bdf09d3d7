package vm_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gokeepalived/tests/vm"
)

// TestVMSmoke is the only entry point of the guest tests in tests/vm/guest: it builds them
// (tag vmguest), boots the VM once and runs them all there. GKA_VM_RUN, if set, is passed
// to the guest binary as -test.run. It never skips: a machine without qemu or the kernel
// gets them from tests/vm/setup.sh, and the test fails if that does not work.
func TestVMSmoke(t *testing.T) {
	ctx := t.Context()
	begin := time.Now()
	if err := vm.Setup(ctx); err != nil {
		t.Fatalf("%v\n(as root, run tests/vm/setup.sh)", err)
	}
	setup := time.Since(begin)

	bin, err := vm.BuildTest(ctx, "./tests/vm/guest", t.TempDir(), "vmguest")
	if err != nil {
		t.Fatal(err)
	}
	build := time.Since(begin) - setup
	ipvsadm, err := exec.LookPath("ipvsadm")
	if err != nil {
		t.Fatalf("%v (tests/vm/setup.sh installs ipvsadm)", err)
	}
	files, err := vm.BinaryWithLibs(ipvsadm, "/usr/sbin/ipvsadm")
	if err != nil {
		t.Fatal(err)
	}

	args := []string{"-test.v", "-test.timeout=3m"}
	run := os.Getenv("GKA_VM_RUN")
	if run != "" {
		args = append(args, "-test.run="+run)
	}
	res, err := vm.Run(ctx, vm.Config{Binary: bin, Args: args, Files: files, Timeout: 5 * time.Minute})
	t.Logf("guest console:\n%s", res.Output)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("timings: setup check %v, guest build %v, boot to test start %v, until guest exit %v, whole test %v",
		setup.Round(time.Millisecond), build.Round(time.Millisecond), res.Boot.Round(time.Millisecond),
		res.Elapsed.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	if res.ExitCode != 0 {
		t.Fatalf("guest tests failed with exit code %d (console above)", res.ExitCode)
	}
	if !strings.Contains(res.Output, "--- PASS: ") || strings.Contains(res.Output, "no tests to run") {
		t.Fatalf("no guest test ran (GKA_VM_RUN=%q)", run)
	}
	if run == "" && !strings.Contains(res.Output, "--- PASS: TestIPVSPresent ") {
		t.Fatal("the guest's IPVS probe test did not pass")
	}
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
