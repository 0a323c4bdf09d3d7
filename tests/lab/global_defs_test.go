package lab

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gokeepalived/tests/netns"
)

// smtpSink accepts SMTP sessions on ln and sends the Subject of each mail to subjects.
func smtpSink(t *testing.T, ln net.Listener, subjects chan<- string) {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				r := bufio.NewReader(c)
				fmt.Fprint(c, "220 sink\r\n")
				inData := false
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					switch {
					case inData && line == ".":
						inData = false
						fmt.Fprint(c, "250 queued\r\n")
					case inData:
						if s, ok := strings.CutPrefix(line, "Subject: "); ok {
							subjects <- s
						}
					case strings.EqualFold(line, "DATA"):
						inData = true
						fmt.Fprint(c, "354 go ahead\r\n")
					case strings.EqualFold(line, "QUIT"):
						fmt.Fprint(c, "221 bye\r\n")
						return
					default: // EHLO, HELO, MAIL FROM, RCPT TO
						fmt.Fprint(c, "250 ok\r\n")
					}
				}
			}()
		}
	}()
}

// TestSMTPAlert: a director with notification_email and smtp_server mails its
// instance's transitions to a mail server in the client's namespace.
func TestSMTPAlert(t *testing.T) {
	l := New(t, 1)
	var ln net.Listener
	if err := l.Client.Do(func() (err error) {
		ln, err = net.Listen("tcp4", "192.168.71.100:2525")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	subjects := make(chan string, 10)
	smtpSink(t, ln, subjects)
	conf := `
global_defs {
    router_id lab-d1
    notification_email {
        ops@example.com
    }
    notification_email_from lb@example.com
    smtp_server 192.168.71.100 2525
    smtp_connect_timeout 5
}
` + seedConfig(150, "smtp_alert")
	l.Start(0, "d1", conf, binary)
	// The FAULT that waits for the first look at the instance's interface, a millisecond
	// at start, is not mailed.
	for _, want := range []string{
		"[lab-d1] VRRP Instance VI_1 - Entering BACKUP state",
		"[lab-d1] VRRP Instance VI_1 - Entering MASTER state",
	} {
		select {
		case s := <-subjects:
			if s != want {
				t.Fatalf("mail %q, want %q", s, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no mail %q within 15 s", want)
		}
	}
}

// TestStartupShutdownScripts: global_defs startup_script runs before the VRRP engine
// starts, shutdown_script after it stopped (the VIP is gone by then).
func TestStartupShutdownScripts(t *testing.T) {
	l := New(t, 1)
	dir := t.TempDir()
	conf := fmt.Sprintf(`
global_defs {
    startup_script "/bin/sh -c 'ip -o addr show dev eth0 > %[1]s/startup'"
    shutdown_script "/bin/sh -c 'ip -o addr show dev eth0 > %[1]s/shutdown'"
    shutdown_script_timeout 5
}
`, dir) + seedConfig(150, "")
	d := l.Start(0, "d1", conf, binary)
	waitHolder(t, l, VIP, 0, 10*time.Second)
	startup, err := os.ReadFile(filepath.Join(dir, "startup"))
	if err != nil {
		t.Fatalf("startup_script did not run: %v", err)
	}
	if strings.Contains(string(startup), VIP) {
		t.Errorf("startup_script ran after the VIP was added:\n%s", startup)
	}
	d.Signal(syscall.SIGTERM)
	if !d.Wait(15 * time.Second) {
		t.Fatal("the daemon did not exit on SIGTERM")
	}
	shutdown, err := os.ReadFile(filepath.Join(dir, "shutdown"))
	if err != nil {
		t.Fatalf("shutdown_script did not run: %v", err)
	}
	if strings.Contains(string(shutdown), VIP) || !strings.Contains(string(shutdown), "192.168.71.1/") {
		t.Errorf("shutdown_script did not run after the VIP was removed:\n%s", shutdown)
	}
}

// TestVirtualRoutes: the master installs its virtual_routes and virtual_rules in the
// kernel and the backup does not; after a graceful stop they are on the new master and
// gone from the old one.
func TestVirtualRoutes(t *testing.T) {
	l := New(t, 2)
	routes := "virtual_routes {\n        10.99.0.0/24 via 192.168.71.100 dev eth0\n        blackhole 10.98.0.0/24\n    }\n" +
		"    virtual_rules {\n        from 192.168.71.205 table 100\n    }"
	d1 := l.Start(0, "d1", seedConfig(150, routes), binary)
	l.Start(1, "d2", seedConfig(100, routes), binary)
	has := func(i int) (bool, bool) {
		routes, rules := l.Directors[i].Run("ip", "route", "show"), l.Directors[i].Run("ip", "rule", "show")
		return strings.Contains(routes, "10.99.0.0/24 via 192.168.71.100 dev eth0") && strings.Contains(routes, "blackhole 10.98.0.0/24"),
			strings.Contains(rules, "from 192.168.71.205 lookup 100")
	}
	waitHolder(t, l, VIP, 0, 10*time.Second)
	netns.Eventually(t, 5*time.Second, "routes on the master", func() bool { a, b := has(0); return a && b })
	if a, b := has(1); a || b {
		t.Fatal("the backup holds virtual routes")
	}
	d1.Signal(syscall.SIGTERM)
	waitHolder(t, l, VIP, 1, 10*time.Second)
	netns.Eventually(t, 5*time.Second, "routes on the new master", func() bool { a, b := has(1); return a && b })
	if !d1.Wait(10 * time.Second) {
		t.Fatal("d1 did not exit")
	}
	if a, b := has(0); a || b {
		t.Error("the stopped master left its virtual routes")
	}
}

// TestPromoteSecondaries: an instance with promote_secondaries sets the flag of its
// interface.
func TestPromoteSecondaries(t *testing.T) {
	l := New(t, 1)
	flag := func() string {
		return strings.TrimSpace(l.Directors[0].Run("cat", "/proc/sys/net/ipv4/conf/eth0/promote_secondaries"))
	}
	if f := flag(); f != "0" {
		t.Fatalf("promote_secondaries is %q in a new namespace, want the kernel's default 0", f)
	}
	l.Start(0, "d1", seedConfig(150, "promote_secondaries"), binary)
	netns.Eventually(t, 10*time.Second, "promote_secondaries on eth0", func() bool { return flag() == "1" })
}
