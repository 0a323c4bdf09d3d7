package vrrp

import (
	"strings"

	"gokeepalived/parser"
)

// Firewall drops the traffic addressed to (and sent from) the virtual addresses of an
// instance that does not accept it, while the instance holds them: keepalived's
// no_accept, which strict mode (vrrp_strict, strict_mode) makes the default. Each owner
// (one instance) has one list of blocked addresses; the firewall drops the union of
// the lists. Implementations reconcile the kernel to that union on every call, so
// repeating a call changes nothing.
type Firewall interface {
	// Block makes vips the owner's blocked addresses, replacing what it had.
	Block(owner string, vips []*parser.VIP) error
	// Unblock drops the owner's list; an owner without one is left alone.
	Unblock(owner string) error
	// Where names where the drop rules live, for logs ("nftables table keepalived").
	Where() string
	// Close removes everything the firewall installed.
	Close() error
}

// DefaultFirewallTable is the name of the nftables tables when global_defs has no
// `nftables TABLE`. It is keepalived's own default ("keepalived"), which keepalived
// also falls back to when no_accept needs a firewall and none is configured: after a
// migration the rules are where an operator used to look (nft list table ip keepalived),
// and a table a crashed keepalived left behind is replaced rather than left to drop
// traffic next to ours.
const DefaultFirewallTable = "keepalived"

// FirewallTable returns the nftables table name a configuration asks for.
func FirewallTable(g *parser.GlobalDefs) string {
	if g.NFTables != "" {
		return g.NFTables
	}
	return DefaultFirewallTable
}

// blocksVIPs tells whether an instance drops traffic to its addresses while it holds
// them: no_accept, unless it is the address owner (priority 255), as in keepalived.
func blocksVIPs(c *parser.VRRPInstance) bool {
	return !c.Accept && c.Priority != 255
}

// NoAcceptReason explains why an instance drops the traffic to its virtual addresses
// while master ("no_accept", "vrrp_strict", "strict_mode", or several joined), or
// returns "" when it does not.
func NoAcceptReason(c *parser.VRRPInstance) string {
	if !blocksVIPs(c) {
		return ""
	}
	var why []string
	if c.Explicit("accept") {
		why = append(why, "no_accept")
	}
	switch {
	case c.Strict && c.Explicit("strict_mode"):
		why = append(why, "strict_mode")
	case c.Strict:
		why = append(why, "vrrp_strict")
	}
	return strings.Join(why, ", ")
}

// block makes the firewall drop the traffic to the instance's addresses, if the
// instance does not accept it. It is called before the addresses are added, so that
// nothing reaches them unfiltered.
func (in *instance) block() {
	if !blocksVIPs(in.cfg) || in.kernel.Firewall == nil {
		return
	}
	if err := in.kernel.Firewall.Block(in.fwOwner, in.vips); err != nil {
		in.fwErrors.Add(1)
		in.log.Error("cannot drop the traffic to the virtual addresses (no_accept)", "err", err)
	}
}

// unblock lets the traffic to the instance's addresses through again (after they have
// been removed, or when a reload turned accept on).
func (in *instance) unblock() {
	if in.kernel.Firewall == nil {
		return
	}
	if err := in.kernel.Firewall.Unblock(in.fwOwner); err != nil {
		in.fwErrors.Add(1)
		in.log.Error("cannot remove the firewall rules of the virtual addresses", "err", err)
	}
}

// logAcceptMode says once, when the instance is set up, that it will drop the traffic
// to its addresses while master and why, or that it cannot: the effect that surprises
// whoever copied a sample with vrrp_strict (keepalived#474 and many more).
func (in *instance) logAcceptMode() {
	why := NoAcceptReason(in.cfg)
	if why == "" {
		return
	}
	if in.kernel.Firewall == nil {
		in.log.Warn("no_accept is not enforced: no firewall; traffic to the virtual addresses is accepted", "because", why)
		return
	}
	in.log.Info("while master, this instance drops all traffic to and from its virtual addresses: "+
		"they will not answer ping or connections; add 'accept' to the vrrp_instance to allow it",
		"because", why, "firewall", in.kernel.Firewall.Where())
}
