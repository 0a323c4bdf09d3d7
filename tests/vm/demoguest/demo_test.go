//go:build vmguest

package demoguest

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"gokeepalived/tests/vm/vmlab"
)

// TestMain refuses to run outside the VM: the test creates namespaces, bridges and
// interfaces.
func TestMain(m *testing.M) {
	if os.Getenv("GKA_IN_VM") != "1" {
		fmt.Fprintln(os.Stderr, "tests/vm/demoguest: guest-only test; run it in the VM with `go run ./tests/demo/vmdemo` (GKA_IN_VM is not 1)")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// confFile is etc/keepalived.conf, copied unchanged by tests/demo/vmdemo.
const confFile = "/etc/keepalived/keepalived.conf"

const (
	vip      = "192.168.71.205"
	gateway  = "192.168.72.254"
	urlHTTP  = "http://" + vip + "/"
	urlHTTPS = "https://" + vip + "/"
	svcHTTP  = "TCP " + vip + ":80"
	svcHTTPS = "TCP " + vip + ":443"
)

var begin = time.Now()

// say prints one line of the transcript.
func say(format string, args ...any) {
	fmt.Printf("DEMO [%5.1fs] %s\n", time.Since(begin).Seconds(), fmt.Sprintf(format, args...))
}

// heading prints a step's title.
func heading(format string, args ...any) {
	fmt.Printf("DEMO\nDEMO == %s\n", fmt.Sprintf(format, args...))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// waitUntil polls cond every 50 ms until it holds or timeout passes; it returns how
// long it took and whether cond held.
func waitUntil(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// director is one LVS director: its namespace and its gokeepalived.
type director struct {
	id   string // director1 ..
	ns   *vmlab.NS
	prio int
	d    *vmlab.Proc
	logs []*vmlab.Proc // every gokeepalived it ran
}

func (d *director) start() error {
	p := vmlab.NewProc("gokeepalived -i "+d.id, "/usr/sbin/gokeepalived", "-n", "-l", "-i", d.id, "-f", confFile, "-p", "/run/gka-"+d.id+".pid")
	if err := p.Start(d.ns); err != nil {
		return err
	}
	d.d = p
	d.logs = append(d.logs, p)
	return nil
}

// holds reports whether the director has the VIP on eth0 and the gateway on eth1.
func (d *director) holds() (vipOn, gwOn bool) {
	return d.ns.Has("eth0", vip), d.ns.Has("eth1", gateway)
}

// ipvs is a director's IPVS table: service -> destination -> active+inactive connections.
type ipvs map[string]map[string]int

func (d *director) ipvs() (ipvs, error) {
	out, err := d.ns.Run(10*time.Second, "ipvsadm", "-Ln")
	if err != nil {
		return nil, err
	}
	tb := ipvs{}
	svc := ""
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP"):
			svc = f[0] + " " + f[1]
			tb[svc] = map[string]int{}
		case len(f) >= 6 && f[0] == "->" && svc != "" && f[1] != "RemoteAddress:Port":
			a, _ := strconv.Atoi(f[4])
			i, _ := strconv.Atoi(f[5])
			tb[svc][f[1]] = a + i
		}
	}
	return tb, nil
}

func (tb ipvs) has(svc, dest string) bool { _, ok := tb[svc][dest]; return ok }

func (tb ipvs) conns(svc string) int {
	n := 0
	for _, c := range tb[svc] {
		n += c
	}
	return n
}

func (tb ipvs) servers(svc string) []string {
	var out []string
	for d := range tb[svc] {
		host, _, _ := strings.Cut(d, ":")
		out = append(out, "rs"+host[strings.LastIndex(host, ".")+1:])
	}
	slices.Sort(out)
	return out
}

type demo struct {
	t         *testing.T
	directors []*director
	servers   []*vmlab.Server
	client    *vmlab.NS
}

// fail narrates a failed step, prints the tail of every daemon's log and ends the test.
func (x *demo) fail(format string, args ...any) {
	x.t.Helper()
	msg := fmt.Sprintf(format, args...)
	say("FAILED: %s", msg)
	for _, d := range x.directors {
		for _, p := range d.logs {
			lines := strings.Split(strings.TrimRight(p.Out.String(), "\n"), "\n")
			fmt.Printf("DEMO   --- last lines of %s's log:\n", p.Name)
			for _, l := range lines[max(0, len(lines)-20):] {
				fmt.Printf("DEMO   | %s\n", l)
			}
		}
	}
	x.t.Fatal(msg)
}

func (x *demo) check(err error) {
	x.t.Helper()
	if err != nil {
		x.fail("%v", err)
	}
}

func (x *demo) sayFailures(fs []vmlab.Sample, since time.Time, what string) {
	for i, s := range fs {
		if i == 5 {
			say("  ... and %d more", len(fs)-5)
			break
		}
		say("  %s request sent at +%s failed after %s: %v", what, secs(s.Start.Sub(since)), secs(s.End.Sub(s.Start)), s.Err)
	}
}

// lastOK reports whether the last n samples succeeded.
func lastOK(ss []vmlab.Sample, n int) bool {
	if len(ss) < n {
		return false
	}
	for _, s := range ss[len(ss)-n:] {
		if s.Err != nil {
			return false
		}
	}
	return true
}

// waitRequests waits until each loop has n requests started at or after from.
func (x *demo) waitRequests(from time.Time, n int, timeout time.Duration, loops ...*vmlab.Loop) {
	x.t.Helper()
	if _, ok := waitUntil(timeout, func() bool {
		for _, l := range loops {
			if l.CountSince(from) < n {
				return false
			}
		}
		return true
	}); !ok {
		x.fail("the client did not complete %d requests within %v", n, timeout)
	}
}

func (x *demo) build() {
	x.t.Helper()
	cfg, err := vmlab.SelfSigned("gokeepalived demo real server")
	x.check(err)
	bridge := func(name string) netlink.Link {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		x.check(netlink.LinkAdd(br))
		x.check(netlink.LinkSetUp(br))
		return br
	}
	outside, inside := bridge("outside"), bridge("inside")
	say("switches: bridge 'outside' (192.168.71.0/24) and bridge 'inside' (192.168.72.0/24), in the VM only")

	up, err := vmlab.NewNS("upstream")
	x.check(err)
	x.check(vmlab.PlugInto(outside, "up0", up, "eth0", []string{"192.168.71.1/24", "192.168.71.2/24"}, ""))
	say("upstream routers 192.168.71.1 and 192.168.71.2 (the ping-tracked addresses) on 'outside'")

	x.client, err = vmlab.NewNS("client")
	x.check(err)
	x.check(vmlab.PlugInto(outside, "cl0", x.client, "eth0", []string{"192.168.71.100/24"}, ""))
	say("client 192.168.71.100 on 'outside'")

	for i := 11; i <= 16; i++ {
		name := fmt.Sprintf("rs%d", i)
		n, err := vmlab.NewNS(name)
		x.check(err)
		addr := fmt.Sprintf("192.168.72.%d", i)
		x.check(vmlab.PlugInto(inside, name, n, "eth0", []string{addr + "/24"}, gateway))
		s := vmlab.NewServer(name, addr, n, cfg)
		x.check(s.Start(80))
		x.check(s.Start(443))
		x.servers = append(x.servers, s)
	}
	say("real servers rs11..rs16 (192.168.72.11-16, default gateway %s) on 'inside', each serving its name on http :80 and https :443", gateway)

	for i, prio := range []int{150, 100, 50} {
		id := fmt.Sprintf("director%d", i+1)
		n, err := vmlab.NewNS(id)
		x.check(err)
		x.check(vmlab.PlugInto(outside, fmt.Sprintf("d%do", i+1), n, "eth0", []string{fmt.Sprintf("192.168.71.%d/24", 11+i)}, ""))
		x.check(vmlab.PlugInto(inside, fmt.Sprintf("d%di", i+1), n, "eth1", []string{fmt.Sprintf("192.168.72.%d/24", 1+i)}, ""))
		x.check(n.Sysctl("net.ipv4.ip_forward", "1"))
		x.directors = append(x.directors, &director{id: id, ns: n, prio: prio})
		say("%s: eth0 192.168.71.%d on 'outside', eth1 192.168.72.%d on 'inside', ip_forward on, its own IPVS table", id, 11+i, 1+i)
	}
}

// TestDemo plays the seed's scenario and narrates it.
func TestDemo(t *testing.T) {
	x := &demo{t: t}
	t.Cleanup(func() {
		for _, d := range x.directors {
			if d.d != nil && !d.d.Exited() {
				_ = d.d.Kill()
			}
		}
	})
	heading("The lab: network namespaces inside the VM")
	x.build()

	heading("(1) Three directors start; VRRP elects director1 (priority 150)")
	for _, d := range x.directors {
		out, err := d.ns.Run(30*time.Second, "/usr/sbin/gokeepalived", "-t", "-i", d.id, "-f", confFile)
		if err != nil {
			x.fail("config test: %v %s", err, out)
		}
	}
	for _, d := range x.directors {
		x.check(d.start())
		say("%s: gokeepalived -n -l -i %s -f %s (priority %d)", d.id, d.id, confFile, d.prio)
	}
	d1, d2, d3 := x.directors[0], x.directors[1], x.directors[2]
	took, ok := waitUntil(30*time.Second, func() bool {
		v1, g1 := d1.holds()
		v2, g2 := d2.holds()
		v3, g3 := d3.holds()
		return v1 && g1 && !v2 && !g2 && !v3 && !g3
	})
	if !ok {
		x.fail("director1 does not hold %s and %s alone within 30s", vip, gateway)
	}
	say("director1 is MASTER: %s on eth0 and %s on eth1, %s after the start", vip, gateway, secs(took))
	if !strings.Contains(d1.d.Out.String(), "Entering MASTER STATE") {
		x.fail("director1 holds the addresses but did not log 'Entering MASTER STATE'")
	}
	say("director2 and director3 are BACKUP: neither address on them")
	for _, d := range x.directors {
		var tb ipvs
		if _, ok := waitUntil(30*time.Second, func() bool {
			var err error
			tb, err = d.ipvs()
			return err == nil && len(tb[svcHTTP]) == 6 && len(tb[svcHTTPS]) == 6
		}); !ok {
			x.fail("%s's IPVS table lacks the 2 services with 6 real servers each: %v", d.id, tb)
		}
		say("%s's IPVS table: %s rr -> %s; %s rr -> 6 real servers (NAT)", d.id, svcHTTP, strings.Join(tb.servers(svcHTTP), " "), svcHTTPS)
	}
	// The election must hold a while (ping tracking settles, every advert seen).
	time.Sleep(3 * time.Second)
	if v, g := d1.holds(); !v || !g {
		x.fail("director1 lost the addresses after the election")
	}
	if v, _ := d2.holds(); v {
		x.fail("director2 holds the VIP next to director1")
	}

	heading("(2) The client's requests cycle through the 6 real servers (rr), on http and https")
	cl := vmlab.HTTPClient(x.client.Dial, 3*time.Second)
	if _, ok := waitUntil(20*time.Second, func() bool { _, err := vmlab.Get(cl, urlHTTP); return err == nil }); !ok {
		x.fail("the client gets no answer from %s", urlHTTP)
	}
	for _, u := range []struct{ url, proto string }{{urlHTTP, "http"}, {urlHTTPS, "https"}} {
		names := make([]string, 12)
		for i := range names {
			n, err := vmlab.Get(cl, u.url)
			if err != nil {
				x.fail("GET %s: %v", u.url, err)
			}
			names[i] = n
			say("client: GET %s -> %s (%s)", u.url, n, u.proto)
		}
		first := slices.Clone(names[:6])
		slices.Sort(first)
		if want := []string{"rs11", "rs12", "rs13", "rs14", "rs15", "rs16"}; !slices.Equal(first, want) {
			x.fail("%s: 6 requests reached %v, want each of %v once", u.proto, names[:6], want)
		}
		if !slices.Equal(names[:6], names[6:]) {
			x.fail("%s: the second round %v does not repeat the first %v", u.proto, names[6:], names[:6])
		}
		say("%s: each real server answered once per round of 6, in the same order", u.proto)
	}

	heading("(3) rs13's web server stops: it leaves the pool; the client sees no failure after that")
	rs := x.servers[2]
	dest := rs.Addr + ":80"
	lp := vmlab.StartLoop(cl, urlHTTP, 20*time.Millisecond)
	defer lp.Stop()
	x.waitRequests(time.Now(), 10, 30*time.Second, lp)
	say("client: a loop of GET %s runs (one request every 20 ms)", urlHTTP)
	stopped := time.Now()
	x.check(rs.Stop(80))
	say("rs13: web server on :80 stopped (connections refused from now on)")
	took, ok = waitUntil(40*time.Second, func() bool {
		tb, err := d1.ipvs()
		return err == nil && len(tb[svcHTTP]) > 0 && !tb.has(svcHTTP, dest)
	})
	if !ok {
		x.fail("%s is still in director1's pool 40s after its web server stopped", dest)
	}
	removed := time.Now()
	say("director1: HTTP_GET on %s failed, rs13 left the pool of %s, %s after the stop", dest, svcHTTP, secs(took))
	x.waitRequests(removed, 40, 60*time.Second, lp)
	restarted := time.Now()
	x.check(rs.Start(80))
	say("rs13: web server on :80 started again")
	took, ok = waitUntil(40*time.Second, func() bool {
		tb, err := d1.ipvs()
		return err == nil && tb.has(svcHTTP, dest)
	})
	if !ok {
		x.fail("%s is not back in director1's pool 40s after its web server started", dest)
	}
	returned := time.Now()
	say("director1: HTTP_GET on %s succeeded, rs13 is back in the pool, %s after the start", dest, secs(took))
	if _, ok := waitUntil(30*time.Second, func() bool {
		for _, s := range lp.Samples() {
			if s.Name == rs.Name && !s.Start.Before(returned) {
				return true
			}
		}
		return false
	}); !ok {
		x.fail("no request reached rs13 after it returned")
	}
	say("client: rs13 answers again")
	ss := lp.Stop()
	if fs, n := vmlab.Failures(ss, time.Time{}, stopped); len(fs) > 0 {
		x.fail("%d of %d requests failed before rs13 stopped", len(fs), n)
	}
	fs, n := vmlab.Failures(ss, stopped, removed)
	say("client: while rs13 was down but still in the pool (%s): %d of %d requests failed (rr sent them to rs13: connection refused)", secs(removed.Sub(stopped)), len(fs), n)
	fs, n = vmlab.Failures(ss, removed, time.Time{})
	if len(fs) > 0 {
		x.sayFailures(fs, removed, "a")
		x.fail("%d of %d requests sent after the removal failed", len(fs), n)
	}
	for _, s := range ss {
		if s.Name == rs.Name && !s.Start.Before(removed) && s.Start.Before(restarted) {
			x.fail("a request sent %s after the removal reached rs13", secs(s.Start.Sub(removed)))
		}
	}
	say("client: after the removal, %d requests, none failed, none reached rs13 until it was back", n)

	heading("(4) director1's gokeepalived is killed (SIGKILL): director2 takes over")
	lh, ls := vmlab.StartLoop(cl, urlHTTP, 20*time.Millisecond), vmlab.StartLoop(cl, urlHTTPS, 20*time.Millisecond)
	defer lh.Stop()
	defer ls.Stop()
	x.waitRequests(time.Now(), 5, 30*time.Second, lh, ls)
	before2, err := d2.ipvs()
	x.check(err)
	say("client: two loops run, GET %s and GET %s", urlHTTP, urlHTTPS)
	killed := time.Now()
	x.check(d1.d.Kill())
	say("director1: gokeepalived killed with SIGKILL (no goodbye advert)")
	took, ok = waitUntil(30*time.Second, func() bool { v, g := d2.holds(); return v && g })
	if !ok {
		x.fail("director2 does not hold %s and %s 30s after the kill", vip, gateway)
	}
	takeover := time.Now()
	say("director2 is MASTER: %s on eth0 and %s on eth1, %s after the kill", vip, gateway, secs(took))
	if v, g := d3.holds(); v || g {
		x.fail("director3 took the addresses too")
	}
	if v, _ := d1.holds(); v {
		say("director1 still has the addresses the killed daemon could not remove; director2's gratuitous ARPs moved the client and the real servers to director2")
	}
	x.waitRequests(takeover, 30, 90*time.Second, lh, ls)
	sh, ssl := lh.Stop(), ls.Stop()
	total := 0
	for _, l := range []struct {
		proto string
		ss    []vmlab.Sample
	}{{"http", sh}, {"https", ssl}} {
		fs, n := vmlab.Failures(l.ss, killed, time.Time{})
		total += len(fs)
		say("client (%s): %d requests since the kill, %d failed", l.proto, n, len(fs))
		x.sayFailures(fs, killed, l.proto)
		if !lastOK(l.ss, 10) {
			x.fail("%s: the last 10 requests did not all succeed", l.proto)
		}
	}
	if total > 10 {
		x.fail("%d requests failed during the failover; want at most 10", total)
	}
	after2, err := d2.ipvs()
	x.check(err)
	fwd := after2.conns(svcHTTP) + after2.conns(svcHTTPS) - before2.conns(svcHTTP) - before2.conns(svcHTTPS)
	if fwd <= 0 {
		x.fail("director2's IPVS table has no new connection: the traffic does not go through director2")
	}
	say("director2's IPVS table now holds %d more connections: the requests go through director2", fwd)

	heading("(5) director1's gokeepalived starts again: it preempts (priority 150 > 100)")
	lh, ls = vmlab.StartLoop(cl, urlHTTP, 20*time.Millisecond), vmlab.StartLoop(cl, urlHTTPS, 20*time.Millisecond)
	defer lh.Stop()
	defer ls.Stop()
	x.waitRequests(time.Now(), 5, 30*time.Second, lh, ls)
	back := time.Now()
	x.check(d1.start())
	say("director1: gokeepalived -n -l -i director1 -f %s", confFile)
	took, ok = waitUntil(30*time.Second, func() bool {
		v1, g1 := d1.holds()
		v2, g2 := d2.holds()
		return v1 && g1 && !v2 && !g2 && strings.Contains(d1.d.Out.String(), "Entering MASTER STATE")
	})
	if !ok {
		x.fail("director1 is not MASTER alone 30s after its restart")
	}
	preempt := time.Now()
	say("director1 is MASTER again, %s after its start; director2 released %s and %s", secs(took), vip, gateway)
	x.waitRequests(preempt, 30, 90*time.Second, lh, ls)
	sh, ssl = lh.Stop(), ls.Stop()
	total = 0
	for _, l := range []struct {
		proto string
		ss    []vmlab.Sample
	}{{"http", sh}, {"https", ssl}} {
		fs, n := vmlab.Failures(l.ss, back, time.Time{})
		total += len(fs)
		say("client (%s): %d requests since director1's restart, %d failed", l.proto, n, len(fs))
		x.sayFailures(fs, back, l.proto)
		if !lastOK(l.ss, 10) {
			x.fail("%s: the last 10 requests did not all succeed", l.proto)
		}
	}
	if total > 10 {
		x.fail("%d requests failed during the preemption; want at most 10", total)
	}
	if v, g := d3.holds(); v || g {
		x.fail("director3 holds an address")
	}
	heading("Every step held (%s in the VM)", secs(time.Since(begin)))
}
