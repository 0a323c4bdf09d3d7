package vrrp

import (
	"net/netip"
	"strings"
	"testing"

	"gokeepalived/parser"
	"gokeepalived/tests/netns"
)

// nftIn creates the firewall inside ns.
func nftIn(t *testing.T, ns *netns.NS, table string) *NFTFirewall {
	t.Helper()
	var fw *NFTFirewall
	if err := ns.Do(func() error {
		var err error
		fw, err = NewNFTFirewall(table)
		return err
	}); err != nil {
		t.Fatalf("firewall in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { _ = fw.Close() })
	return fw
}

func vipOn(dev, prefix string) *parser.VIP {
	return &parser.VIP{Prefix: netip.MustParsePrefix(prefix), Dev: dev}
}

// TestNFTFirewall drives the nftables firewall in a namespace of its own: a leftover
// table is removed at creation, blocking builds keepalived's layout, repeating a call
// changes nothing, the union of the owners is blocked, and what nothing blocks (a
// family, then everything, then Close) leaves no table.
func TestNFTFirewall(t *testing.T) {
	ns := netns.New(t, "nft")
	ns.Run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	const table = "gka_test"
	ns.Run("nft", "add table ip "+table+"; add chain ip "+table+" in { type filter hook input priority 0; policy drop; }")
	fw := nftIn(t, ns, table)
	ruleset := func() string { return ns.Run("nft", "list", "ruleset") }
	if rs := ruleset(); strings.Contains(rs, table) {
		t.Fatalf("leftover table still there:\n%s", rs)
	}

	a := []*parser.VIP{vipOn("eth0", "10.0.0.1/24"), vipOn("eth0", "2001:db8::1/64"), vipOn("eth0", "fe80::99/64")}
	if err := fw.Block("a", a); err != nil {
		t.Fatal(err)
	}
	rs := ruleset()
	for _, want := range []string{
		"table ip " + table, "table ip6 " + table,
		"type filter hook input priority filter - 1; policy accept;", "type filter hook output priority filter - 1; policy accept;",
		"ip daddr @vips drop", "ip saddr @vips drop", "ip6 daddr @vips drop", "ip6 saddr @vips drop",
		"10.0.0.1", "2001:db8::1", `fe80::99 . "eth0"`,
		"icmpv6 type @neighbor-discovery accept", "goto in_link_local", "goto out_link_local",
		`ip6 daddr . iifname @vips_link_local drop`, `ip6 saddr . oifname @vips_link_local drop`,
	} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	if err := fw.Block("a", a); err != nil {
		t.Fatal(err)
	}
	if again := ruleset(); again != rs {
		t.Errorf("blocking again changed the ruleset:\n%s\nthen\n%s", rs, again)
	}

	if err := fw.Block("b", []*parser.VIP{vipOn("eth0", "10.0.0.2/24"), vipOn("eth0", "10.0.0.1/24")}); err != nil {
		t.Fatal(err)
	}
	if rs := ruleset(); !strings.Contains(rs, "10.0.0.1") || !strings.Contains(rs, "10.0.0.2") {
		t.Errorf("both owners' addresses should be blocked:\n%s", rs)
	}
	if err := fw.Unblock("a"); err != nil {
		t.Fatal(err)
	}
	rs = ruleset()
	if !strings.Contains(rs, "10.0.0.1") || !strings.Contains(rs, "10.0.0.2") {
		t.Errorf("b still blocks 10.0.0.1 and 10.0.0.2:\n%s", rs)
	}
	if strings.Contains(rs, "table ip6") {
		t.Errorf("nothing IPv6 is blocked any more, yet the ip6 table is there:\n%s", rs)
	}
	if err := fw.Unblock("nobody"); err != nil {
		t.Fatal(err)
	}
	if err := fw.Unblock("b"); err != nil {
		t.Fatal(err)
	}
	if rs := ruleset(); strings.Contains(rs, table) {
		t.Errorf("nothing is blocked, yet a table is there:\n%s", rs)
	}

	if err := fw.Block("c", []*parser.VIP{vipOn("eth0", "10.0.0.3/24")}); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if rs := ruleset(); strings.Contains(rs, table) {
		t.Errorf("table left after Close:\n%s", rs)
	}
	if err := fw.Block("c", nil); err == nil {
		t.Error("Block after Close succeeded")
	}
}
