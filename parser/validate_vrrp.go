package parser

import (
	"sort"
)

// validateVRRP resolves the VRRP side once the whole file is known (global_defs may
// come last) and runs the checks that involve more than one block.
func (cfg *Config) validateVRRP(c *ctx) {
	cfg.Scripts = dedupe(c, "vrrp_script", cfg.Scripts, func(x *VRRPScript) (string, Pos) { return x.Name, x.Pos })
	cfg.TrackFiles = dedupe(c, "track_file", cfg.TrackFiles, func(x *TrackFile) (string, Pos) { return x.Name, x.Pos })
	cfg.TrackProcesses = dedupe(c, "vrrp_track_process", cfg.TrackProcesses, func(x *TrackProcess) (string, Pos) { return x.Name, x.Pos })
	cfg.TrackPings = dedupe(c, "vrrp_track_ping", cfg.TrackPings, func(x *TrackPing) (string, Pos) { return x.Name, x.Pos })
	cfg.SyncGroups = dedupe(c, "vrrp_sync_group", cfg.SyncGroups, func(x *SyncGroup) (string, Pos) { return x.Name, x.Pos })
	cfg.Instances = dedupe(c, "vrrp_instance", cfg.Instances, func(x *VRRPInstance) (string, Pos) { return x.Name, x.Pos })

	var usable []*VRRPInstance
	dropped := map[string]bool{}
	for _, v := range cfg.Instances {
		resolveInstance(c, v, &cfg.Global)
		if !canRun(c, v) {
			dropped[v.Name] = true
			continue
		}
		usable = append(usable, v)
	}
	cfg.Instances = cfg.dropDuplicateVRIDs(c, usable, dropped)
	checkVMACNames(c, cfg.Instances, cfg.Global.VMACPrefix)
	cfg.resolveSyncGroups(c, dropped)
	cfg.resolveTracking(c)
	for _, a := range cfg.StaticAddresses {
		if a.Dev == "" {
			a.Dev = cfg.Global.DefaultInterface
		}
	}
}

// dedupe drops the blocks whose name was already defined, with an error.
func dedupe[T any](c *ctx, kind string, list []*T, key func(*T) (string, Pos)) []*T {
	first := map[string]Pos{}
	var out []*T
	for _, x := range list {
		name, pos := key(x)
		if p, ok := first[name]; ok {
			c.errorf(pos, "%s %s is already defined at %s; this one is ignored", kind, name, p)
			continue
		}
		first[name] = pos
		out = append(out, x)
	}
	return out
}

// canRun reports (as errors) what keeps an instance from running, as keepalived
// refuses it: no valid virtual_router_id or interface, no address where one is
// required, unicast peers in strict mode.
func canRun(c *ctx, v *VRRPInstance) bool {
	ok := true
	fail := func(pos Pos, format string, args ...any) {
		c.errorf(pos, format+"; instance ignored", args...)
		ok = false
	}
	switch {
	case v.VRID == 0 && v.vridSeen:
		fail(v.Pos, "(%s) no valid virtual_router_id", v.Name)
	case v.VRID == 0:
		fail(v.Pos, "(%s) the virtual router id must be set (virtual_router_id 1..255)", v.Name)
	}
	if v.Interface == "" && !(len(v.UnicastPeers) > 0 && v.SrcIP.IsValid() && !v.SrcIP.IsLinkLocalUnicast()) {
		fail(v.Pos, "(%s) 'interface' is missing (only a unicast instance with a non-link-local unicast_src_ip may omit it)", v.Name)
	}
	if len(v.VIPs) == 0 && !v.NoVIPs && needsVIP(v) {
		fail(v.Pos, "(%s) no virtual_ipaddress: VRRP version 3, IPv6 and strict mode need at least one", v.Name)
	}
	if v.Strict && len(v.UnicastPeers) > 0 {
		fail(v.posOf("unicast_peer"), "(%s) unicast peers are not supported in strict mode", v.Name)
	}
	return ok
}

// resolveSyncGroups checks the members of each sync group and links them to it.
// Members that name a dropped instance are left out silently (it was reported).
func (cfg *Config) resolveSyncGroups(c *ctx, dropped map[string]bool) {
	byName := map[string]*VRRPInstance{}
	var names []string
	for _, v := range cfg.Instances {
		byName[v.Name] = v
		names = append(names, v.Name)
	}
	sort.Strings(names)
	var groups []*SyncGroup
	for _, g := range cfg.SyncGroups {
		var members []string
		for i, m := range g.Members {
			v, ok := byName[m]
			switch {
			case dropped[m]:
			case !ok:
				c.errorf(g.memberPos[i], "sync group %s: there is no vrrp_instance '%s'%s; ignored", g.Name, m, didYouMean(m, names))
			case v.SyncGroup != "":
				c.errorf(g.memberPos[i], "sync group %s: %s is already in sync group %s (an instance can be in only one); ignored", g.Name, m, v.SyncGroup)
			default:
				v.SyncGroup = g.Name
				members = append(members, m)
			}
		}
		g.Members = members
		switch len(members) {
		case 0:
			c.errorf(g.Pos, "sync group %s has no valid members ('group { INSTANCE ... }'); ignored", g.Name)
			continue
		case 1:
			c.warnf(g.Pos, "sync group %s has only one member (%s); this is probably not what you want", g.Name, members[0])
		}
		if _, ok := g.at["smtp_alert"]; !ok {
			g.SMTPAlert = globalSMTPAlert(&cfg.Global)
		}
		if _, ok := g.at["notify_priority_changes"]; !ok {
			g.NotifyPriorityChanges = cfg.Global.NotifyPriorityChanges
		}
		groups = append(groups, g)
	}
	cfg.SyncGroups = groups
}

// didYouMean returns " (did you mean 'X'?)" when a known name is close to name.
func didYouMean(name string, known []string) string {
	if sg := suggest(name, known); sg != "" {
		return " (did you mean '" + sg + "'?)"
	}
	return ""
}

// trackTarget is what a track_* line can refer to: its defaults.
type trackTarget struct {
	weight  int
	reverse bool
	used    bool
}

// trackTargets are the objects of one kind that track_* lines refer to.
type trackTargets struct {
	block  string
	byName map[string]*trackTarget
	names  []string
}

func newTargets[T any](block string, list []*T, get func(*T) (string, int, bool)) *trackTargets {
	t := &trackTargets{block: block, byName: map[string]*trackTarget{}}
	for _, x := range list {
		name, w, r := get(x)
		t.byName[name] = &trackTarget{weight: w, reverse: r}
		t.names = append(t.names, name)
	}
	sort.Strings(t.names)
	return t
}

// resolve drops the lines naming an unknown object and fills in the defaults.
func (t *trackTargets) resolve(c *ctx, owner, key string, refs []*TrackRef) []*TrackRef {
	var out []*TrackRef
	for _, r := range refs {
		d, ok := t.byName[r.Name]
		if !ok {
			c.errorf(r.Pos, "%s %s: there is no %s '%s'%s; ignored", owner, key, t.block, r.Name, didYouMean(r.Name, t.names))
			continue
		}
		d.used = true
		if !r.weightSet {
			r.Weight = d.weight
		}
		if !r.reverseSet {
			r.Reverse = d.reverse
		}
		out = append(out, r)
	}
	return out
}

// unused warns about the objects no track_* line refers to.
func (t *trackTargets) unused(c *ctx, pos map[string]Pos) {
	for _, n := range t.names {
		if !t.byName[n].used {
			c.warnf(pos[n], "%s %s is not used by any vrrp_instance or vrrp_sync_group", t.block, n)
		}
	}
}

// resolveTracking resolves the track_* lines of instances and sync groups and applies
// keepalived's rules on weights in sync groups and for address owners.
func (cfg *Config) resolveTracking(c *ctx) {
	scripts := newTargets("vrrp_script", cfg.Scripts, func(x *VRRPScript) (string, int, bool) { return x.Name, x.Weight, x.Reverse })
	files := newTargets("track_file", cfg.TrackFiles, func(x *TrackFile) (string, int, bool) { return x.Name, x.Weight, x.Reverse })
	procs := newTargets("vrrp_track_process", cfg.TrackProcesses, func(x *TrackProcess) (string, int, bool) { return x.Name, x.Weight, x.Reverse })
	pings := newTargets("vrrp_track_ping", cfg.TrackPings, func(x *TrackPing) (string, int, bool) { return x.Name, x.Weight, x.Reverse })

	for _, v := range cfg.Instances {
		owner := "(" + v.Name + ")"
		v.TrackScripts = scripts.resolve(c, owner, "track_script", v.TrackScripts)
		v.TrackFiles = files.resolve(c, owner, "track_file", v.TrackFiles)
		v.TrackProcesses = procs.resolve(c, owner, "track_process", v.TrackProcesses)
		v.TrackPings = pings.resolve(c, owner, "track_ping", v.TrackPings)
		var ifs []*TrackRef
		for _, t := range v.TrackInterfaces {
			if t.Name == v.Interface {
				c.warnf(t.Pos, "(%s) track_interface %s is the instance's own interface (tracked anyway); ignored", v.Name, t.Name)
				continue
			}
			ifs = append(ifs, t)
		}
		v.TrackInterfaces = ifs
	}
	hasOwner := map[string]bool{}
	for _, v := range cfg.Instances {
		switch {
		case v.SyncGroup != "" && !cfg.syncGroup(v.SyncGroup).TrackingWeight:
			ignoreWeightedTrackers(c, v, "sync group "+v.SyncGroup)
		case v.Priority == 255:
			ignoreWeightedTrackers(c, v, "address owner")
		}
		if v.Priority == 255 && v.SyncGroup != "" {
			hasOwner[v.SyncGroup] = true
		}
	}
	for _, g := range cfg.SyncGroups {
		owner := "sync group " + g.Name
		g.TrackScripts = scripts.resolve(c, owner, "track_script", g.TrackScripts)
		g.TrackFiles = files.resolve(c, owner, "track_file", g.TrackFiles)
		g.TrackProcesses = procs.resolve(c, owner, "track_process", g.TrackProcesses)
		g.TrackPings = pings.resolve(c, owner, "track_ping", g.TrackPings)
		if hasOwner[g.Name] {
			for _, refs := range [][]*TrackRef{g.TrackInterfaces, g.TrackScripts, g.TrackFiles, g.TrackProcesses, g.TrackPings} {
				for _, t := range refs {
					if t.Weight != 0 {
						c.warnf(t.Pos, "sync group %s: a member has priority 255, so %s cannot have a weight; weight set to 0", g.Name, t.Name)
						t.Weight = 0
					}
				}
			}
		}
	}
	scripts.unused(c, namePos(cfg.Scripts, func(x *VRRPScript) (string, Pos) { return x.Name, x.Pos }))
	procs.unused(c, namePos(cfg.TrackProcesses, func(x *TrackProcess) (string, Pos) { return x.Name, x.Pos }))
	pings.unused(c, namePos(cfg.TrackPings, func(x *TrackPing) (string, Pos) { return x.Name, x.Pos }))
}

func namePos[T any](list []*T, get func(*T) (string, Pos)) map[string]Pos {
	m := map[string]Pos{}
	for _, x := range list {
		n, p := get(x)
		m[n] = p
	}
	return m
}

func (cfg *Config) syncGroup(name string) *SyncGroup {
	for _, g := range cfg.SyncGroups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// ignoreWeightedTrackers applies keepalived's rule that members of a sync group
// (without sync_group_tracking_weight) and address owners do not use weighted trackers:
// a weighted script, process or ping is dropped, an interface or a track_file left at
// its default weight 1 becomes unweighted (a failure means FAULT).
func ignoreWeightedTrackers(c *ctx, v *VRRPInstance, why string) {
	var ifs []*TrackRef
	for _, t := range v.TrackInterfaces {
		if t.Weight != 0 {
			if why == "address owner" {
				c.warnf(t.Pos, "(%s) ignoring tracked interface %s due to %s", v.Name, t.Name, why)
				continue
			}
			c.warnf(t.Pos, "(%s) ignoring the weight of tracked interface %s due to %s", v.Name, t.Name, why)
			t.Weight = 0
		}
		ifs = append(ifs, t)
	}
	v.TrackInterfaces = ifs
	drop := func(kind string, refs []*TrackRef) []*TrackRef {
		var out []*TrackRef
		for _, t := range refs {
			if t.Weight != 0 {
				c.warnf(t.Pos, "(%s) ignoring tracked %s %s with weight %d due to %s", v.Name, kind, t.Name, t.Weight, why)
				continue
			}
			out = append(out, t)
		}
		return out
	}
	v.TrackScripts = drop("script", v.TrackScripts)
	v.TrackProcesses = drop("process", v.TrackProcesses)
	v.TrackPings = drop("ping", v.TrackPings)
	for _, t := range v.TrackFiles {
		if t.Weight == 1 && !t.weightSet {
			c.warnf(t.Pos, "(%s) ignoring the weight of tracked file %s due to %s (specify weight 0)", v.Name, t.Name, why)
			t.Weight = 0
		}
	}
	v.TrackFiles = drop("file", v.TrackFiles)
}

// dropDuplicateVRIDs drops (and adds to dropped) an instance using the same VRID and
// family on one interface as an earlier one, unless they use different multicast
// groups or disjoint unicast peers.
func (cfg *Config) dropDuplicateVRIDs(c *ctx, list []*VRRPInstance, dropped map[string]bool) []*VRRPInstance {
	type key struct {
		dev       string
		vrid, fam int
	}
	seen := map[key][]*VRRPInstance{}
	var out []*VRRPInstance
	for _, v := range list {
		k := key{v.Interface, v.VRID, v.Family}
		clash := false
		for _, w := range seen[k] {
			if v.Interface != "" && vridClash(v, w) {
				c.errorf(v.Pos, "%s and %s both use VRID %d with IPv%d on interface %s; %s ignored", w.Name, v.Name, v.VRID, v.Family, v.Interface, v.Name)
				dropped[v.Name] = true
				clash = true
				break
			}
		}
		if !clash {
			seen[k] = append(seen[k], v)
			out = append(out, v)
		}
	}
	return out
}

func vridClash(a, b *VRRPInstance) bool {
	ua, ub := len(a.UnicastPeers) > 0, len(b.UnicastPeers) > 0
	switch {
	case !ua && !ub:
		return a.McastGroup == b.McastGroup
	case ua && ub:
		for _, p := range a.UnicastPeers {
			for _, q := range b.UnicastPeers {
				if p.Addr == q.Addr {
					return true
				}
			}
		}
		return false
	}
	return true
}
