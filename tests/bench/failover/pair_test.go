package failover

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// pair is one implementation's master (priority 150) and backup (priority 100) for one
// virtual router, on two directors of a lab.
type pair struct {
	l       *benchLab
	im      impl
	version int           // VRRP version
	advert  time.Duration // advert_int
	vrid    uint8
	vip     netip.Addr
	mi, bi  int // director indexes of the master and the backup
	mprio   uint8
	bprio   uint8

	master, backup *daemon
	lastTakeover   time.Time // when the backup last became master (its first advert)
}

func newPair(l *benchLab, im impl, version int, advert time.Duration, vrid uint8, vip netip.Addr, mi, bi int) *pair {
	return &pair{l: l, im: im, version: version, advert: advert, vrid: vrid, vip: vip, mi: mi, bi: bi, mprio: 150, bprio: 100}
}

// conf is the director configuration: the seed scenario (v2, advert_int 1, PASS
// authentication) or VRRPv3 without authentication; GKA_RT=N adds vrrp_rt_priority N.
func (p *pair) conf(prio uint8) string {
	auth := `
    authentication {
        auth_type PASS
        auth_pass seedpass
    }`
	version := ""
	if p.version == 3 {
		auth, version = "", "\n    version 3"
	}
	global := ""
	if rt := os.Getenv("GKA_RT"); rt != "" {
		// The same real-time priority for both implementations (keepalived's
		// vrrp_rt_priority, which gokeepalived implements too).
		global = "global_defs {\n    vrrp_rt_priority " + rt + "\n}\n"
	}
	return global + fmt.Sprintf(`
vrrp_instance VI_%d {
    state BACKUP
    interface eth0
    virtual_router_id %d%s
    priority %d
    advert_int %s%s
    virtual_ipaddress {
        %s/24
    }
}
`, p.vrid, p.vrid, version, prio, trimSeconds(p.advert), auth, p.vip)
}

func trimSeconds(d time.Duration) string {
	return fmt.Sprintf("%g", d.Seconds())
}

// skew is the backup's Skew_Time: (256-prio)/256 s for v2 (as keepalived: not scaled by
// the interval), scaled by the advert interval for v3.
func (p *pair) skew() time.Duration {
	if p.version == 3 {
		return time.Duration(256-int64(p.bprio)) * p.advert / 256
	}
	return time.Duration(256-int64(p.bprio)) * time.Second / 256
}

// mdi is the backup's Master_Down_Interval: 3 x advert_int + Skew_Time.
func (p *pair) mdi() time.Duration { return 3*p.advert + p.skew() }

func (p *pair) isAdvert(e Event) bool { return e.Kind == Advert && e.VRID == p.vrid }

func (p *pair) fromMaster(e Event) bool {
	return p.isAdvert(e) && e.Src == p.l.addr(p.mi) && e.Priority == p.mprio
}

func (p *pair) fromBackup(e Event) bool {
	return p.isAdvert(e) && e.Src == p.l.addr(p.bi) && e.Priority == p.bprio
}

// startBoth starts the backup, then the master, and waits until the master is stable.
func (p *pair) startBoth() error {
	p.backup = p.l.start(p.bi, p.im, p.conf(p.bprio))
	p.master = p.l.start(p.mi, p.im, p.conf(p.mprio))
	return p.waitStable(20 * time.Second)
}

// waitStable waits for a run of consecutive adverts from the master at priority 150
// (nothing else from this virtual router in between) covering max(3 adverts, 2 s).
func (p *pair) waitStable(timeout time.Duration) error {
	need := max(3, int(2*time.Second/p.advert))
	idx := p.l.capt.Len()
	deadline := time.Now().Add(timeout)
	for run := 0; run < need; {
		ev, i, ok := p.l.capt.Wait(idx, deadline, p.isAdvert)
		if !ok {
			return fmt.Errorf("%s: no stable master within %v (%d consecutive adverts of %d)", p.im.name, timeout, run, need)
		}
		idx = i + 1
		if p.fromMaster(ev) {
			run++
		} else {
			run = 0
		}
	}
	return nil
}

// stop stops both daemons gracefully and removes any address they left behind.
func (p *pair) stop() {
	for _, d := range []*daemon{p.master, p.backup} {
		if d != nil {
			d.signal(syscall.SIGTERM)
		}
	}
	for _, d := range []*daemon{p.master, p.backup} {
		if d != nil && !d.wait(10*time.Second) {
			d.signal(syscall.SIGKILL)
			d.wait(5 * time.Second)
		}
	}
	for _, i := range []int{p.mi, p.bi} {
		_, _ = p.l.dirs[i].Try("ip", "addr", "del", p.vip.String()+"/24", "dev", "eth0")
	}
}

// sample is one failover, all durations from the kill (the timestamp taken just before
// kill(2)) unless said otherwise.
type sample struct {
	offset   time.Duration // kill after the master's last advert (where in its cycle)
	toZero   time.Duration // SIGTERM: to the priority-0 advert
	toAdvert time.Duration // to the new master's first advert at the client
	toGARP   time.Duration // to the new master's first gratuitous ARP for the VIP
	gap      time.Duration // SIGKILL: old master's last advert to the new master's first; SIGTERM: priority 0 to the new master's first
	bound    time.Duration // the protocol's value for gap: Master_Down_Interval, or Skew_Time after priority 0
}

// failover kills (SIGKILL) or stops (SIGTERM) the master at a random point of its
// advert cycle, measures the takeover from the capture, then restarts the master and
// waits until it has preempted and is stable again.
func (p *pair) failover(sig syscall.Signal) (sample, error) {
	var s sample
	c := p.l.capt
	// A new master's delayed gratuitous ARP burst (garp_master_delay, 5 s) from the
	// previous run must not be taken for this run's.
	if w := time.Until(p.lastTakeover.Add(6 * time.Second)); w > 0 {
		time.Sleep(w)
	}
	start := c.Len()
	last, lastIdx, ok := c.Wait(start, time.Now().Add(3*p.advert+time.Second), p.fromMaster)
	if !ok {
		return s, fmt.Errorf("%s: no advert from the master", p.im.name)
	}
	time.Sleep(time.Until(last.At.Add(rand.N(p.advert))))
	kill := time.Now()
	p.master.signal(sig)
	old := p.master

	first, firstIdx, ok := c.Wait(lastIdx, kill.Add(p.mdi()+3*time.Second), func(e Event) bool {
		return p.fromBackup(e) && e.At.After(kill)
	})
	if !ok {
		return s, fmt.Errorf("%s: the backup did not take over", p.im.name)
	}
	p.lastTakeover = first.At
	var zero Event
	if os.Getenv("GKA_TRACE") != "" {
		for _, e := range c.Events(lastIdx)[:firstIdx-lastIdx+1] {
			p.l.tb.Logf("  %v", e)
		}
	}
	for _, e := range c.Events(lastIdx)[:firstIdx-lastIdx] {
		switch {
		case p.fromMaster(e):
			last = e
		case p.isAdvert(e) && e.Src == p.l.addr(p.mi) && e.Priority == 0 && zero.At.IsZero():
			zero = e
		case p.isAdvert(e) && e.Src == p.l.addr(p.bi):
			return s, fmt.Errorf("%s: advert from the backup before its takeover: %v", p.im.name, e)
		}
	}
	s.offset = kill.Sub(last.At)
	s.toAdvert = first.At.Sub(kill)
	s.gap, s.bound = first.At.Sub(last.At), p.mdi()
	if sig == syscall.SIGTERM {
		if zero.At.IsZero() {
			return s, fmt.Errorf("%s: no priority-0 advert on SIGTERM", p.im.name)
		}
		s.toZero = zero.At.Sub(kill)
		s.gap, s.bound = first.At.Sub(zero.At), p.skew()
	}
	garp, _, ok := c.Wait(lastIdx, first.At.Add(3*time.Second), func(e Event) bool {
		return e.Kind == GARP && e.Src == p.vip && e.SrcMAC.String() == p.l.macs[p.bi].String() && e.At.After(kill)
	})
	if !ok {
		return s, fmt.Errorf("%s: no gratuitous ARP from the new master", p.im.name)
	}
	s.toGARP = garp.At.Sub(kill)

	if !old.wait(10 * time.Second) {
		return s, fmt.Errorf("%s: the old master did not exit on %v", p.im.name, sig)
	}
	p.master = p.l.start(p.mi, p.im, p.conf(p.mprio))
	return s, p.waitStable(20 * time.Second)
}
