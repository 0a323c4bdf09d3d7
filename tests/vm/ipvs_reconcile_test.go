package vm_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gokeepalived/tests/vm"
)

// TestVMIPVSReconcile is the entry point of the real-kernel tests of package ipvs in
// tests/vm/ipvsguest: it builds them (tag vmguest), boots the VM once and runs them all
// there, with ipvsadm copied in to read the table independently. GKA_VM_RUN, if set, is
// passed to the guest binary as -test.run. Like TestVMSmoke it never skips.
func TestVMIPVSReconcile(t *testing.T) {
	ctx := t.Context()
	if err := vm.Setup(ctx); err != nil {
		t.Fatalf("%v\n(as root, run tests/vm/setup.sh)", err)
	}
	bin, err := vm.BuildTest(ctx, "./tests/vm/ipvsguest", t.TempDir(), "vmguest")
	if err != nil {
		t.Fatal(err)
	}
	ipvsadm, err := exec.LookPath("ipvsadm")
	if err != nil {
		t.Fatalf("%v (tests/vm/setup.sh installs ipvsadm)", err)
	}
	files, err := vm.BinaryWithLibs(ipvsadm, "/usr/sbin/ipvsadm")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-test.v", "-test.timeout=8m"}
	run := os.Getenv("GKA_VM_RUN")
	if run != "" {
		args = append(args, "-test.run="+run)
	}
	res, err := vm.Run(ctx, vm.Config{Binary: bin, Args: args, Files: files, Timeout: 10 * time.Minute})
	t.Logf("guest console:\n%s", res.Output)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot to test start %v, until guest exit %v", res.Boot.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond))
	if res.ExitCode != 0 {
		t.Fatalf("guest tests failed with exit code %d (console above)", res.ExitCode)
	}
	if !strings.Contains(res.Output, "--- PASS: ") || strings.Contains(res.Output, "no tests to run") {
		t.Fatalf("no guest test ran (GKA_VM_RUN=%q)", run)
	}
	if run == "" && !strings.Contains(res.Output, "--- PASS: TestIPVSProbeInVM ") {
		t.Fatal("the guest's IPVS probe test did not pass")
	}
}
