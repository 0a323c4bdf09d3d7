package vrrp

import (
	"errors"
	"fmt"
	"net"
	"strconv"

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
