package guest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ipvsPresent reports whether the running kernel has IPVS: /proc/net/ip_vs exists, or the
// generic netlink family "IPVS" resolves. moby/ipvs cannot answer this: without IPVS in the
// kernel its calls report success (moby/ipvs#27). An error means the answer is unknown.
// Asking for the family may make a kernel that can load modules load ip_vs.
func ipvsPresent() (bool, error) {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		return true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	_, err := netlink.GenlFamilyGet("IPVS")
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	default:
		return false, fmt.Errorf("generic netlink family IPVS: %w", err)
	}
}

// TestIPVSProbe runs on the host (and in the VM): the probe must agree with
// /proc/net/ip_vs. On the hosts that run the suite, whose kernels have no IPVS, this checks
// that the netlink half of the probe says "absent" too.
func TestIPVSProbe(t *testing.T) {
	_, statErr := os.Stat("/proc/net/ip_vs")
	got, err := ipvsPresent()
	if err != nil {
		t.Fatal(err)
	}
	if want := statErr == nil; got != want {
		t.Fatalf("ipvsPresent() = %v, but /proc/net/ip_vs exists = %v", got, want)
	}
	t.Logf("IPVS present: %v", got)
}
