package vrrp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetlinkVMACs is the Linux VMACManager. It works in one network namespace, the one of
// the thread that called NewVMACManager: the links through an rtnetlink handle opened
// there, the sysctls (/proc/sys/net, which is per namespace) from a thread that enters
// that namespace for the write and is then discarded.
//
// Like keepalived it sets, on each macvlan, arp_ignore=1 (answer ARP only for its own
// addresses: the VIPs, with the virtual MAC), accept_local=1 (hear an instance's own
// address as a source), rp_filter=0 (receive adverts on an interface without an
// address) and promote_secondaries=1; on the parent arp_ignore=1 and arp_filter=1, so
// that it never answers for the addresses on its macvlans with its own MAC. It also
// sets the parent's arp_announce=2, which keepalived leaves to the administrator (its
// VMAC note): the replies of a VIP leave through the parent, and an ARP request the
// parent sends for them must not carry the VIP as its sender address, or the
// neighbours would learn the VIP at the parent's MAC. The parent's values are saved
// and put back when the last macvlan this manager made on it is deleted. The
// rp_filter of "all" is handled as keepalived does (vmac_rpfilter_linux.go).
//
// A NetlinkVMACs is safe for concurrent use.
type NetlinkVMACs struct {
	mu      sync.Mutex
	h       *netlink.Handle
	ns      vnetns.NsHandle
	initErr error
	owned   map[string]string      // macvlan -> parent, for the parents' restore
	parents map[string]*parentConf // parent -> its saved sysctls
	rpf     *rpFilterSave          // what lowerRPFilter changed
	rpfDone bool                   // lowerRPFilter ran (for the macvlans there are)
}

// parentConf is the ARP sysctls of a parent interface before its first macvlan.
type parentConf struct {
	users map[string]bool
	saved [][2]string
}

var _ VMACManager = (*NetlinkVMACs)(nil)

// vmacSysctls are set on every macvlan; parentSysctls on its parent.
var (
	vmacSysctls   = [][2]string{{"arp_ignore", "1"}, {"accept_local", "1"}, {"rp_filter", "0"}, {"promote_secondaries", "1"}}
	parentSysctls = [][2]string{{"arp_ignore", "1"}, {"arp_filter", "1"}, {"arp_announce", "2"}}
)

// NewVMACManager returns a VMACManager for the network namespace of the calling
// thread. An error opening the handle or the namespace is returned by every method.
func NewVMACManager() *NetlinkVMACs {
	m := &NetlinkVMACs{ns: vnetns.None(), owned: map[string]string{}, parents: map[string]*parentConf{}}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		m.initErr = fmt.Errorf("open rtnetlink handle: %w", err)
		return m
	}
	m.h = h
	if err := h.SetSocketTimeout(netlinkTimeout); err != nil {
		m.initErr = fmt.Errorf("set rtnetlink socket timeout: %w", err)
		return m
	}
	if m.ns, err = vnetns.Get(); err != nil {
		m.initErr = fmt.Errorf("current network namespace: %w", err)
	}
	return m
}

// Close releases the handle and the namespace reference; the macvlans stay.
func (m *NetlinkVMACs) Close() error {
	if m.h != nil {
		m.h.Close()
	}
	if m.ns.IsOpen() {
		if err := m.ns.Close(); err != nil {
			return fmt.Errorf("close network namespace: %w", err)
		}
	}
	return nil
}

// Ensure makes spec's macvlan exist, up, with its sysctls and its parent's.
func (m *NetlinkVMACs) Ensure(spec VMACSpec) error {
	if m.initErr != nil {
		return m.initErr
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	parent, err := m.h.LinkByName(spec.Parent)
	if err != nil {
		return fmt.Errorf("vmac %s: parent %s: %w", spec.Name, spec.Parent, err)
	}
	if !m.rpfDone {
		m.rpfDone = true
		if m.rpf, err = m.lowerRPFilter(); err != nil {
			return fmt.Errorf("vmac %s: all/rp_filter: %w", spec.Name, err)
		}
	}
	link, err := m.reconcile(spec, parent)
	if err != nil {
		return err
	}
	if err := m.setSysctls(spec.Name, vmacSysctls); err != nil {
		return fmt.Errorf("vmac %s: %w", spec.Name, err)
	}
	if err := m.setIPv6(link, spec); err != nil {
		return fmt.Errorf("vmac %s: %w", spec.Name, err)
	}
	if err := m.holdParent(spec.Name, spec.Parent); err != nil {
		return fmt.Errorf("vmac %s: parent %s: %w", spec.Name, spec.Parent, err)
	}
	if err := m.h.LinkSetUp(link); err != nil {
		return fmt.Errorf("vmac %s: set up: %w", spec.Name, err)
	}
	return nil
}

// reconcile returns spec's macvlan: the one there when it is right, else a new one
// (replacing a macvlan that is wrong).
func (m *NetlinkVMACs) reconcile(spec VMACSpec, parent netlink.Link) (netlink.Link, error) {
	link, err := m.h.LinkByName(spec.Name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
	case err != nil:
		return nil, fmt.Errorf("vmac %s: %w", spec.Name, err)
	default:
		mv, ok := link.(*netlink.Macvlan)
		if !ok {
			return nil, fmt.Errorf("vmac %s: an interface of that name exists and is a %s, not a macvlan; left alone", spec.Name, link.Type())
		}
		if mv.ParentIndex == parent.Attrs().Index && bytes.Equal(mv.HardwareAddr, spec.MAC) && mv.Mode == netlink.MACVLAN_MODE_PRIVATE {
			return link, nil // left by a previous run, or ours already: adopted
		}
		if err := m.h.LinkDel(link); err != nil {
			return nil, fmt.Errorf("vmac %s: remove the macvlan with another parent, MAC or mode: %w", spec.Name, err)
		}
	}
	mv := &netlink.Macvlan{Mode: netlink.MACVLAN_MODE_PRIVATE, LinkAttrs: netlink.NewLinkAttrs()}
	mv.Name, mv.ParentIndex, mv.HardwareAddr = spec.Name, parent.Attrs().Index, spec.MAC
	if err := m.h.LinkAdd(mv); err != nil {
		return nil, fmt.Errorf("vmac %s: create macvlan on %s: %w", spec.Name, spec.Parent, err)
	}
	link, err = m.h.LinkByName(spec.Name)
	if err != nil {
		return nil, fmt.Errorf("vmac %s: after creating it: %w", spec.Name, err)
	}
	return link, nil
}

// setIPv6 disables IPv6 on a macvlan that needs none (its automatic link-local address
// would be the same on every router), or enables it without the automatic address and
// gives it the instance's link-local source address, as keepalived does.
func (m *NetlinkVMACs) setIPv6(link netlink.Link, spec VMACSpec) error {
	if err := m.disableIPv6(spec.Name, !spec.IPv6); err != nil || !spec.IPv6 {
		return err
	}
	if err := m.h.LinkSetIP6AddrGenMode(link, nl.IN6_ADDR_GEN_MODE_NONE); err != nil {
		return fmt.Errorf("IPv6 address generation off: %w", err)
	}
	if !spec.LinkLocal.IsValid() {
		return nil
	}
	ll := &netlink.Addr{IPNet: &net.IPNet{IP: spec.LinkLocal.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	if err := m.h.AddrReplace(link, ll); err != nil {
		return fmt.Errorf("add link-local %s: %w", spec.LinkLocal, err)
	}
	return nil
}

// disableIPv6 sets net.ipv6.conf.IFNAME.disable_ipv6 in the manager's namespace; a
// kernel without IPv6 has no such key, which is fine.
func (m *NetlinkVMACs) disableIPv6(ifname string, off bool) error {
	if ifNameBad(ifname) {
		return fmt.Errorf("interface name %q", ifname)
	}
	val := "0\n"
	if off {
		val = "1\n"
	}
	return m.inNS(func() error {
		path := "/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6"
		if err := os.WriteFile(path, []byte(val), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("set %s: %w", path, err)
		}
		return nil
	})
}

// holdParent counts name as a macvlan of parent; the first one saves the parent's
// ARP sysctls and sets them.
func (m *NetlinkVMACs) holdParent(name, parent string) error {
	if old, ok := m.owned[name]; ok && old != parent {
		if err := m.releaseParent(name); err != nil {
			return fmt.Errorf("restore the former parent %s: %w", old, err)
		}
	}
	pc := m.parents[parent]
	if pc == nil {
		pc = &parentConf{users: map[string]bool{}}
		for _, kv := range parentSysctls {
			val, err := m.readSysctl(parent, kv[0])
			if err != nil {
				return err
			}
			pc.saved = append(pc.saved, [2]string{kv[0], val})
		}
		if err := m.setSysctls(parent, parentSysctls); err != nil {
			return err
		}
		m.parents[parent] = pc
	}
	pc.users[name] = true
	m.owned[name] = parent
	return nil
}

// releaseParent forgets name; the parent's sysctls are put back after its last one.
func (m *NetlinkVMACs) releaseParent(name string) error {
	parent, ok := m.owned[name]
	if !ok {
		return nil
	}
	delete(m.owned, name)
	pc := m.parents[parent]
	delete(pc.users, name)
	if len(pc.users) > 0 {
		return nil
	}
	delete(m.parents, parent)
	return m.setSysctls(parent, pc.saved)
}

// Delete removes the macvlan name (never an interface of another kind) and puts its
// parent's sysctls back after the last one.
func (m *NetlinkVMACs) Delete(name string) error {
	if m.initErr != nil {
		return m.initErr
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	link, err := m.h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
	case err != nil:
		return fmt.Errorf("vmac %s: %w", name, err)
	default:
		if _, ok := link.(*netlink.Macvlan); !ok {
			return fmt.Errorf("vmac %s: is a %s, not a macvlan; left alone", name, link.Type())
		}
		if err := m.h.LinkDel(link); err != nil {
			return fmt.Errorf("vmac %s: delete: %w", name, err)
		}
	}
	if err := m.releaseParent(name); err != nil {
		return fmt.Errorf("vmac %s: restore the parent's sysctls: %w", name, err)
	}
	if len(m.owned) == 0 && m.rpfDone {
		save := m.rpf
		m.rpf, m.rpfDone = nil, false
		if save != nil {
			if err := m.restoreRPFilter(save); err != nil {
				return fmt.Errorf("vmac %s: %w", name, err)
			}
		}
	}
	return nil
}

// sysctlPath is the IPv4 configuration key of an interface.
func sysctlPath(ifname, key string) (string, error) {
	if ifNameBad(ifname) {
		return "", fmt.Errorf("interface name %q", ifname)
	}
	return "/proc/sys/net/ipv4/conf/" + ifname + "/" + key, nil
}

// ifNameBad rejects what cannot be an interface name in a /proc path.
func ifNameBad(name string) bool {
	return name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00")
}

// setSysctls writes the IPv4 keys of ifname in the manager's namespace.
func (m *NetlinkVMACs) setSysctls(ifname string, kv [][2]string) error {
	return m.inNS(func() error {
		for _, p := range kv {
			path, err := sysctlPath(ifname, p[0])
			if err != nil {
				return err
			}
			if err := os.WriteFile(path, []byte(p[1]+"\n"), 0); err != nil {
				return fmt.Errorf("set %s: %w", path, err)
			}
		}
		return nil
	})
}

// readSysctl reads an IPv4 key of ifname in the manager's namespace.
func (m *NetlinkVMACs) readSysctl(ifname, key string) (string, error) {
	var val string
	err := m.inNS(func() error {
		path, err := sysctlPath(ifname, key)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		val = strings.TrimSpace(string(b))
		return nil
	})
	return val, err
}

// inNS runs fn on a thread in the manager's namespace: a new goroutine locks its
// thread, enters the namespace and never leaves it, so the thread ends with the
// goroutine and no other code ever runs in a namespace it did not choose.
func (m *NetlinkVMACs) inNS(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded when fn returns
		if err := vnetns.Set(m.ns); err != nil {
			done <- fmt.Errorf("enter the network namespace: %w", err)
			return
		}
		done <- fn()
	}()
	return <-done
}
