package vm_test

import (
	"testing"
	"time"
)

// TestVMIPVSReconcile is the entry point of the real-kernel tests of package ipvs in
// tests/vm/ipvsguest: it boots the VM once and runs them all there, with ipvsadm copied
// in to read the table independently (see runGuestSuite).
func TestVMIPVSReconcile(t *testing.T) {
	runGuestSuite(t, "./tests/vm/ipvsguest", "TestIPVSProbeInVM", 8*time.Minute, 10*time.Minute)
}
