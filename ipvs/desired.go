package ipvs

import (
	"errors"
	"fmt"
	"net/netip"

	"gokeepalived/parser"
)

// VirtualServerKey identifies a virtual_server block: its address, port and protocol, its
// firewall mark and family, or its group and protocol.
type VirtualServerKey struct {
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32
	Group    string
	Protocol Protocol // 0 for a firewall-mark virtual server (or a group of marks)
	Family   Family   // 0 for a group mixing IPv4 and IPv6
}

// VSKey returns the key of a parsed virtual server.
func VSKey(vs *parser.VirtualServer) VirtualServerKey {
	return VirtualServerKey{
		Addr: vs.Addr, Port: vs.Port, FWMark: vs.FWMark, Group: vs.Group,
		Protocol: protocolOf(vs.Protocol), Family: familyName(vs.IPFamily),
	}
}

// String names the virtual server as keepalived.conf does: "10.0.0.1 80 TCP",
// "fwmark 7 IPv4", "group web TCP".
func (k VirtualServerKey) String() string {
	switch {
	case k.Group != "":
		return "group " + k.Group + " " + k.Protocol.String()
	case k.FWMark != 0:
		return fmt.Sprintf("fwmark %d %s", k.FWMark, k.Family)
	}
	return fmt.Sprintf("%s %d %s", k.Addr, k.Port, k.Protocol)
}

// RealServerKey identifies a real server of a virtual server.
type RealServerKey struct {
	VS   VirtualServerKey
	Addr netip.Addr
	Port uint16
}

// RSKey returns the key of real server rs of virtual server vs.
func RSKey(vs *parser.VirtualServer, rs *parser.RealServer) RealServerKey {
	return RealServerKey{VS: VSKey(vs), Addr: rs.Addr, Port: rs.Port}
}

// RSHealth is what the checkers say about one real server.
type RSHealth struct {
	// Up is true when all the real server's checkers are up.
	Up bool
	// Weight, when not nil, replaces the configured weight (a MISC_CHECK with
	// misc_dynamic: the exit status minus 2).
	Weight *int
}

// HealthView is the health input of [Desired] and [Pool]. Both are pure: the state that
// keepalived keeps between events comes in here.
type HealthView struct {
	// RealServers holds the health of each real server that a checker has reported on.
	// A real server without an entry is up, unless one of its checkers has alpha: then
	// it starts down until its first success (keepalived.md §2.4 alpha).
	RealServers map[RealServerKey]RSHealth
	// Quorum holds each virtual server's quorum state after the previous pass (from
	// [PoolState.QuorumUp]); hysteresis needs it. A virtual server without an entry
	// starts with the quorum up iff the live weight reaches quorum + hysteresis, as
	// keepalived does at start.
	Quorum map[VirtualServerKey]bool
}

// ServiceSpec is one kernel service of the desired state with its destinations.
type ServiceSpec struct {
	Service Service
	// Destinations are the destinations the service must have, with their weights. The
	// services of one virtual_server_group share this slice: do not modify it.
	Destinations []Destination
	// VS is the virtual_server the service comes from.
	VS VirtualServerKey
	// QuorumUp and SorryActive are the pool state of the virtual server (see [PoolState]).
	QuorumUp    bool
	SorryActive bool
	// HASuspend is ha_suspend: the checkers of this virtual server are to be paused
	// while this director does not hold its address. The VRRP side knows; the engine
	// pauses them. It does not change the service.
	HASuspend bool
}

// MaxGroupRange bounds the addresses of one virtual_server_group range entry: each
// address is a kernel service, and "fd00::/64" must not exhaust memory. A larger entry
// is left out and reported by [Validate].
const MaxGroupRange = 65536

// Desired returns the kernel services that cfg and the checkers' health call for: one
// per address (and port) or firewall mark of each virtual server, group entries
// expanded, with the destinations its pool rules give (see [Pool]). A service that
// appears in two virtual servers is taken from the first; [Validate] reports it. The
// result is in configuration order.
func Desired(cfg *parser.Config, health HealthView) []ServiceSpec {
	return desiredOf(cfg, health, nil)
}

// desiredOf is [Desired] for the virtual servers in only (all of them when only is nil):
// their services in configuration order, without those that an earlier virtual server
// defines, in only or not. It is what a pass over the virtual servers whose health
// changed must converge, and is the part of Desired that comes from them.
func desiredOf(cfg *parser.Config, health HealthView, only map[VirtualServerKey]bool) []ServiceSpec {
	groups := groupsByName(cfg)
	seen := make(map[ServiceKey]bool, len(cfg.VirtualServers))
	var out []ServiceSpec
	for _, vs := range cfg.VirtualServers[:relevant(cfg, only)] {
		svcs, _ := expandServices(vs, groups[vs.Group])
		key := VSKey(vs)
		if only != nil && !only[key] {
			for _, s := range svcs {
				seen[s.Key()] = true
			}
			continue
		}
		if len(svcs) == 0 {
			continue
		}
		pool := Pool(vs, health)
		for _, s := range svcs {
			if seen[s.Key()] {
				continue
			}
			seen[s.Key()] = true
			out = append(out, ServiceSpec{
				Service: s, Destinations: pool.Destinations, VS: key,
				QuorumUp: pool.QuorumUp, SorryActive: pool.SorryActive, HASuspend: vs.HASuspend,
			})
		}
	}
	return out
}

// relevant returns how many of cfg's virtual servers, from the first, can shape
// desiredOf(cfg, _, only): all of them when only is nil, else up to the last one in
// only (a later one cannot take a service from it).
func relevant(cfg *parser.Config, only map[VirtualServerKey]bool) int {
	if only == nil {
		return len(cfg.VirtualServers)
	}
	for i := len(cfg.VirtualServers) - 1; i >= 0; i-- {
		if only[VSKey(cfg.VirtualServers[i])] {
			return i + 1
		}
	}
	return 0
}

// Validate reports what [Desired] leaves out of cfg: group ranges larger than
// [MaxGroupRange], and kernel services that two virtual servers both define.
func Validate(cfg *parser.Config) []error {
	groups := groupsByName(cfg)
	first := map[ServiceKey]VirtualServerKey{}
	var errs []error
	for _, vs := range cfg.VirtualServers {
		key := VSKey(vs)
		svcs, err := expandServices(vs, groups[vs.Group])
		if err != nil {
			errs = append(errs, fmt.Errorf("virtual_server %s: %w", key, err))
		}
		for _, s := range svcs {
			if f, dup := first[s.Key()]; dup {
				errs = append(errs, fmt.Errorf("virtual_server %s: service %s is already defined by virtual_server %s; ignored", key, s.Key(), f))
				continue
			}
			first[s.Key()] = key
		}
	}
	return errs
}

func groupsByName(cfg *parser.Config) map[string]*parser.VirtualServerGroup {
	groups := map[string]*parser.VirtualServerGroup{}
	for _, g := range cfg.VirtualServerGroups {
		groups[g.Name] = g
	}
	return groups
}

// PoolState is the outcome of the pool rules for one virtual server.
type PoolState struct {
	// Destinations are what the kernel services of the virtual server must hold.
	Destinations []Destination
	// LiveWeight is the sum of the weights of the live real servers.
	LiveWeight int64
	// QuorumUp is the quorum state; feed it back through [HealthView.Quorum]. The engine
	// runs quorum_up/quorum_down when it changes.
	QuorumUp bool
	// SorryActive is true while the quorum is lost and a sorry_server replaces the pool.
	SorryActive bool
}

// sorryWeight is the weight keepalived gives a sorry server.
const sorryWeight = 1

// maxWeight is the largest IPVS weight keepalived programs.
const maxWeight = 65535

// Pool applies keepalived's pool rules (keepalived.md §2.4) to virtual server vs:
//
//   - a real server is live when its checkers say so; before they have, it is live unless
//     alpha is set on one of its checkers;
//   - its weight is the configured one, or the one misc_dynamic reported (capped to
//     0..65535);
//   - a live real server is in the pool at its weight; one that is down is removed, or
//     kept at weight 0 with inhibit_on_failure;
//   - the quorum is gained when the live weight reaches quorum + hysteresis and lost when
//     it falls to 0 or below quorum - hysteresis; between the two it stays as it was;
//   - while the quorum is lost and there is a sorry_server, every real server is removed
//     (kept at weight 0 with inhibit_on_failure) and the sorry server is added with
//     weight 1 and its sorry_server_lvs_method; with sorry_server_inhibit it stays at
//     weight 0 while the quorum is up. Without a sorry server, losing the quorum only
//     changes [PoolState.QuorumUp].
func Pool(vs *parser.VirtualServer, health HealthView) PoolState {
	vsKey := VSKey(vs)
	type member struct {
		rs     *parser.RealServer
		live   bool
		weight int
	}
	members := make([]member, 0, len(vs.RealServers))
	var st PoolState
	for _, rs := range vs.RealServers {
		m := member{rs: rs, live: !startsDown(rs), weight: rs.Weight}
		if h, ok := health.RealServers[RealServerKey{VS: vsKey, Addr: rs.Addr, Port: rs.Port}]; ok {
			m.live = h.Up
			if h.Weight != nil {
				m.weight = *h.Weight
			}
		}
		m.weight = min(max(m.weight, 0), maxWeight)
		if m.live {
			st.LiveWeight += int64(m.weight)
		}
		members = append(members, m)
	}

	quorum, hyst := int64(vs.Quorum), int64(vs.Hysteresis)
	up, known := health.Quorum[vsKey]
	switch {
	case !known:
		up = st.LiveWeight >= quorum+hyst
	case !up && st.LiveWeight >= quorum+hyst:
		up = true
	case up && (st.LiveWeight == 0 || st.LiveWeight < quorum-hyst):
		up = false
	}
	st.QuorumUp = up
	st.SorryActive = !up && vs.SorryServer != nil

	index := map[DestKey]int{}
	put := func(d Destination) {
		if i, ok := index[d.Key()]; ok {
			st.Destinations[i] = d
			return
		}
		index[d.Key()] = len(st.Destinations)
		st.Destinations = append(st.Destinations, d)
	}
	for _, m := range members {
		switch {
		case st.SorryActive && m.rs.InhibitOnFailure:
			put(rsDestination(m.rs, 0))
		case st.SorryActive:
		case m.live:
			put(rsDestination(m.rs, m.weight))
		case m.rs.InhibitOnFailure:
			put(rsDestination(m.rs, 0))
		}
	}
	if ss := vs.SorryServer; ss != nil {
		d := Destination{Addr: ss.Addr, Port: ss.Port, Weight: sorryWeight}
		d.Forwarding, d.Tunnel = forwardingOf(ss.Forwarding)
		switch {
		case st.SorryActive:
			put(d) // replaces a real server with the same address and port
		case ss.Inhibit:
			if _, dup := index[d.Key()]; !dup {
				d.Weight = 0
				put(d)
			}
		}
	}
	return st
}

// startsDown reports whether rs is down until its checkers first succeed: one of them
// has alpha (inherited from the real and virtual server).
func startsDown(rs *parser.RealServer) bool {
	for _, ck := range rs.Checkers {
		if ck.Alpha {
			return true
		}
	}
	return false
}

func rsDestination(rs *parser.RealServer, weight int) Destination {
	d := Destination{
		Addr: rs.Addr, Port: rs.Port, Weight: weight,
		UpperThreshold: rs.UThreshold, LowerThreshold: rs.LThreshold,
	}
	d.Forwarding, d.Tunnel = forwardingOf(rs.Forwarding)
	return d
}

// forwardingOf maps lvs_method.
func forwardingOf(f parser.Forwarding) (Forwarding, Tunnel) {
	switch f.Method {
	case "DR":
		return DR, Tunnel{}
	case "TUN":
		t := Tunnel{Port: f.TunPort}
		switch f.TunType {
		case "gue":
			t.Type = TunnelGUE
		case "gre":
			t.Type = TunnelGRE
		}
		switch f.TunCsum {
		case "csum":
			t.Csum = CsumOn
		case "remcsum":
			t.Csum = CsumRemote
		}
		return TUN, t
	}
	return NAT, Tunnel{}
}

func protocolOf(p string) Protocol {
	switch p {
	case "TCP":
		return TCP
	case "UDP":
		return UDP
	case "SCTP":
		return SCTP
	}
	return 0
}

// familyName maps ip_family; "" stays 0.
func familyName(f string) Family {
	switch f {
	case "inet":
		return IPv4
	case "inet6":
		return IPv6
	}
	return 0
}

// orIPv4 returns f, or IPv4 when f is unset (keepalived's default family of a
// firewall-mark service).
func orIPv4(f Family) Family {
	if f == 0 {
		return IPv4
	}
	return f
}

// schedFlagBits maps the scheduler flag keywords (keepalived.md §2.4 lvs_sched); the
// sh and mh names are aliases of the generic flags. "hashed" is accepted by keepalived
// and means nothing: the kernel marks every service hashed.
var schedFlagBits = map[string]SchedFlags{
	"flag-1": FlagSched1, "sh-fallback": FlagSched1, "mh-fallback": FlagSched1,
	"flag-2": FlagSched2, "sh-port": FlagSched2, "mh-port": FlagSched2,
	"flag-3": FlagSched3,
}

// baseService is the part of the services of vs that does not depend on their address.
func baseService(vs *parser.VirtualServer) Service {
	s := Service{
		Protocol:  protocolOf(vs.Protocol),
		Scheduler: vs.Scheduler,
		Timeout:   vs.PersistenceTimeout,
		PEName:    vs.PersistenceEngine,
	}
	for _, f := range vs.SchedFlags {
		s.Flags |= schedFlagBits[f]
	}
	if vs.OPS {
		s.Flags |= FlagOnePacket
	}
	return s
}

// withFamily completes base for family f: the granularity is kept only below the
// family's address length.
func withFamily(base Service, f Family, granularity int) Service {
	base.Family = f
	if base.Timeout != 0 && granularity > 0 && granularity < f.bits() {
		base.Granularity = granularity
	}
	return base
}

// expandServices returns the kernel services of vs (g is its group, if any): one for an
// address or firewall-mark virtual server; for a group, one per address and port of its
// ranges and one per firewall mark. Ranges above [MaxGroupRange] addresses are left
// out, with an error.
func expandServices(vs *parser.VirtualServer, g *parser.VirtualServerGroup) ([]Service, error) {
	base := baseService(vs)
	vsFamily := familyName(vs.IPFamily)
	switch {
	case vs.Group != "" && g == nil:
		return nil, fmt.Errorf("no virtual_server_group %s", vs.Group)
	case vs.Group == "" && vs.FWMark != 0:
		s := withFamily(base, orIPv4(vsFamily), vs.PersistenceGranularity)
		s.Protocol, s.FWMark = 0, vs.FWMark
		return []Service{s}, nil
	case vs.Group == "":
		s := withFamily(base, familyOf(vs.Addr), vs.PersistenceGranularity)
		s.Addr, s.Port = vs.Addr, vs.Port
		return []Service{s}, nil
	}
	var out []Service
	var errs []error
	for _, r := range g.Ranges {
		var addrs []netip.Addr
		for a := r.First; a.IsValid(); a = a.Next() {
			if len(addrs) == MaxGroupRange {
				addrs = nil
				errs = append(errs, fmt.Errorf("virtual_server_group %s: range %s-%s has more than %d addresses; left out", g.Name, r.First, r.Last, MaxGroupRange))
				break
			}
			addrs = append(addrs, a)
			if a == r.Last {
				break
			}
		}
		for _, a := range addrs {
			s := withFamily(base, familyOf(a), vs.PersistenceGranularity)
			s.Addr, s.Port = a, r.Port
			out = append(out, s)
		}
	}
	for _, m := range g.FWMarks {
		f := familyName(m.IPFamily)
		if f == 0 {
			f = orIPv4(vsFamily)
		}
		s := withFamily(base, f, vs.PersistenceGranularity)
		s.Protocol, s.FWMark = 0, m.Mark
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// Notify is a notification the engine owes at shutdown for a virtual server with omega
// (keepalived.md §2.4): notify_down of a live real server, or quorum_down of the
// virtual server. Script is nil when none is configured; the lvs_notify_fifo line is
// due all the same.
type Notify struct {
	VS         VirtualServerKey
	RealServer *RealServerKey // nil: the virtual server's quorum_down
	Script     *parser.Script
}

// OmegaNotifies returns, in configuration order, what keepalived runs when it stops and
// removes the virtual servers that have omega: notify_down for each live real server,
// then quorum_down. Virtual servers without omega notify nothing at shutdown. The engine
// runs these before [Stop].
func OmegaNotifies(cfg *parser.Config, health HealthView) []Notify {
	var out []Notify
	for _, vs := range cfg.VirtualServers {
		if !vs.Omega {
			continue
		}
		key := VSKey(vs)
		for _, rs := range vs.RealServers {
			rk := RealServerKey{VS: key, Addr: rs.Addr, Port: rs.Port}
			live := !startsDown(rs)
			if h, ok := health.RealServers[rk]; ok {
				live = h.Up
			}
			if live {
				out = append(out, Notify{VS: key, RealServer: &rk, Script: rs.NotifyDown})
			}
		}
		out = append(out, Notify{VS: key, Script: vs.QuorumDown})
	}
	return out
}
