//go:build vmguest

package vmlab

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// Veth connects the root namespace (interface rootName, left down and without an
// address) to n: the peer interface gets the addresses cidrs and is brought up, lo too,
// with a default route via gw when gw is not empty. It returns the root side.
func Veth(rootName string, n *NS, peer string, cidrs []string, gw string) (netlink.Link, error) {
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: rootName}, PeerName: peer, PeerNamespace: netlink.NsFd(int(n.h))}
	if err := netlink.LinkAdd(v); err != nil {
		return nil, fmt.Errorf("veth %s to %s: %w", rootName, n.Name, err)
	}
	link, err := netlink.LinkByName(rootName)
	if err != nil {
		return nil, err
	}
	h, err := n.Netlink()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	for _, name := range []string{"lo", peer} {
		l, err := h.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", name, n.Name, err)
		}
		if name == peer {
			for _, cidr := range cidrs {
				a, err := netlink.ParseAddr(cidr)
				if err != nil {
					return nil, err
				}
				if err := h.AddrAdd(l, a); err != nil {
					return nil, fmt.Errorf("address %s in %s: %w", cidr, n.Name, err)
				}
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("%s up in %s: %w", name, n.Name, err)
		}
		if name == peer && gw != "" {
			if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gw)}); err != nil {
				return nil, fmt.Errorf("default route in %s: %w", n.Name, err)
			}
		}
	}
	return link, nil
}

// PlugInto connects n to bridge br like [Veth] and makes the root side a port of br,
// up.
func PlugInto(br netlink.Link, rootName string, n *NS, peer string, cidrs []string, gw string) error {
	link, err := Veth(rootName, n, peer, cidrs, gw)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMaster(link, br); err != nil {
		return fmt.Errorf("%s into %s: %w", rootName, br.Attrs().Name, err)
	}
	return netlink.LinkSetUp(link)
}
