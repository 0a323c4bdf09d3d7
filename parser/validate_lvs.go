package parser

import (
	"fmt"
	"net/netip"
	"strings"
)

// validateLVS checks the LVS side as a whole (group references, duplicates, address
// families, ports, quorum, track files) and resolves what real servers and checkers
// inherit, so that the runner reads effective values only. Virtual servers, real
// servers and checkers that keepalived would drop are dropped, with an error.
func (cfg *Config) validateLVS(c *ctx) {
	groups := map[string]*VirtualServerGroup{}
	var names []string
	keptGroups := cfg.VirtualServerGroups[:0]
	for _, g := range cfg.VirtualServerGroups {
		if first := groups[g.Name]; first != nil {
			c.errorf(g.Pos, "duplicate virtual_server_group %s (first at %s); ignored", g.Name, first.Pos)
			continue
		}
		groups[g.Name] = g
		names = append(names, g.Name)
		keptGroups = append(keptGroups, g)
	}
	cfg.VirtualServerGroups = keptGroups

	seen := map[string]*VirtualServer{}
	kept := cfg.VirtualServers[:0]
	for _, vs := range cfg.VirtualServers {
		var g *VirtualServerGroup
		if vs.Group != "" {
			if g = groups[vs.Group]; g == nil {
				hint := ""
				if sg := suggest(vs.Group, names); sg != "" {
					hint = " (did you mean '" + sg + "'?)"
				}
				c.errorf(vs.Pos, "virtual_server group %s: no virtual_server_group of that name%s; virtual server ignored", vs.Group, hint)
				continue
			}
		}
		key := vsKey(vs)
		if first := seen[key]; first != nil {
			c.errorf(vs.Pos, "duplicate virtual_server %s (first at %s); ignored", strings.TrimSpace(key), first.Pos)
			continue
		}
		seen[key] = vs
		if cfg.checkVirtualServer(c, vs, g) {
			kept = append(kept, vs)
		}
	}
	cfg.VirtualServers = kept
}

// vsLabel names a virtual server in messages: "IP port N", "fwmark N" or "group NAME".
func vsLabel(vs *VirtualServer) string {
	switch {
	case vs.FWMark != 0:
		return fmt.Sprintf("fwmark %d", vs.FWMark)
	case vs.Group != "":
		return "group " + vs.Group
	}
	return fmt.Sprintf("%s port %d", vs.Addr, vs.Port)
}

// vsKey identifies a virtual server for duplicate detection: its label with the
// protocol, or the address family of a fwmark service.
func vsKey(vs *VirtualServer) string {
	if vs.FWMark != 0 {
		return vsLabel(vs) + " " + vs.IPFamily
	}
	return vsLabel(vs) + " " + vs.Protocol
}

// checkVirtualServer resolves and checks one virtual server (g is its group, if any);
// false if it must be dropped.
func (cfg *Config) checkVirtualServer(c *ctx, vs *VirtualServer, g *VirtualServerGroup) bool {
	name := vsLabel(vs)
	hasAddrs := g == nil && vs.FWMark == 0 || g != nil && len(g.Ranges) > 0
	hasMarks := vs.FWMark != 0 || g != nil && len(g.FWMarks) > 0

	for _, rs := range vs.RealServers {
		if !rs.Set.Has("lvs_method") {
			rs.Forwarding = vs.Forwarding
		}
	}
	if ss := vs.SorryServer; ss != nil && !ss.methodSet {
		ss.Forwarding = vs.Forwarding
	}
	mixed := false
	if g != nil {
		var fam string
		if fam, mixed = groupFamily(g); mixed {
			vs.IPFamily = ""
		} else if fam != "" {
			vs.IPFamily = fam
		}
	}
	if vs.IPFamily == "" && !mixed {
		vs.IPFamily = familyFromServers(vs)
	}

	// Address families: only tunnelled servers may differ from the virtual server.
	fits := func(ip netip.Addr, f Forwarding, what string, pos Pos) bool {
		switch {
		case f.Method == "TUN":
			return true
		case mixed:
			c.errorf(pos, "%s %s: virtual_server_group %s mixes IPv4 and IPv6, so its servers need lvs_method TUN; ignored", what, ip, vs.Group)
			return false
		case afName(ip.Is6()) != vs.IPFamily:
			c.errorf(pos, "%s %s is %s but the virtual server is %s, which only lvs_method TUN allows; ignored", what, ip, ipWord(ip.Is6()), ipWord(vs.IPFamily == "inet6"))
			return false
		}
		return true
	}
	if ss := vs.SorryServer; ss != nil && !fits(ss.Addr, ss.Forwarding, "sorry_server", ss.Pos) {
		vs.SorryServer = nil
	}
	rss := vs.RealServers[:0]
	for _, rs := range vs.RealServers {
		if fits(rs.Addr, rs.Forwarding, "real_server", rs.Pos) {
			rss = append(rss, rs)
		}
	}
	vs.RealServers = rss

	// Ports: a NAT server without a port uses the service's; other methods cannot map
	// ports, and a fwmark service has none.
	if ss := vs.SorryServer; ss != nil {
		c.serverPort(vs, &ss.Port, ss.Forwarding, "sorry_server", ss.Pos)
	}
	first := map[netip.AddrPort]*RealServer{}
	rss = vs.RealServers[:0]
	for _, rs := range vs.RealServers {
		c.serverPort(vs, &rs.Port, rs.Forwarding, "real_server "+rs.Addr.String(), rs.Pos)
		ap := netip.AddrPortFrom(rs.Addr, rs.Port)
		if f := first[ap]; f != nil {
			c.errorf(rs.Pos, "duplicate real_server %s port %d in virtual_server %s (first at %s); ignored", rs.Addr, rs.Port, name, f.Pos)
			continue
		}
		first[ap] = rs
		rss = append(rss, rs)
	}
	vs.RealServers = rss
	if len(vs.RealServers) == 0 {
		c.errorf(vs.Pos, "virtual_server %s has no real servers; ignored", name)
		return false
	}

	// Persistence and ports.
	if vs.PersistenceGranularity != 0 && vs.PersistenceTimeout == 0 {
		c.warnf(vs.keyPos("persistence_granularity"), "persistence_granularity without persistence_timeout: the service is made persistent for the default 360s")
		vs.PersistenceTimeout = 360
	}
	if vs.PersistenceTimeout == 0 {
		zero := g == nil && vs.FWMark == 0 && vs.Port == 0
		for _, r := range rangesOf(g) {
			zero = zero || r.Port == 0
		}
		if zero {
			c.errorf(vs.Pos, "virtual_server %s: port 0 is only valid for a persistent service; made persistent (persistence_timeout 360)", name)
			vs.PersistenceTimeout = 360
		}
	}

	// Protocol, one-packet scheduling and ha_suspend.
	switch {
	case !hasAddrs:
		if vs.Set.Has("protocol") && vs.FWMark == 0 {
			c.warnf(vs.keyPos("protocol"), "'protocol' has no effect on a group of firewall marks; ignored")
		}
		vs.Protocol = ""
	case !vs.written("protocol"):
		c.warnf(vs.Pos, "virtual_server %s has no protocol; using TCP (keepalived 2.2.7 uses UDP)", name)
	}
	if vs.OPS && hasAddrs && vs.Protocol != "UDP" {
		c.errorf(vs.keyPos("ops"), "'ops' (one-packet scheduling) needs protocol UDP; ignored")
		vs.OPS = false
	}
	if vs.HASuspend && hasMarks {
		c.errorf(vs.keyPos("ha_suspend"), "'ha_suspend' cannot be used with firewall marks; ignored")
		vs.HASuspend = false
	}

	// What real servers inherit, then the quorum on their weights.
	sum := 0
	for _, rs := range vs.RealServers {
		cfg.resolveRealServer(vs, rs)
		sum += rs.Weight
	}
	if int64(vs.Quorum) > int64(sum) {
		c.warnf(vs.keyPos("quorum"), "quorum %d of virtual_server %s exceeds the total weight %d of its real servers; quorum reduced to %d", vs.Quorum, name, sum, sum)
		vs.Quorum = uint32(sum)
	}
	if vs.Hysteresis > 0 && vs.Hysteresis >= vs.Quorum {
		h := max(vs.Quorum, 1) - 1
		c.warnf(vs.keyPos("hysteresis"), "hysteresis %d is not below quorum %d; hysteresis set to %d", vs.Hysteresis, vs.Quorum, h)
		vs.Hysteresis = h
	}
	vs.SMTPAlert = cfg.smtpAlert(vs.Set, vs.SMTPAlert, false)

	for _, rs := range vs.RealServers {
		cks := rs.Checkers[:0]
		for _, ck := range rs.Checkers {
			if cfg.resolveChecker(c, rs, ck) {
				cks = append(cks, ck)
			}
		}
		rs.Checkers = cks
		if len(cks) == 0 {
			rs.Checkers = nil
		}
	}
	return true
}

// groupFamily returns the address family of the group's entries: "" if they name none
// (firewall marks without a family), mixed if they name both.
func groupFamily(g *VirtualServerGroup) (fam string, mixed bool) {
	note := func(f string) {
		if fam != "" && f != fam {
			mixed = true
		}
		fam = f
	}
	for _, r := range g.Ranges {
		note(afName(r.First.Is6()))
	}
	for _, m := range g.FWMarks {
		if m.IPFamily != "" {
			note(m.IPFamily)
		}
	}
	if mixed {
		return "", true
	}
	return fam, false
}

// ipWord names an address family in messages.
func ipWord(isV6 bool) string {
	if isV6 {
		return "IPv6"
	}
	return "IPv4"
}

// familyFromServers is the family of a service that has no address (fwmark): that of
// its first non-tunnelled real or sorry server, else that shared by all its real
// servers, else IPv4.
func familyFromServers(vs *VirtualServer) string {
	for _, rs := range vs.RealServers {
		if rs.Forwarding.Method != "TUN" {
			return afName(rs.Addr.Is6())
		}
	}
	if ss := vs.SorryServer; ss != nil && ss.Forwarding.Method != "TUN" {
		return afName(ss.Addr.Is6())
	}
	fam := ""
	for _, rs := range vs.RealServers {
		f := afName(rs.Addr.Is6())
		if fam != "" && f != fam {
			return "inet"
		}
		fam = f
	}
	if fam == "" {
		return "inet"
	}
	return fam
}

func rangesOf(g *VirtualServerGroup) []AddrRange {
	if g == nil {
		return nil
	}
	return g.Ranges
}

// serverPort settles the port of a real or sorry server of vs.
func (c *ctx) serverPort(vs *VirtualServer, port *uint16, f Forwarding, what string, pos Pos) {
	switch {
	case vs.Group != "":
	case vs.FWMark != 0:
		if f.Method != "NAT" && *port != 0 {
			c.warnf(pos, "%s: a port is meaningless for a fwmark service with lvs_method %s; port cleared", what, f.Method)
			*port = 0
		}
	case *port == 0:
		*port = vs.Port
	case f.Method != "NAT" && *port != vs.Port:
		c.warnf(pos, "%s: port %d differs from the virtual server's %d, which only NAT allows; using %d", what, *port, vs.Port, vs.Port)
		*port = vs.Port
	}
}

// smtpAlert resolves smtp_alert: the block's own, else global_defs smtp_alert_checker,
// else smtp_alert, else def.
func (cfg *Config) smtpAlert(set Keys, own, def bool) bool {
	switch {
	case set.Has("smtp_alert"):
		return own
	case cfg.Global.SMTPAlertChecker != nil:
		return *cfg.Global.SMTPAlertChecker
	case cfg.Global.SMTPAlert != nil:
		return *cfg.Global.SMTPAlert
	}
	return def
}

// resolveRealServer fills in what rs inherits from vs.
func (cfg *Config) resolveRealServer(vs *VirtualServer, rs *RealServer) {
	if !rs.Set.Has("weight") {
		rs.Weight = vs.Weight
	}
	if !rs.Set.Has("delay_loop") {
		rs.DelayLoop = vs.DelayLoop
	}
	if !rs.Set.Has("connect_timeout") {
		rs.ConnectTimeout = vs.ConnectTimeout
	}
	if !rs.Set.Has("retry") && vs.Retry != nil {
		v := *vs.Retry
		rs.Retry = &v
	}
	if !rs.Set.Has("delay_before_retry") && vs.DelayBeforeRetry != nil {
		v := *vs.DelayBeforeRetry
		rs.DelayBeforeRetry = &v
	}
	if !rs.Set.Has("warmup") && vs.Warmup != nil {
		v := *vs.Warmup
		rs.Warmup = &v
	}
	if !rs.Set.Has("alpha") {
		rs.Alpha = vs.Alpha
	}
	if !rs.Set.Has("inhibit_on_failure") {
		rs.InhibitOnFailure = vs.InhibitOnFailure
	}
	if !rs.Set.Has("virtualhost") {
		rs.Virtualhost = vs.Virtualhost
	}
	rs.SMTPAlert = cfg.smtpAlert(rs.Set, rs.SMTPAlert, true)
}

// checkerNeedsPort lists the checkers that connect to a port.
var checkerNeedsPort = map[string]bool{
	"TCP_CHECK": true, "HTTP_GET": true, "SSL_GET": true, "SMTP_CHECK": true, "UDP_CHECK": true, "DNS_CHECK": true,
}

// resolveChecker fills in what ck inherits from rs and the checker type's defaults, and
// checks it; false if it must be dropped.
func (cfg *Config) resolveChecker(c *ctx, rs *RealServer, ck *Checker) bool {
	if f := ck.File; f != nil {
		var names []string
		for _, tf := range cfg.TrackFiles {
			if tf.Name == f.TrackFile {
				f.Path = tf.File
				if !ck.Set.Has("weight") {
					f.Weight, f.Reverse = tf.Weight, tf.Reverse
				}
				return true
			}
			names = append(names, tf.Name)
		}
		hint := ""
		if sg := suggest(f.TrackFile, names); sg != "" {
			hint = " (did you mean '" + sg + "'?)"
		}
		c.errorf(f.at, "FILE_CHECK: no track_file named '%s'%s; checker ignored", f.TrackFile, hint)
		return false
	}
	if ck.Type == "TCP_CHECK" && ck.Conn != nil {
		ck.Conn.CloseFIN = cfg.Global.TCPCheckClose == "fin"
	}
	t := ck.Timing
	if !ck.Set.Has("alpha") {
		ck.Alpha = rs.Alpha
	}
	if !ck.Set.Has("delay_loop") {
		t.DelayLoop = rs.DelayLoop
	}
	if !ck.Set.Has("connect_timeout") {
		t.ConnectTimeout = rs.ConnectTimeout
	}
	if !ck.Set.Has("retry") {
		switch {
		case rs.Retry != nil:
			t.Retry = *rs.Retry
		case ck.Type == "DNS_CHECK":
			t.Retry = 3
		case ck.Type == "MISC_CHECK":
			t.Retry = 0
		default:
			t.Retry = 1
		}
	}
	if !ck.Set.Has("delay_before_retry") {
		switch {
		case rs.DelayBeforeRetry != nil:
			t.DelayBeforeRetry = *rs.DelayBeforeRetry
		case ck.HTTP != nil:
			t.DelayBeforeRetry = Seconds(3)
		case ck.DNS != nil:
			t.DelayBeforeRetry = t.DelayLoop
		default:
			t.DelayBeforeRetry = Seconds(1)
		}
	}
	if !ck.Set.Has("warmup") {
		t.Warmup = t.DelayLoop
		if rs.Warmup != nil {
			t.Warmup = *rs.Warmup
		}
	}
	if ck.Misc != nil && ck.Misc.Timeout == 0 {
		ck.Misc.Timeout = t.DelayLoop
	}
	if h := ck.HTTP; h != nil {
		if !ck.Set.Has("virtualhost") {
			h.Virtualhost = rs.Virtualhost
		}
		for _, u := range h.URLs {
			if !u.Set.Has("virtualhost") {
				u.Virtualhost = h.Virtualhost
			}
		}
	}
	co := ck.Conn
	if co == nil {
		return true
	}
	if !co.ConnectIP.IsValid() {
		co.ConnectIP = rs.Addr
	}
	if co.ConnectPort == 0 && checkerNeedsPort[ck.Type] {
		co.ConnectPort = rs.Port
	}
	if co.BindTo.IsValid() && co.BindTo.Is6() != co.ConnectIP.Is6() {
		c.errorf(ck.Pos, "%s: bindto %s and connect_ip %s are of different address families; checker ignored", ck.Type, co.BindTo, co.ConnectIP)
		return false
	}
	for _, a := range []netip.Addr{co.ConnectIP, co.BindTo} {
		if a.Is6() && a.IsLinkLocalUnicast() && co.BindIf == "" && a.Zone() == "" {
			c.errorf(ck.Pos, "%s: link-local address %s needs bind_if; checker ignored", ck.Type, a)
			return false
		}
	}
	if co.ConnectPort == 0 && checkerNeedsPort[ck.Type] {
		c.warnf(ck.Pos, "%s of real_server %s has no port to connect to (set connect_port)", ck.Type, rs.Addr)
	}
	return true
}

// lvsScripts returns every script of the LVS side (quorum_up/down, notify_up/down,
// misc_path), for the script-security checks.
func (cfg *Config) lvsScripts() []*Script {
	var out []*Script
	add := func(s *Script) {
		if s != nil {
			out = append(out, s)
		}
	}
	for _, vs := range cfg.VirtualServers {
		add(vs.QuorumUp)
		add(vs.QuorumDown)
		for _, rs := range vs.RealServers {
			add(rs.NotifyUp)
			add(rs.NotifyDown)
			for _, ck := range rs.Checkers {
				if ck.Misc != nil {
					add(ck.Misc.Path)
				}
			}
		}
	}
	return out
}
