package ipvs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// procIPVS exists in every network namespace of a kernel with IPVS loaded.
const procIPVS = "/proc/net/ip_vs"

// Probe reports whether the running kernel has IPVS: nil if /proc/net/ip_vs exists or
// the generic netlink family "IPVS" resolves, an error matching [ErrNoIPVS] if neither,
// and another error if the answer is unknown. moby/ipvs cannot tell: without IPVS its
// calls report success (moby/ipvs#27). Asking for the family may make a kernel that can
// load modules load ip_vs. The netlink query runs under [DefaultCallTimeout].
func Probe() error {
	if _, err := os.Stat(procIPVS); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ipvs probe: %w", err)
	}
	err := within(DefaultCallTimeout, func() error {
		_, err := netlink.GenlFamilyGet("IPVS")
		return err
	}, func() {})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT):
		return ErrNoIPVS
	default:
		return fmt.Errorf("ipvs probe: generic netlink family IPVS: %w", err)
	}
}
