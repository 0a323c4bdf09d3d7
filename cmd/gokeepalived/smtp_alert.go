package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/smtp"
	"os"
	"strings"
	"sync"
	"time"

	"gokeepalived/ipvs"
	"gokeepalived/parser"
	"gokeepalived/vrrp"
)

// alertQueue bounds the alerts waiting for the mail server; more are dropped (and
// counted in the log) rather than held in memory while the server is away.
const alertQueue = 64

// alertStopWait bounds the wait for the queued alerts at shutdown.
const alertStopWait = 5 * time.Second

// alertFaultHold is how long an instance's FAULT at start must last to be mailed.
const alertFaultHold = 3 * time.Second

// alertDropLogEvery limits the "alert dropped" warning.
const alertDropLogEvery = time.Minute

// alert is one mail.
type alert struct {
	subject, body string
	at            time.Time
}

// alerter sends keepalived's SMTP alerts: a mail per event (a VRRP instance or sync
// group entering a state, a real server going up or down, a virtual server gaining or
// losing its quorum) to global_defs notification_email through smtp_server, for the
// objects whose smtp_alert is on. The mails wait in a bounded queue that one
// goroutine drains, one SMTP session each, so that a slow or dead mail server never
// holds up VRRP or the checkers.
type alerter struct {
	log     *slog.Logger
	host    string // the local host name: default router_id, HELO name and sender domain
	queue   chan alert
	done    chan struct{} // closed when the sender is gone
	abandon chan struct{} // closed when stop gives up waiting: the sender drops the rest

	mu        sync.Mutex
	closed    bool // stop was called: new alerts are dropped
	cfg       *parser.Config
	groupSent map[string]vrrp.State  // the last state mailed per sync group
	heldFault map[string]*time.Timer // start-up FAULTs not mailed yet, per instance
	faultHold time.Duration          // how long a start-up FAULT must last to be mailed
	dropped   int                    // alerts dropped since the last warning
	droppedAt time.Time
}

// newAlerter starts the sender for cfg; setConfig gives it a reloaded configuration.
func newAlerter(cfg *parser.Config, log *slog.Logger) *alerter {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	a := &alerter{
		log: log, host: host,
		queue: make(chan alert, alertQueue), done: make(chan struct{}), abandon: make(chan struct{}),
		cfg: cfg, groupSent: map[string]vrrp.State{},
		heldFault: map[string]*time.Timer{}, faultHold: alertFaultHold,
	}
	go a.send()
	return a
}

// setConfig makes cfg the configuration whose flags, recipients and server apply.
func (a *alerter) setConfig(cfg *parser.Config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg = cfg
}

// stop stops taking alerts and waits, until ctx ends, for the queued ones to be sent.
func (a *alerter) stop(ctx context.Context) {
	a.mu.Lock()
	a.closed = true
	close(a.queue)
	a.mu.Unlock()
	select {
	case <-a.done:
	case <-ctx.Done():
		close(a.abandon)
		a.log.Warn("SMTP alerts still queued at shutdown were not sent", "queued", len(a.queue), "err", ctx.Err())
	}
}

// vrrpTransition mails an instance's new state if its smtp_alert is on, and its sync
// group's new state if the group's is (once per group state). An instance starts in
// FAULT until each of its trackers has a first result (keepalived waits in INIT),
// usually for a millisecond: a FAULT entered at start is mailed only if it lasts
// faultHold.
func (a *alerter) vrrpTransition(t vrrp.Transition) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if held := a.heldFault[t.Instance]; held != nil {
		held.Stop() // the start-up FAULT ended before it was worth a mail
		delete(a.heldFault, t.Instance)
	}
	if t.From == vrrp.StateInit && t.To == vrrp.StateFault {
		var timer *time.Timer
		timer = time.AfterFunc(a.faultHold, func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.heldFault[t.Instance] == timer {
				delete(a.heldFault, t.Instance)
				a.mailTransitionLocked(t)
			}
		})
		a.heldFault[t.Instance] = timer
		return
	}
	a.mailTransitionLocked(t)
}

// mailTransitionLocked queues the mails of transition t; a.mu is held.
func (a *alerter) mailTransitionLocked(t vrrp.Transition) {
	g := &a.cfg.Global
	if t.To == vrrp.StateInit || (t.To == vrrp.StateFault && g.NoEmailFaults) {
		return
	}
	for _, in := range a.cfg.Instances {
		if in.Name == t.Instance && in.SMTPAlert {
			a.queueLocked(fmt.Sprintf("VRRP Instance %s - Entering %s state", t.Instance, t.To),
				fmt.Sprintf("=> VRRP Instance %s: %s -> %s, priority %d: %s <=", t.Instance, t.From, t.To, t.Priority, t.Reason), t.At)
		}
	}
	for _, sg := range a.cfg.SyncGroups {
		if !sg.SMTPAlert || a.groupSent[sg.Name] == t.To {
			continue
		}
		for _, m := range sg.Members {
			if m == t.Instance {
				a.groupSent[sg.Name] = t.To
				a.queueLocked(fmt.Sprintf("VRRP Group %s - Entering %s state", sg.Name, t.To),
					fmt.Sprintf("=> VRRP Group %s is now %s (instance %s: %s) <=", sg.Name, t.To, t.Instance, t.Reason), t.At)
				break
			}
		}
	}
}

// realServer mails a real server's new health if its smtp_alert is on; its first state
// (at start, or added by a reload) is not a change and sends nothing.
func (a *alerter) realServer(e ipvs.RealServerEvent) {
	if !e.RS.SMTPAlert || !e.Checked {
		return
	}
	rs := vrrp.LVSService{Addr: netip.AddrPortFrom(e.RS.Addr, e.RS.Port), Protocol: e.VS.Protocol}
	state, body := "DOWN", "=> CHECK failed on service: "+e.Reason+" <="
	if e.Up {
		state, body = "UP", "=> CHECK succeed on service: "+e.Reason+" <="
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queueLocked(fmt.Sprintf("Realserver %s of virtual server %s - %s", rs, lvsService(e.VS), state), body, time.Now())
}

// quorum mails a virtual server's quorum change if its smtp_alert is on.
func (a *alerter) quorum(e ipvs.QuorumEvent) {
	if !e.VS.SMTPAlert {
		return
	}
	state, body := "DOWN", fmt.Sprintf("=> Lost quorum: fewer than %d of weight up (hysteresis %d) <=", e.VS.Quorum, e.VS.Hysteresis)
	if e.Up {
		state, body = "UP", fmt.Sprintf("=> Gained quorum: %d of weight up (hysteresis %d) <=", e.VS.Quorum, e.VS.Hysteresis)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queueLocked(fmt.Sprintf("Virtual Server %s - %s", lvsService(e.VS), state), body, time.Now())
}

// queueLocked queues a mail unless no server or recipient is configured; a.mu is held.
func (a *alerter) queueLocked(subject, body string, at time.Time) {
	g := &a.cfg.Global
	if a.closed || g.SMTPServer == "" || len(g.NotificationEmail) == 0 {
		return
	}
	select {
	case a.queue <- alert{subject: subject, body: body, at: at}:
		return
	default:
	}
	a.dropped++
	if time.Since(a.droppedAt) >= alertDropLogEvery {
		a.log.Warn("SMTP alert dropped: the queue is full (mail server slow or unreachable)",
			"subject", subject, "dropped_since_last_warning", a.dropped)
		a.dropped, a.droppedAt = 0, time.Now()
	}
}

// send mails the queued alerts one after the other until stop.
func (a *alerter) send() {
	defer close(a.done)
	for m := range a.queue {
		select {
		case <-a.abandon:
			return
		default:
		}
		a.mu.Lock()
		g := a.cfg.Global
		a.mu.Unlock()
		if err := a.mail(&g, m); err != nil {
			a.log.Warn("SMTP alert not sent", "server", net.JoinHostPort(g.SMTPServer, fmt.Sprint(g.SMTPPort)), "subject", m.subject, "err", err)
		}
	}
}

// mail sends m in one SMTP session, the whole of it within smtp_connect_timeout.
func (a *alerter) mail(g *parser.GlobalDefs, m alert) error {
	timeout := g.SMTPConnectTimeout.D()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(g.SMTPServer, fmt.Sprint(g.SMTPPort)))
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	c, err := smtp.NewClient(conn, g.SMTPServer)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	helo := cmp.Or(g.SMTPHeloName, a.host)
	if err := c.Hello(helo); err != nil {
		return fmt.Errorf("HELO: %w", err)
	}
	from := cmp.Or(g.NotificationFrom, "keepalived@"+a.host)
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, to := range g.NotificationEmail {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := fmt.Fprintf(w, "From: %s\nTo: %s\nSubject: [%s] %s\nDate: %s\nX-Mailer: gokeepalived\n\n%s\n",
		from, strings.Join(g.NotificationEmail, ", "), oneLine(cmp.Or(g.RouterID, a.host)), oneLine(m.subject),
		m.at.Format(time.RFC1123Z), m.body); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return c.Quit()
}

// oneLine keeps a header on one line: a reason or a name with a line break must not
// start headers of its own.
func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
