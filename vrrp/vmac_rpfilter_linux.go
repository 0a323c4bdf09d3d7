package vrrp

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The kernel applies max(conf/all/rp_filter, conf/IF/rp_filter). A macvlan receives
// the adverts from sources its routes do not lead to, so it needs rp_filter 0, which
// a non-zero all/rp_filter (1 on many distributions) overrides. Like keepalived, the
// first macvlan moves the setting from "all" to each interface: every interface (and
// "default", for the ones created later) gets at least the value "all" had, then "all"
// becomes 0, so nothing changes for them; the last macvlan puts everything back.

// rpFilterSave is what lowerRPFilter changed, for restoreRPFilter.
type rpFilterSave struct {
	all    string            // all/rp_filter before
	def    string            // default/rp_filter before; "" when left alone
	ifaces map[string]string // interfaces raised to all's value, with their value before
}

// lowerRPFilter moves a non-zero all/rp_filter to the interfaces (see above); nil
// when "all" is already 0 and nothing was changed.
func (m *NetlinkVMACs) lowerRPFilter() (*rpFilterSave, error) {
	allVal, err := m.readSysctl("all", "rp_filter")
	if err != nil {
		return nil, err
	}
	all, err := strconv.Atoi(allVal)
	if err != nil || all == 0 {
		return nil, err
	}
	save := &rpFilterSave{all: allVal, ifaces: map[string]string{}}
	var names []string
	if err := m.inNS(func() error {
		entries, err := os.ReadDir("/proc/sys/net/ipv4/conf")
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	for _, name := range names {
		if name == "all" {
			continue
		}
		val, err := m.readSysctl(name, "rp_filter")
		if err != nil {
			continue // gone meanwhile
		}
		if n, err := strconv.Atoi(val); err != nil || n >= all {
			continue
		}
		if err := m.setSysctls(name, [][2]string{{"rp_filter", allVal}}); err != nil {
			return save, err
		}
		if name == "default" {
			save.def = val
		} else {
			save.ifaces[name] = val
		}
	}
	if err := m.setSysctls("all", [][2]string{{"rp_filter", "0"}}); err != nil {
		return save, err
	}
	return save, nil
}

// restoreRPFilter undoes lowerRPFilter where nobody changed the values since.
func (m *NetlinkVMACs) restoreRPFilter(save *rpFilterSave) error {
	var errs []string
	put := func(ifname, want, was string) {
		if cur, err := m.readSysctl(ifname, "rp_filter"); err != nil || cur != want {
			return // gone, or changed by someone else: theirs now
		}
		if err := m.setSysctls(ifname, [][2]string{{"rp_filter", was}}); err != nil {
			errs = append(errs, err.Error())
		}
	}
	put("all", "0", save.all)
	if save.def != "" {
		put("default", save.all, save.def)
	}
	for name, was := range save.ifaces {
		put(name, save.all, was)
	}
	if len(errs) > 0 {
		return fmt.Errorf("restore rp_filter: %s", strings.Join(errs, "; "))
	}
	return nil
}
