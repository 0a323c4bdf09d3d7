package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// NetlinkRoutes is the RouteManager over netlink, in the current network namespace.
type NetlinkRoutes struct{}

var _ RouteManager = NetlinkRoutes{}

// Add installs r, replacing a route with the same key.
func (NetlinkRoutes) Add(r *parser.Route) error {
	nr, err := netlinkRoute(r)
	if err != nil {
		return err
	}
	if err := netlink.RouteReplace(nr); err != nil {
		return fmt.Errorf("route %q: %w", r.Text, err)
	}
	return nil
}

// Del removes r; a route that is not there is not an error.
func (NetlinkRoutes) Del(r *parser.Route) error {
	nr, err := netlinkRoute(r)
	if err != nil {
		return err
	}
	if err := netlink.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("route %q: %w", r.Text, err)
	}
	return nil
}

// routeTypes maps the route types of the configuration to the kernel's.
var routeTypes = map[string]int{
	"unicast": unix.RTN_UNICAST, "local": unix.RTN_LOCAL, "broadcast": unix.RTN_BROADCAST,
	"multicast": unix.RTN_MULTICAST, "throw": unix.RTN_THROW, "unreachable": unix.RTN_UNREACHABLE,
	"prohibit": unix.RTN_PROHIBIT, "blackhole": unix.RTN_BLACKHOLE, "nat": unix.RTN_NAT,
	"anycast": unix.RTN_ANYCAST,
}

// routeScopes maps the route scopes of the configuration to the kernel's.
var routeScopes = map[string]netlink.Scope{
	"global": netlink.SCOPE_UNIVERSE, "universe": netlink.SCOPE_UNIVERSE, "site": netlink.SCOPE_SITE,
	"link": netlink.SCOPE_LINK, "host": netlink.SCOPE_HOST, "nowhere": netlink.SCOPE_NOWHERE,
}

// netlinkRoute translates r. Route attributes kept as options (mtu, advmss, protocol...),
// a source prefix ("from") and nexthop realms are not supported: such a route is an
// error, not installed without them.
func netlinkRoute(r *parser.Route) (*netlink.Route, error) {
	if len(r.Options) > 0 {
		return nil, fmt.Errorf("route %q: %q is not supported", r.Text, r.Options[0])
	}
	if r.From.IsValid() {
		return nil, fmt.Errorf("route %q: a source prefix (from) is not supported", r.Text)
	}
	typ, ok := routeTypes[r.Type]
	if !ok {
		return nil, fmt.Errorf("route %q: type %q is not supported", r.Text, r.Type)
	}
	nr := &netlink.Route{Family: unix.AF_INET, Type: typ, Table: int(r.Table)}
	if r.Family == 6 {
		nr.Family = unix.AF_INET6
	}
	if r.Dst.IsValid() {
		nr.Dst = &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())}
	}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.Metric != nil {
		nr.Priority = int(*r.Metric)
	}
	if r.Scope != "" {
		sc, ok := routeScopes[r.Scope]
		if !ok {
			n, err := strconv.ParseUint(r.Scope, 10, 8)
			if err != nil {
				return nil, fmt.Errorf("route %q: scope %q", r.Text, r.Scope)
			}
			sc = netlink.Scope(n)
		}
		nr.Scope = sc
	}
	if r.OnLink {
		nr.Flags |= int(netlink.FLAG_ONLINK)
	}
	if r.Dev != "" {
		idx, err := linkIndex(r.Dev)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Text, err)
		}
		nr.LinkIndex = idx
	}
	for _, nh := range r.Nexthops {
		if nh.Realms != "" {
			return nil, fmt.Errorf("route %q: nexthop realms are not supported", r.Text)
		}
		info := &netlink.NexthopInfo{Hops: max(nh.Weight, 1) - 1}
		if nh.Via.IsValid() {
			info.Gw = nh.Via.AsSlice()
		}
		if nh.OnLink {
			info.Flags |= int(netlink.FLAG_ONLINK)
		}
		if nh.Dev != "" {
			idx, err := linkIndex(nh.Dev)
			if err != nil {
				return nil, fmt.Errorf("route %q: %w", r.Text, err)
			}
			info.LinkIndex = idx
		}
		nr.MultiPath = append(nr.MultiPath, info)
	}
	return nr, nil
}

// linkIndex is the index of interface name.
func linkIndex(name string) (int, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return l.Attrs().Index, nil
}

// AddRule installs r; a rule that is there already is not an error.
func (NetlinkRoutes) AddRule(r *parser.Rule) error {
	nr, err := netlinkRule(r)
	if err != nil {
		return err
	}
	if err := netlink.RuleAdd(nr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("rule %q: %w", r.Text, err)
	}
	return nil
}

// DelRule removes r; a rule that is not there is not an error.
func (NetlinkRoutes) DelRule(r *parser.Rule) error {
	nr, err := netlinkRule(r)
	if err != nil {
		return err
	}
	if err := netlink.RuleDel(nr); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("rule %q: %w", r.Text, err)
	}
	return nil
}

// ruleActions maps rule actions to the kernel's (FR_ACT_*; goto is a field of its own).
var ruleActions = map[string]uint8{
	"table": 1, "nop": 3, "blackhole": 6, "unreachable": 7, "prohibit": 8,
}

// netlinkRule translates r. Selectors kept as options (tos, uidrange, ports, ipproto,
// suppress_*...) and the l3mdev action are not supported: such a rule is an error.
func netlinkRule(r *parser.Rule) (*netlink.Rule, error) {
	if len(r.Options) > 0 {
		return nil, fmt.Errorf("rule %q: %q is not supported", r.Text, r.Options[0])
	}
	nr := netlink.NewRule()
	nr.Family = unix.AF_INET
	if r.Family == 6 {
		nr.Family = unix.AF_INET6
	}
	switch r.Action {
	case "goto":
		nr.Goto = int(r.Goto)
	default:
		act, ok := ruleActions[r.Action]
		if !ok {
			return nil, fmt.Errorf("rule %q: action %q is not supported", r.Text, r.Action)
		}
		nr.Type = act
		if r.Action == "table" {
			nr.Table = int(r.Table)
		}
	}
	prefix := func(p netip.Prefix) *net.IPNet {
		return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	}
	if r.From.IsValid() {
		nr.Src = prefix(r.From)
	}
	if r.To.IsValid() {
		nr.Dst = prefix(r.To)
	}
	nr.Invert = r.Not
	if r.Priority != nil {
		nr.Priority = int(*r.Priority)
	}
	if r.Fwmark != nil {
		nr.Mark = *r.Fwmark
	}
	if r.FwMask != nil {
		m := *r.FwMask
		nr.Mask = &m
	}
	nr.IifName, nr.OifName = r.Iif, r.Oif
	return nr, nil
}

// PromoteSecondaries sets net.ipv4.conf.IFNAME.promote_secondaries to 1, in the current
// network namespace: removing an interface's primary address then promotes a secondary
// of the same prefix instead of deleting them all (a VIP among them).
func PromoteSecondaries(ifname string) error {
	if ifname == "" || strings.ContainsAny(ifname, "/\x00") || ifname == "." || ifname == ".." {
		return fmt.Errorf("interface name %q", ifname)
	}
	return os.WriteFile("/proc/sys/net/ipv4/conf/"+ifname+"/promote_secondaries", []byte("1\n"), 0)
}
