//go:build vmguest

package e2eguest

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gokeepalived/tests/vm/vmlab"
)

// TestMain refuses to run outside the VM: the test changes the kernel's IPVS table and
// creates interfaces.
func TestMain(m *testing.M) {
	if os.Getenv("GKA_IN_VM") != "1" {
		fmt.Fprintln(os.Stderr, "tests/vm/e2eguest: guest-only test; run it in the VM with `go test ./tests/vm -run VMSeedScenario` (GKA_IN_VM is not 1)")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// seedLVSFile is the LVS part of etc/keepalived.conf with short timings, written by the
// host-side test (delay_loop 1, connect_timeout 1, retry 1, delay_before_retry 1).
const seedLVSFile = "/etc/gka/seed-lvs.conf"

// extraConf adds to the seed's two services (http and https on the VIP, 6 NAT real
// servers with rr): a wrr service with weights 3:1, a service with quorum 4 and a sorry
// server, a firewall-mark service and a DR service without checkers. $RS_HTTP is the
// seed's definition of a real server on port 80 with HTTP_GET.
const extraConf = `
virtual_server 192.168.71.205 8081 {
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 192.168.72.11 80 {
        weight 3
        HTTP_GET {
            url {
                path /index.html
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 192.168.72.12 80 {
        weight 1
        HTTP_GET {
            url {
                path /index.html
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}

virtual_server 192.168.71.205 8082 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 4
    sorry_server 192.168.72.20 80
    ~SEQ(N, 11, 16) $RS_HTTP
}

virtual_server fwmark 7 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    real_server 192.168.72.13 80 {
        HTTP_GET {
            url {
                path /index.html
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 192.168.72.14 80 {
        HTTP_GET {
            url {
                path /index.html
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}

virtual_server 192.168.71.207 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.168.72.15 80 {
        weight 2
    }
    real_server 192.168.72.16 80 {
        weight 1
    }
}
`

const (
	svcHTTP   = "TCP 192.168.71.205:80 rr"
	svcHTTPS  = "TCP 192.168.71.205:443 rr"
	svcWRR    = "TCP 192.168.71.205:8081 wrr"
	svcQuorum = "TCP 192.168.71.205:8082 rr"
	svcMark   = "FWM 7 rr"
	svcDR     = "TCP 192.168.71.207:80 rr"
)

// allUp is the table with every real server up.
func allUp() table {
	tb := table{}
	for i := 11; i <= 16; i++ {
		tb[svcHTTP] = append(tb[svcHTTP], fmt.Sprintf("192.168.72.%d:80 Masq 1", i))
		tb[svcHTTPS] = append(tb[svcHTTPS], fmt.Sprintf("192.168.72.%d:443 Masq 1", i))
		tb[svcQuorum] = append(tb[svcQuorum], fmt.Sprintf("192.168.72.%d:80 Masq 1", i))
	}
	tb[svcWRR] = []string{"192.168.72.11:80 Masq 3", "192.168.72.12:80 Masq 1"}
	tb[svcMark] = []string{"192.168.72.13:80 Masq 1", "192.168.72.14:80 Masq 1"}
	tb[svcDR] = []string{"192.168.72.15:80 Route 2", "192.168.72.16:80 Route 1"}
	return tb
}

// quorumLost is the table with rs14, rs15 and rs16 down on port 80: the live weight of
// the quorum service (3) is below its quorum (4), so the sorry server replaces its pool.
func quorumLost() table {
	tb := allUp()
	for _, svc := range []string{svcHTTP, svcMark} {
		tb[svc] = slices.DeleteFunc(tb[svc], func(d string) bool {
			return strings.HasPrefix(d, "192.168.72.14:") || strings.HasPrefix(d, "192.168.72.15:") || strings.HasPrefix(d, "192.168.72.16:")
		})
	}
	tb[svcQuorum] = []string{sorryAddr + ":80 Masq 1"}
	return tb
}

var (
	urlHTTP  = "http://" + vip + "/index.html"
	urlHTTPS = "https://" + vip + "/index.html"
)

func writeConfig(t *testing.T) string {
	t.Helper()
	seed, err := os.ReadFile(seedLVSFile)
	if err != nil {
		t.Fatalf("%v (the host-side test copies the seed's LVS part there)", err)
	}
	conf := "! The LVS part of etc/keepalived.conf (short timings), and extra services.\n" + string(seed) + extraConf
	path := "/tmp/e2e.conf"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("configuration %s:\n%s", path, conf)
	return path
}

// configTest runs `prog -t -f conf`, which must succeed.
func configTest(t *testing.T, prog, conf string) {
	t.Helper()
	out, err := exec.Command(prog, "-t", "-f", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("%s -t -f %s: %v\n%s", prog, conf, err, out)
	}
}

// checkRounds waits until every real server has answered n more checker requests on
// port 80 and on port 443 than in before (that is, the checkers have run n rounds).
func (l *lab) checkRounds(t *testing.T, before map[string][2]int64, n int64, timeout time.Duration) time.Duration {
	t.Helper()
	return vmlab.WaitFor(t, timeout, fmt.Sprintf("%d rounds of checks on every real server", n), func() (bool, string) {
		for _, s := range l.servers {
			b := before[s.Name]
			if s.CheckCount(80) < b[0]+n || s.CheckCount(443) < b[1]+n {
				return false, fmt.Sprintf("%s: %d/%d checks on :80, %d/%d on :443", s.Name, s.CheckCount(80)-b[0], n, s.CheckCount(443)-b[1], n)
			}
		}
		return true, ""
	})
}

func (l *lab) checkCounts() map[string][2]int64 {
	m := map[string][2]int64{}
	for _, s := range l.servers {
		m[s.Name] = [2]int64{s.CheckCount(80), s.CheckCount(443)}
	}
	return m
}

// TestSeedScenario runs the seed's scenario with gokeepalived, then the same
// configuration with keepalived, in one lab.
func TestSeedScenario(t *testing.T) {
	begin := time.Now()
	timing := func(what string, d time.Duration) { t.Logf("TIMING %-55s %v", what, d.Round(time.Millisecond)) }
	l := newLab(t)
	timing("lab: 8 namespaces, bridge, 14 listeners, reachable", time.Since(begin))

	conf := writeConfig(t)
	configTest(t, "/usr/sbin/gokeepalived", conf)

	start := time.Now()
	d := vmlab.StartProc(t, "gokeepalived", "/usr/sbin/gokeepalived", "-n", "-l", "-I", "-f", conf, "-p", "/run/gokeepalived.pid")
	d.WaitLog(t, "gokeepalived started", 30*time.Second)
	waitTable(t, allUp(), 30*time.Second, "gokeepalived programs the table")
	timing("gokeepalived start to the whole table programmed", time.Since(start))
	l.checkRounds(t, map[string][2]int64{}, 2, 30*time.Second)
	waitTable(t, allUp(), 5*time.Second, "the table stays whole after two rounds of checks")
	initial := mustTable(t)
	t.Logf("gokeepalived's table (ipvsadm -Ln, normalized):\n%s", initial)

	t.Run("RoundRobin", func(t *testing.T) {
		for _, u := range []string{urlHTTP, urlHTTPS} {
			names := make([]string, 12)
			for i := range names {
				n, err := vmlab.Get(l.http, u)
				if err != nil {
					t.Fatalf("request %d to %s: %v", i, u, err)
				}
				names[i] = n
			}
			t.Logf("%s: %s", u, strings.Join(names, " "))
			first := slices.Clone(names[:6])
			slices.Sort(first)
			if want := []string{"rs11", "rs12", "rs13", "rs14", "rs15", "rs16"}; !slices.Equal(first, want) {
				t.Errorf("%s: the first 6 requests reached %v, want each of %v once", u, names[:6], want)
			}
			if !slices.Equal(names[:6], names[6:]) {
				t.Errorf("%s: the second 6 requests %v do not repeat the first %v", u, names[6:], names[:6])
			}
		}
	})

	t.Run("RealServerDownUp", func(t *testing.T) {
		waitTable(t, allUp(), 15*time.Second, "the table is whole")
		rs := l.servers[1] // rs12
		dest := rs.Addr + ":80 Masq 1"
		lp := vmlab.StartLoop(l.http, urlHTTP, 0)
		defer lp.Stop()
		t0 := time.Now()
		lp.WaitCount(t, t0, 10, 30*time.Second)

		kill := time.Now()
		if err := rs.Stop(80); err != nil {
			t.Fatal(err)
		}
		detect := vmlab.WaitFor(t, 20*time.Second, rs.Name+" leaves "+svcHTTP, func() (bool, string) {
			tb, err := readTable()
			if err != nil {
				return false, err.Error()
			}
			return !tb.has(svcHTTP, dest), tb.String()
		})
		removed := time.Now()
		timing("rs12 :80 listener closed -> out of the IPVS table", detect)
		// Budget: up to delay_loop (1 s) until the next check, which fails at once
		// (connection refused; connect_timeout 1 bounds it otherwise), then retry 1
		// after delay_before_retry 1: about 2 s, up to 4 s with connect timeouts.
		// The bound is generous for a loaded host.
		if detect > 10*time.Second {
			t.Errorf("%s left the table %v after its listener closed; want within 10 s", rs.Name, detect)
		}
		lp.WaitCount(t, removed, 30, 60*time.Second)

		restart := time.Now()
		if err := rs.Start(80); err != nil {
			t.Fatal(err)
		}
		back := vmlab.WaitFor(t, 20*time.Second, rs.Name+" returns to "+svcHTTP, func() (bool, string) {
			tb, err := readTable()
			if err != nil {
				return false, err.Error()
			}
			return tb.has(svcHTTP, dest), tb.String()
		})
		returned := time.Now()
		timing("rs12 :80 listener open again -> back in the table", back)
		lp.WaitCount(t, returned, 30, 60*time.Second)
		ss := lp.Stop()

		if f, n := vmlab.FailuresIf(ss, func(s vmlab.Sample) bool { return s.End.Before(kill) }); len(f) > 0 {
			t.Errorf("%d of %d requests failed before the real server stopped:%s", len(f), n, vmlab.Describe(f, kill))
		}
		// In flight when the listener closed, or started before the removal: these may
		// fail (the server finishes what it accepted; rr sends every sixth new
		// connection to it until the checker has removed it).
		f, n := vmlab.FailuresIf(ss, func(s vmlab.Sample) bool { return !s.End.Before(kill) && s.Start.Before(removed) })
		t.Logf("between the listener closing and the removal (%v): %d of %d requests failed (scheduled to the stopped server before the checker saw it):%s",
			removed.Sub(kill).Round(time.Millisecond), len(f), n, vmlab.Describe(f, kill))
		if f, n := vmlab.Failures(ss, removed, time.Time{}); len(f) > 0 {
			t.Errorf("%d of %d requests started after the removal failed:%s", len(f), n, vmlab.Describe(f, kill))
		} else {
			t.Logf("after the removal: %d requests, none failed", n)
		}
		seenBack := false
		for _, s := range ss {
			if s.Name == rs.Name && !s.Start.Before(removed) && s.Start.Before(restart) {
				t.Errorf("a request started %v after the removal reached %s", s.Start.Sub(removed), rs.Name)
			}
			if s.Name == rs.Name && !s.Start.Before(returned) {
				seenBack = true
			}
		}
		if !seenBack {
			t.Errorf("no request reached %s after it returned", rs.Name)
		}
	})

	t.Run("WeightedRoundRobin", func(t *testing.T) {
		waitTable(t, allUp(), 15*time.Second, "the table is whole")
		counts := map[string]int{}
		for i := range 40 {
			n, err := vmlab.Get(l.http, "http://"+vip+":8081/index.html")
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			counts[n]++
		}
		t.Logf("wrr 3:1 over 40 requests: %v", counts)
		if len(counts) != 2 || counts["rs11"] < 27 || counts["rs11"] > 33 || counts["rs12"] < 7 || counts["rs12"] > 13 {
			t.Errorf("wrr 3:1: %v, want about rs11:30 rs12:10", counts)
		}
	})

	t.Run("FirewallMark", func(t *testing.T) {
		if got := mustTable(t)[svcMark]; !slices.Equal(got, allUp()[svcMark]) {
			t.Errorf("%s: %q, want %q", svcMark, got, allUp()[svcMark])
		}
		nft, err := exec.LookPath("nft")
		if err != nil {
			t.Fatalf("nft is not in the guest (%v): the host side (tests/vm/e2e_test.go) always packs it", err)
		}
		rules := `table ip gka_e2e {
	chain pre {
		type filter hook prerouting priority mangle; policy accept;
		ip daddr ` + vipMark + ` tcp dport 80 meta mark set 7
	}
}
`
		cmd := exec.Command(nft, "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft -f: %v\n%s", err, out)
		}
		defer exec.Command(nft, "delete", "table", "ip", "gka_e2e").Run()
		var names []string
		for i := range 8 {
			n, err := vmlab.Get(l.http, "http://"+vipMark+"/index.html")
			if err != nil {
				t.Fatalf("request %d through fwmark 7: %v", i, err)
			}
			names = append(names, n)
		}
		t.Logf("fwmark 7 (%s:80 marked by nft): %s", vipMark, strings.Join(names, " "))
		counts := map[string]int{}
		for _, n := range names {
			counts[n]++
		}
		if !maps.Equal(counts, map[string]int{"rs13": 4, "rs14": 4}) {
			t.Errorf("fwmark 7 rr over rs13 and rs14: %v", counts)
		}
	})

	t.Run("DirectRouting", func(t *testing.T) {
		got := mustTable(t)[svcDR]
		if want := allUp()[svcDR]; !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", svcDR, got, want)
		}
	})

	t.Run("SorryServer", func(t *testing.T) {
		waitTable(t, allUp(), 15*time.Second, "the table is whole")
		down := l.servers[3:] // rs14, rs15, rs16: live weight 3 < quorum 4
		for _, s := range down {
			if err := s.Stop(80); err != nil {
				t.Fatal(err)
			}
		}
		restarted := false
		defer func() {
			if !restarted {
				for _, s := range down {
					_ = s.Start(80)
				}
			}
		}()
		lost := vmlab.WaitFor(t, 20*time.Second, "the sorry server replaces the pool of "+svcQuorum, func() (bool, string) {
			tb, err := readTable()
			if err != nil {
				return false, err.Error()
			}
			return slices.Equal(tb[svcQuorum], []string{sorryAddr + ":80 Masq 1"}), tb.String()
		})
		timing("3 of 6 listeners closed -> sorry server in the table", lost)
		waitTable(t, quorumLost(), 20*time.Second, "every check has seen rs14-rs16 down")
		t.Logf("table with the quorum lost:\n%s", mustTable(t))
		for i := range 3 {
			if n, err := vmlab.Get(l.http, "http://"+vip+":8082/index.html"); err != nil || n != "sorry" {
				t.Errorf("request %d to :8082 with the quorum lost: %q, %v; want the sorry server", i, n, err)
			}
		}
		if !strings.Contains(d.Out.String(), "quorum changed") {
			t.Errorf("gokeepalived did not log the quorum change")
		}
		for _, s := range down {
			if err := s.Start(80); err != nil {
				t.Fatal(err)
			}
		}
		restarted = true
		regained := waitTable(t, allUp(), 20*time.Second, "the pool returns and the sorry server leaves")
		timing("listeners open again -> whole table, sorry server gone", regained)
		for i := range 6 {
			if n, err := vmlab.Get(l.http, "http://"+vip+":8082/index.html"); err != nil || n == "sorry" {
				t.Errorf("request %d to :8082 with the quorum back: %q, %v", i, n, err)
			}
		}
	})

	// The restart: gokeepalived (-I) stops with SIGTERM and leaves the table; a new one
	// adopts it without a change, while clients keep sending requests.
	var d2 *vmlab.Proc
	top := t // d2 outlives the subtest that starts it
	t.Run("RestartAdopts", func(t *testing.T) {
		waitTable(t, allUp(), 15*time.Second, "the table is whole")
		before := mustTable(t)
		lh, ls := vmlab.StartLoop(l.http, urlHTTP, 0), vmlab.StartLoop(l.http, urlHTTPS, 0)
		defer lh.Stop()
		defer ls.Stop()
		t0 := time.Now()
		lh.WaitCount(t, t0, 5, 30*time.Second)
		ls.WaitCount(t, t0, 5, 30*time.Second)

		term := time.Now()
		if err := d.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
			t.Fatalf("gokeepalived -I on SIGTERM: %v", err)
		}
		timing("gokeepalived -I: SIGTERM to exit", time.Since(term))
		if got := mustTable(t); got.String() != before.String() {
			t.Errorf("after SIGTERM with -I the table changed:\n%s\nwant:\n%s", got, before)
		}
		down := time.Now()
		lh.WaitCount(t, down, 3, 30*time.Second) // traffic flows with no daemon at all

		counts := l.checkCounts()
		restart := time.Now()
		d2 = vmlab.StartProc(top, "gokeepalived (restarted)", "/usr/sbin/gokeepalived", "-n", "-l", "-f", conf, "-p", "/run/gokeepalived.pid")
		d2.WaitLog(t, "gokeepalived started", 30*time.Second)
		l.checkRounds(t, counts, 2, 30*time.Second)
		timing("restart to two rounds of checks by the new daemon", time.Since(restart))
		after := time.Now()
		lh.WaitCount(t, after, 5, 30*time.Second)
		ls.WaitCount(t, after, 5, 30*time.Second)
		sh, ss := lh.Stop(), ls.Stop()

		for _, x := range []struct {
			url string
			ss  []vmlab.Sample
		}{{urlHTTP, sh}, {urlHTTPS, ss}} {
			f, n := vmlab.Failures(x.ss, t0, time.Time{})
			t.Logf("%s through the restart: %d requests, %d failed", x.url, n, len(f))
			if len(f) > 0 {
				t.Errorf("%s: %d of %d requests failed through the restart:%s", x.url, len(f), n, vmlab.Describe(f, term))
			}
		}
		if got := mustTable(t); got.String() != before.String() {
			t.Errorf("after the restart the table is:\n%s\nwant (as before):\n%s", got, before)
		}
		for _, s := range []string{"IPVS table updated", "flush"} {
			if strings.Contains(d2.Out.String(), s) {
				t.Errorf("the restarted gokeepalived logged %q: it did not adopt the table as it was", s)
			}
		}
	})

	t.Run("KeepalivedSameTable", func(t *testing.T) {
		if d2 == nil || d2.Exited() {
			t.Fatal("no restarted gokeepalived to stop (RestartAdopts failed)")
		}
		term := time.Now()
		if err := d2.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
			t.Errorf("gokeepalived on SIGTERM: %v", err)
		}
		timing("gokeepalived (no -I): SIGTERM to exit", time.Since(term))
		if got := mustTable(t); len(got) != 0 {
			t.Errorf("after a plain SIGTERM gokeepalived left services:\n%s", got)
		}
		if out, err := exec.Command("ipvsadm", "-C").CombinedOutput(); err != nil {
			t.Fatalf("ipvsadm -C: %v\n%s", err, out)
		}

		ka, err := exec.LookPath("keepalived")
		if err != nil {
			t.Fatalf("keepalived is not in the guest: %v", err)
		}
		configTest(t, ka, conf)
		start := time.Now()
		p := vmlab.StartProc(t, "keepalived", ka, "-n", "-l", "-G", "-C", "-f", conf, "-p", "/run/keepalived.pid", "-c", "/run/keepalived-checkers.pid")
		took := vmlab.WaitFor(t, 60*time.Second, "keepalived programs gokeepalived's table", func() (bool, string) {
			if p.Exited() {
				t.Fatalf("keepalived exited: %v\n%s", p.Err(), p.Out.String())
			}
			tb, err := readTable()
			if err != nil {
				return false, err.Error()
			}
			return tb.String() == initial.String(), "keepalived's table:\n" + tb.String() + "gokeepalived's:\n" + initial.String()
		})
		timing("keepalived start to the same table", took)
		l.checkRounds(t, l.checkCounts(), 2, 30*time.Second)
		if got := mustTable(t); got.String() != initial.String() {
			t.Errorf("after two rounds of keepalived's checks its table is:\n%s\ngokeepalived's was:\n%s", got, initial)
		} else {
			t.Logf("keepalived and gokeepalived program the same table (%d services) from the same configuration", len(got))
		}
		names := map[string]bool{}
		for range 6 {
			if n, err := vmlab.Get(l.http, urlHTTP); err == nil {
				names[n] = true
			}
		}
		if len(names) != 6 {
			t.Errorf("through keepalived's table, 6 requests reached %v", names)
		}

		// The same quorum loss as gokeepalived's SorryServer: the same table.
		down := l.servers[3:]
		for _, s := range down {
			if err := s.Stop(80); err != nil {
				t.Fatal(err)
			}
		}
		lost := waitTable(t, quorumLost(), 30*time.Second, "keepalived programs gokeepalived's table of the quorum loss")
		timing("keepalived: 3 of 6 listeners closed -> the same table", lost)
		for _, s := range down {
			if err := s.Start(80); err != nil {
				t.Fatal(err)
			}
		}
		back := waitTable(t, initial, 30*time.Second, "keepalived restores the whole table")
		timing("keepalived: listeners open again -> whole table", back)
		term = time.Now()
		if err := p.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
			t.Errorf("keepalived on SIGTERM: %v", err)
		}
		timing("keepalived: SIGTERM to exit", time.Since(term))
		if got := mustTable(t); len(got) != 0 {
			t.Logf("keepalived left at stop:\n%s", got)
		}
		timing("keepalived: whole comparison", time.Since(start))
	})
	timing("whole guest test", time.Since(begin))
}
