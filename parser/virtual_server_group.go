package parser

import (
	"net/netip"
	"strconv"
	"strings"
)

// VirtualServerGroup is a virtual_server_group: addresses, address ranges and firewall
// marks that share the definition of the virtual_server naming the group.
type VirtualServerGroup struct {
	Name    string        `json:"name"`
	Ranges  []AddrRange   `json:"ranges,omitempty"`
	FWMarks []GroupFWMark `json:"fwmarks,omitempty"`
	Pos     Pos           `json:"-"`
}

// AddrRange is a group entry: the addresses First to Last (equal for a single address)
// with a port (0 = none, for a persistent service).
type AddrRange struct {
	First netip.Addr `json:"first"`
	Last  netip.Addr `json:"last"`
	Port  uint16     `json:"port,omitempty"`
	Pos   Pos        `json:"-"`
}

// GroupFWMark is a "fwmark N [inet|inet6]" group entry.
type GroupFWMark struct {
	Mark     uint32 `json:"fwmark"`
	IPFamily string `json:"ip_family,omitempty"`
	Pos      Pos    `json:"-"`
}

// parseVirtualServerGroup parses "virtual_server_group NAME { IP|RANGE [PORT]; fwmark N [inet|inet6] }".
func parseVirtualServerGroup(c *ctx, s *Stmt) *VirtualServerGroup {
	if !c.headArgs(s, 1, 1, "a name") {
		return nil
	}
	g := &VirtualServerGroup{Name: s.Args[0].Value(), Pos: s.At()}
	if !s.Open {
		c.errorf(s.At(), "'%s' needs a block: '%s ... { ... }'", s.Key, s.Key)
		return nil
	}
	for _, e := range s.Block {
		if e.Open {
			c.errorf(e.At(), "unexpected block '%s' in virtual_server_group; block skipped", e.Key)
			continue
		}
		if e.Key == "fwmark" {
			c.groupFWMark(g, e)
			continue
		}
		first, last, msg := parseAddrRange(e.Key)
		if msg != "" {
			c.errorf(e.At(), "virtual_server_group %s: %s; entry ignored", g.Name, msg)
			continue
		}
		r := AddrRange{First: first, Last: last, Pos: e.At()}
		if len(e.Args) > 0 {
			n, err := strconv.ParseUint(e.Args[0].Value(), 10, 16)
			if err != nil {
				c.errorf(e.Args[0].At(), "virtual_server_group %s: %q is not a port; entry ignored", g.Name, e.Args[0].Value())
				continue
			}
			r.Port = uint16(n)
		}
		if len(e.Args) > 1 {
			c.warnf(e.Args[1].At(), "extra arguments to '%s' ignored", e.Key)
		}
		g.Ranges = append(g.Ranges, r)
	}
	if len(g.Ranges) == 0 && len(g.FWMarks) == 0 {
		c.warnf(s.At(), "virtual_server_group %s has no entries; ignored", g.Name)
		return nil
	}
	return g
}

func (c *ctx) groupFWMark(g *VirtualServerGroup, e *Stmt) {
	if !c.want(e, 1, 2) {
		return
	}
	n, ok := c.intArg(e, 0, 1, 1<<32-1)
	if !ok {
		return
	}
	m := GroupFWMark{Mark: uint32(n), Pos: e.At()}
	if len(e.Args) > 1 {
		if m.IPFamily, ok = c.oneOf(e, e.Args[1], "inet", "inet6"); !ok {
			return
		}
	}
	g.FWMarks = append(g.FWMarks, m)
}

// parseAddrRange reads a group address: "IP", "IP-N" (the last IPv4 byte, or the last
// IPv6 16-bit group in hex, runs up to N), "IP-IP", or "IP/LEN" (the whole network,
// whose host bits must be zero). It returns a message on error.
func parseAddrRange(v string) (first, last netip.Addr, msg string) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil || p.Bits() == 0 {
			return first, last, "'" + v + "' is not an address/prefix-length"
		}
		if p.Masked().Addr() != p.Addr() {
			return first, last, "'" + v + "' has host bits set (use " + p.Masked().String() + ")"
		}
		return p.Addr(), lastInPrefix(p), ""
	}
	a, b, isRange := strings.Cut(v, "-")
	first, err := netip.ParseAddr(a)
	if err != nil {
		return first, last, "'" + a + "' is not an IP address"
	}
	if !isRange {
		return first, first, ""
	}
	if strings.ContainsAny(b, ".:") {
		last, err = netip.ParseAddr(b)
		switch {
		case err != nil:
			return first, last, "'" + b + "' is not an IP address"
		case last.Is4() != first.Is4():
			return first, last, "range '" + v + "' mixes IPv4 and IPv6"
		case last.Less(first):
			return first, last, "range '" + v + "' ends before it starts"
		}
		return first, last, ""
	}
	if first.Is4() {
		n, err := strconv.ParseUint(b, 10, 8)
		o := first.As4()
		if err != nil || n <= uint64(o[3]) {
			return first, last, "range end '" + b + "' must be a number above " + strconv.Itoa(int(o[3])) + " and at most 255"
		}
		o[3] = byte(n)
		return first, netip.AddrFrom4(o), ""
	}
	n, err := strconv.ParseUint(b, 16, 16)
	o := first.As16()
	start := uint64(o[14])<<8 | uint64(o[15])
	if err != nil || n <= start {
		return first, last, "range end '" + b + "' must be a hex number above " + strconv.FormatUint(start, 16) + " and at most ffff"
	}
	o[14], o[15] = byte(n>>8), byte(n)
	return first, netip.AddrFrom16(o), ""
}

// lastInPrefix returns the highest address of p.
func lastInPrefix(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
