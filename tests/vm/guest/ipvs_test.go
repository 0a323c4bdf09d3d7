//go:build vmguest

package guest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	gkaipvs "gokeepalived/ipvs"
)

// TestMain refuses to run outside the VM: these tests change the kernel's IPVS table.
func TestMain(m *testing.M) {
	if os.Getenv("GKA_IN_VM") != "1" {
		fmt.Fprintln(os.Stderr, "tests/vm/guest: guest-only tests; run them in the VM with `go test ./tests/vm -run VMSmoke` (GKA_IN_VM is not 1)")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// callTimeout bounds every IPVS call: moby/ipvs retries forever when the kernel does not answer.
const callTimeout = 10 * time.Second

// kernel runs f, failing the test if it does not return within callTimeout.
func kernel(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(callTimeout):
		t.Fatalf("%s: no answer from the kernel within %v", what, callTimeout)
		return nil
	}
}

// must is kernel for calls that must succeed.
func must(t *testing.T, what string, f func() error) {
	t.Helper()
	if err := kernel(t, what, f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// newHandle opens an IPVS handle on an empty table and flushes the table again at the end.
func newHandle(t *testing.T) *ipvs.Handle {
	t.Helper()
	var h *ipvs.Handle
	must(t, "ipvs.New", func() (err error) { h, err = ipvs.New(""); return err })
	must(t, "Flush", h.Flush)
	t.Cleanup(func() {
		must(t, "Flush", h.Flush)
		h.Close()
	})
	return h
}

func services(t *testing.T, h *ipvs.Handle) []*ipvs.Service {
	t.Helper()
	var s []*ipvs.Service
	must(t, "GetServices", func() (err error) { s, err = h.GetServices(); return err })
	return s
}

// destinations returns the service's destinations as "addr:port weight fwd" strings, sorted.
func destinations(t *testing.T, h *ipvs.Handle, svc *ipvs.Service) []string {
	t.Helper()
	var ds []*ipvs.Destination
	must(t, "GetDestinations", func() (err error) { ds, err = h.GetDestinations(svc); return err })
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s %d fwd=%d", net.JoinHostPort(d.Address.String(), fmt.Sprint(d.Port)), d.Weight, d.ConnectionFlags&ipvs.ConnectionFlagFwdMask))
	}
	slices.Sort(out)
	return out
}

// procIPVS returns /proc/net/ip_vs with runs of blanks squeezed, one entry per line, to
// check the kernel's table independently of moby/ipvs's parsing.
func procIPVS(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/ip_vs")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return lines
}

func wantProc(t *testing.T, want ...string) {
	t.Helper()
	got := procIPVS(t)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("/proc/net/ip_vs has no line %q:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

func ip(s string) net.IP {
	if v4 := net.ParseIP(s).To4(); v4 != nil {
		return v4
	}
	return net.ParseIP(s)
}

// TestIPVSPresent checks both halves of the probe (ipvs.Probe) in a kernel that has IPVS.
func TestIPVSPresent(t *testing.T) {
	if err := gkaipvs.Probe(); err != nil {
		t.Fatalf("ipvs.Probe() in the VM: %v; the ip_vs module did not load?", err)
	}
	if _, err := netlink.GenlFamilyGet("IPVS"); err != nil {
		t.Fatalf("generic netlink family IPVS: %v", err)
	}
}

// TestIPVSService drives a TCP service with two NAT destinations through its life cycle.
func TestIPVSService(t *testing.T) {
	h := newHandle(t)
	svc := &ipvs.Service{AddressFamily: unix.AF_INET, Protocol: unix.IPPROTO_TCP, Address: ip("10.0.0.1"), Port: 80, SchedName: "rr", Netmask: 0xFFFFFFFF}
	must(t, "NewService", func() error { return h.NewService(svc) })
	if err := kernel(t, "NewService again", func() error { return h.NewService(svc) }); !errors.Is(err, unix.EEXIST) {
		t.Errorf("duplicate NewService: got %v, want EEXIST", err)
	}
	d1 := &ipvs.Destination{AddressFamily: unix.AF_INET, Address: ip("10.0.0.2"), Port: 8080, Weight: 1, ConnectionFlags: ipvs.ConnectionFlagMasq}
	d2 := &ipvs.Destination{AddressFamily: unix.AF_INET, Address: ip("10.0.0.3"), Port: 8080, Weight: 1, ConnectionFlags: ipvs.ConnectionFlagMasq}
	for _, d := range []*ipvs.Destination{d1, d2} {
		must(t, "NewDestination", func() error { return h.NewDestination(svc, d) })
	}

	got := services(t, h)
	if len(got) != 1 {
		t.Fatalf("GetServices: %d services, want 1", len(got))
	}
	if s := got[0]; !s.Address.Equal(svc.Address) || s.Port != 80 || s.Protocol != unix.IPPROTO_TCP || s.SchedName != "rr" || s.FWMark != 0 {
		t.Errorf("GetServices: got %+v", *s)
	}
	want := []string{"10.0.0.2:8080 1 fwd=0", "10.0.0.3:8080 1 fwd=0"}
	if ds := destinations(t, h, svc); !slices.Equal(ds, want) {
		t.Errorf("GetDestinations: got %q, want %q", ds, want)
	}
	wantProc(t, "TCP 0A000001:0050 rr", "-> 0A000002:1F90 Masq 1 0 0", "-> 0A000003:1F90 Masq 1 0 0")

	up := *d1
	up.Weight = 5
	must(t, "UpdateDestination", func() error { return h.UpdateDestination(svc, &up) })
	want = []string{"10.0.0.2:8080 5 fwd=0", "10.0.0.3:8080 1 fwd=0"}
	if ds := destinations(t, h, svc); !slices.Equal(ds, want) {
		t.Errorf("after the weight update: got %q, want %q", ds, want)
	}

	must(t, "DelDestination", func() error { return h.DelDestination(svc, d2) })
	if err := kernel(t, "DelDestination again", func() error { return h.DelDestination(svc, d2) }); !errors.Is(err, unix.ENOENT) {
		t.Errorf("deleting a missing destination: got %v, want ENOENT", err)
	}
	want = []string{"10.0.0.2:8080 5 fwd=0"}
	if ds := destinations(t, h, svc); !slices.Equal(ds, want) {
		t.Errorf("after the delete: got %q, want %q", ds, want)
	}

	must(t, "Flush", h.Flush)
	if got := services(t, h); len(got) != 0 {
		t.Errorf("after Flush: %d services", len(got))
	}
	missing := &ipvs.Service{AddressFamily: unix.AF_INET, Protocol: unix.IPPROTO_TCP, Address: ip("10.0.0.9"), Port: 80}
	if err := kernel(t, "DelService of a missing service", func() error { return h.DelService(missing) }); !errors.Is(err, unix.ESRCH) {
		t.Errorf("deleting a missing service: got %v, want ESRCH", err)
	}
}

// TestIPVSFWMark creates a firewall-mark service.
func TestIPVSFWMark(t *testing.T) {
	h := newHandle(t)
	svc := &ipvs.Service{AddressFamily: unix.AF_INET, FWMark: 7, SchedName: "wrr", Netmask: 0xFFFFFFFF}
	must(t, "NewService", func() error { return h.NewService(svc) })
	d := &ipvs.Destination{AddressFamily: unix.AF_INET, Address: ip("10.0.0.2"), Weight: 3, ConnectionFlags: ipvs.ConnectionFlagDirectRoute}
	must(t, "NewDestination", func() error { return h.NewDestination(svc, d) })
	got := services(t, h)
	if len(got) != 1 || got[0].FWMark != 7 || got[0].SchedName != "wrr" {
		t.Fatalf("GetServices: got %d services, first %+v", len(got), got)
	}
	if ds, want := destinations(t, h, svc), []string{fmt.Sprintf("10.0.0.2:0 3 fwd=%d", ipvs.ConnectionFlagDirectRoute)}; !slices.Equal(ds, want) {
		t.Errorf("GetDestinations: got %q, want %q", ds, want)
	}
	wantProc(t, "FWM 00000007 wrr", "-> 0A000002:0000 Route 3 0 0")
	must(t, "DelService", func() error { return h.DelService(svc) })
	if got := services(t, h); len(got) != 0 {
		t.Errorf("after DelService: %d services", len(got))
	}
}

// TestIPVSIPv6 creates an IPv6 service (netmask 128, as moby/ipvs's own tests do).
func TestIPVSIPv6(t *testing.T) {
	h := newHandle(t)
	svc := &ipvs.Service{AddressFamily: unix.AF_INET6, Protocol: unix.IPPROTO_TCP, Address: ip("fd00::1"), Port: 443, SchedName: "sh", Netmask: 128}
	must(t, "NewService", func() error { return h.NewService(svc) })
	d := &ipvs.Destination{AddressFamily: unix.AF_INET6, Address: ip("fd00::2"), Port: 8443, Weight: 1, ConnectionFlags: ipvs.ConnectionFlagMasq}
	must(t, "NewDestination", func() error { return h.NewDestination(svc, d) })
	got := services(t, h)
	if len(got) != 1 || !got[0].Address.Equal(svc.Address) || got[0].Port != 443 || got[0].AddressFamily != unix.AF_INET6 {
		t.Fatalf("GetServices: got %d services, first %+v", len(got), got)
	}
	if ds, want := destinations(t, h, svc), []string{"[fd00::2]:8443 1 fwd=0"}; !slices.Equal(ds, want) {
		t.Errorf("GetDestinations: got %q, want %q", ds, want)
	}
}

// TestIPVSAdm reads the table with the host's ipvsadm, copied into the guest with its
// shared libraries (vm.BinaryWithLibs).
func TestIPVSAdm(t *testing.T) {
	h := newHandle(t)
	svc := &ipvs.Service{AddressFamily: unix.AF_INET, Protocol: unix.IPPROTO_UDP, Address: ip("10.0.0.1"), Port: 53, SchedName: "lc", Netmask: 0xFFFFFFFF}
	must(t, "NewService", func() error { return h.NewService(svc) })
	d := &ipvs.Destination{AddressFamily: unix.AF_INET, Address: ip("10.0.0.4"), Port: 53, Weight: 2, ConnectionFlags: ipvs.ConnectionFlagMasq}
	must(t, "NewDestination", func() error { return h.NewDestination(svc, d) })
	out, err := exec.Command("ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -Ln: %v\n%s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	for _, w := range []string{"UDP 10.0.0.1:53 lc", "-> 10.0.0.4:53 Masq 2 0 0"} {
		if !slices.Contains(lines, w) {
			t.Errorf("ipvsadm -Ln has no line %q:\n%s", w, out)
		}
	}
}
