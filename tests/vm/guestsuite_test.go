package vm_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gokeepalived/tests/vm"
)

// runGuestSuite builds the guest test package pkg (tag vmguest), boots the VM once with
// ipvsadm copied in and runs the package there with the guest-side -test.timeout
// guestTimeout, the whole VM bounded by vmTimeout. GKA_VM_RUN, if set, is passed to the
// guest binary as -test.run; without it the guest test mustPass has to pass. It never
// skips: a machine without qemu, the kernel or ipvsadm gets them from tests/vm/setup.sh,
// and the test fails if that does not work.
func runGuestSuite(t *testing.T, pkg, mustPass string, guestTimeout, vmTimeout time.Duration) {
	t.Helper()
	ctx := t.Context()
	begin := time.Now()
	if err := vm.Setup(ctx); err != nil {
		t.Fatalf("%v\n(as root, run tests/vm/setup.sh)", err)
	}
	setup := time.Since(begin)

	bin, err := vm.BuildTest(ctx, pkg, t.TempDir(), "vmguest")
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

	args := []string{"-test.v", "-test.timeout=" + guestTimeout.String()}
	run := os.Getenv("GKA_VM_RUN")
	if run != "" {
		args = append(args, "-test.run="+run)
	}
	res, err := vm.Run(ctx, vm.Config{Binary: bin, Args: args, Files: files, Timeout: vmTimeout})
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
	if run == "" && !strings.Contains(res.Output, "--- PASS: "+mustPass+" ") {
		t.Fatalf("the guest's %s did not pass", mustPass)
	}
}
