package ipvs

import (
	"errors"
	"os"
	"testing"
)

// TestProbe runs on the host (the VM tests run it in a kernel with IPVS): the probe must
// agree with /proc/net/ip_vs. On the hosts that run the suite, whose kernels have no
// IPVS, this checks that the netlink half of the probe says "absent" too, with the
// error that tells the operator what to do.
func TestProbe(t *testing.T) {
	_, statErr := os.Stat(procIPVS)
	err := Probe()
	if present := statErr == nil; present != (err == nil) {
		t.Fatalf("Probe() = %v, but %s exists = %v", err, procIPVS, present)
	}
	if err != nil && !errors.Is(err, ErrNoIPVS) {
		t.Fatalf("Probe() = %v, want ErrNoIPVS", err)
	}
	t.Logf("IPVS present: %v (%v)", err == nil, err)
}

// TestNewMobyRefuses checks that Moby will not start on a kernel without IPVS, where
// moby/ipvs would report success for every call. Where IPVS is present it only opens and
// closes a handle: no test writes to a real table outside the VM.
func TestNewMobyRefuses(t *testing.T) {
	m, err := NewMoby(0)
	if Probe() == nil {
		if err != nil {
			t.Fatalf("NewMoby with IPVS present: %v", err)
		}
		m.Close()
		t.Log("this kernel has IPVS: NewMoby opened a handle, nothing to refuse")
		return
	}
	if m != nil || !errors.Is(err, ErrNoIPVS) {
		t.Fatalf("NewMoby without IPVS = %v, %v; want nil, ErrNoIPVS", m, err)
	}
	t.Log(err)
}
