package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// netlinkTimeout bounds every netlink request: the handle's socket gets it as its send
// and receive timeout, so a kernel that never answers makes the call fail with EAGAIN
// instead of hanging the engine.
const netlinkTimeout = 5 * time.Second

// netlinkDumpRetries is how many times a dump interrupted by a concurrent change
// (netlink.ErrDumpInterrupted) is tried before giving up. A partial dump is never used.
const netlinkDumpRetries = 5

// watchRcvBuf is the receive buffer asked for the address subscription, so that a
// burst of changes (an interface with many addresses going away) does not overflow
// it. The kernel caps it at net.core.rmem_max; forcing past that would need
// CAP_NET_ADMIN in the initial user namespace.
const watchRcvBuf = 1 << 20

// NetlinkAddrs is the Linux AddrManager: it installs virtual addresses with rtnetlink
// in one network namespace, the one of the thread that called NewAddrManager.
//
// Addresses are added with RTM_NEWADDR and NLM_F_REPLACE (ip addr replace), so adding
// an address that is present succeeds and refreshes its attributes. IPv6 addresses are
// always added with IFA_F_NODAD, as keepalived does: the address is usable at once (an
// unsolicited neighbour advertisement can be sent from it straight away), and a VIP
// that briefly exists on two nodes during a split brain does not end up "dadfailed"
// for good. VRRP is the duplicate detection for these addresses.
//
// Deleting the primary IPv4 address of a subnet also deletes its secondaries unless
// net.ipv4.conf.IF.promote_secondaries is set (keepalived's promote_secondaries).
// A VIP added after the interface's own address of the same subnet is a secondary,
// whose removal touches nothing else.
//
// A NetlinkAddrs is safe for concurrent use.
type NetlinkAddrs struct {
	h       *netlink.Handle
	ownsH   bool // h was created here and is closed by Close
	ns      vnetns.NsHandle
	initErr error

	// OnWatchError, when set before Watch is called, receives the subscription
	// errors that do not end Watch (a message that cannot be parsed, a message
	// from a sender other than the kernel). It is called from another goroutine.
	OnWatchError func(error)
}

var _ AddrManager = (*NetlinkAddrs)(nil)

// NewAddrManager returns an AddrManager using h, or, when h is nil, a new rtnetlink
// handle in the network namespace of the calling thread. A given h must belong to
// that namespace too: Watch subscribes there. The handle's socket timeout is set to
// bound every request. Close releases what NewAddrManager opened (never h itself).
//
// An error opening the handle or the namespace is returned by every method.
func NewAddrManager(h *netlink.Handle) *NetlinkAddrs {
	m := &NetlinkAddrs{h: h, ns: vnetns.None()}
	if h == nil {
		nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			m.initErr = fmt.Errorf("open rtnetlink handle: %w", err)
			return m
		}
		m.h, m.ownsH = nh, true
	}
	if err := m.h.SetSocketTimeout(netlinkTimeout); err != nil {
		m.initErr = fmt.Errorf("set rtnetlink socket timeout: %w", err)
		return m
	}
	ns, err := vnetns.Get()
	if err != nil {
		m.initErr = fmt.Errorf("current network namespace: %w", err)
		return m
	}
	m.ns = ns
	return m
}

// Close releases the namespace reference and, when NewAddrManager opened it, the
// netlink handle. The manager must not be used afterwards.
func (m *NetlinkAddrs) Close() error {
	var err error
	if m.ns.IsOpen() {
		if cerr := m.ns.Close(); cerr != nil {
			err = fmt.Errorf("close network namespace: %w", cerr)
		}
	}
	if m.ownsH && m.h != nil {
		m.h.Close()
	}
	return err
}

// addrScopes maps the address scope names of ip(8) to rtnetlink scopes.
var addrScopes = map[string]int{
	"":        unix.RT_SCOPE_UNIVERSE,
	"global":  unix.RT_SCOPE_UNIVERSE,
	"site":    unix.RT_SCOPE_SITE,
	"link":    unix.RT_SCOPE_LINK,
	"host":    unix.RT_SCOPE_HOST,
	"nowhere": unix.RT_SCOPE_NOWHERE,
}

// maxAddrLabel is the longest address label the kernel keeps (IFNAMSIZ-1).
const maxAddrLabel = unix.IFNAMSIZ - 1

// checkVIPLabel applies the rules ip(8) applies to "label": IPv4 only, at most 15
// bytes, and starting with the interface name (eth0:vip on eth0).
func checkVIPLabel(v *parser.VIP) error {
	if v.Label == "" {
		return nil
	}
	switch {
	case v.Is6():
		return fmt.Errorf("address %s: a label is IPv4 only (got %q)", v.Prefix, v.Label)
	case len(v.Label) > maxAddrLabel:
		return fmt.Errorf("address %s: label %q is longer than %d bytes", v.Prefix, v.Label, maxAddrLabel)
	case !strings.HasPrefix(v.Label, v.Dev):
		return fmt.Errorf("address %s: label %q must start with the interface name %q (e.g. %s:vip)", v.Prefix, v.Label, v.Dev, v.Dev)
	}
	return nil
}

// prefixIPNet converts a prefix to a net.IPNet keeping the host bits (the address itself).
func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// vipKey is the part of an address the kernel matches on delete: the local address, the
// prefix length and the peer. Labels and flags are left out, so Del removes the
// address whatever label it was given.
func vipKey(v *parser.VIP) *netlink.Addr {
	a := &netlink.Addr{IPNet: prefixIPNet(v.Prefix)}
	if v.Peer.IsValid() {
		a.Peer = prefixIPNet(netip.PrefixFrom(v.Peer, v.Prefix.Bits()))
	}
	return a
}

// vipNetlinkAddr builds the full netlink address for Add.
func vipNetlinkAddr(v *parser.VIP) (*netlink.Addr, error) {
	if err := checkVIPLabel(v); err != nil {
		return nil, err
	}
	scope, ok := addrScopes[v.Scope]
	if !ok {
		return nil, fmt.Errorf("address %s: unknown scope %q", v.Prefix, v.Scope)
	}
	a := vipKey(v)
	a.Label = v.Label
	a.Scope = scope
	if v.Broadcast.IsValid() {
		if v.Is6() || !v.Broadcast.Is4() {
			return nil, fmt.Errorf("address %s: broadcast %s is IPv4 only", v.Prefix, v.Broadcast)
		}
		a.Broadcast = v.Broadcast.AsSlice()
	}
	// Flags go as configured, as ip addr add sends them; IPv6 always gets NODAD
	// (see NetlinkAddrs).
	if v.Is6() {
		a.Flags |= unix.IFA_F_NODAD
	}
	if v.Home {
		a.Flags |= unix.IFA_F_HOMEADDRESS
	}
	if v.MngTmpAddr {
		a.Flags |= unix.IFA_F_MANAGETEMPADDR
	}
	if v.NoPrefixRoute {
		a.Flags |= unix.IFA_F_NOPREFIXROUTE
	}
	if v.AutoJoin {
		a.Flags |= unix.IFA_F_MCAUTOJOIN
	}
	if v.PreferredLft != nil {
		// netlink only sends IFA_CACHEINFO when a lifetime is non-zero, and a zero
		// valid lifetime would mean "expired": the valid lifetime is forever.
		a.PreferedLft = int(*v.PreferredLft)
		a.ValidLft = int(parser.LifetimeForever)
	}
	return a, nil
}

// link resolves the VIP's interface.
func (m *NetlinkAddrs) link(v *parser.VIP) (netlink.Link, error) {
	if m.initErr != nil {
		return nil, m.initErr
	}
	if v.Dev == "" {
		return nil, fmt.Errorf("address %s: no interface", v.Prefix)
	}
	l, err := m.h.LinkByName(v.Dev)
	if err != nil {
		return nil, fmt.Errorf("address %s: interface %s: %w", v.Prefix, v.Dev, err)
	}
	return l, nil
}

// Add installs the address on its interface (ip addr replace). Adding an address that
// is present succeeds.
func (m *NetlinkAddrs) Add(v *parser.VIP) error {
	a, err := vipNetlinkAddr(v)
	if err != nil {
		return err
	}
	l, err := m.link(v)
	if err != nil {
		return err
	}
	if err := m.h.AddrReplace(l, a); err != nil {
		return fmt.Errorf("add %s dev %s: %w", v.Prefix, v.Dev, err)
	}
	return nil
}

// Del removes the address (matched by address, prefix length and peer, whatever its
// label) from its interface. Deleting an address that is not there succeeds.
func (m *NetlinkAddrs) Del(v *parser.VIP) error {
	l, err := m.link(v)
	if err != nil {
		return err
	}
	if err := m.h.AddrDel(l, vipKey(v)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("delete %s dev %s: %w", v.Prefix, v.Dev, err)
	}
	return nil
}

// Has reports whether the address, with the same prefix length (the kernel's notion
// of the same address, and what Del removes), is on its interface.
func (m *NetlinkAddrs) Has(v *parser.VIP) (bool, error) {
	l, err := m.link(v)
	if err != nil {
		return false, err
	}
	family := unix.AF_INET
	if v.Is6() {
		family = unix.AF_INET6
	}
	var list []netlink.Addr
	err = retryNetlinkDump(func() (err error) {
		list, err = m.h.AddrList(l, family)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("list addresses of %s: %w", v.Dev, err)
	}
	for _, a := range list {
		if p, ok := ipNetPrefix(a.IPNet); ok && p == v.Prefix {
			return true, nil
		}
	}
	return false, nil
}

// retryNetlinkDump runs a netlink dump until it is not interrupted, at most netlinkDumpRetries times.
func retryNetlinkDump(dump func() error) error {
	var err error
	for range netlinkDumpRetries {
		if err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
	}
	return fmt.Errorf("dump interrupted %d times in a row: %w", netlinkDumpRetries, err)
}

// ipNetPrefix converts a netlink address to a prefix that keeps the host bits.
func ipNetPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

// Watch calls fn for every address added or removed in the namespace, on any
// interface (the manager's own changes included), until ctx ends; it then returns
// nil. Events already queued when ctx ends may be dropped. It returns an error when
// the subscription cannot be made or dies (typically ENOBUFS: events were lost); the
// caller should then check its addresses with Has and call Watch again.
//
// Ifname is the interface's name when the event is handled, so a renamed interface
// shows its new name. The names of the interfaces seen are cached for the events
// that follow an interface's removal (the kernel unlists the interface before it
// removes its addresses); the name is empty for an interface gone before Watch saw it.
func (m *NetlinkAddrs) Watch(ctx context.Context, fn func(AddrEvent)) error {
	if m.initErr != nil {
		return m.initErr
	}
	done := make(chan struct{})
	updates := make(chan netlink.AddrUpdate, 64)
	var mu sync.Mutex
	var lastErr error
	var stopping atomic.Bool
	report := func(err error) {
		if stopping.Load() {
			return // the socket was closed on purpose
		}
		mu.Lock()
		lastErr = err
		mu.Unlock()
		if m.OnWatchError != nil {
			m.OnWatchError(err)
		}
	}
	ns := m.ns
	if err := netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{
		Namespace: &ns, ErrorCallback: report, ListExisting: false, ReceiveBufferSize: watchRcvBuf,
	}); err != nil {
		return fmt.Errorf("subscribe to address changes: %w", err)
	}
	// The subscription's goroutine closes updates when it ends, which it does once
	// done is closed, provided it is not left blocked on a send: drain.
	defer func() {
		stopping.Store(true)
		close(done)
		for range updates {
		}
	}()
	names, err := m.linkNames()
	if err != nil {
		return err
	}
	limit := 2*len(names) + namesSlack
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				mu.Lock()
				err := lastErr
				mu.Unlock()
				if err == nil {
					return errors.New("address subscription ended")
				}
				return fmt.Errorf("address subscription ended: %w", err)
			}
			p, ok := ipNetPrefix(&u.LinkAddress)
			if !ok {
				report(fmt.Errorf("address update with a bad address %v", u.LinkAddress))
				continue
			}
			if len(names) > limit {
				if fresh, err := m.linkNames(); err == nil {
					names, limit = fresh, 2*len(fresh)+namesSlack
				}
			}
			fn(AddrEvent{Ifname: m.ifname(names, u.LinkIndex), Prefix: p, Added: u.NewAddr})
		}
	}
}

// namesSlack bounds Watch's name cache, which keeps the names of interfaces that are
// gone: past twice the interfaces present plus namesSlack, it is rebuilt from the
// interfaces present.
const namesSlack = 1024

// ifname returns the current name of an interface, or, for one already gone, the
// name last seen in names.
func (m *NetlinkAddrs) ifname(names map[int]string, index int) string {
	if l, err := m.h.LinkByIndex(index); err == nil {
		names[index] = l.Attrs().Name
		return l.Attrs().Name
	}
	return names[index]
}

// linkNames lists the interfaces: index to name.
func (m *NetlinkAddrs) linkNames() (map[int]string, error) {
	var links []netlink.Link
	err := retryNetlinkDump(func() (err error) {
		links, err = m.h.LinkList()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	return names, nil
}

// RemoveResidual removes the addresses of vips that are present, as keepalived does at
// startup ("removing VIPs"): a predecessor that crashed may have left them, and an
// instance starting as BACKUP must not hold them. It returns the addresses it removed;
// it goes on past failures and returns them joined.
func RemoveResidual(am AddrManager, vips []*parser.VIP) (removed []*parser.VIP, err error) {
	var errs []error
	for _, v := range vips {
		has, err := am.Has(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("check residual address %s dev %s: %w", v.Prefix, v.Dev, err))
			continue
		}
		if !has {
			continue
		}
		if err := am.Del(v); err != nil {
			errs = append(errs, fmt.Errorf("remove residual address %s dev %s: %w", v.Prefix, v.Dev, err))
			continue
		}
		removed = append(removed, v)
	}
	return removed, errors.Join(errs...)
}
