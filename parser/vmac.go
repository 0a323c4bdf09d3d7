package parser

import (
	"fmt"
	"net"
	"strings"
)

// VMAC is use_vmac [NAME] [MAC]: the instance's addresses live on a macvlan interface
// (private mode) on top of its interface, with the VRRP virtual MAC address, so that a
// failover moves the addresses without changing their MAC.
type VMAC struct {
	// Name is the macvlan's name: the one given, else vmac_prefix "." VRID (vrrp.51).
	Name string `json:"name"`
	// MAC is the macvlan's address in canonical form: the one given, else the VRRP
	// virtual MAC 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6).
	MAC string `json:"mac"`
	// XmitBase is vmac_xmit_base: adverts are sent and received on the base interface;
	// the addresses and their gratuitous ARPs stay on the macvlan.
	XmitBase bool `json:"vmac_xmit_base,omitempty"`
	Pos      Pos  `json:"-"`

	defaultName bool // Name is the default, which another may be chosen instead
}

// VirtualMAC returns the VRRP virtual router MAC address of a VRID (RFC 5798 §7.3):
// 00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID for IPv6.
func VirtualMAC(family, vrid int) string {
	kind := 1
	if family == 6 {
		kind = 2
	}
	return fmt.Sprintf("00:00:5e:00:%02x:%02x", kind, vrid&0xff)
}

// VMACName returns keepalived's default macvlan name: prefix "." VRID, the prefix
// shortened when the whole would not fit in an interface name (15 characters).
func VMACName(prefix string, vrid int) string {
	suffix := fmt.Sprintf(".%d", vrid)
	if len(prefix)+len(suffix) > maxIfName {
		prefix = prefix[:maxIfName-len(suffix)]
	}
	return prefix + suffix
}

// maxIfName is the longest interface name the kernel accepts (IFNAMSIZ-1).
const maxIfName = 15

// ifNameProblem says why name cannot be an interface name (the kernel's rules), or "".
func ifNameProblem(name string) string {
	if len(name) > maxIfName {
		return fmt.Sprintf("is longer than %d characters", maxIfName)
	}
	return ifCharsProblem(name)
}

// ifCharsProblem is ifNameProblem without the length limit (a vmac_prefix is shortened
// to fit, as keepalived does).
func ifCharsProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case name == "." || name == "..":
		return "is not a valid interface name"
	case strings.ContainsAny(name, "/: \t\n\r\v\f"):
		return "contains '/', ':' or white space"
	}
	return ""
}

// parseVMACAddr reads the MAC argument of use_vmac: six bytes, a unicast address.
func parseVMACAddr(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a MAC address (like 00:00:5e:00:01:33)", s)
	}
	if hw[0]&1 != 0 {
		return "", fmt.Errorf("%s is a multicast MAC address", hw)
	}
	if hw.String() == "00:00:00:00:00:00" {
		return "", fmt.Errorf("%s is not a usable MAC address", hw)
	}
	return hw.String(), nil
}

// useVMAC handles "use_vmac [NAME] [MAC]" in a vrrp_instance. The name and the MAC may
// come in either order; what is left unset is resolved with the instance (resolveVMAC).
func useVMAC(c *ctx, s *Stmt, v *VRRPInstance) {
	if !c.want(s, 0, 2) {
		return
	}
	m := &VMAC{Pos: s.At()}
	for _, a := range s.Args[:min(len(s.Args), 2)] {
		val := a.Value()
		if strings.Count(val, ":") == 5 || strings.Count(val, "-") == 5 {
			mac, err := parseVMACAddr(val)
			if err != nil {
				c.errorf(a.At(), "(%s) use_vmac: %v; using the VRRP virtual MAC", v.Name, err)
				continue
			}
			m.MAC = mac
			continue
		}
		if p := ifNameProblem(val); p != "" {
			c.errorf(a.At(), "(%s) use_vmac: interface name '%s' %s; using the default name", v.Name, val, p)
			continue
		}
		if m.Name != "" {
			c.errorf(a.At(), "(%s) use_vmac: a second interface name '%s'; ignored", v.Name, val)
			continue
		}
		m.Name = val
	}
	v.VMAC = m
	v.mark(s)
}

// vmacPrefix handles the global vmac_prefix and vmac_addr_prefix.
func vmacPrefix(field func(*GlobalDefs) *string) handler[GlobalDefs] {
	return func(c *ctx, s *Stmt, g *GlobalDefs) {
		p, ok := c.str(s)
		if !ok {
			return
		}
		if why := ifCharsProblem(p); why != "" {
			c.errorf(s.Args[0].At(), "'%s': prefix '%s' %s; ignored", s.Key, p, why)
			return
		}
		*field(g) = p
	}
}

// resolveVMAC completes use_vmac once the instance is known: default name and MAC,
// keepalived's adjustments (unicast needs vmac_xmit_base, strict mode forbids it,
// promote_secondaries is implied), and the interface of the addresses without dev,
// which is the macvlan. It runs before resolveVIPs gives the others the interface.
func resolveVMAC(c *ctx, v *VRRPInstance, g *GlobalDefs) {
	if v.VMAC == nil {
		if v.Explicit("vmac_xmit_base") {
			c.warnf(v.posOf("vmac_xmit_base"), "(%s) vmac_xmit_base is only valid with use_vmac; ignored", v.Name)
		}
		return
	}
	m := v.VMAC
	if v.Interface == "" {
		c.errorf(m.Pos, "(%s) use_vmac needs the instance's interface; ignored", v.Name)
		v.VMAC = nil
		return
	}
	if m.Name == "" {
		m.Name, m.defaultName = VMACName(g.VMACPrefix, v.VRID), true
	}
	if m.Name == v.Interface {
		c.errorf(m.Pos, "(%s) use_vmac: the macvlan cannot be named like the interface %s; ignored", v.Name, v.Interface)
		v.VMAC = nil
		return
	}
	if m.MAC == "" {
		m.MAC = VirtualMAC(v.Family, v.VRID)
	}
	m.XmitBase = v.Explicit("vmac_xmit_base")
	if len(v.UnicastPeers) > 0 && !m.XmitBase {
		c.warnf(m.Pos, "(%s) unicast with use_vmac needs vmac_xmit_base; set", v.Name)
		m.XmitBase = true
	}
	if v.Strict && m.XmitBase {
		c.warnf(v.posOf("vmac_xmit_base"), "(%s) vmac_xmit_base is incompatible with strict mode; cleared", v.Name)
		m.XmitBase = false
	}
	if v.PromoteSecondaries {
		c.warnf(v.posOf("promote_secondaries"), "(%s) promote_secondaries is always set on a VMAC interface; ignored", v.Name)
		v.PromoteSecondaries = false
	}
	setVIPDevs(v, "", m.Name)
}

// setVIPDevs moves the addresses of an instance whose interface is from to to.
func setVIPDevs(v *VRRPInstance, from, to string) {
	for _, list := range [][]*VIP{v.VIPs, v.ExcludedVIPs} {
		for _, a := range list {
			if a.Dev == from {
				a.Dev = to
			}
		}
	}
}

// checkVMACNames gives each instance its own macvlan, as keepalived does: a default
// name another instance has is replaced by the next of prefix N "." VRID (for IPv6 N
// is tried with 6 first: vrrp6.51), a name given twice is an error and the later
// instance runs without use_vmac.
func checkVMACNames(c *ctx, insts []*VRRPInstance, prefix string) {
	seen := map[string]*VRRPInstance{}
	for _, v := range insts {
		if v.VMAC == nil {
			continue
		}
		if seen[v.VMAC.Name] != nil && v.VMAC.defaultName {
			name := nextVMACName(prefix, v, seen)
			setVIPDevs(v, v.VMAC.Name, name)
			v.VMAC.Name = name
		}
		if o := seen[v.VMAC.Name]; o != nil {
			c.errorf(v.VMAC.Pos, "(%s) VRRP instance %s already uses the VMAC interface %s; use_vmac ignored", v.Name, o.Name, v.VMAC.Name)
			setVIPDevs(v, v.VMAC.Name, v.Interface)
			v.VMAC = nil
			continue
		}
		seen[v.VMAC.Name] = v
	}
}

// nextVMACName is keepalived's choice of a default name when prefix.VRID is taken:
// prefix1.VRID, prefix2.VRID... (prefix6.VRID first for IPv6), the prefix shortened
// to fit, never the number.
func nextVMACName(prefix string, v *VRRPInstance, taken map[string]*VRRPInstance) string {
	for i := 0; ; i++ {
		n := i + 1
		if v.Family == 6 {
			switch {
			case i == 0:
				n = 6
			case i <= 5:
				n = i
			}
		}
		suffix := fmt.Sprintf("%d.%d", n, v.VRID)
		name := prefix[:min(len(prefix), maxIfName-len(suffix))] + suffix
		if taken[name] == nil {
			return name
		}
	}
}
