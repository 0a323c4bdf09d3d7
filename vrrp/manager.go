package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gokeepalived/parser"
)

// Kernel bundles the kernel-facing pieces the engine uses. The Linux implementations are
// ListenAdvert, NewAddrManager, NewAnnouncer, PrimaryAddr and NewVMACManager; tests use
// the fakes.
type Kernel struct {
	Listen func(ifname string, f Family, opts ConnOptions) (AdvertConn, error)
	Addrs  AddrManager
	// Routes installs a master's virtual_routes; nil leaves them out (logged once per
	// instance that has some).
	Routes RouteManager
	// PromoteSecondaries turns on the promote_secondaries flag of an interface (an
	// instance with promote_secondaries); nil skips it.
	PromoteSecondaries func(ifname string) error
	Announcer          Announcer
	PrimaryAddr        func(ifname string, f Family) (netip.Addr, error)
	// NewSensor builds the sensor of a tracked object (LinuxSensor); nil runs no
	// trackers at all, not even the instance's own interface.
	NewSensor func(kind TrackerKind, name string, cfg *parser.Config, log *slog.Logger) (Sensor, error)
	// Firewall drops the traffic to the addresses of a master with no_accept
	// (NFTFirewall); nil enforces no_accept nowhere, which each such instance logs
	// when it is set up (at start and at each reload).
	Firewall Firewall
	// VMACs keeps the macvlans of use_vmac instances (NewVMACManager); nil leaves them
	// out (logged for each such instance).
	VMACs VMACManager
}

// Manager runs every vrrp_instance of a configuration.
type Manager struct {
	kernel Kernel
	log    *slog.Logger

	// OnTransition, when set before Start, is called (on the instance's goroutine) for
	// every state change.
	OnTransition func(Transition)
	// OnLowerPrio, when set before Start, is called when a master hears a lower priority.
	OnLowerPrio func(instance string, src netip.Addr, prio uint8)
	// KeepVIPsOnStop leaves the virtual addresses in place on Stop (keepalived's -V);
	// the priority-0 advertisement is still sent.
	KeepVIPsOnStop bool

	mu  sync.Mutex
	gen *generation // the running configuration; nil when stopped
}

// generation is one running configuration: its instances, sockets, trackers and
// notifications. A reload replaces the generation; kept instances hand their state over.
type generation struct {
	cfg    *parser.Config
	insts  []*instance
	byName map[string]*instance
	loops  []*rxLoop
	notes  *notifications
	tracks *trackers
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// handover is what a reload carries from the old generation to the new one.
type handover struct {
	machines map[Identity]Machine
	vips     map[Identity][]*parser.VIP   // the old instance's addresses, for the diff
	routes   map[Identity][]*parser.Route // and its virtual_routes
	rules    map[Identity][]*parser.Rule  // and virtual_rules
	stats    map[Identity]*Stats
	status   map[trackKey]TrackStatus
}

// NewManager returns a manager using the given kernel interfaces.
func NewManager(k Kernel, log *slog.Logger) *Manager {
	return &Manager{kernel: k, log: log}
}

// rxLoop reads one interface and family and hands adverts to instances by VRID.
type rxLoop struct {
	ifname  string
	family  Family
	opts    ConnOptions
	mu      sync.Mutex
	conn    AdvertConn // nil until the socket could be opened
	byVRID  map[uint8]*instance
	unknown atomic.Uint64 // adverts for a VRID we do not run
	short   atomic.Uint64 // too short to carry a VRID
	logUnk  bool
	log     *slog.Logger
}

type loopKey struct {
	ifname string
	family Family
}

// Start opens the sockets, removes virtual addresses left by a predecessor and starts
// every instance. It returns once all are running.
func (m *Manager) Start(ctx context.Context, cfg *parser.Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen != nil {
		return errors.New("vrrp: manager already started")
	}
	m.applyStatic(nil, cfg)
	g, err := m.launch(ctx, cfg, nil)
	if err != nil {
		return err
	}
	m.gen = g
	return nil
}

// Reload replaces the running configuration as keepalived does: an instance whose
// identity (IdentityOf) is unchanged keeps its state, counters and addresses — only
// addresses that were added or removed touch the kernel —; removed instances shut down
// (priority 0 when master); new ones start in BACKUP. cfg must already be validated.
func (m *Manager) Reload(ctx context.Context, cfg *parser.Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen == nil {
		return errors.New("vrrp: manager not started")
	}
	keep, names := map[Identity]bool{}, map[string]bool{}
	for _, c := range cfg.Instances {
		keep[IdentityOf(c)] = true
		names[c.Name] = true
	}
	for _, in := range m.gen.insts {
		if !names[in.name] {
			in.removed.Store(true)
		}
	}
	old := m.gen.cfg
	h := m.stopGen(m.gen, keep)
	m.gen = nil
	m.deleteVMACs(old, cfg)
	m.applyStatic(old, cfg)
	g, err := m.launch(ctx, cfg, h)
	if err != nil {
		return err
	}
	m.gen = g
	if cfg.Global.FIFOWriteStatesOnReload {
		g.writeKeptStates()
	}
	return nil
}

// writeKeptStates writes the state of every instance that a reload kept to the notify
// FIFOs (fifo_write_vrrp_states_on_reload), so that a FIFO reader restarted with the
// reload learns it; a new instance reports its own start.
func (g *generation) writeKeptStates() {
	for _, in := range g.insts {
		if in.carried == nil {
			continue
		}
		st, ok := NotifyStateFor(in.carried.State)
		if !ok {
			continue
		}
		line := FormatInstanceLine(NotifyInstance, in.name, st, in.carried.Priority)
		for _, f := range g.notes.fifos {
			_ = f.WriteLine(line) // a full FIFO drops the line; the FIFO counts it
		}
	}
}

// launch builds and starts a generation; h carries the state of kept instances.
func (m *Manager) launch(ctx context.Context, cfg *parser.Config, h *handover) (*generation, error) {
	loops := map[loopKey]*rxLoop{}
	groups := map[loopKey][]netip.Addr{}
	var insts []*instance
	nt := m.openNotifications(cfg)
	for _, c := range cfg.Instances {
		in := newInstance(c, &cfg.Global, m.kernel, m.log)
		in.onTransition = func(t Transition) {
			nt.transition(t)
			if m.OnTransition != nil {
				m.OnTransition(t)
			}
		}
		in.onPriority = nt.priority
		in.onLowerPrio = func(name string, src netip.Addr, heard, ours uint8) {
			nt.lowerPrio(name, ours)
			if m.OnLowerPrio != nil {
				m.OnLowerPrio(name, src, heard)
			}
		}
		in.keepVIPsOnStop = m.KeepVIPsOnStop
		in.logAcceptMode()
		if c.Interface == "" {
			nt.stop()
			return nil, fmt.Errorf("vrrp: instance %s: an interface is required", c.Name)
		}
		ifname := advertIf(c) // the macvlan's own socket, unless vmac_xmit_base
		k := loopKey{ifname, in.family}
		if len(c.UnicastPeers) == 0 && !slices.Contains(groups[k], c.McastGroup) {
			groups[k] = append(groups[k], c.McastGroup)
		}
		if loops[k] == nil {
			loops[k] = &rxLoop{ifname: ifname, family: in.family, byVRID: map[uint8]*instance{},
				logUnk: cfg.Global.LogUnknownVRIDs, log: m.log.With("interface", ifname, "family", in.family.String())}
		}
		if other := loops[k].byVRID[uint8(c.VRID)]; other != nil {
			nt.stop()
			return nil, fmt.Errorf("vrrp: instances %s and %s share VRID %d on %s", other.name, c.Name, c.VRID, ifname)
		}
		loops[k].byVRID[uint8(c.VRID)] = in
		insts = append(insts, in)
	}
	byName := map[string]*instance{}
	for _, in := range insts {
		byName[in.name] = in
	}
	syncGroups(cfg, byName)
	m.ensureVMACs(insts)
	var opened []*rxLoop
	for k, l := range loops {
		l.opts = ConnOptions{Groups: groups[k], Unicast: len(groups[k]) == 0}
		for _, in := range l.byVRID { // kernel_rx_buf_size: the largest of the socket's instances
			l.opts.RcvBuf = max(l.opts.RcvBuf, in.cfg.KernelRxBufSize)
		}
		opened = append(opened, l)
		for _, in := range l.byVRID {
			in.loop = l
		}
	}
	for _, in := range insts {
		if !in.src.IsValid() && m.kernel.PrimaryAddr != nil {
			if a, err := m.kernel.PrimaryAddr(in.cfg.Interface, in.family); err == nil {
				in.src = a
			} else {
				in.log.Warn("no source address on the interface yet", "interface", in.cfg.Interface, "err", err)
			}
		}
		if h != nil {
			if mc, ok := h.machines[IdentityOf(in.cfg)]; ok {
				in.oldVIPs = h.vips[IdentityOf(in.cfg)]
				in.oldRoutes, in.oldRules = h.routes[IdentityOf(in.cfg)], h.rules[IdentityOf(in.cfg)]
				cm := in.continueMachine(mc)
				in.carried = &cm
				in.stats = h.stats[IdentityOf(in.cfg)]
				continue // its addresses are in use: no leftover removal
			}
		}
		if in.cfg.PromoteSecondaries && m.kernel.PromoteSecondaries != nil {
			if err := m.kernel.PromoteSecondaries(in.cfg.Interface); err != nil {
				in.log.Warn("cannot set promote_secondaries", "interface", in.cfg.Interface, "err", err)
			}
		}
		in.delRoutes(in.cfg.Routes, in.cfg.Rules) // left by a previous run that ended as master
		if removed, err := RemoveResidual(m.kernel.Addrs, in.vips); err != nil {
			in.log.Warn("cannot check for leftover virtual addresses", "err", err)
		} else if len(removed) > 0 {
			in.log.Info("removed virtual addresses left by a previous run", "count", len(removed))
		}
	}
	var ts *trackers
	if m.kernel.NewSensor != nil {
		var seed map[trackKey]TrackStatus
		if h != nil {
			seed = h.status
		}
		ts = newTrackers(cfg, insts, m.log, seed)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g := &generation{cfg: cfg, insts: insts, byName: byName, loops: opened, notes: nt, tracks: ts, cancel: cancel}
	var delay time.Duration // vrrp_startup_delay: at start, not on reload
	if h == nil {
		delay = cfg.Global.StartupDelay.D()
	}
	if delay > 0 && len(insts) > 0 {
		m.log.Info("VRRP instances start after vrrp_startup_delay", "delay", delay)
	}
	for _, in := range insts {
		fault, reason := false, ""
		if ts != nil {
			fault, reason = ts.initial(in)
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if delay > 0 {
				if !in.await(runCtx, delay) {
					return
				}
				if ts != nil { // the trackers' view now, not before the delay
					fault, reason = ts.initial(in)
					eff, _ := ts.current(in)
					in.deliver(Event{Kind: EvPriority, Priority: eff})
				}
			}
			in.run(runCtx, fault, reason)
		}()
		if in.carried != nil && ts != nil {
			// A kept instance learns its trackers' current view at once.
			eff, _ := ts.current(in)
			in.deliver(Event{Kind: EvPriority, Priority: eff})
			in.deliver(Event{Kind: EvFault, Fault: fault, Reason: reason})
		}
	}
	if ts != nil {
		ts.run(runCtx, &g.wg, cfg, m.kernel.NewSensor)
	}
	for _, l := range opened {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			l.open(runCtx, m.kernel.Listen)
		}()
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		watchAddrs(runCtx, m.kernel.Addrs, insts, m.log)
	}()
	return g, nil
}

// stopGen stops a generation. Instances whose identity is in keep hand their state
// over instead of shutting down; the handover is returned for the next generation.
func (m *Manager) stopGen(g *generation, keep map[Identity]bool) *handover {
	h := &handover{machines: map[Identity]Machine{}, vips: map[Identity][]*parser.VIP{},
		stats: map[Identity]*Stats{}, status: map[trackKey]TrackStatus{}, routes: map[Identity][]*parser.Route{}, rules: map[Identity][]*parser.Rule{}}
	for _, in := range g.insts {
		if keep[IdentityOf(in.cfg)] {
			in.handover.Store(true)
		}
	}
	g.cancel()
	g.wg.Wait()
	for _, l := range g.loops {
		if c := l.getConn(); c != nil {
			c.Close()
		}
	}
	if err := g.notes.stop(); err != nil {
		m.log.Warn("notify shutdown", "err", err)
	}
	for _, in := range g.insts {
		if id := IdentityOf(in.cfg); keep[id] {
			h.machines[id], h.vips[id], h.stats[id] = in.machine(), in.vips, in.stats
			h.routes[id], h.rules[id] = in.cfg.Routes, in.cfg.Rules
		}
	}
	if g.tracks != nil {
		h.status = g.tracks.statuses()
	}
	return h
}

// Stop shuts every instance down (a master sends priority 0 and removes its addresses),
// waits for them, closes the sockets and removes the use_vmac macvlans.
func (m *Manager) Stop() {
	m.mu.Lock()
	g := m.gen
	m.gen = nil
	m.mu.Unlock()
	if g != nil {
		m.stopGen(g, nil)
		if !m.KeepVIPsOnStop { // -V keeps the macvlans too: the addresses are on them
			m.deleteVMACs(g.cfg, nil)
			m.applyStatic(g.cfg, nil)
		}
	}
}

// Deliver sends an event to the named instance (used by trackers and tests).
func (m *Manager) Deliver(name string, ev Event) bool {
	m.mu.Lock()
	var in *instance
	if m.gen != nil {
		in = m.gen.byName[name]
	}
	m.mu.Unlock()
	if in == nil {
		return false
	}
	in.deliver(ev)
	return true
}

// reopenEvery is how often a socket that could not be opened (a missing interface) is
// tried again. Meanwhile the instances on it run (their interface tracker holds them in
// FAULT), as keepalived does with an interface that is not there yet.
const reopenEvery = time.Second

// open opens the loop's socket, retrying until it works or ctx ends, then starts reading.
func (l *rxLoop) open(ctx context.Context, listen func(string, Family, ConnOptions) (AdvertConn, error)) {
	logged := false
	for {
		conn, err := listen(l.ifname, l.family, l.opts)
		if err == nil {
			l.mu.Lock()
			l.conn = conn
			l.mu.Unlock()
			if logged {
				l.log.Info("VRRP socket open")
			}
			go l.run(conn)
			return
		}
		if !logged {
			l.log.Warn("cannot open the VRRP socket; retrying every second", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(reopenEvery):
		}
	}
}

// getConn returns the socket, nil while it is not open.
func (l *rxLoop) getConn() AdvertConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn
}

func (l *rxLoop) run(conn AdvertConn) {
	buf := make([]byte, 1500)
	var adv Advert
	for {
		n, rx, err := conn.ReadAdvert(buf)
		arrived := time.Now() // timers count from the packet, not from the hand-off
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("receive error", "err", err)
			continue
		}
		if n < 2 {
			l.short.Add(1)
			continue
		}
		in := l.byVRID[buf[1]]
		if in == nil {
			if l.unknown.Add(1) == 1 || l.logUnk {
				l.log.Info("advertisement for a VRID we do not run", "vrid", buf[1], "from", rx.Src)
			}
			continue
		}
		ra, why := in.pol.check(&adv, buf[:n], rx, in.stats)
		if why != "" {
			in.logDrop(rx.Src, why)
			continue
		}
		if in.cfg.OwnerIgnoreAdverts && in.cfg.Priority == 255 {
			continue // owner_ignore_adverts: the address owner stays master whatever it hears
		}
		in.deliver(Event{Kind: EvAdvert, Advert: ra, Now: arrived})
	}
}

// watchAddrs puts back virtual addresses removed by someone else while we are master.
func watchAddrs(ctx context.Context, am AddrManager, insts []*instance, log *slog.Logger) {
	err := am.Watch(ctx, func(ev AddrEvent) {
		if ev.Added {
			return
		}
		for _, in := range insts {
			for _, v := range in.vips {
				if v.Dev == ev.Ifname && v.Prefix == ev.Prefix {
					select {
					case in.readd <- v:
					default:
					}
				}
			}
		}
	})
	if err != nil && ctx.Err() == nil {
		log.Warn("address watch stopped", "err", err)
	}
}

// InstanceStatus is a snapshot of one instance for status output and tests.
type InstanceStatus struct {
	Name           string
	State          State
	Priority       uint8 // effective
	BasePriority   uint8
	MasterAddr     netip.Addr
	MasterPriority uint8
	LastTransition time.Time
	Reason         string
	Stats          StatsSnapshot
	Trackers       []Contribution // how the effective priority was reached

	Config             *parser.VRRPInstance
	SrcAddr            netip.Addr
	MasterAdverInt     time.Duration
	MasterDownInterval time.Duration
	// NoAccept says why the instance drops the traffic to its addresses while master
	// (NoAcceptReason); empty when it accepts it.
	NoAccept string
	// FirewallErrors counts the firewall changes that failed.
	FirewallErrors uint64
}

// Status returns a snapshot of every instance, in configuration order.
func (m *Manager) Status() []InstanceStatus {
	m.mu.Lock()
	var insts []*instance
	var ts *trackers
	if m.gen != nil {
		insts, ts = m.gen.insts, m.gen.tracks
	}
	m.mu.Unlock()
	out := make([]InstanceStatus, 0, len(insts))
	for _, in := range insts {
		mc := in.machine()
		out = append(out, InstanceStatus{
			Name: in.name, State: mc.State, Priority: mc.Priority, BasePriority: mc.P.Priority,
			MasterAddr: mc.MasterAddr, MasterPriority: mc.MasterPriority,
			LastTransition: mc.LastTransition, Reason: mc.Reason, Stats: in.stats.Snapshot(),
			Config: in.cfg, SrcAddr: in.src, MasterAdverInt: mc.MasterAdverInt, MasterDownInterval: mc.MasterDownInterval(),
			NoAccept: NoAcceptReason(in.cfg), FirewallErrors: in.fwErrors.Load(),
		})
		if ts != nil {
			out[len(out)-1].Trackers = ts.breakdown(in)
		}
	}
	return out
}
