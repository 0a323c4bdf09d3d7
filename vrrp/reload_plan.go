package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"gokeepalived/parser"
)

// Identity is what makes two configurations' instances the same instance across a
// reload, as keepalived decides it (vrrp_exist): not the name, but VRID, family,
// interface, unicast or multicast, source address and multicast group. An instance whose
// identity is unchanged keeps its state and its addresses; any other is recreated.
type Identity struct {
	VRID      int
	Family    int
	Interface string
	Unicast   bool
	Src       netip.Addr
	Group     netip.Addr
	// VMAC is use_vmac's macvlan and MAC; "" without. Moving the addresses onto or off
	// a macvlan, or changing its MAC, restarts the instance (as in keepalived).
	VMAC string
}

// IdentityOf returns the identity of a configured instance.
func IdentityOf(c *parser.VRRPInstance) Identity {
	id := Identity{VRID: c.VRID, Family: c.Family, Interface: c.Interface, Unicast: len(c.UnicastPeers) > 0, Src: c.SrcIP}
	if !id.Unicast {
		id.Group = c.McastGroup
	}
	if c.VMAC != nil {
		id.VMAC = c.VMAC.Name + " " + c.VMAC.MAC
	}
	return id
}

// String renders an identity for plans and logs.
func (id Identity) String() string {
	mode := "multicast " + id.Group.String()
	if id.Unicast {
		mode = "unicast"
	}
	src := ""
	if id.Src.IsValid() {
		src = " src " + id.Src.String()
	}
	vmac := ""
	if id.VMAC != "" {
		vmac = ", vmac " + id.VMAC
	}
	return fmt.Sprintf("VRID %d IPv%d on %s, %s%s%s", id.VRID, id.Family, id.Interface, mode, src, vmac)
}

// KeptInstance is an instance present before and after a reload.
type KeptInstance struct {
	Name        string   // new name
	OldName     string   // when renamed
	VIPsAdded   []string // addresses added (only while MASTER do they reach the kernel)
	VIPsRemoved []string
	// RoutesAdded and RoutesRemoved are virtual_routes ("route ...") and virtual_rules
	// ("rule ..."), which also reach the kernel only while MASTER.
	RoutesAdded   []string
	RoutesRemoved []string
	Changed       []string // settings that change, "priority 100 -> 110"
}

// Plan is what a reload changes, computed without touching anything (reload --dry-run).
type Plan struct {
	Added     []string // new instances, started in BACKUP
	Removed   []string // instances stopped: priority 0 if MASTER, addresses removed, notify FAULT or DELETED
	Recreated []string // same name, new identity: removed and added again, so they flap
	Kept      []KeptInstance
	// StaticAdded and StaticRemoved are the static_ipaddress ("address ..."),
	// static_routes ("route ...") and static_rules ("rule ...") entries that change.
	StaticAdded   []string
	StaticRemoved []string
	// VMACsAdded and VMACsRemoved are use_vmac macvlans ("vrrp.51 00:00:5e:00:01:33 on
	// eth0") created or deleted.
	VMACsAdded   []string
	VMACsRemoved []string
}

// PlanReload compares two configurations.
func PlanReload(old, new *parser.Config) Plan {
	var p Plan
	byID := map[Identity]*parser.VRRPInstance{}
	for _, c := range old.Instances {
		byID[IdentityOf(c)] = c
	}
	newNames := map[string]Identity{}
	seen := map[Identity]bool{}
	for _, c := range new.Instances {
		id := IdentityOf(c)
		newNames[c.Name] = id
		o := byID[id]
		if o == nil {
			p.Added = append(p.Added, c.Name)
			continue
		}
		seen[id] = true
		p.Kept = append(p.Kept, keptChanges(o, c))
	}
	for _, c := range old.Instances {
		id := IdentityOf(c)
		if seen[id] {
			continue
		}
		if nid, ok := newNames[c.Name]; ok && nid != id {
			p.Recreated = append(p.Recreated, fmt.Sprintf("%s: %s -> %s", c.Name, id, nid))
			p.Added = slices.DeleteFunc(p.Added, func(n string) bool { return n == c.Name })
			continue
		}
		p.Removed = append(p.Removed, c.Name)
	}
	p.StaticAdded, p.StaticRemoved = textDiff(staticKeys(old), staticKeys(new))
	p.VMACsAdded, p.VMACsRemoved = textDiff(vmacKeys(old), vmacKeys(new))
	return p
}

// vmacKeys renders a configuration's use_vmac macvlans for the plan.
func vmacKeys(cfg *parser.Config) []string {
	var out []string
	for _, c := range cfg.Instances {
		if c.VMAC != nil {
			out = append(out, c.VMAC.Name+" "+c.VMAC.MAC+" on "+c.Interface)
		}
	}
	return out
}

// textDiff returns what new has that old has not, and the other way round.
func textDiff(old, new []string) (added, removed []string) {
	for _, v := range new {
		if !slices.Contains(old, v) {
			added = append(added, v)
		}
	}
	for _, v := range old {
		if !slices.Contains(new, v) {
			removed = append(removed, v)
		}
	}
	return added, removed
}

// staticKeys renders a configuration's static entries for the plan.
func staticKeys(cfg *parser.Config) []string {
	var out []string
	for _, v := range cfg.StaticAddresses {
		out = append(out, "address "+v.Prefix.String()+" dev "+v.Dev)
	}
	for _, r := range cfg.StaticRoutes {
		out = append(out, "route "+r.Text)
	}
	for _, r := range cfg.StaticRules {
		out = append(out, "rule "+r.Text)
	}
	return out
}

// routeKeys renders an instance's virtual_routes and virtual_rules for the plan.
func routeKeys(c *parser.VRRPInstance) []string {
	var out []string
	for _, r := range c.Routes {
		out = append(out, "route "+r.Text)
	}
	for _, r := range c.Rules {
		out = append(out, "rule "+r.Text)
	}
	return out
}

func keptChanges(o, c *parser.VRRPInstance) KeptInstance {
	k := KeptInstance{Name: c.Name}
	if o.Name != c.Name {
		k.OldName = o.Name
	}
	k.VIPsAdded, k.VIPsRemoved = textDiff(vipKeys(o), vipKeys(c))
	k.RoutesAdded, k.RoutesRemoved = textDiff(routeKeys(o), routeKeys(c))
	diff := func(what string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			k.Changed = append(k.Changed, fmt.Sprintf("%s %v -> %v", what, a, b))
		}
	}
	diff("priority", o.Priority, c.Priority)
	diff("advert_int", o.AdvertInt.D(), c.AdvertInt.D())
	diff("version", o.Version, c.Version)
	diff("nopreempt", o.Nopreempt, c.Nopreempt)
	diff("preempt_delay", o.PreemptDelay.D(), c.PreemptDelay.D())
	diff("state", o.State, c.State)
	diff("unicast_peer", peers(o), peers(c))
	diff("accept", o.Accept, c.Accept) // a master's firewall rules follow at once
	diff("vmac_xmit_base", o.VMAC != nil && o.VMAC.XmitBase, c.VMAC != nil && c.VMAC.XmitBase)
	return k
}

// vipKeys renders the addresses as keepalived compares them: address, prefix, device.
func vipKeys(c *parser.VRRPInstance) []string {
	var out []string
	for _, v := range append(slices.Clone(c.VIPs), c.ExcludedVIPs...) {
		out = append(out, v.Prefix.String()+" dev "+v.Dev)
	}
	return out
}

func peers(c *parser.VRRPInstance) string {
	var out []string
	for _, p := range c.UnicastPeers {
		out = append(out, p.Addr.String())
	}
	return strings.Join(out, ",")
}

// String renders the plan for reload --dry-run, one change per line.
func (p Plan) String() string {
	var b strings.Builder
	for _, n := range p.Added {
		fmt.Fprintf(&b, "add instance %s\n", n)
	}
	for _, n := range p.Removed {
		fmt.Fprintf(&b, "remove instance %s\n", n)
	}
	for _, n := range p.Recreated {
		fmt.Fprintf(&b, "recreate instance %s (identity changed: it will flap)\n", n)
	}
	for _, k := range p.Kept {
		if k.OldName != "" {
			fmt.Fprintf(&b, "rename instance %s -> %s (state kept)\n", k.OldName, k.Name)
		}
		for _, v := range k.VIPsAdded {
			fmt.Fprintf(&b, "instance %s: add address %s\n", k.Name, v)
		}
		for _, v := range k.VIPsRemoved {
			fmt.Fprintf(&b, "instance %s: remove address %s\n", k.Name, v)
		}
		for _, r := range k.RoutesAdded {
			fmt.Fprintf(&b, "instance %s: add virtual %s\n", k.Name, r)
		}
		for _, r := range k.RoutesRemoved {
			fmt.Fprintf(&b, "instance %s: remove virtual %s\n", k.Name, r)
		}
		for _, c := range k.Changed {
			fmt.Fprintf(&b, "instance %s: %s\n", k.Name, c)
		}
	}
	for _, v := range p.StaticAdded {
		fmt.Fprintf(&b, "add static %s\n", v)
	}
	for _, v := range p.StaticRemoved {
		fmt.Fprintf(&b, "remove static %s\n", v)
	}
	for _, v := range p.VMACsAdded {
		fmt.Fprintf(&b, "add vmac %s\n", v)
	}
	for _, v := range p.VMACsRemoved {
		fmt.Fprintf(&b, "remove vmac %s\n", v)
	}
	if b.Len() == 0 {
		return "no change\n"
	}
	return b.String()
}
