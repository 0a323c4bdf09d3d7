package ipvs

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"time"

	"gokeepalived/check"
	"gokeepalived/parser"
)

// retryEvery is how soon after a reconcile pass that had errors a full pass retries.
const retryEvery = 5 * time.Second

// checkSlack batches the starts of checks due within 10 ms of each other: a check
// starts up to 10 ms late (noise against delay_loop's seconds), and at thousands of
// checks a second the runner wakes a hundred times a second instead of for each one.
const checkSlack = 10 * time.Millisecond

// RealServerEvent is a health transition of a real server, for notify_up/notify_down,
// the LVS notify FIFO and logs.
type RealServerEvent struct {
	VS     *parser.VirtualServer
	RS     *parser.RealServer
	Up     bool
	Reason string
	// Checked is set when a check's result caused the event; a real server's first
	// state (at start, or when a reload adds it) is not.
	Checked bool
}

// QuorumEvent is a virtual server gaining or losing its quorum (quorum_up/quorum_down).
type QuorumEvent struct {
	VS *parser.VirtualServer
	Up bool
}

// Manager keeps the kernel's IPVS table in line with the virtual_server blocks and the
// health of their real servers: checks report to it, and every change runs a reconcile
// pass. Start, Reload and the retry after a pass that had errors run a full pass: the
// whole desired state against the whole table, deleting the owned services no longer
// desired. Health changes run a targeted pass over the virtual servers whose real servers
// changed: the destinations of their services only, read one service at a time, without
// the dump of the table; the changes that arrive while a pass runs are taken together
// by the next.
//
// The owned services ([OwnedSet]) are those of the desired state and those the manager
// created and has not managed to delete yet. With StateFile they outlive the process:
// the file is written before a pass that may create services and after every pass
// (and Stop) that changes them, and Start reads it back, so that the first pass deletes
// the services an earlier run created that the configuration no longer has, even after
// a stop that kept the table (-I) or a crash. Only the services that the file lists and
// the kernel still has are deleted; the others stay foreign.
type Manager struct {
	kernel Kernel
	log    *slog.Logger

	// OnRealServer and OnQuorum, when set before Start, receive health and quorum
	// transitions (called from the engine's goroutines; they must not block long).
	OnRealServer func(RealServerEvent)
	OnQuorum     func(QuorumEvent)
	// CheckStartDelay is added before the first check of each real server
	// (keepalived waits 1 s).
	CheckStartDelay time.Duration
	// StateFile, when set before Start, is the file that keeps the owned services across
	// restarts; empty: none, and a restart knows nothing of the services an earlier run
	// created.
	StateFile string

	mu      sync.Mutex
	held    map[netip.Addr]bool // local addresses; nil until SetHeld (no ha_suspend then)
	cfg     *parser.Config
	health  HealthView
	byCheck map[string]rsRef // runner RS key -> configuration
	owned   OwnedSet
	last    Changes
	errs    []error
	full    bool // the next pass is a full one
	// checking is set once the runner has its checks, after the first pass; until
	// then waiting holds them.
	checking bool
	waiting  []check.Check
	dirty    map[VirtualServerKey]bool // virtual servers whose health changed since the last pass

	retryEvery time.Duration // how soon a full pass follows a pass that had errors

	// The state file, used by the reconcile loop (and by Start and Stop while it does not
	// run).
	writeState func(path string, data []byte) error // writeFileAtomic; tests count the writes
	stateHeld  OwnedSet                             // what the file holds; nil when unknown
	stateErr   error                                // the last failure to write it

	runner *check.Runner
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

type rsRef struct {
	vs  *parser.VirtualServer
	rs  *parser.RealServer
	key RealServerKey
}

// NewManager returns a manager over kernel k.
func NewManager(k Kernel, log *slog.Logger) *Manager {
	return &Manager{kernel: k, log: log, owned: OwnedSet{}, wake: make(chan struct{}, 1), retryEvery: retryEvery, writeState: writeFileAtomic}
}

// Start applies the global IPVS settings (lvs_flush, lvs_timeouts), starts the checks
// and the reconcile loop. The first pass adopts what the kernel already has, and
// deletes the services that StateFile lists and cfg no longer has.
func (m *Manager) Start(ctx context.Context, cfg *parser.Config) error {
	if err := Start(m.kernel, &cfg.Global); err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}
	owned := m.loadOwned()
	m.mu.Lock()
	checks, refs, err := buildChecks(cfg, m.held)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	m.cfg, m.byCheck, m.owned = cfg, refs, owned
	m.health = HealthView{RealServers: map[RealServerKey]RSHealth{}, Quorum: map[VirtualServerKey]bool{}}
	m.full = true
	m.mu.Unlock()
	m.runner = check.NewRunner(check.Options{OnTransition: m.transition, StartDelay: m.CheckStartDelay, Slack: checkSlack, Log: m.log})
	if err := m.setChecks(checks); err != nil {
		m.runner.Stop()
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel, m.done = cancel, make(chan struct{})
	go m.loop(runCtx)
	m.kick()
	return nil
}

// Reload switches to a new configuration: the checks of unchanged real servers keep
// their state and schedule (keepalived: a failed real server is not re-added on reload),
// and one full reconcile pass moves only the services and destinations that changed.
// lvs_flush is not applied again.
func (m *Manager) Reload(cfg *parser.Config) error {
	m.mu.Lock()
	checks, refs, err := buildChecks(cfg, m.held)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if err := m.setChecks(checks); err != nil {
		return err
	}
	m.mu.Lock()
	m.cfg, m.byCheck, m.full = cfg, refs, true
	m.mu.Unlock()
	m.kick()
	return nil
}

// buildChecks turns every checker of every real server into a runner check, leaving out
// those of virtual servers with ha_suspend whose address this director does not hold.
func buildChecks(cfg *parser.Config, held map[netip.Addr]bool) ([]check.Check, map[string]rsRef, error) {
	var checks []check.Check
	refs := map[string]rsRef{}
	for _, vs := range cfg.VirtualServers {
		paused := suspended(vs, held)
		for _, rs := range vs.RealServers {
			key := RSKey(vs, rs)
			id := rsID(key)
			refs[id] = rsRef{vs: vs, rs: rs, key: key}
			if paused {
				continue
			}
			for i, c := range rs.Checkers {
				p, err := check.New(c, rs, vs)
				if err != nil {
					return nil, nil, fmt.Errorf("ipvs: %s: %w", c.Pos, err)
				}
				checks = append(checks, check.Check{
					ID: fmt.Sprintf("%s|%d|%s", id, i, c.Type), RS: id, Probe: p,
					Timing: checkTiming(c), Alpha: c.Alpha,
				})
			}
		}
	}
	return checks, refs, nil
}

// rsID is the runner's key of a real server.
func rsID(key RealServerKey) string { return fmt.Sprintf("%v", key) }

// suspended reports whether ha_suspend pauses a virtual server's checks: its address is
// not on this director. Before SetHeld is first called nothing is suspended.
func suspended(vs *parser.VirtualServer, held map[netip.Addr]bool) bool {
	return vs.HASuspend && held != nil && vs.Addr.IsValid() && !held[vs.Addr]
}

// SetHeld tells the manager which addresses this director holds (called at start and
// after every VRRP transition). Virtual servers with ha_suspend check their real servers
// only while their address is held (keepalived's ha_suspend); their real servers keep
// their last state meanwhile.
func (m *Manager) SetHeld(addrs []netip.Addr) error {
	held := map[netip.Addr]bool{}
	for _, a := range addrs {
		held[a.Unmap()] = true
	}
	m.mu.Lock()
	m.held = held
	cfg := m.cfg
	m.mu.Unlock()
	if cfg == nil || m.runner == nil {
		return nil
	}
	checks, _, err := buildChecks(cfg, held)
	if err != nil {
		return err
	}
	return m.setChecks(checks)
}

// setChecks gives the runner its checks; until the first pass has ended it keeps them
// instead (see startChecks).
func (m *Manager) setChecks(checks []check.Check) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.checking {
		if err := check.Validate(checks); err != nil {
			return fmt.Errorf("ipvs: %w", err)
		}
		m.waiting = checks
		return nil
	}
	if err := m.runner.Update(checks); err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}
	return nil
}

// startChecks starts the checks once the first pass has ended, as keepalived programs
// its whole table before its checker starts: at thousands of real servers the pass
// and the checks would otherwise compete for the CPU and the table would take
// several times longer to be whole.
func (m *Manager) startChecks() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checking {
		return
	}
	m.checking = true
	if err := m.runner.Update(m.waiting); err != nil { // validated by setChecks
		m.log.Error("cannot start the health checks", "err", err)
	}
	m.waiting = nil
}

// checkTiming is a checker's timing for the runner: MISC_CHECK runs until misc_timeout
// (plus a second for the script's process group to be killed); FILE_CHECK, which has no
// timing of its own, is read every second.
func checkTiming(c *parser.Checker) parser.CheckTiming {
	switch {
	case c.Timing == nil:
		return parser.CheckTiming{DelayLoop: parser.Seconds(1), ConnectTimeout: parser.Seconds(1)}
	case c.Misc != nil:
		t := *c.Timing
		t.ConnectTimeout = c.Misc.Timeout + parser.Seconds(1)
		return t
	}
	return *c.Timing
}

// transition records a real server's new health, marks its virtual server for the next
// targeted pass and wakes the reconcile loop.
func (m *Manager) transition(t check.Transition) {
	m.mu.Lock()
	ref, ok := m.byCheck[t.RS]
	if ok {
		m.health.RealServers[ref.key] = RSHealth{Up: t.Up, Weight: t.Weight}
		if m.dirty == nil {
			m.dirty = map[VirtualServerKey]bool{}
		}
		m.dirty[ref.key.VS] = true
	}
	m.mu.Unlock()
	if !ok {
		return
	}
	state := "DOWN"
	if t.Up {
		state = "UP"
	}
	m.log.Info("real server "+state, "vs", ref.key.VS, "rs", fmt.Sprintf("%s:%d", ref.rs.Addr, ref.rs.Port), "reason", t.Reason)
	if m.OnRealServer != nil {
		m.OnRealServer(RealServerEvent{VS: ref.vs, RS: ref.rs, Up: t.Up, Reason: t.Reason, Checked: t.Check != ""})
	}
	m.kick()
}

func (m *Manager) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// loop runs a reconcile pass on every wake-up, and a full pass retryEvery after a pass
// that had errors. Passes in between do not put the retry off: a service that keeps
// failing in the targeted passes must not starve the full one.
func (m *Manager) loop(ctx context.Context) {
	defer close(m.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	pending := false // the retry timer runs
	for {
		retry := false
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
			retry, pending = true, false
		}
		if m.pass(retry) && !pending {
			timer.Reset(m.retryEvery)
			pending = true
		}
		m.startChecks()
	}
}

// pass runs the reconcile pass that is due: a full one when asked (Start, Reload) or
// when retry, else a targeted one over the virtual servers marked by transitions. It
// reports whether the pass had errors. The state file is written before the pass when
// the pass may create services that it does not list, and after it when the owned
// services changed.
func (m *Manager) pass(retry bool) bool {
	m.mu.Lock()
	cfg, owned := m.cfg, m.owned
	health := HealthView{RealServers: maps.Clone(m.health.RealServers), Quorum: maps.Clone(m.health.Quorum)}
	full, dirty := m.full || retry, m.dirty
	m.full, m.dirty = false, nil
	m.mu.Unlock()
	if !full && len(dirty) == 0 {
		return false
	}

	desired := desiredFor(cfg, health, dirty, full)
	m.persistAhead(owned, desired)
	changes, err := m.reconcile(desired, owned, full)
	events := m.record(cfg, desired, changes, full)
	m.persist(m.ownedServices())
	m.report(full, events, changes, err)
	return err != nil
}

// desiredFor returns the services a pass converges: the whole desired state in a full
// pass, else the services of the dirty virtual servers.
func desiredFor(cfg *parser.Config, health HealthView, dirty map[VirtualServerKey]bool, full bool) []ServiceSpec {
	if full {
		return Desired(cfg, health)
	}
	return desiredOf(cfg, health, dirty)
}

// reconcile converges the kernel's table to desired: with the deletion of the owned
// services it lacks in a full pass, without deletions in a targeted one.
func (m *Manager) reconcile(desired []ServiceSpec, owned OwnedSet, full bool) (Changes, error) {
	if full {
		return Reconcile(m.kernel, desired, owned)
	}
	return reconcileOnly(m.kernel, desired)
}

// record keeps the outcome of a pass over desired: the quorum of its virtual servers,
// the owned services (those of a full pass replace them, those of a targeted pass are
// added) and the changes. It returns the quorum transitions.
func (m *Manager) record(cfg *parser.Config, desired []ServiceSpec, changes Changes, full bool) []QuorumEvent {
	quorum := map[VirtualServerKey]bool{}
	for _, s := range desired {
		quorum[s.VS] = s.QuorumUp
	}
	var events []QuorumEvent
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, vs := range cfg.VirtualServers {
		k := VSKey(vs)
		up, ok := quorum[k]
		if !ok {
			continue
		}
		if was, seen := m.health.Quorum[k]; seen && was != up {
			events = append(events, QuorumEvent{VS: vs, Up: up})
		}
		m.health.Quorum[k] = up
	}
	if full {
		m.owned = changes.Owned
	} else {
		m.owned = m.owned.with(changes.Owned)
	}
	m.last, m.errs = changes, changes.Errors
	return events
}

// ownedServices returns the owned services.
func (m *Manager) ownedServices() OwnedSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owned
}

// report logs a pass, full or targeted, and hands its quorum transitions to OnQuorum;
// err is the pass's failures joined.
func (m *Manager) report(full bool, events []QuorumEvent, changes Changes, err error) {
	kind := "targeted"
	if full {
		kind = "full"
	}
	for _, e := range events {
		m.log.Warn("virtual server quorum changed", "vs", VSKey(e.VS), "up", e.Up)
		if m.OnQuorum != nil {
			m.OnQuorum(e)
		}
	}
	if len(changes.Ops) > 0 {
		m.log.Info("IPVS table updated", "pass", kind, "changes", changes.Summary())
	}
	if err != nil {
		m.log.Error("IPVS reconcile incomplete; retrying", "pass", kind, "err", err)
	}
}

// Stop stops the checks and the loop, then removes the services we own unless keep
// (keepalived's -I) or lvs_flush_on_stop says otherwise. The state file is left listing
// the services still owned: all of them with keep, else those that could not be
// deleted.
func (m *Manager) Stop(keep bool) error {
	if m.cancel == nil {
		return nil
	}
	m.runner.Stop()
	m.cancel()
	<-m.done
	m.cancel = nil
	m.mu.Lock()
	owned, g := m.owned, &m.cfg.Global
	m.mu.Unlock()
	changes, err := Stop(m.kernel, owned, g, keep)
	m.mu.Lock()
	m.owned = changes.Owned
	m.mu.Unlock()
	m.persist(changes.Owned)
	if len(changes.Ops) > 0 {
		m.log.Info("IPVS services removed at stop", "changes", changes.Summary())
	}
	return err
}

// Status is a snapshot for status output: the last reconcile pass (full or targeted) and
// the checks.
type Status struct {
	Health  map[RealServerKey]RSHealth
	Quorum  map[VirtualServerKey]bool
	Last    Changes
	Errors  []error
	Checker check.Snapshot
}

// Status returns the current state.
func (m *Manager) Status() Status {
	m.mu.Lock()
	st := Status{Health: maps.Clone(m.health.RealServers), Quorum: maps.Clone(m.health.Quorum), Last: m.last, Errors: m.errs}
	m.mu.Unlock()
	if m.runner != nil {
		st.Checker = m.runner.Snapshot()
	}
	return st
}

// RealServerStatus is one real server as the status API shows it.
type RealServerStatus struct {
	VS        *parser.VirtualServer
	RS        *parser.RealServer
	Up        bool
	Weight    int // the weight it has in IPVS terms (configured or dynamic; 0 when down)
	Checks    []check.CheckStatus
	LastCheck time.Time
	Latency   time.Duration // of the last finished check attempt
	LastError string
}

// RealServers returns every configured real server with its health and checks, in
// configuration order.
func (m *Manager) RealServers() []RealServerStatus {
	m.mu.Lock()
	cfg, health, refs := m.cfg, maps.Clone(m.health.RealServers), m.byCheck
	m.mu.Unlock()
	if cfg == nil {
		return nil
	}
	byRS := map[string][]check.CheckStatus{}
	if m.runner != nil {
		for _, c := range m.runner.Snapshot().Checks {
			byRS[c.RS] = append(byRS[c.RS], c)
		}
	}
	ids := map[RealServerKey]string{}
	for id, r := range refs {
		ids[r.key] = id
	}
	var out []RealServerStatus
	for _, vs := range cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			key := RSKey(vs, rs)
			h, ok := health[key]
			st := RealServerStatus{VS: vs, RS: rs, Up: !ok || h.Up, Checks: byRS[ids[key]]}
			if st.Up {
				st.Weight = rs.Weight
				if h.Weight != nil {
					st.Weight = *h.Weight
				}
			}
			for _, c := range st.Checks {
				if c.LastStart.After(st.LastCheck) {
					st.LastCheck, st.Latency = c.LastStart, c.LastResult.Latency
					st.LastError = ""
					if c.LastResult.Err != nil {
						st.LastError = c.LastResult.Err.Error()
					}
				}
			}
			out = append(out, st)
		}
	}
	return out
}

// PlanReload returns what reloading cfg would change in the kernel's table, given the
// current health, without changing anything (reload --dry-run).
func (m *Manager) PlanReload(cfg *parser.Config) (Changes, error) {
	m.mu.Lock()
	health := HealthView{RealServers: maps.Clone(m.health.RealServers), Quorum: maps.Clone(m.health.Quorum)}
	owned := m.owned
	m.mu.Unlock()
	return Plan(m.kernel, Desired(cfg, health), owned)
}

// OmegaNotifies lists what the virtual servers with omega run at shutdown (see the
// package function), from the current health; call it before Stop.
func (m *Manager) OmegaNotifies() []Notify {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg == nil {
		return nil
	}
	return OmegaNotifies(m.cfg, HealthView{RealServers: maps.Clone(m.health.RealServers), Quorum: maps.Clone(m.health.Quorum)})
}
