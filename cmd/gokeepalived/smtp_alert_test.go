package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"gokeepalived/ipvs"
	"gokeepalived/parser"
	"gokeepalived/vrrp"
)

// smtpMail is a mail as the test server received it.
type smtpMail struct {
	from string
	to   []string
	data string
}

// smtpServer is a minimal SMTP server on loopback that keeps what it receives.
type smtpServer struct {
	ln    net.Listener
	mails chan smtpMail
	helos chan string
}

func startSMTPServer(t *testing.T) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, mails: make(chan smtpMail, 100), helos: make(chan string, 100)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.session(c)
			}()
		}
	}()
	return s
}

// session speaks one SMTP session.
func (s *smtpServer) session(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	reply := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	reply("220 test.example ESMTP")
	var m smtpMail
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch {
		case cmd == "EHLO" || cmd == "HELO":
			s.helos <- strings.TrimSpace(line[4:])
			reply("250 test.example")
		case strings.HasPrefix(strings.ToUpper(line), "MAIL FROM:"):
			m.from = strings.Trim(line[len("MAIL FROM:"):], "<> ")
			reply("250 OK")
		case strings.HasPrefix(strings.ToUpper(line), "RCPT TO:"):
			m.to = append(m.to, strings.Trim(line[len("RCPT TO:"):], "<> "))
			reply("250 OK")
		case cmd == "DATA":
			reply("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			m.data = b.String()
			s.mails <- m
			m = smtpMail{}
			reply("250 queued")
		case cmd == "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

// next returns the next mail, failing the test after 10 s without one.
func (s *smtpServer) next(t *testing.T) smtpMail {
	t.Helper()
	select {
	case m := <-s.mails:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no mail within 10 s")
		return smtpMail{}
	}
}

// none fails the test if a mail arrives within d.
func (s *smtpServer) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-s.mails:
		t.Fatalf("unexpected mail: %q", m.data)
	case <-time.After(d):
	}
}

// subject returns the Subject header of a mail's data.
func subject(data string) string {
	for _, l := range strings.Split(data, "\r\n") {
		if v, ok := strings.CutPrefix(l, "Subject: "); ok {
			return v
		}
	}
	return ""
}

// alertConfig loads a configuration whose global_defs send alerts to srv.
func alertConfig(t *testing.T, srv net.Addr, rest string) *parser.Config {
	t.Helper()
	a := srv.(*net.TCPAddr)
	text := fmt.Sprintf(`
global_defs {
    router_id lb1
    notification_email {
        ops@example.com
        oncall@example.com
    }
    smtp_server %s %d
    smtp_connect_timeout 5
}
%s`, a.IP, a.Port, rest)
	cfg, ds := parser.LoadBytes("alert.conf", []byte(text), parser.Options{ConfigID: "x"})
	if ds.ExitCode() != parser.ExitOK {
		t.Fatalf("config: %v", ds)
	}
	return cfg
}

func testAlerter(t *testing.T, cfg *parser.Config) *alerter {
	t.Helper()
	a := newAlerter(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.stop(ctx)
	})
	return a
}

const alertInstances = `
vrrp_sync_group G {
    group {
        VI_1
    }
    smtp_alert
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    priority 100
    virtual_ipaddress {
        10.0.0.100
    }
    smtp_alert
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 2
    priority 100
    virtual_ipaddress {
        10.0.0.101
    }
}
`

// TestAlertVRRP: an instance with smtp_alert mails its new state to every recipient,
// its sync group once per group state; an instance without smtp_alert sends nothing.
func TestAlertVRRP(t *testing.T) {
	srv := startSMTPServer(t)
	a := testAlerter(t, alertConfig(t, srv.ln.Addr(), alertInstances))
	at := time.Now()
	a.vrrpTransition(vrrp.Transition{Instance: "VI_2", From: vrrp.StateBackup, To: vrrp.StateMaster, Priority: 100, At: at})
	a.vrrpTransition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster, Priority: 100, Reason: "master down", At: at})
	want := map[string]bool{
		"[lb1] VRRP Instance VI_1 - Entering MASTER state": true,
		"[lb1] VRRP Group G - Entering MASTER state":       true,
	}
	for range 2 {
		m := srv.next(t)
		if s := subject(m.data); !want[s] {
			t.Errorf("subject %q, want one of %v", s, want)
		} else {
			delete(want, s)
		}
		if strings.Join(m.to, ",") != "ops@example.com,oncall@example.com" || !strings.HasPrefix(m.from, "keepalived@") {
			t.Errorf("from %q to %v", m.from, m.to)
		}
		if !strings.Contains(m.data, "Date: ") || !strings.Contains(m.data, "To: ops@example.com, oncall@example.com") {
			t.Errorf("headers missing: %q", m.data)
		}
	}
	if h := <-srv.helos; h == "" {
		t.Error("empty HELO name")
	}
	// The same group state again is not mailed; the instance's is.
	a.vrrpTransition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateMaster, To: vrrp.StateMaster, At: at})
	if s := subject(srv.next(t).data); s != "[lb1] VRRP Instance VI_1 - Entering MASTER state" {
		t.Errorf("subject %q", s)
	}
	srv.none(t, 300*time.Millisecond)
}

// TestAlertNoEmailFaults: with no_email_faults a FAULT state sends nothing.
func TestAlertNoEmailFaults(t *testing.T) {
	srv := startSMTPServer(t)
	cfg := alertConfig(t, srv.ln.Addr(), alertInstances)
	cfg.Global.NoEmailFaults = true
	a := testAlerter(t, cfg)
	a.vrrpTransition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateMaster, To: vrrp.StateFault, At: time.Now()})
	srv.none(t, 300*time.Millisecond)
	a.vrrpTransition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateFault, To: vrrp.StateBackup, At: time.Now()})
	if s := subject(srv.next(t).data); s != "[lb1] VRRP Instance VI_1 - Entering BACKUP state" {
		t.Errorf("subject %q", s)
	}
}

// TestAlertLVS: a real server with smtp_alert (on by default for real servers) mails a
// change of its health, not its first state; a virtual server with smtp_alert mails its
// quorum; smtp_alert off keeps a real server quiet.
func TestAlertLVS(t *testing.T) {
	srv := startSMTPServer(t)
	cfg := alertConfig(t, srv.ln.Addr(), `
virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_algo rr
    smtp_alert
    real_server 10.0.0.2 80 {
        smtp_alert
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.0.0.3 80 {
        smtp_alert off
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`)
	a := testAlerter(t, cfg)
	vs := cfg.VirtualServers[0]
	a.realServer(ipvs.RealServerEvent{VS: vs, RS: vs.RealServers[0], Up: true, Reason: "new real server: up until a check fails"}) // first state
	a.realServer(ipvs.RealServerEvent{VS: vs, RS: vs.RealServers[1], Up: false, Reason: "refused", Checked: true})
	a.realServer(ipvs.RealServerEvent{VS: vs, RS: vs.RealServers[0], Up: false, Reason: "TCP_CHECK 10.0.0.2:80: connect: connection refused", Checked: true})
	m := srv.next(t)
	if s := subject(m.data); s != "[lb1] Realserver [10.0.0.2]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN" {
		t.Errorf("subject %q", s)
	}
	if !strings.Contains(m.data, "connection refused") {
		t.Errorf("the body does not say why: %q", m.data)
	}
	a.quorum(ipvs.QuorumEvent{VS: vs, Up: true})
	if s := subject(srv.next(t).data); s != "[lb1] Virtual Server [10.0.0.1]:tcp:80 - UP" {
		t.Errorf("subject %q", s)
	}
	srv.none(t, 300*time.Millisecond)
}

// TestAlertServerDown: with the mail server unreachable or silent, alerts never block
// their caller, the queue is bounded, and stop returns by its deadline.
func TestAlertServerDown(t *testing.T) {
	// A server that accepts and never greets.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	cfg := alertConfig(t, ln.Addr(), alertInstances)
	a := newAlerter(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	start := time.Now()
	for i := range 3 * alertQueue {
		a.vrrpTransition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.State(1 + i%2), At: time.Now()})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("queueing %d alerts took %v", 3*alertQueue, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	a.stop(ctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop returned after %v", d)
	}
}

// TestAlertNoServer: without smtp_server nothing is queued.
func TestAlertNoServer(t *testing.T) {
	cfg, ds := parser.LoadBytes("alert.conf", []byte(alertInstances), parser.Options{ConfigID: "x"})
	if ds.ExitCode() != parser.ExitOK {
		t.Fatalf("config: %v", ds)
	}
	a := testAlerter(t, cfg)
	a.vrrpTransition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster, At: time.Now()})
	if n := len(a.queue); n != 0 {
		t.Errorf("%d alerts queued without a mail server", n)
	}
}

// TestAlertReload: setConfig switches the server and the recipients.
func TestAlertReload(t *testing.T) {
	srv1, srv2 := startSMTPServer(t), startSMTPServer(t)
	a := testAlerter(t, alertConfig(t, srv1.ln.Addr(), alertInstances))
	a.setConfig(alertConfig(t, srv2.ln.Addr(), alertInstances))
	a.vrrpTransition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster, At: time.Now()})
	srv2.next(t)
	srv1.none(t, 300*time.Millisecond)
}

// TestAlertAfterStop: an event that comes after stop (an engine still winding down) is
// dropped, not a panic on the closed queue.
func TestAlertAfterStop(t *testing.T) {
	srv := startSMTPServer(t)
	cfg := alertConfig(t, srv.ln.Addr(), alertInstances)
	a := newAlerter(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.stop(ctx)
	a.vrrpTransition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster, At: time.Now()})
	srv.none(t, 200*time.Millisecond)
}

// TestAlertStartFault: a FAULT entered at start is mailed only if it lasts: the one
// that ends within the hold (trackers' first results) sends nothing, the one that
// stays sends its mail once the hold is over.
func TestAlertStartFault(t *testing.T) {
	srv := startSMTPServer(t)
	a := testAlerter(t, alertConfig(t, srv.ln.Addr(), alertInstances))
	a.mu.Lock()
	a.faultHold = 300 * time.Millisecond
	a.mu.Unlock()
	a.vrrpTransition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateInit, To: vrrp.StateFault, Reason: "fault at start: eth0 down", At: time.Now()})
	a.vrrpTransition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateFault, To: vrrp.StateBackup, Reason: "fault cleared", At: time.Now()})
	for _, want := range []string{"[lb1] VRRP Instance VI_1 - Entering BACKUP state", "[lb1] VRRP Group G - Entering BACKUP state"} {
		if s := subject(srv.next(t).data); s != want {
			t.Errorf("subject %q, want %q", s, want)
		}
	}
	srv.none(t, 600*time.Millisecond)

	a.vrrpTransition(vrrp.Transition{Instance: "VI_2", From: vrrp.StateInit, To: vrrp.StateFault, At: time.Now()}) // no smtp_alert
	a.setConfig(alertConfig(t, srv.ln.Addr(), alertInstances))
	a.vrrpTransition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateInit, To: vrrp.StateFault, Reason: "fault at start: eth0 down", At: time.Now()})
	start := time.Now()
	m := srv.next(t)
	if s := subject(m.data); s != "[lb1] VRRP Instance VI_1 - Entering FAULT state" || !strings.Contains(m.data, "eth0 down") {
		t.Errorf("mail %q", m.data)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("the lasting start-up FAULT was mailed after %v, before the hold", d)
	}
}
