package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gokeepalived/parser"
)

// Transition is a state change of an instance, as reported to notify scripts, the FIFO,
// logs and the status API.
type Transition struct {
	Instance string
	From, To State
	Priority uint8
	Reason   string
	At       time.Time
	// Removed marks the shutdown (To INIT) of an instance that a reload deleted.
	Removed bool
}

// instance runs one vrrp_instance: it feeds events to its Machine and performs the
// actions through the kernel interfaces. Everything that touches the Machine happens on
// the instance's goroutine.
type instance struct {
	name   string
	cfg    *parser.VRRPInstance
	family Family
	pol    rxPolicy
	loop   *rxLoop      // the socket of the instance's interface and family
	dsts   []netip.Addr // the multicast group, or the unicast peers
	src    netip.Addr
	ttl    int
	vips   []*parser.VIP   // virtual_ipaddress then virtual_ipaddress_excluded
	vaddrs []netip.Addr    // addresses put in adverts (virtual_ipaddress only)
	ann    []announceGroup // addresses announced (all VIPs), by interface
	kernel Kernel
	log    *slog.Logger
	now    func() time.Time

	keepVIPsOnStop bool // -V: do not remove the addresses at shutdown
	stopping       bool
	// vmacFailed is set (before the instance runs) when its use_vmac macvlan could not
	// be set up: its addresses are then never put on an interface of that name.
	vmacFailed bool

	group        *syncGroup // nil unless in a vrrp_sync_group
	onTransition func(Transition)
	onLowerPrio  func(name string, src netip.Addr, heard, ours uint8)
	// onPriority gets a master's or a backup's new effective priority, when the
	// instance has notify_priority_changes.
	onPriority func(name string, st State, prio uint8)
	// removed is set when a reload deletes the instance (no instance of its name in
	// the new configuration): its shutdown is then notified as such.
	removed atomic.Bool

	// fwOwner names the instance to the firewall: its identity, which a reload keeps
	// even when it renames the instance.
	fwOwner  string
	fwErrors atomic.Uint64

	events   chan Event
	readd    chan *parser.VIP
	announce chan int
	stats    *Stats
	buf      []byte

	// Reload: carried is the state handed over by the previous generation (nil for a
	// new instance) with that instance's addresses; handover set asks run to stop
	// without shutting down, so that the next generation continues.
	carried *Machine
	oldVIPs []*parser.VIP
	// oldRoutes and oldRules are the instance's virtual_routes and virtual_rules before
	// a reload kept it.
	oldRoutes []*parser.Route
	oldRules  []*parser.Rule
	handover  atomic.Bool

	mu   sync.Mutex
	snap Machine

	lastDropLog   time.Time // receive loop only: rate limit for logDrop
	dropsUnlogged int
}

// dropLogEvery limits how often dropped advertisements are logged per instance (each is
// always counted).
const dropLogEvery = 10 * time.Second

// logDrop logs a dropped advertisement, at most once per dropLogEvery with the number
// dropped meanwhile, so a misconfigured peer is visible in the log without flooding it.
func (in *instance) logDrop(src netip.Addr, why string) {
	now := in.now()
	if now.Sub(in.lastDropLog) < dropLogEvery {
		in.dropsUnlogged++
		return
	}
	in.log.Warn("advertisement dropped", "from", src, "reason", why, "dropped_since_last_log", in.dropsUnlogged)
	in.lastDropLog, in.dropsUnlogged = now, 0
}

// newInstance prepares an instance from its configuration; it does not start it.
func newInstance(cfg *parser.VRRPInstance, g *parser.GlobalDefs, k Kernel, log *slog.Logger) *instance {
	in := &instance{
		name:     cfg.Name,
		cfg:      cfg,
		family:   FamilyIPv4,
		kernel:   k,
		log:      log.With("instance", cfg.Name),
		now:      time.Now,
		events:   make(chan Event, 64),
		readd:    make(chan *parser.VIP, 16),
		announce: make(chan int, 4),
		ttl:      255,
		src:      cfg.SrcIP,
		stats:    &Stats{},
		fwOwner:  IdentityOf(cfg).String(),
	}
	if cfg.Family == 6 {
		in.family = FamilyIPv6
	}
	in.vips = append(append(in.vips, cfg.VIPs...), cfg.ExcludedVIPs...)
	for _, v := range cfg.VIPs {
		in.vaddrs = append(in.vaddrs, v.Prefix.Addr())
	}
	in.ann = announceGroups(cfg, in.vips)
	sorted := slices.Clone(in.vaddrs)
	slices.SortFunc(sorted, netip.Addr.Compare)
	in.pol = rxPolicy{
		version: uint8(cfg.Version), family: in.family, vips: sorted,
		skipAddrCheck: cfg.SkipCheckAdvAddr || g.SkipCheckAdvAddr,
		unicast:       len(cfg.UnicastPeers) > 0, checkUnicastSrc: cfg.CheckUnicastSrc || g.CheckUnicastSrc,
	}
	if cfg.V3ChecksumAsV2 {
		in.pol.ckMode = ChecksumMessageOnly
	}
	if cfg.Auth != nil && cfg.Version == 2 {
		switch cfg.Auth.Type {
		case "PASS":
			in.pol.authType, in.pol.authData = AuthPass, PassAuthData(cfg.Auth.Pass)
		case "AH":
			in.pol.authType = AuthAH
		}
	}
	if len(cfg.UnicastPeers) > 0 {
		for _, p := range cfg.UnicastPeers {
			in.dsts = append(in.dsts, p.Addr)
			q := peerTTL{addr: p.Addr}
			if p.MinTTL != nil {
				q.min = *p.MinTTL
			}
			if p.MaxTTL != nil {
				q.max = *p.MaxTTL
			}
			in.pol.peers = append(in.pol.peers, q)
		}
		if cfg.UnicastTTL > 0 {
			in.ttl = cfg.UnicastTTL
		}
	} else {
		in.dsts = []netip.Addr{cfg.McastGroup}
	}
	return in
}

// params maps the configuration to the state machine's parameters.
func (in *instance) params() Params {
	c := in.cfg
	return Params{
		Version: uint8(c.Version), Priority: uint8(c.Priority), AdvertInt: c.AdvertInt.D(),
		Preempt: !c.Nopreempt, PreemptDelay: c.PreemptDelay.D(), StartMaster: c.State == "MASTER",
		DownTimerAdverts: c.DownTimerAdverts, LowerPrioNoAdvert: c.LowerPrioNoAdvert,
		HigherPrioSendAdvert: c.HigherPrioSendAdvert, PrimaryAddr: in.src,
		GARPMasterDelay: c.GARPMasterDelay.D(), GARPMasterRepeat: c.GARPMasterRepeat,
		GARPMasterRefresh: c.GARPMasterRefresh.D(), GARPMasterRefreshRepeat: c.GARPMasterRefreshRepeat,
		GARPLowerPrioRepeat: c.GARPLowerPrioRepeat, SyncGroup: in.group != nil,
	}
}

// run drives the instance until ctx ends, then shuts it down (priority-0 advert and
// address removal when master) before returning.
func (in *instance) run(ctx context.Context, fault bool, reason string) {
	go in.announcer(ctx)
	var m Machine
	if in.carried != nil {
		m = *in.carried
	} else {
		m = in.step(NewMachine(in.params()), Event{Kind: EvStart, Now: in.now(), Fault: fault, Reason: reason})
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Stop()
		if d := m.NextDeadline(); !d.IsZero() {
			timer.Reset(time.Until(d))
		}
		select {
		case <-ctx.Done():
			if in.handover.Load() {
				return // a reload keeps this instance: the next generation continues
			}
			in.stopping = true
			in.step(m, Event{Kind: EvShutdown, Now: in.now()})
			return
		case ev := <-in.events:
			if ev.Now.IsZero() {
				ev.Now = in.now()
			}
			m = in.step(m, ev)
		case <-timer.C:
			m = in.step(m, Event{Kind: EvTimer, Now: in.now()})
		case v := <-in.readd:
			in.readdVIP(m, v)
		}
	}
}

// continueMachine takes over the state of the same instance from before a reload with
// the new parameters (called by the manager before the instance runs). A master keeps its addresses: only those added or removed by the
// reload reach the kernel, so an unchanged instance causes no address event at all.
func (in *instance) continueMachine(m Machine) Machine {
	base := m.P.Priority
	m.P = in.params()
	if m.P.Priority != base && !m.IsOwner() {
		m.Priority = m.P.Priority // the trackers' view follows at once
	}
	if m.State == StateMaster {
		// The new configuration decides: accept switched on or off, addresses
		// added or removed, the owner priority gained or lost.
		if blocksVIPs(in.cfg) {
			in.block()
		} else {
			in.unblock()
		}
		key := func(v *parser.VIP) string { return v.Prefix.String() + " " + v.Dev }
		old := map[string]*parser.VIP{}
		for _, v := range in.oldVIPs {
			old[key(v)] = v
		}
		added := 0
		for _, v := range in.vips {
			if old[key(v)] != nil {
				delete(old, key(v))
				continue
			}
			if err := in.addVIP(v); err != nil {
				in.log.Error("cannot add virtual address", "addr", v.Prefix, "dev", v.Dev, "err", err)
			}
			added++
		}
		for _, v := range old {
			if err := in.kernel.Addrs.Del(v); err != nil {
				in.log.Error("cannot remove virtual address", "addr", v.Prefix, "dev", v.Dev, "err", err)
			}
		}
		if added > 0 {
			select {
			case in.announce <- max(1, in.cfg.GARPMasterRepeat):
			default:
			}
		}
		in.reloadRoutes()
	}
	in.mu.Lock()
	in.snap = m
	in.mu.Unlock()
	in.log.Info("configuration reloaded; state kept", "state", m.State.String())
	return m
}

// deliver hands an event to the instance without blocking the caller (the receive loop
// or a tracker). A full queue drops the event: adverts repeat every interval.
// await holds a new instance in INIT for d (vrrp_startup_delay), discarding what arrives
// meanwhile (adverts, tracker updates: the state is read afresh after); false when ctx
// ends first.
func (in *instance) await(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-in.events:
		case <-ctx.Done():
			return false
		}
	}
}

// addRoutes installs a master's virtual_routes, after its addresses (a route may use
// one as its source), then its virtual_rules (which send traffic to the routes' tables).
func (in *instance) addRoutes(routes []*parser.Route, rules []*parser.Rule) {
	if len(routes) == 0 && len(rules) == 0 {
		return
	}
	if in.kernel.Routes == nil {
		in.log.Warn("virtual_routes and virtual_rules are not installed: no route manager")
		return
	}
	for _, r := range routes {
		if err := in.kernel.Routes.Add(r); err != nil {
			in.log.Error("cannot add virtual route", "route", r.Text, "err", err)
		}
	}
	for _, r := range rules {
		if err := in.kernel.Routes.AddRule(r); err != nil {
			in.log.Error("cannot add virtual rule", "rule", r.Text, "err", err)
		}
	}
}

// delRoutes removes virtual_rules, then virtual_routes, before the addresses they may
// use.
func (in *instance) delRoutes(routes []*parser.Route, rules []*parser.Rule) {
	if in.kernel.Routes == nil {
		return
	}
	for _, r := range rules {
		if err := in.kernel.Routes.DelRule(r); err != nil {
			in.log.Error("cannot remove virtual rule", "rule", r.Text, "err", err)
		}
	}
	for _, r := range routes {
		if err := in.kernel.Routes.Del(r); err != nil {
			in.log.Error("cannot remove virtual route", "route", r.Text, "err", err)
		}
	}
}

// reloadRoutes makes a master kept by a reload hold the new configuration's
// virtual_routes and virtual_rules: those no longer configured go, the others are
// (re)installed.
func (in *instance) reloadRoutes() {
	keep := map[string]bool{}
	for _, r := range in.cfg.Routes {
		keep["route "+r.Text] = true
	}
	for _, r := range in.cfg.Rules {
		keep["rule "+r.Text] = true
	}
	var goneRoutes []*parser.Route
	for _, r := range in.oldRoutes {
		if !keep["route "+r.Text] {
			goneRoutes = append(goneRoutes, r)
		}
	}
	var goneRules []*parser.Rule
	for _, r := range in.oldRules {
		if !keep["rule "+r.Text] {
			goneRules = append(goneRules, r)
		}
	}
	in.delRoutes(goneRoutes, goneRules)
	in.addRoutes(in.cfg.Routes, in.cfg.Rules)
}

func (in *instance) deliver(ev Event) {
	select {
	case in.events <- ev:
	default:
		in.log.Warn("event queue full; event dropped", "kind", ev.Kind)
	}
}

func (in *instance) step(m Machine, ev Event) Machine {
	from, prio := m.State, m.Priority
	m, acts := m.Step(ev)
	if m.Priority != prio && m.State == from && (m.State == StateMaster || m.State == StateBackup) &&
		in.cfg.NotifyPriorityChanges && in.onPriority != nil {
		in.onPriority(in.name, m.State, m.Priority)
	}
	// The packets and addresses first, then the transition's log line and notifies:
	// a new master's first advert goes out before anything slower.
	for _, a := range acts {
		if a.Kind != ActTransition {
			in.perform(m, from, a)
		}
	}
	for _, a := range acts {
		if a.Kind == ActTransition {
			in.perform(m, from, a)
		}
	}
	in.mu.Lock()
	in.snap = m
	in.mu.Unlock()
	return m
}

func (in *instance) perform(m Machine, from State, a Action) {
	switch a.Kind {
	case ActTransition:
		in.log.Info("("+in.name+") Entering "+a.State.String()+" STATE", "reason", a.Reason, "priority", m.Priority)
		if a.State == StateMaster {
			in.stats.BecomeMaster.Add(1)
		}
		if from == StateMaster && a.State != StateMaster {
			in.stats.ReleaseMaster.Add(1)
		}
		if in.group != nil && from == StateMaster && a.State != StateMaster {
			in.group.left(in)
		}
		if in.onTransition != nil {
			in.onTransition(Transition{Instance: in.name, From: from, To: a.State, Priority: m.Priority, Reason: a.Reason, At: m.LastTransition,
				Removed: a.State == StateInit && in.removed.Load()})
		}
	case ActSendAdvert:
		in.sendAdvert(a.Priority)
	case ActAddVIPs:
		in.block()
		for _, v := range in.vips {
			if err := in.addVIP(v); err != nil {
				in.log.Error("cannot add virtual address", "addr", v.Prefix, "dev", v.Dev, "err", err)
			}
		}
		in.addRoutes(in.cfg.Routes, in.cfg.Rules)
	case ActRemoveVIPs:
		if in.stopping && in.keepVIPsOnStop {
			in.log.Info("leaving virtual addresses in place (-V)")
			return
		}
		in.delRoutes(in.cfg.Routes, in.cfg.Rules)
		for _, v := range in.vips {
			if err := in.kernel.Addrs.Del(v); err != nil {
				in.log.Error("cannot remove virtual address", "addr", v.Prefix, "dev", v.Dev, "err", err)
			}
		}
		if blocksVIPs(in.cfg) {
			in.unblock()
		}
	case ActAnnounce:
		if a.Count > 0 && len(in.ann) > 0 {
			select {
			case in.announce <- a.Count:
			default:
			}
		}
	case ActNotifyLowerPrio:
		in.log.Info("received lower priority advert; re-advertising", "from", a.Src, "priority", a.Priority)
		if in.onLowerPrio != nil {
			in.onLowerPrio(in.name, a.Src, a.Priority, m.Priority)
		}
	case ActWantMaster:
		if in.group != nil {
			in.group.wantMaster(in)
		}
	case ActCount:
		if c := in.stats.counter(a.Counter); c != nil {
			c.Add(1)
		}
	}
}

// sendAdvert sends one advertisement to every destination.
func (in *instance) sendAdvert(prio uint8) {
	a := Advert{Version: uint8(in.cfg.Version), VRID: uint8(in.cfg.VRID), Priority: prio,
		AuthType: in.pol.authType, AuthData: in.pol.authData, Addrs: in.vaddrs}
	if a.Version == 3 {
		a.AdverInt = uint16(in.cfg.AdvertInt.D() / (10 * time.Millisecond))
	} else {
		a.AdverInt = uint16(in.cfg.AdvertInt.D() / time.Second)
	}
	conn := in.loop.getConn()
	for _, dst := range in.dsts {
		b, err := a.AppendMarshal(in.buf[:0], in.pol.ckMode, in.src, dst)
		if err == nil && conn == nil {
			err = fmt.Errorf("no socket on %s yet", in.cfg.Interface)
		}
		if err == nil {
			in.buf = b
			err = conn.WriteAdvert(b, in.src, dst, in.ttl)
		}
		if err != nil {
			in.stats.SendErr.Add(1)
			in.log.Warn("cannot send advertisement", "to", dst, "err", err)
			continue
		}
		in.stats.AdvertSent.Add(1)
		if prio == 0 {
			in.stats.PriZeroSent.Add(1)
		}
	}
}

// announcer sends announcement bursts off the instance goroutine, so spacing between
// gratuitous ARPs never delays an advertisement.
func (in *instance) announcer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-in.announce:
			for _, g := range in.ann {
				if err := in.kernel.Announcer.Announce(g.ifname, g.addrs, n); err != nil {
					in.log.Warn("cannot announce virtual addresses", "interface", g.ifname, "err", err)
				}
			}
		}
	}
}

// readdVIP puts back a virtual address someone else removed while we are master.
func (in *instance) readdVIP(m Machine, v *parser.VIP) {
	if m.State != StateMaster {
		return
	}
	in.log.Warn("virtual address removed by someone else; adding it back", "addr", v.Prefix, "dev", v.Dev)
	if err := in.addVIP(v); err != nil {
		in.log.Error("cannot re-add virtual address", "addr", v.Prefix, "err", err)
		return
	}
	in.stats.VIPReadded.Add(1)
	select {
	case in.announce <- max(1, in.cfg.GARPMasterRepeat):
	default:
	}
}

// machine returns a copy of the state machine as of the last step.
func (in *instance) machine() Machine {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.snap
}
