package parser

import (
	"net/netip"
	"time"
)

// resolveInstance turns what a vrrp_instance block says into effective values:
// keepalived's defaults, inheritance from global_defs and keepalived's adjustments.
// It runs after the whole file is parsed, since global_defs may come last.
func resolveInstance(c *ctx, v *VRRPInstance, g *GlobalDefs) {
	if !v.Explicit("strict_mode") {
		v.Strict = g.Strict
	}
	resolveFamily(c, v)
	resolveVersion(c, v, g)
	resolveAdvertInt(c, v)
	resolveStateAndPriority(c, v)
	resolveAuth(c, v)
	resolveVMAC(c, v, g)
	resolveVIPs(c, v, g)
	resolvePreempt(c, v)
	resolveInherited(c, v, g)
	if v.TrackSrcIP && !v.SrcIP.IsValid() {
		c.warnf(v.posOf("track_src_ip"), "(%s) track_src_ip has no effect without unicast_src_ip or mcast_src_ip", v.Name)
		v.TrackSrcIP = false
	}
}

// resolveFamily decides the address family and drops the addresses that do not match it.
func resolveFamily(c *ctx, v *VRRPInstance) {
	switch {
	case len(v.VIPs) > 0:
		v.Family = family(v.VIPs[0].Prefix.Addr())
	case v.NativeIPv6:
		v.Family = 6
	case v.SrcIP.IsValid():
		v.Family = family(v.SrcIP)
	case len(v.UnicastPeers) > 0:
		v.Family = family(v.UnicastPeers[0].Addr)
	default:
		v.Family = 4
	}
	if v.NativeIPv6 && v.Family == 4 {
		c.errorf(v.posOf("native_ipv6"), "(%s) native_ipv6 cannot be used with IPv4 addresses; ignored", v.Name)
		v.NativeIPv6 = false
	}
	var vips []*VIP
	for _, a := range v.VIPs {
		if family(a.Prefix.Addr()) != v.Family {
			c.errorf(a.Pos, "(%s) %s: the addresses of virtual_ipaddress must all be IPv%d like the first one (virtual_ipaddress_excluded may mix families); ignored", v.Name, a.Prefix, v.Family)
			continue
		}
		vips = append(vips, a)
	}
	v.VIPs = vips
	if v.SrcIP.IsValid() && family(v.SrcIP) != v.Family {
		c.errorf(v.posOf("src_ip"), "(%s) source address %s is not IPv%d like the instance; ignored", v.Name, v.SrcIP, v.Family)
		v.SrcIP = netip.Addr{}
	}
	var peers []*UnicastPeer
	for _, p := range v.UnicastPeers {
		if family(p.Addr) != v.Family {
			c.errorf(p.Pos, "(%s) unicast peer %s is not IPv%d like the instance; ignored", v.Name, p.Addr, v.Family)
			continue
		}
		peers = append(peers, p)
	}
	v.UnicastPeers = peers
	if v.McastGroup.IsValid() && family(v.McastGroup) != v.Family {
		c.errorf(v.posOf("mcast_dst_ip"), "(%s) mcast_dst_ip %s is not IPv%d like the instance; ignored", v.Name, v.McastGroup, v.Family)
		v.McastGroup = netip.Addr{}
	}
}

// resolveVersion applies the global vrrp_version; IPv6 always uses version 3.
func resolveVersion(c *ctx, v *VRRPInstance, g *GlobalDefs) {
	if !v.Explicit("version") {
		v.Version = g.VRRPVersion
	}
	if v.Family == 6 && v.Version == 2 {
		if v.Explicit("version") {
			c.warnf(v.posOf("version"), "(%s) IPv6 needs VRRP version 3; using version 3", v.Name)
		}
		v.Version = 3
	}
}

// resolveAdvertInt rounds advert_int to what the version can carry: whole seconds
// (1..255) for v2, centiseconds (0.01..40.95) for v3.
func resolveAdvertInt(c *ctx, v *VRRPInstance) {
	if !v.Explicit("advert_int") {
		v.AdvertInt = Seconds(1)
		return
	}
	d := v.AdvertInt.D()
	unit, limit := time.Second, 255*time.Second
	if v.Version == 3 {
		unit, limit = 10*time.Millisecond, 4095*10*time.Millisecond
	}
	if d > limit {
		c.errorf(v.posOf("advert_int"), "(%s) advert_int %s is too long for VRRP version %d; using %s", v.Name, d, v.Version, limit)
		v.AdvertInt = Duration(limit)
		return
	}
	if d%unit == 0 {
		return
	}
	r := min(max((d+unit/2)/unit*unit, unit), limit)
	what := "whole seconds"
	if v.Version == 3 {
		what = "a multiple of 10ms"
	}
	c.warnf(v.posOf("advert_int"), "(%s) the VRRPv%d advert_int must be %s; %s rounded to %s", v.Name, v.Version, what, d, r)
	v.AdvertInt = Duration(r)
}

// resolveStateAndPriority derives each of state and priority from the other when only
// one is given, as keepalived does.
func resolveStateAndPriority(c *ctx, v *VRRPInstance) {
	if !v.Explicit("priority") {
		v.Priority = 100
		if v.State == "MASTER" {
			v.Priority = 255
			c.warnf(v.posOf("state"), "(%s) state MASTER without a priority makes the instance the address owner (priority 255), as in keepalived", v.Name)
		}
	}
	if v.State == "" {
		v.State = "BACKUP"
		if v.Priority == 255 {
			v.State = "MASTER"
		}
	}
	if v.Strict && (v.State == "MASTER") != (v.Priority == 255) {
		want := map[bool]string{true: "MASTER", false: "BACKUP"}[v.Priority == 255]
		c.warnf(v.posOf("state"), "(%s) strict mode: state MASTER needs priority 255 (address owner); using state %s", v.Name, want)
		v.State = want
	}
}

// resolveAuth drops authentication where keepalived ignores it.
func resolveAuth(c *ctx, v *VRRPInstance) {
	a := v.Auth
	if a == nil {
		return
	}
	switch {
	case v.Strict:
		c.warnf(a.Pos, "(%s) strict mode does not allow authentication; ignored", v.Name)
	case v.Version == 3:
		c.warnf(a.Pos, "(%s) VRRP version 3 does not support authentication; ignored", v.Name)
	case v.Family == 6 && a.Type == "AH":
		c.warnf(a.Pos, "(%s) AH authentication cannot be used with IPv6; ignored", v.Name)
	default:
		if a.Type == "AH" && v.State == "MASTER" && v.Priority != 255 {
			c.warnf(v.posOf("state"), "(%s) initial state MASTER is incompatible with AH authentication; using BACKUP", v.Name)
			v.State = "BACKUP"
		}
		return
	}
	v.Auth = nil
}

// maxVIPs is the most addresses an advert can carry (its count field is 8 bits).
const maxVIPs = 255

// resolveVIPs checks the address lists and fills in the interface of each address.
func resolveVIPs(c *ctx, v *VRRPInstance, g *GlobalDefs) {
	if len(v.VIPs) == 0 && !v.NoVIPs && !needsVIP(v) {
		c.warnf(v.Pos, "(%s) no virtual_ipaddress (say no_virtual_ipaddress if that is intended)", v.Name)
	}
	if len(v.VIPs) > maxVIPs {
		c.errorf(v.VIPs[maxVIPs].Pos, "(%s) virtual_ipaddress has %d addresses but an advert carries at most %d; the others are moved to virtual_ipaddress_excluded", v.Name, len(v.VIPs), maxVIPs)
		v.ExcludedVIPs = append(append([]*VIP(nil), v.VIPs[maxVIPs:]...), v.ExcludedVIPs...)
		v.VIPs = v.VIPs[:maxVIPs]
	}
	if v.Family == 6 && len(v.UnicastPeers) == 0 && len(v.VIPs) > 0 && !v.VIPs[0].Prefix.Addr().IsLinkLocalUnicast() {
		c.warnf(v.VIPs[0].Pos, "(%s) the first IPv6 virtual_ipaddress should be a link-local address (RFC 5798)", v.Name)
	}
	dev := v.Interface
	if dev == "" {
		dev = g.DefaultInterface
	}
	for _, list := range [][]*VIP{v.VIPs, v.ExcludedVIPs} {
		for _, a := range list {
			if a.Dev == "" {
				a.Dev = dev
			}
		}
	}
}

// needsVIP tells whether the instance cannot run without a virtual_ipaddress.
func needsVIP(v *VRRPInstance) bool { return v.Version == 3 || v.Family == 6 || v.Strict }

// resolvePreempt applies keepalived's rules between nopreempt, preempt_delay, the
// owner priority, the initial state and strict mode.
func resolvePreempt(c *ctx, v *VRRPInstance) {
	if v.Nopreempt && v.Priority == 255 {
		c.warnf(v.posOf("nopreempt"), "(%s) nopreempt is incompatible with priority 255; cleared", v.Name)
		v.Nopreempt = false
	}
	if v.State == "MASTER" {
		if v.Nopreempt {
			c.warnf(v.posOf("nopreempt"), "(%s) nopreempt will not work with initial state MASTER; cleared", v.Name)
			v.Nopreempt = false
		}
		if v.PreemptDelay != 0 {
			c.warnf(v.posOf("preempt_delay"), "(%s) preempt_delay will not work with initial state MASTER; cleared", v.Name)
			v.PreemptDelay = 0
		}
	}
	if v.PreemptDelay != 0 && v.Strict {
		c.warnf(v.posOf("preempt_delay"), "(%s) preempt_delay is incompatible with strict mode; cleared", v.Name)
		v.PreemptDelay = 0
	}
	if v.PreemptDelay != 0 && v.Nopreempt {
		c.warnf(v.posOf("preempt_delay"), "(%s) preempt_delay is incompatible with nopreempt; cleared", v.Name)
		v.PreemptDelay = 0
	}
}

// strictReset clears an explicit setting that strict mode forbids.
func strictReset[T comparable](c *ctx, v *VRRPInstance, key string, val *T, want T) {
	if v.Strict && *val != want {
		c.warnf(v.posOf(key), "(%s) strict mode does not allow %s; reset", v.Name, key)
		*val = want
	}
}

// resolveInherited fills in what the instance inherits from global_defs (or from
// strict mode) when its block does not set it.
func resolveInherited(c *ctx, v *VRRPInstance, g *GlobalDefs) {
	inherit := func(key string, dst *int, global int) {
		if !v.Explicit(key) {
			*dst = global
		}
	}
	inheritD := func(key string, dst *Duration, global Duration) {
		if !v.Explicit(key) {
			*dst = global
		}
	}
	inheritD("garp_master_delay", &v.GARPMasterDelay, g.GARPMasterDelay)
	inherit("garp_master_repeat", &v.GARPMasterRepeat, g.GARPMasterRepeat)
	inheritD("garp_master_refresh", &v.GARPMasterRefresh, g.GARPMasterRefresh)
	inherit("garp_master_refresh_repeat", &v.GARPMasterRefreshRepeat, g.GARPMasterRefreshRepeat)
	inherit("down_timer_adverts", &v.DownTimerAdverts, g.DownTimerAdverts)

	// The lower-priority GARP settings default to the global ones, which default to the
	// master ones; strict mode wants none.
	lowDelay, lowRepeat := g.GARPMasterDelay, g.GARPMasterRepeat
	if g.GARPLowerPrioDelay != nil {
		lowDelay = *g.GARPLowerPrioDelay
	}
	if g.GARPLowerPrioRepeat != nil {
		lowRepeat = *g.GARPLowerPrioRepeat
	}
	if v.Strict {
		lowDelay, lowRepeat = 0, 0
	}
	inheritD("garp_lower_prio_delay", &v.GARPLowerPrioDelay, lowDelay)
	inherit("garp_lower_prio_repeat", &v.GARPLowerPrioRepeat, lowRepeat)
	strictReset(c, v, "garp_lower_prio_delay", &v.GARPLowerPrioDelay, 0)
	strictReset(c, v, "garp_lower_prio_repeat", &v.GARPLowerPrioRepeat, 0)

	if !v.Explicit("lower_prio_no_advert") {
		v.LowerPrioNoAdvert = v.Strict || g.LowerPrioNoAdvert
	}
	strictReset(c, v, "lower_prio_no_advert", &v.LowerPrioNoAdvert, true)
	if !v.Explicit("owner_ignore_adverts") {
		v.OwnerIgnoreAdverts = g.OwnerIgnoreAdverts
	}
	if !v.Explicit("higher_prio_send_advert") {
		v.HigherPrioSendAdvert = !v.Strict && g.HigherPrioSendAdvert
	}
	strictReset(c, v, "higher_prio_send_advert", &v.HigherPrioSendAdvert, false)

	if !v.Explicit("accept") {
		v.Accept = !v.Strict
	} else if v.Accept && v.Strict && v.Priority != 255 && v.Version == 2 {
		c.warnf(v.posOf("accept"), "(%s) accept mode does not comply with RFC 3768 (VRRPv2) in strict mode; cleared", v.Name)
		v.Accept = false
	}

	if !v.Explicit("skip_check_adv_addr") {
		v.SkipCheckAdvAddr = g.SkipCheckAdvAddr
	}
	if !v.Explicit("check_unicast_src") {
		v.CheckUnicastSrc = g.CheckUnicastSrc
	}
	for _, p := range v.UnicastPeers {
		if p.MinTTL != nil || p.MaxTTL != nil {
			v.CheckUnicastSrc = true // TTL limits turn on the source check
		}
	}
	if !v.Explicit("smtp_alert") {
		v.SMTPAlert = globalSMTPAlert(g)
	}
	if !v.Explicit("notify_priority_changes") {
		v.NotifyPriorityChanges = g.NotifyPriorityChanges
	}
	if !v.McastGroup.IsValid() {
		v.McastGroup = g.MulticastGroup4
		if v.Family == 6 {
			v.McastGroup = g.MulticastGroup6
		}
	}
}

// globalSMTPAlert is the smtp_alert default of instances and sync groups.
func globalSMTPAlert(g *GlobalDefs) bool {
	switch {
	case g.SMTPAlertVRRP != nil:
		return *g.SMTPAlertVRRP
	case g.SMTPAlert != nil:
		return *g.SMTPAlert
	}
	return false
}
