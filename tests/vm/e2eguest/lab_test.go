//go:build vmguest

package e2eguest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"gokeepalived/tests/vm/vmlab"
)

// The lab: the director is the VM's root namespace. Its interface out0 faces the client
// namespace (192.168.71.0/24, the VIPs); its bridge brin (192.168.72.254, the real
// servers' default gateway) joins the real servers' namespaces.
const (
	clientAddr  = "192.168.71.10/24"
	directorOut = "192.168.71.254/24"
	directorIn  = "192.168.72.254/24"
	directorGW  = "192.168.72.254"
	vip         = "192.168.71.205" // the seed's service address
	vipMark     = "192.168.71.206" // reaches the firewall-mark service
	vipDR       = "192.168.71.207" // the DR service (table entry only)
	sorryAddr   = "192.168.72.20"
)

// lab is the whole topology with its servers.
type lab struct {
	client   *vmlab.NS
	servers  []*vmlab.Server // rs11 .. rs16
	sorry    *vmlab.Server
	http     *http.Client // from the client namespace
	director *http.Client // from the root namespace
}

// newLab builds the topology, starts the servers and waits until the director reaches
// each of them.
func newLab(t *testing.T) *lab {
	t.Helper()
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := vmlab.SelfSigned("gokeepalived e2e real server")
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "brin"}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	addr := func(link netlink.Link, cidr string) {
		a, err := netlink.ParseAddr(cidr)
		if err == nil {
			err = netlink.AddrAdd(link, a)
		}
		if err != nil {
			t.Fatalf("address %s on %s: %v", cidr, link.Attrs().Name, err)
		}
	}
	up := func(link netlink.Link) {
		if err := netlink.LinkSetUp(link); err != nil {
			t.Fatalf("%s up: %v", link.Attrs().Name, err)
		}
	}
	addr(br, directorIn)
	up(br)
	plug := func(name, ip string) *vmlab.Server {
		n, err := vmlab.NewNS(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := vmlab.PlugInto(br, name, n, "eth0", []string{ip + "/24"}, directorGW); err != nil {
			t.Fatal(err)
		}
		s := vmlab.NewServer(name, ip, n, cfg)
		s.Path = "/index.html"
		return s
	}
	for i := 11; i <= 16; i++ {
		l.servers = append(l.servers, plug(fmt.Sprintf("rs%d", i), fmt.Sprintf("192.168.72.%d", i)))
	}
	l.sorry = plug("sorry", sorryAddr)

	c, err := vmlab.NewNS("client")
	if err != nil {
		t.Fatal(err)
	}
	l.client = c
	out, err := vmlab.Veth("out0", c, "eth0", []string{clientAddr}, "")
	if err != nil {
		t.Fatal(err)
	}
	addr(out, directorOut)
	for _, a := range []string{vip, vipMark, vipDR} {
		addr(out, a+"/32")
	}
	up(out)

	for _, s := range append(slices.Clone(l.servers), l.sorry) {
		for _, port := range []int{80, 443} {
			if err := s.Start(port); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.http = vmlab.HTTPClient(c.Dial, 5*time.Second)
	l.director = vmlab.HTTPClient((&net.Dialer{}).DialContext, 5*time.Second)
	for _, s := range append(slices.Clone(l.servers), l.sorry) {
		for _, u := range []string{"http://" + s.Addr + "/index.html", "https://" + s.Addr + "/index.html"} {
			vmlab.WaitFor(t, 20*time.Second, "the director reaches "+u, func() (bool, string) {
				name, err := vmlab.Get(l.director, u)
				if err != nil {
					return false, err.Error()
				}
				return name == s.Name, "answered " + name
			})
		}
	}
	return l
}

// table is a normalized `ipvsadm -Ln`: service line -> sorted destination lines
// ("addr:port forward weight"), counters left out.
type table map[string][]string

// readTable runs ipvsadm -Ln.
func readTable() (table, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ipvsadm -Ln: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("ipvsadm -Ln: %q", out)
	}
	tb := table{}
	svc := ""
	for _, line := range lines[3:] {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "->" && len(f) >= 4 && svc != "":
			tb[svc] = append(tb[svc], strings.Join(f[1:4], " "))
		case f[0] == "->":
			return nil, fmt.Errorf("ipvsadm -Ln: unexpected line %q", line)
		default:
			svc = strings.Join(f, " ")
			tb[svc] = nil
		}
	}
	for _, d := range tb {
		sort.Strings(d)
	}
	return tb, nil
}

func mustTable(t *testing.T) table {
	t.Helper()
	tb, err := readTable()
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// String renders the table in a stable order.
func (tb table) String() string {
	svcs := make([]string, 0, len(tb))
	for s := range tb {
		svcs = append(svcs, s)
	}
	sort.Strings(svcs)
	var b strings.Builder
	for _, s := range svcs {
		b.WriteString(s + "\n")
		for _, d := range tb[s] {
			b.WriteString("  -> " + d + "\n")
		}
	}
	return b.String()
}

func (tb table) has(svc, dest string) bool { return slices.Contains(tb[svc], dest) }

// waitTable waits until ipvsadm shows want.
func waitTable(t *testing.T, want table, timeout time.Duration, what string) time.Duration {
	t.Helper()
	return vmlab.WaitFor(t, timeout, what, func() (bool, string) {
		tb, err := readTable()
		if err != nil {
			return false, err.Error()
		}
		got := tb.String()
		return got == want.String(), "table:\n" + got + "want:\n" + want.String()
	})
}
