package vrrp

import (
	"fmt"
	"net"
	"net/netip"

	"gokeepalived/parser"
)

// The engine side of use_vmac: the macvlans are ensured before the sockets open and
// the leftover addresses are looked for (they live on the macvlan), removed when their
// instance goes away (reload) or the daemon stops, and the instance's adverts and
// announcements go out on the right interface.

// vmacSpec returns the macvlan an instance asks for; src is the instance's source
// address (an IPv6 instance's link-local goes on the macvlan).
func vmacSpec(c *parser.VRRPInstance, src netip.Addr) (VMACSpec, error) {
	mac, err := net.ParseMAC(c.VMAC.MAC)
	if err != nil {
		return VMACSpec{}, fmt.Errorf("use_vmac MAC %q: %w", c.VMAC.MAC, err)
	}
	spec := VMACSpec{Name: c.VMAC.Name, Parent: c.Interface, MAC: mac, IPv6: c.Family == 6}
	for _, v := range c.ExcludedVIPs {
		if v.Dev == c.VMAC.Name && v.Prefix.Addr().Is6() {
			spec.IPv6 = true
		}
	}
	if c.Family == 6 && src.IsLinkLocalUnicast() {
		spec.LinkLocal = src
	}
	return spec, nil
}

// advertIf is the interface of the instance's advert socket: its macvlan, unless it has
// none or vmac_xmit_base, as in keepalived.
func advertIf(c *parser.VRRPInstance) string {
	if c.VMAC != nil && !c.VMAC.XmitBase {
		return c.VMAC.Name
	}
	return c.Interface
}

// announceGroup is a set of addresses announced on one interface.
type announceGroup struct {
	ifname string
	addrs  []netip.Addr
}

// announceGroups sorts the addresses to announce by interface: those on the macvlan
// are announced from it (the virtual MAC is the sender), the others on the instance's
// interface.
func announceGroups(c *parser.VRRPInstance, vips []*parser.VIP) []announceGroup {
	var out []announceGroup
	for _, v := range vips {
		ifname := c.Interface
		if c.VMAC != nil && v.Dev == c.VMAC.Name {
			ifname = c.VMAC.Name
		}
		i := 0
		for i < len(out) && out[i].ifname != ifname {
			i++
		}
		if i == len(out) {
			out = append(out, announceGroup{ifname: ifname})
		}
		out[i].addrs = append(out[i].addrs, v.Prefix.Addr())
	}
	return out
}

// ensureVMACs makes the macvlans of the instances exist, before their sockets open and
// their leftover addresses are looked for. A failure is logged: the instance runs, its
// addresses cannot be added until a reload fixes it.
func (m *Manager) ensureVMACs(insts []*instance) {
	for _, in := range insts {
		if in.cfg.VMAC == nil {
			continue
		}
		if m.kernel.VMACs == nil {
			in.vmacFailed = true
			in.log.Error("use_vmac: no VMAC manager; the macvlan is not created", "vmac", in.cfg.VMAC.Name)
			continue
		}
		src := in.src
		if !src.IsValid() && in.family == FamilyIPv6 && m.kernel.PrimaryAddr != nil {
			src, _ = m.kernel.PrimaryAddr(in.cfg.Interface, in.family) // none: no address to copy
		}
		spec, err := vmacSpec(in.cfg, src)
		if err == nil {
			err = m.kernel.VMACs.Ensure(spec)
		}
		if err != nil {
			in.vmacFailed = true
			in.log.Error("cannot set up the VMAC interface; its addresses will not be added", "vmac", in.cfg.VMAC.Name, "err", err)
			continue
		}
		in.log.Info("VMAC interface ready", "vmac", spec.Name, "mac", spec.MAC.String(), "parent", spec.Parent)
	}
}

// deleteVMACs removes the macvlans of old that next (nil at stop) does not use.
func (m *Manager) deleteVMACs(old, next *parser.Config) {
	if m.kernel.VMACs == nil || old == nil {
		return
	}
	keep := map[string]bool{}
	if next != nil {
		for _, c := range next.Instances {
			if c.VMAC != nil {
				keep[c.VMAC.Name] = true
			}
		}
	}
	for _, c := range old.Instances {
		if c.VMAC == nil || keep[c.VMAC.Name] {
			continue
		}
		if err := m.kernel.VMACs.Delete(c.VMAC.Name); err != nil {
			m.log.Error("cannot remove the VMAC interface", "instance", c.Name, "vmac", c.VMAC.Name, "err", err)
			continue
		}
		m.log.Info("VMAC interface removed", "instance", c.Name, "vmac", c.VMAC.Name)
	}
}

// addVIP installs one of the instance's addresses, unless it belongs on a macvlan that
// could not be set up (an interface of that name may be someone else's).
func (in *instance) addVIP(v *parser.VIP) error {
	if in.vmacFailed && in.cfg.VMAC != nil && v.Dev == in.cfg.VMAC.Name {
		return fmt.Errorf("the VMAC interface %s could not be set up", v.Dev)
	}
	if err := in.kernel.Addrs.Add(v); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	return nil
}
