package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// NFTFirewall is the Linux Firewall. It lays its nftables tables out as keepalived 2.2
// does, one per address family in use, both named after global_defs `nftables`:
//
//	table ip NAME:  set vips (ipv4_addr)
//	                chain in  (filter hook input  priority -1, policy accept): ip daddr @vips drop
//	                chain out (filter hook output priority -1, policy accept): ip saddr @vips drop
//	table ip6 NAME: the same with ipv6_addr, preceded in both chains by
//	                icmpv6 type @neighbor-discovery accept (neighbour solicitations and
//	                advertisements, so that the address still resolves), and
//	                ip6 daddr/saddr fe80::-febf:... goto in_link_local/out_link_local,
//	                whose rules match a link-local address together with its interface
//	                (set vips_link_local, ipv6_addr . ifname).
//
// ARP is not IP and is never filtered, so a master with no_accept still answers ARP for
// its addresses; VRRP adverts come from the interface's own address and never match.
//
// The firewall reconciles instead of replaying: every change rewrites the tables from
// the owners' lists in one nftables transaction (each table deleted and recreated
// inside the batch, so the rules never lapse), and a family with nothing blocked has no
// table at all. Tables of that name left by a crashed predecessor are removed when the
// firewall is created, and Close removes ours.
//
// It works in the network namespace of the thread that called NewNFTFirewall: each
// exchange opens its netlink socket in that namespace (setns, which needs
// CAP_SYS_ADMIN as well as CAP_NET_ADMIN) and has a deadline. It is safe for
// concurrent use.
type NFTFirewall struct {
	table string

	mu     sync.Mutex
	ns     vnetns.NsHandle
	owners map[string][]*parser.VIP
	closed bool
}

var _ Firewall = (*NFTFirewall)(nil)

// nftChainPriority is keepalived's default nftables_priority: just before the usual
// filter tables (priority 0), so that no accept there lets the traffic through.
const nftChainPriority = -1

// Names inside our tables, keepalived's.
const (
	nftSetVIPs      = "vips"
	nftSetND        = "neighbor-discovery"
	nftSetLinkLocal = "vips_link_local"
	nftChainIn      = "in"
	nftChainOut     = "out"
	nftChainInLL    = "in_link_local"
	nftChainOutLL   = "out_link_local"
)

// Offsets of the addresses in the IPv4 and IPv6 headers.
const (
	ip4SrcOffset = 12
	ip4DstOffset = 16
	ip6SrcOffset = 8
	ip6DstOffset = 24
)

// errFirewallClosed is returned by a firewall used after Close.
var errFirewallClosed = errors.New("nftables firewall closed")

// NewNFTFirewall returns the firewall using the nftables tables named table, in the
// calling thread's network namespace, after removing tables of that name left by a
// previous run.
func NewNFTFirewall(table string) (*NFTFirewall, error) {
	ns, err := vnetns.Get()
	if err != nil {
		return nil, fmt.Errorf("nftables firewall: current network namespace: %w", err)
	}
	f := &NFTFirewall{table: table, ns: ns, owners: map[string][]*parser.VIP{}}
	if err := f.apply(); err != nil {
		ns.Close()
		return nil, fmt.Errorf("remove leftover tables: %w", err)
	}
	return f, nil
}

// Block makes vips the owner's blocked addresses and rewrites the tables. When the
// kernel refuses, the owner's list is kept: the next call installs it.
func (f *NFTFirewall) Block(owner string, vips []*parser.VIP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errFirewallClosed
	}
	f.owners[owner] = slices.Clone(vips)
	return f.apply()
}

// Unblock forgets the owner's list and rewrites the tables; an owner without a list
// changes nothing and touches no kernel state.
func (f *NFTFirewall) Unblock(owner string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errFirewallClosed
	}
	if _, ok := f.owners[owner]; !ok {
		return nil
	}
	delete(f.owners, owner)
	return f.apply()
}

// Where names the tables.
func (f *NFTFirewall) Where() string {
	return "nftables tables ip/ip6 " + f.table
}

// Close removes the tables and releases the namespace; the firewall cannot be used
// afterwards.
func (f *NFTFirewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	clear(f.owners)
	err := f.apply()
	f.closed = true
	f.ns.Close()
	if err != nil {
		return fmt.Errorf("remove tables: %w", err)
	}
	return nil
}

// nftAddrs are the addresses blocked in one family: global ones by address, IPv6
// link-local ones with their interface.
type nftAddrs struct {
	global    []netip.Addr
	linkLocal []nftLinkLocal
}

type nftLinkLocal struct {
	addr netip.Addr
	dev  string
}

// desired gathers the owners' lists by family, each address once. f.mu is held.
func (f *NFTFirewall) desired() (v4, v6 nftAddrs) {
	for _, vips := range f.owners {
		for _, v := range vips {
			a := v.Prefix.Addr()
			switch {
			case a.Is4():
				if !slices.Contains(v4.global, a) {
					v4.global = append(v4.global, a)
				}
			case a.IsLinkLocalUnicast():
				if ll := (nftLinkLocal{a, v.Dev}); !slices.Contains(v6.linkLocal, ll) {
					v6.linkLocal = append(v6.linkLocal, ll)
				}
			default:
				if !slices.Contains(v6.global, a) {
					v6.global = append(v6.global, a)
				}
			}
		}
	}
	return v4, v6
}

// apply rewrites both tables from the owners' lists in one transaction. f.mu is held.
func (f *NFTFirewall) apply() error {
	c, err := nftables.New(nftables.WithNetNSFd(int(f.ns)), nftables.WithSockOptions(func(nc *netlink.Conn) error {
		return nc.SetDeadline(time.Now().Add(netlinkTimeout))
	}))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	v4, v6 := f.desired()
	for _, fam := range []struct {
		family nftables.TableFamily
		addrs  nftAddrs
	}{{nftables.TableFamilyIPv4, v4}, {nftables.TableFamilyIPv6, v6}} {
		t := &nftables.Table{Name: f.table, Family: fam.family}
		c.AddTable(t) // so that deleting it cannot fail when it is not there
		c.DelTable(t)
		if len(fam.addrs.global)+len(fam.addrs.linkLocal) == 0 {
			continue
		}
		c.AddTable(t)
		if err := buildNFTTable(c, t, fam.addrs); err != nil {
			return fmt.Errorf("nftables table %s: %w", f.table, err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", f.table, err)
	}
	return nil
}

// buildNFTTable queues the chains, sets and rules of one family's table.
func buildNFTTable(c *nftables.Conn, t *nftables.Table, addrs nftAddrs) error {
	v6 := t.Family == nftables.TableFamilyIPv6
	keyType, src, dst := nftables.TypeIPAddr, uint32(ip4SrcOffset), uint32(ip4DstOffset)
	if v6 {
		keyType, src, dst = nftables.TypeIP6Addr, ip6SrcOffset, ip6DstOffset
	}
	in := c.AddChain(baseChain(t, nftChainIn, nftables.ChainHookInput))
	out := c.AddChain(baseChain(t, nftChainOut, nftables.ChainHookOutput))
	vips := &nftables.Set{Table: t, Name: nftSetVIPs, KeyType: keyType}
	var elems []nftables.SetElement
	for _, a := range addrs.global {
		elems = append(elems, nftables.SetElement{Key: a.AsSlice()})
	}
	if err := c.AddSet(vips, elems); err != nil {
		return fmt.Errorf("set %s: %w", nftSetVIPs, err)
	}
	if v6 {
		if err := buildNFTLinkLocal(c, t, in, out, addrs.linkLocal); err != nil {
			return err
		}
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: dropLookup(vips, dst)})
	c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: dropLookup(vips, src)})
	return nil
}

// buildNFTLinkLocal queues what the IPv6 table has before its address rules: the
// neighbour-discovery exemption and the link-local chains.
func buildNFTLinkLocal(c *nftables.Conn, t *nftables.Table, in, out *nftables.Chain, ll []nftLinkLocal) error {
	nd := &nftables.Set{Table: t, Name: nftSetND, KeyType: nftables.TypeICMP6Type, Constant: true}
	if err := c.AddSet(nd, []nftables.SetElement{{Key: []byte{byte(ipv6.ICMPTypeNeighborSolicitation)}}, {Key: []byte{byte(ipv6.ICMPTypeNeighborAdvertisement)}}}); err != nil {
		return fmt.Errorf("set %s: %w", nftSetND, err)
	}
	llSet := &nftables.Set{Table: t, Name: nftSetLinkLocal, Concatenation: true,
		KeyType: nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeIFName)}
	var elems []nftables.SetElement
	for _, a := range ll {
		key := make([]byte, 16+unix.IFNAMSIZ)
		copy(key, a.addr.AsSlice())
		copy(key[16:], a.dev)
		elems = append(elems, nftables.SetElement{Key: key})
	}
	if err := c.AddSet(llSet, elems); err != nil {
		return fmt.Errorf("set %s: %w", nftSetLinkLocal, err)
	}
	inLL := c.AddChain(&nftables.Chain{Table: t, Name: nftChainInLL})
	outLL := c.AddChain(&nftables.Chain{Table: t, Name: nftChainOutLL})
	for _, ch := range []struct {
		base, ll *nftables.Chain
		offset   uint32
		ifname   expr.MetaKey
	}{{in, inLL, ip6DstOffset, expr.MetaKeyIIFNAME}, {out, outLL, ip6SrcOffset, expr.MetaKeyOIFNAME}} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch.base, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Lookup{SourceRegister: 1, SetName: nd.Name, SetID: nd.ID},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch.base, Exprs: []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: ch.offset, Len: 16},
			&expr.Range{Op: expr.CmpOpEq, Register: 1,
				FromData: netip.MustParseAddr("fe80::").AsSlice(),
				ToData:   netip.MustParseAddr("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff").AsSlice()},
			&expr.Verdict{Kind: expr.VerdictGoto, Chain: ch.ll.Name},
		}})
		// The address fills register 1; the interface name follows in register 2,
		// together the set's concatenated key.
		c.AddRule(&nftables.Rule{Table: t, Chain: ch.ll, Exprs: []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: ch.offset, Len: 16},
			&expr.Meta{Key: ch.ifname, Register: 2},
			&expr.Lookup{SourceRegister: 1, SetName: llSet.Name, SetID: llSet.ID},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	return nil
}

// baseChain is one of our filter chains on a hook, at keepalived's priority, letting
// through what no rule drops.
func baseChain(t *nftables.Table, name string, hook *nftables.ChainHook) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{Table: t, Name: name, Type: nftables.ChainTypeFilter, Hooknum: hook,
		Priority: nftables.ChainPriorityRef(nftChainPriority), Policy: &accept}
}

// dropLookup drops a packet whose address at offset in the network header is in set.
func dropLookup(set *nftables.Set, offset uint32) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: set.KeyType.Bytes},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}
