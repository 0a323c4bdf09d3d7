package parser

import (
	"bufio"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// LifetimeForever is the preferred_lft value "forever".
const LifetimeForever = ^uint32(0)

// VIP is one address line of virtual_ipaddress, virtual_ipaddress_excluded or
// static_ipaddress: "ADDR[/MASK] [brd IP|+|-] [dev IF] [scope S] [label L] [peer IP]
// [home] [-nodad] [mngtmpaddr] [noprefixroute] [autojoin] [no_track] [preferred_lft N|forever]".
type VIP struct {
	Prefix netip.Prefix `json:"prefix"`
	// Broadcast is resolved: "brd +" and "brd -" are turned into the address.
	Broadcast netip.Addr `json:"broadcast,omitzero"`
	// Dev is resolved: the instance's interface (static addresses: default_interface)
	// when the line has no dev.
	Dev           string     `json:"dev"`
	Scope         string     `json:"scope,omitempty"`
	Label         string     `json:"label,omitempty"`
	Peer          netip.Addr `json:"peer,omitzero"`
	Home          bool       `json:"home,omitempty"`
	NoDAD         bool       `json:"nodad,omitempty"`
	MngTmpAddr    bool       `json:"mngtmpaddr,omitempty"`
	NoPrefixRoute bool       `json:"noprefixroute,omitempty"`
	AutoJoin      bool       `json:"autojoin,omitempty"`
	NoTrack       bool       `json:"no_track,omitempty"`
	// PreferredLft is set for IPv6 (keepalived's default: 0 for a /128, else forever)
	// and for IPv4 only when configured.
	PreferredLft *uint32 `json:"preferred_lft,omitempty"`
	Text         string  `json:"text"`
	Pos          Pos     `json:"-"`
}

// Is6 reports whether the address is IPv6.
func (v *VIP) Is6() bool { return v.Prefix.Addr().Is6() }

// Nexthop is one "nexthop" of a multipath route (or an address of the deprecated "or").
type Nexthop struct {
	Via    netip.Addr `json:"via,omitzero"`
	Dev    string     `json:"dev,omitempty"`
	Weight int        `json:"weight,omitempty"`
	OnLink bool       `json:"onlink,omitempty"`
	Realms string     `json:"realms,omitempty"`
}

// Route is one line of virtual_routes or static_routes, in "ip route add" syntax.
type Route struct {
	Family int          `json:"family"`
	Type   string       `json:"type"`
	Dst    netip.Prefix `json:"dst"`
	// Src is the preferred source address ("src").
	Src netip.Addr `json:"src,omitzero"`
	// From is the IPv6 source prefix ("from").
	From     netip.Prefix `json:"from,omitzero"`
	Via      netip.Addr   `json:"via,omitzero"`
	Nexthops []*Nexthop   `json:"nexthops,omitempty"`
	Dev      string       `json:"dev,omitempty"`
	Table    uint32       `json:"table"`
	Metric   *uint32      `json:"metric,omitempty"`
	Scope    string       `json:"scope,omitempty"`
	OnLink   bool         `json:"onlink,omitempty"`
	// NoTrack is resolved: keepalived cannot track a route without a dev.
	NoTrack bool `json:"no_track,omitempty"`
	// Options holds the other route attributes as written ("mtu lock 1400", "protocol bird").
	Options []string `json:"options,omitempty"`
	Text    string   `json:"text"`
	Pos     Pos      `json:"-"`
}

// Rule is one line of virtual_rules or static_rules, in "ip rule add" syntax.
type Rule struct {
	Family int          `json:"family"`
	From   netip.Prefix `json:"from,omitzero"`
	To     netip.Prefix `json:"to,omitzero"`
	Not    bool         `json:"not,omitempty"`
	// Action is table, goto, nop, blackhole, unreachable, prohibit or l3mdev.
	Action   string  `json:"action"`
	Table    uint32  `json:"table,omitempty"`
	Goto     uint32  `json:"goto,omitempty"`
	Priority *uint32 `json:"priority,omitempty"`
	Fwmark   *uint32 `json:"fwmark,omitempty"`
	FwMask   *uint32 `json:"fwmask,omitempty"`
	Iif      string  `json:"iif,omitempty"`
	Oif      string  `json:"oif,omitempty"`
	NoTrack  bool    `json:"no_track,omitempty"`
	// Options holds the other selectors as written ("tos 22", "uidrange 1000-2000").
	Options []string `json:"options,omitempty"`
	Text    string   `json:"text"`
	Pos     Pos      `json:"-"`
}

// lineText is the text of a block line: its keyword and arguments.
func lineText(s *Stmt) string {
	return strings.Join(append([]string{s.Key}, s.Values()...), " ")
}

// lineCursor walks the words of a route/rule/address line.
type lineCursor struct {
	c     *ctx
	s     *Stmt
	words []string
	pos   []Pos
	i     int
}

func newCursor(c *ctx, s *Stmt) *lineCursor {
	lc := &lineCursor{c: c, s: s, words: []string{s.Key}, pos: []Pos{s.At()}}
	for _, a := range s.Args {
		lc.words = append(lc.words, a.Value())
		lc.pos = append(lc.pos, a.At())
	}
	return lc
}

func (lc *lineCursor) more() bool   { return lc.i < len(lc.words) }
func (lc *lineCursor) peek() string { return lc.words[lc.i] }

// next returns the current word and advances.
func (lc *lineCursor) next() string {
	w := lc.words[lc.i]
	lc.i++
	return w
}

// value returns the argument of the option just read, reporting a missing one.
func (lc *lineCursor) value(opt string) (string, bool) {
	if !lc.more() {
		lc.c.errorf(lc.pos[lc.i-1], "'%s' needs a value in '%s'; ignored", opt, lineText(lc.s))
		return "", false
	}
	return lc.next(), true
}

// errorf reports at the word just read.
func (lc *lineCursor) errorf(format string, args ...any) {
	lc.c.errorf(lc.pos[max(lc.i-1, 0)], format, args...)
}

// addressLines returns the lines of an address/route/rule block.
func (c *ctx) addressLines(s *Stmt) []*Stmt {
	if !s.Open {
		c.errorf(s.At(), "'%s' needs a block: '%s { ... }'", s.Key, s.Key)
		return nil
	}
	if len(s.Args) > 0 {
		c.warnf(s.Args[0].At(), "extra arguments to '%s' ignored", s.Key)
	}
	for _, l := range s.Block {
		if l.Open {
			c.errorf(l.At(), "'%s' does not take a block; block ignored", l.Key)
		}
	}
	return s.Block
}

// parseVIPBlock parses virtual_ipaddress, virtual_ipaddress_excluded and static_ipaddress.
func parseVIPBlock(c *ctx, s *Stmt) []*VIP {
	var out []*VIP
	for _, l := range c.addressLines(s) {
		if v := parseVIP(c, l, s.Key == "static_ipaddress"); v != nil {
			out = append(out, v)
		}
	}
	return out
}

// vipScopes are the scopes an address may have.
var vipScopes = []string{"global", "site", "link", "host", "nowhere"}

func parseVIP(c *ctx, s *Stmt, static bool) *VIP {
	lc := newCursor(c, s)
	pfx, err := parsePrefix(lc.next())
	if err != nil {
		c.errorf(s.At(), "%q is not an IP address[/mask]; address ignored", s.Key)
		return nil
	}
	v := &VIP{Prefix: pfx, Text: lineText(s), Pos: s.At()}
	var brd string
	var brdPos Pos
	for lc.more() {
		opt := lc.next()
		switch opt {
		case "dev", "scope", "brd", "broadcast", "label", "peer", "preferred_lft", "track_group":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			if !v.setOption(lc, opt, val, static) {
				return nil
			}
			if opt == "brd" || opt == "broadcast" {
				brd, brdPos = val, lc.pos[lc.i-1]
			}
		case "home":
			v.Home = true
		case "-nodad":
			v.NoDAD = true
		case "mngtmpaddr":
			v.MngTmpAddr = true
		case "noprefixroute":
			v.NoPrefixRoute = true
		case "autojoin":
			v.AutoJoin = true
		case "no_track":
			v.NoTrack = true
		case "use_vmac":
			if static {
				lc.errorf("unknown option 'use_vmac' for a static address; ignored")
			} else {
				c.warnf(lc.pos[lc.i-1], "'use_vmac' is a keepalived option that gokeepalived does not implement; ignored")
			}
		default:
			lc.errorf("unknown option '%s' for address %s%s; ignored", opt, s.Key, didYouMean(opt, vipOptions))
		}
	}
	v.finish(c, brd, brdPos)
	return v
}

var vipOptions = []string{"dev", "scope", "brd", "broadcast", "label", "peer", "preferred_lft",
	"home", "-nodad", "mngtmpaddr", "noprefixroute", "autojoin", "no_track", "use_vmac"}

// setOption applies an option with a value; false drops the address.
func (v *VIP) setOption(lc *lineCursor, opt, val string, static bool) bool {
	c := lc.c
	switch opt {
	case "dev":
		if v.Dev != "" {
			lc.errorf("dev given twice for %s; address ignored", v.Prefix)
			return false
		}
		v.Dev = val
	case "scope":
		if !slices.Contains(vipScopes, val) {
			lc.errorf("invalid scope '%s' for %s (expected %s); ignored", val, v.Prefix, strings.Join(vipScopes, ", "))
			return true
		}
		v.Scope = val
	case "brd", "broadcast":
		if v.Is6() {
			lc.errorf("an IPv6 address (%s) has no broadcast address; address ignored", v.Prefix)
			return false
		}
		if val != "+" && val != "-" {
			b, err := netip.ParseAddr(val)
			if err != nil || !b.Is4() {
				lc.errorf("invalid broadcast address '%s'; address ignored", val)
				return false
			}
			v.Broadcast = b
		}
	case "label":
		v.Label = val
	case "peer":
		p, err := netip.ParseAddr(val)
		switch {
		case err != nil:
			lc.errorf("invalid peer address '%s'; ignored", val)
		case p.Is6() != v.Is6():
			lc.errorf("peer address %s does not match the family of %s; ignored", val, v.Prefix)
		case v.Peer.IsValid():
			lc.errorf("peer %s: another peer was already given; ignored", val)
		default:
			v.Peer = p
		}
	case "preferred_lft":
		if val == "forever" {
			f := LifetimeForever
			v.PreferredLft = &f
			return true
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			lc.errorf("preferred_lft %s is invalid (a number of seconds or forever); ignored", val)
			return true
		}
		u := uint32(n)
		v.PreferredLft = &u
	case "track_group":
		if !static {
			lc.errorf("'track_group' only applies to static addresses; ignored")
			return true
		}
		c.warnf(lc.pos[lc.i-2], "'track_group' is a keepalived option that gokeepalived does not implement; ignored")
	}
	return true
}

// finish applies keepalived's rules that need the whole line.
func (v *VIP) finish(c *ctx, brd string, brdPos Pos) {
	if v.Peer.IsValid() {
		if v.Prefix.Bits() != v.Prefix.Addr().BitLen() {
			c.errorf(v.Pos, "a prefix cannot be given with a peer address (%s); using /%d", v.Prefix, v.Prefix.Addr().BitLen())
			v.Prefix = netip.PrefixFrom(v.Prefix.Addr(), v.Prefix.Addr().BitLen())
		}
		if brd != "" {
			c.errorf(brdPos, "cannot give both a broadcast and a peer address; broadcast ignored")
			v.Broadcast = netip.Addr{}
			brd = ""
		}
	}
	if brd == "+" || brd == "-" {
		if v.Prefix.Bits() > 30 {
			c.errorf(brdPos, "prefix length %d is too long for a broadcast address; broadcast ignored", v.Prefix.Bits())
		} else {
			v.Broadcast = broadcastOf(v.Prefix, brd == "+")
		}
	}
	if v.Is6() {
		if v.Scope != "" {
			c.errorf(v.Pos, "a scope cannot be given for an IPv6 address (%s); scope ignored", v.Prefix)
			v.Scope = ""
		}
		if v.Label != "" {
			c.errorf(v.Pos, "a label cannot be given for an IPv6 address (%s); label ignored", v.Prefix)
			v.Label = ""
		}
		if v.PreferredLft == nil {
			lft := LifetimeForever
			if v.Prefix.Bits() == 128 {
				lft = 0
			}
			v.PreferredLft = &lft
		}
	}
}

// broadcastOf sets (+) or clears (-) the host bits of an IPv4 prefix.
func broadcastOf(p netip.Prefix, set bool) netip.Addr {
	a := p.Addr().As4()
	ip := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	mask := ^uint32(0) >> p.Bits()
	if set {
		ip |= mask
	} else {
		ip &^= mask
	}
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)})
}

// parseRouteBlock parses virtual_routes and static_routes.
func parseRouteBlock(c *ctx, s *Stmt) []*Route {
	var out []*Route
	for _, l := range c.addressLines(s) {
		if r := parseRoute(c, l, s.Key == "static_routes"); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// routeTypes are the route types of "ip route add TYPE PREFIX".
var routeTypes = []string{"unicast", "local", "broadcast", "multicast", "throw", "unreachable",
	"prohibit", "blackhole", "nat", "anycast"}

// routeScopes maps route scope names (and numbers) to themselves.
var routeScopes = []string{"global", "universe", "site", "link", "host", "nowhere"}

// routeMetrics are the route attributes kept in Options, with whether they take "lock".
var routeMetrics = map[string]bool{
	"mtu": true, "advmss": true, "rtt": true, "rttvar": true, "reordering": true, "cwnd": true,
	"ssthresh": true, "rto_min": true, "congctl": true,
	"window": false, "initcwnd": false, "initrwnd": false, "hoplimit": false, "features": false,
	"quickack": false, "pref": false, "ttl-propagate": false, "fastopen_no_cookie": false,
	"expires": false, "protocol": false, "tos": false, "dsfield": false, "realms": false,
}

// family returns 4 or 6 for an address.
func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// setFamily records the family of an element of a route or rule; false on a mismatch.
func setFamily(fam *int, f int) bool {
	if *fam == 0 {
		*fam = f
	}
	return *fam == f
}

func parseRoute(c *ctx, s *Stmt, static bool) *Route {
	lc := newCursor(c, s)
	r := &Route{Type: "unicast", Table: 254, Text: lineText(s), Pos: s.At()}
	dstDefault := false
	haveDst := false
	mixed := func() *Route {
		lc.errorf("cannot mix IPv4 and IPv6 addresses in route '%s'; route ignored", r.Text)
		return nil
	}
	for lc.more() {
		opt := lc.next()
		switch opt {
		case "inet", "inet6":
			if !setFamily(&r.Family, map[string]int{"inet": 4, "inet6": 6}[opt]) {
				return mixed()
			}
		case "src":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			a, err := netip.ParseAddr(val)
			if err != nil {
				lc.errorf("invalid route src address '%s'; route ignored", val)
				return nil
			}
			if !setFamily(&r.Family, family(a)) {
				return mixed()
			}
			r.Src = a
		case "from":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			p, err := parsePrefix(val)
			if err != nil || !p.Addr().Is6() {
				lc.errorf("route 'from' needs an IPv6 prefix, not '%s'; route ignored", val)
				return nil
			}
			if !setFamily(&r.Family, 6) {
				return mixed()
			}
			r.From = p
		case "via", "gw":
			if opt == "gw" {
				c.warnf(lc.pos[lc.i-1], "'gw' in routes is deprecated; use 'via'")
			}
			a, ok := lc.viaAddr(opt, &r.Family)
			if !ok {
				return nil
			}
			r.Via = a
		case "or":
			c.warnf(lc.pos[lc.i-1], "'or' in routes is deprecated; use 'nexthop'")
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			a, err := netip.ParseAddr(val)
			if err != nil {
				lc.errorf("invalid 'or' address '%s'; route ignored", val)
				return nil
			}
			if !setFamily(&r.Family, family(a)) {
				return mixed()
			}
			if len(r.Nexthops) > 0 {
				lc.errorf("'or' given twice; ignored")
				continue
			}
			r.Nexthops = []*Nexthop{{Via: r.Via}, {Via: a}}
			r.Via = netip.Addr{}
		case "table":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			t, ok := routeTable(val)
			if !ok {
				lc.errorf("routing table '%s' not found; route ignored", val)
				return nil
			}
			r.Table = t
		case "metric", "priority", "preference":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				lc.errorf("invalid metric '%s'; route ignored", val)
				return nil
			}
			m := uint32(n)
			r.Metric = &m
		case "dev", "oif":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			r.Dev = val
		case "scope":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			if !slices.Contains(routeScopes, val) && !isUint8(val) {
				lc.errorf("invalid scope '%s' for route; route ignored", val)
				return nil
			}
			r.Scope = val
		case "onlink":
			r.OnLink = true
		case "no_track":
			r.NoTrack = true
		case "track_group":
			if _, ok := lc.value(opt); !ok {
				return nil
			}
			if !static {
				lc.errorf("'track_group' only applies to static routes; ignored")
				continue
			}
			c.warnf(lc.pos[lc.i-2], "'track_group' is a keepalived option that gokeepalived does not implement; ignored")
		case "nexthop":
			lc.i--
			if !lc.nexthops(r) {
				return nil
			}
		case "encap", "as":
			lc.errorf("route option '%s' is not supported; route ignored", opt)
			return nil
		default:
			if lock, ok := routeMetrics[opt]; ok {
				o, ok := lc.metric(opt, lock)
				if !ok {
					return nil
				}
				r.Options = append(r.Options, o)
				continue
			}
			if opt == "to" {
				if !lc.more() {
					lc.errorf("'to' needs a destination in route '%s'; route ignored", r.Text)
					return nil
				}
				opt = lc.next()
			}
			if slices.Contains(routeTypes, opt) {
				r.Type = opt
				if !lc.more() {
					lc.errorf("route type '%s' needs a destination; route ignored", opt)
					return nil
				}
				opt = lc.next()
			}
			if haveDst {
				lc.errorf("unknown route keyword '%s' (the destination is already %s); route ignored", opt, r.Dst)
				return nil
			}
			switch opt {
			case "default", "any", "all":
				dstDefault, haveDst = true, true
				continue
			}
			p, err := parsePrefix(opt)
			if err != nil {
				lc.errorf("unknown route keyword or invalid destination '%s'%s; route ignored", opt, didYouMean(opt, routeKeywords))
				return nil
			}
			if !setFamily(&r.Family, family(p.Addr())) {
				return mixed()
			}
			r.Dst, haveDst = p, true
		}
	}
	if !haveDst {
		c.errorf(s.At(), "route '%s' has no destination; route ignored", r.Text)
		return nil
	}
	if r.Family == 0 {
		r.Family = 4
	}
	if dstDefault {
		r.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if r.Family == 6 {
			r.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
	}
	if !r.NoTrack && r.Dev == "" {
		c.warnf(s.At(), "route %s has no dev, so it cannot be tracked; not tracking it", r.Dst)
		r.NoTrack = true
	}
	return r
}

var routeKeywords = func() []string {
	out := []string{"inet", "inet6", "src", "from", "via", "gw", "or", "table", "metric", "priority",
		"preference", "dev", "oif", "scope", "onlink", "no_track", "nexthop", "to"}
	for k := range routeMetrics {
		out = append(out, k)
	}
	out = append(out, routeTypes...)
	sort.Strings(out)
	return out
}()

// viaAddr reads "[inet|inet6] ADDR" after via/gw.
func (lc *lineCursor) viaAddr(opt string, fam *int) (netip.Addr, bool) {
	val, ok := lc.value(opt)
	if !ok {
		return netip.Addr{}, false
	}
	if val == "inet" || val == "inet6" {
		if !setFamily(fam, map[string]int{"inet": 4, "inet6": 6}[val]) {
			lc.errorf("'%s %s' does not match the route's family; route ignored", opt, val)
			return netip.Addr{}, false
		}
		if val, ok = lc.value(opt); !ok {
			return netip.Addr{}, false
		}
	}
	a, err := netip.ParseAddr(val)
	if err != nil {
		lc.errorf("invalid %s address '%s'; route ignored", opt, val)
		return netip.Addr{}, false
	}
	if !setFamily(fam, family(a)) {
		lc.errorf("cannot mix IPv4 and IPv6 addresses in a route (%s %s); route ignored", opt, val)
		return netip.Addr{}, false
	}
	return a, true
}

// metric reads a route attribute kept as text: "NAME [lock] VALUE".
func (lc *lineCursor) metric(opt string, lock bool) (string, bool) {
	val, ok := lc.value(opt)
	if !ok {
		return "", false
	}
	out := opt + " " + val
	if lock && val == "lock" {
		if val, ok = lc.value(opt); !ok {
			return "", false
		}
		out += " " + val
	}
	return out, true
}

// nexthops reads the "nexthop ..." groups that end a route line.
func (lc *lineCursor) nexthops(r *Route) bool {
	if len(r.Nexthops) > 0 {
		lc.errorf("cannot give nexthops with an 'or' route; route ignored")
		return false
	}
	for lc.more() && lc.peek() == "nexthop" {
		lc.next()
		nh := &Nexthop{}
		for lc.more() && lc.peek() != "nexthop" {
			opt := lc.next()
			switch opt {
			case "via":
				a, ok := lc.viaAddr(opt, &r.Family)
				if !ok {
					return false
				}
				nh.Via = a
			case "dev":
				val, ok := lc.value(opt)
				if !ok {
					return false
				}
				nh.Dev = val
			case "weight":
				val, ok := lc.value(opt)
				if !ok {
					return false
				}
				n, err := strconv.Atoi(val)
				if err != nil || n < 1 || n > 256 {
					lc.errorf("invalid nexthop weight '%s' (1..256); route ignored", val)
					return false
				}
				nh.Weight = n
			case "onlink":
				nh.OnLink = true
			case "realms":
				val, ok := lc.value(opt)
				if !ok {
					return false
				}
				nh.Realms = val
			default:
				lc.errorf("route has trailing text after its nexthops: '%s'; route ignored", opt)
				return false
			}
		}
		r.Nexthops = append(r.Nexthops, nh)
	}
	if lc.more() {
		lc.errorf("route has trailing text after its nexthops: '%s'; route ignored", lc.peek())
		return false
	}
	return true
}

// parseRuleBlock parses virtual_rules and static_rules.
func parseRuleBlock(c *ctx, s *Stmt) []*Rule {
	var out []*Rule
	for _, l := range c.addressLines(s) {
		if r := parseRule(c, l, s.Key == "static_rules"); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// ruleOptions are the rule selectors kept in Options (each takes one value).
var ruleOptions = []string{"tos", "dsfield", "realms", "suppress_prefixlength", "sup_pl",
	"suppress_ifgroup", "sup_group", "tunnel-id", "uidrange", "protocol", "ipproto", "sport", "dport"}

var ruleKeywords = append([]string{"inet", "inet6", "from", "to", "table", "lookup", "not",
	"preference", "order", "priority", "fwmark", "dev", "iif", "oif", "no_track", "l3mdev",
	"type", "goto", "nop", "blackhole", "unreachable", "prohibit"}, ruleOptions...)

func parseRule(c *ctx, s *Stmt, static bool) *Rule {
	lc := newCursor(c, s)
	r := &Rule{Text: lineText(s), Pos: s.At()}
	setAction := func(a string) bool {
		if r.Action != "" {
			lc.errorf("a rule takes only one of table/goto/nop/blackhole/unreachable/prohibit/l3mdev; rule ignored")
			return false
		}
		r.Action = a
		return true
	}
	tableOption := false
	for lc.more() {
		opt := lc.next()
		switch opt {
		case "inet", "inet6":
			if !setFamily(&r.Family, map[string]int{"inet": 4, "inet6": 6}[opt]) {
				lc.errorf("'%s' does not match the rule's family; rule ignored", opt)
				return nil
			}
		case "from", "to":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			var p netip.Prefix
			switch val {
			case "default", "any", "all":
			default:
				var err error
				if p, err = parsePrefix(val); err != nil {
					lc.errorf("invalid rule %s address '%s'; rule ignored", opt, val)
					return nil
				}
				if !setFamily(&r.Family, family(p.Addr())) {
					lc.errorf("rule mixes IPv4 and IPv6; rule ignored")
					return nil
				}
			}
			if opt == "from" {
				r.From = p
			} else {
				r.To = p
			}
		case "table", "lookup":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			t, ok := routeTable(val)
			if !ok || t == 0 {
				lc.errorf("routing table '%s' not found or invalid for rule; rule ignored", val)
				return nil
			}
			if !setAction("table") {
				return nil
			}
			r.Table = t
		case "not":
			r.Not = true
		case "preference", "order", "priority":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			n, err := strconv.ParseUint(val, 0, 32)
			if err != nil {
				lc.errorf("invalid rule preference '%s'; rule ignored", val)
				return nil
			}
			p := uint32(n)
			r.Priority = &p
		case "fwmark":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			mark, mask, ok := parseFwmark(val)
			if !ok {
				lc.errorf("invalid rule fwmark '%s'; rule ignored", val)
				return nil
			}
			r.Fwmark, r.FwMask = &mark, mask
		case "dev", "iif", "oif":
			val, ok := lc.value(opt)
			if !ok {
				return nil
			}
			if opt == "oif" {
				r.Oif = val
			} else {
				r.Iif = val
			}
		case "no_track":
			r.NoTrack = true
		case "track_group":
			if _, ok := lc.value(opt); !ok {
				return nil
			}
			if !static {
				lc.errorf("'track_group' only applies to static rules; ignored")
				continue
			}
			c.warnf(lc.pos[lc.i-2], "'track_group' is a keepalived option that gokeepalived does not implement; ignored")
		case "l3mdev":
			if !setAction("l3mdev") {
				return nil
			}
		default:
			if slices.Contains(ruleOptions, opt) {
				val, ok := lc.value(opt)
				if !ok {
					return nil
				}
				r.Options = append(r.Options, opt+" "+val)
				switch opt {
				case "realms", "suppress_prefixlength", "sup_pl", "suppress_ifgroup", "sup_group":
					tableOption = true
				}
				continue
			}
			if opt == "type" {
				val, ok := lc.value(opt)
				if !ok {
					return nil
				}
				opt = val
			}
			switch opt {
			case "goto":
				val, ok := lc.value(opt)
				if !ok {
					return nil
				}
				n, err := strconv.ParseUint(val, 10, 32)
				if err != nil {
					lc.errorf("invalid goto target '%s'; rule ignored", val)
					return nil
				}
				r.Goto = uint32(n)
			case "nop", "blackhole", "unreachable", "prohibit":
			default:
				lc.errorf("unknown rule option '%s'%s; rule ignored", opt, didYouMean(opt, ruleKeywords))
				return nil
			}
			if !setAction(opt) {
				return nil
			}
		}
	}
	switch {
	case r.Action == "":
		c.errorf(s.At(), "rule '%s' has no action (table, goto, nop, blackhole, unreachable, prohibit or l3mdev); rule ignored", r.Text)
		return nil
	case r.Action == "goto" && r.Priority == nil:
		c.errorf(s.At(), "rule '%s': goto needs a preference; rule ignored", r.Text)
		return nil
	case r.Action == "goto" && *r.Priority >= r.Goto:
		c.errorf(s.At(), "rule '%s': preference %d must be below the goto target %d; rule ignored", r.Text, *r.Priority, r.Goto)
		return nil
	case tableOption && r.Action != "table":
		c.errorf(s.At(), "rule '%s': realms/suppress options need a table action; rule ignored", r.Text)
		return nil
	}
	if r.Family == 0 {
		r.Family = 4
	}
	if r.Priority == nil {
		c.warnf(s.At(), "rule '%s' has no preference; keepalived assigns one, which is probably not what you want", r.Text)
	}
	return r
}

// parseFwmark reads "MARK[/MASK]" (decimal, hex or octal).
func parseFwmark(v string) (uint32, *uint32, bool) {
	m, k, hasMask := strings.Cut(v, "/")
	mark, err := strconv.ParseUint(m, 0, 32)
	if err != nil {
		return 0, nil, false
	}
	if !hasMask {
		return uint32(mark), nil, true
	}
	mask, err := strconv.ParseUint(k, 0, 32)
	if err != nil {
		return 0, nil, false
	}
	mk := uint32(mask)
	return uint32(mark), &mk, true
}

func isUint8(v string) bool {
	_, err := strconv.ParseUint(v, 0, 8)
	return err == nil
}

// builtinTables are the routing table names iproute2 always knows.
var builtinTables = map[string]uint32{"unspec": 0, "default": 253, "main": 254, "local": 255}

// rtTablesFiles lists the iproute2 table-name files consulted for named tables; tests
// replace it.
var rtTablesFiles = []string{"/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables", "/usr/lib/iproute2/rt_tables"}

// routeTable resolves a routing table given by number or by name.
func routeTable(v string) (uint32, bool) {
	if n, err := strconv.ParseUint(v, 0, 32); err == nil {
		return uint32(n), true
	}
	if t, ok := builtinTables[v]; ok {
		return t, true
	}
	for _, f := range rtTablesFiles {
		if t, ok := lookupRTTable(f, v); ok {
			return t, true
		}
	}
	return 0, false
}

// lookupRTTable finds name in an rt_tables file ("NUMBER NAME" lines).
func lookupRTTable(file, name string) (uint32, bool) {
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[1] == name {
			if n, err := strconv.ParseUint(fields[0], 0, 32); err == nil {
				return uint32(n), true
			}
		}
	}
	return 0, false
}
