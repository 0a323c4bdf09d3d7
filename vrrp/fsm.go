package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// State is a VRRP instance state, numbered as keepalived's JSON dump (0 INIT, 1 BACKUP,
// 2 MASTER, 3 FAULT).
type State uint8

// Instance states.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
)

// String names the state as keepalived logs it.
func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Params are the parts of an instance's configuration the state machine needs. Times are
// resolved (instance value or global default).
type Params struct {
	Version              uint8         // 2 or 3
	Priority             uint8         // configured (base) priority, 1..255
	AdvertInt            time.Duration // our advertisement interval
	Preempt              bool          // false with nopreempt
	PreemptDelay         time.Duration // keepalived's preempt_delay
	StartMaster          bool          // "state MASTER"
	DownTimerAdverts     int           // adverts missed before master down (default 3)
	LowerPrioNoAdvert    bool          // master does not answer a lower-priority advert
	HigherPrioSendAdvert bool          // master sends one advert before yielding
	PrimaryAddr          netip.Addr    // our source address, for the equal-priority tie-break
	SyncGroup            bool          // member of a vrrp_sync_group: MASTER only with the group

	GARPMasterDelay         time.Duration // second burst after becoming master (0 = none)
	GARPMasterRepeat        int           // announcements per burst
	GARPMasterRefresh       time.Duration // periodic refresh while master (0 = none)
	GARPMasterRefreshRepeat int
	GARPLowerPrioRepeat     int // announcements when a lower priority is heard (0 = none)
}

// Machine is the pure VRRP state machine of one instance. It is a value: Step returns
// the next Machine and the actions to perform; it never reads a clock or touches a socket.
type Machine struct {
	P Params

	State    State
	Priority uint8 // effective priority (base + trackers, clamped; 255 never changes)
	Faulted  bool  // a fault condition holds (tracker with weight 0, interface down)

	MasterAdverInt time.Duration // RFC 5798 Master_Adver_Int (v3: learned from the master)
	MasterAddr     netip.Addr    // the current master as far as we know
	MasterPriority uint8

	MasterDownAt      time.Time // BACKUP: when the master is declared down
	AdvertAt          time.Time // MASTER: next advertisement
	GARPAt            time.Time // MASTER: second announcement burst
	RefreshAt         time.Time // MASTER: next periodic announcement
	PreemptDelayStart time.Time // BACKUP: first lower-priority advert under preempt_delay
	WantMaster        bool      // sync group member whose master-down timer expired

	LastTransition time.Time
	Reason         string // why the last transition happened
}

// EventKind says what happened.
type EventKind uint8

// Events fed to Step.
const (
	// EvStart starts the instance (Fault tells whether a fault already holds).
	EvStart EventKind = iota
	// EvAdvert is a valid advertisement for this instance (already checked for
	// length, checksum, TTL, authentication and addresses).
	EvAdvert
	// EvTimer means the deadline returned by NextDeadline has come.
	EvTimer
	// EvPriority carries a new effective priority from the trackers.
	EvPriority
	// EvFault says a fault condition began (Fault true) or ended.
	EvFault
	// EvShutdown stops the instance (SIGTERM, or removed on reload).
	EvShutdown
	// EvGroupMaster: every member of our sync group wants MASTER; go.
	EvGroupMaster
	// EvGroupBackup: another member of our sync group left MASTER; follow it.
	EvGroupBackup
)

// RxAdvert is the part of a received advertisement the state machine uses.
type RxAdvert struct {
	Src      netip.Addr
	Priority uint8
	Interval time.Duration // v2: whole seconds; v3: Max Adver Int
}

// Event is one input to Step.
type Event struct {
	Kind     EventKind
	Now      time.Time
	Advert   RxAdvert // EvAdvert
	Priority uint8    // EvPriority
	Fault    bool     // EvStart, EvFault
	Reason   string   // EvFault: which tracker
}

// ActionKind says what the instance runtime must do.
type ActionKind uint8

// Actions returned by Step, to be performed in order.
const (
	// ActTransition records a state change; the runtime logs it and runs notifies.
	ActTransition ActionKind = iota
	// ActSendAdvert sends one advertisement with Priority.
	ActSendAdvert
	// ActAddVIPs installs the virtual addresses (and routes, rules).
	ActAddVIPs
	// ActRemoveVIPs removes them.
	ActRemoveVIPs
	// ActAnnounce sends Count gratuitous ARPs / unsolicited neighbour advertisements
	// per address.
	ActAnnounce
	// ActNotifyLowerPrio reports a master hearing a lower priority (keepalived's
	// notify_master_rx_lower_pri and FIFO MASTER_RX_LOWER_PRI).
	ActNotifyLowerPrio
	// ActCount increments the named per-instance counter (keepalived's stats names)
	// for an advert the state machine itself rejects.
	ActCount
	// ActWantMaster: a sync group member would become MASTER; the group decides.
	ActWantMaster
)

// Action is one effect of a Step.
type Action struct {
	Kind     ActionKind
	State    State      // ActTransition: the new state
	Reason   string     // ActTransition: why
	Priority uint8      // ActSendAdvert; ActNotifyLowerPrio: the heard priority
	Count    int        // ActAnnounce
	Src      netip.Addr // ActNotifyLowerPrio
	Counter  string     // ActCount
}

// NewMachine returns a stopped instance with the given parameters.
func NewMachine(p Params) Machine {
	if p.DownTimerAdverts == 0 {
		p.DownTimerAdverts = 3
	}
	return Machine{P: p, State: StateInit, Priority: p.Priority, MasterAdverInt: p.AdvertInt}
}

// IsOwner reports whether this router owns the addresses (priority 255).
func (m *Machine) IsOwner() bool { return m.P.Priority == 255 }

// SkewTime is RFC 3768/5798 Skew_Time for the effective priority: v2 (256-prio)/256 s,
// not scaled by the interval (as keepalived); v3 scaled by Master_Adver_Int.
func (m *Machine) SkewTime() time.Duration {
	if m.P.Version == 3 {
		return time.Duration(256-int64(m.Priority)) * m.MasterAdverInt / 256
	}
	return time.Duration(256-int64(m.Priority)) * time.Second / 256
}

// MasterDownInterval is down_timer_adverts x Master_Adver_Int + Skew_Time.
func (m *Machine) MasterDownInterval() time.Duration {
	return time.Duration(m.P.DownTimerAdverts)*m.MasterAdverInt + m.SkewTime()
}

// NextDeadline returns the earliest armed deadline, or the zero time when none is armed.
func (m *Machine) NextDeadline() time.Time {
	var next time.Time
	for _, t := range []time.Time{m.MasterDownAt, m.AdvertAt, m.GARPAt, m.RefreshAt} {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// Step applies one event and returns the next machine and the actions to perform.
func (m Machine) Step(ev Event) (Machine, []Action) {
	var acts []Action
	switch ev.Kind {
	case EvStart:
		acts = m.start(ev)
	case EvAdvert:
		acts = m.advert(ev)
	case EvTimer:
		acts = m.timer(ev.Now)
	case EvPriority:
		acts = m.priority(ev)
	case EvFault:
		acts = m.fault(ev)
	case EvShutdown:
		acts = m.shutdown(ev.Now)
	case EvGroupMaster:
		if m.State == StateBackup && m.WantMaster {
			acts = m.becomeMaster(ev.Now, "sync group going MASTER")
		}
	case EvGroupBackup:
		acts = m.groupBackup(ev)
	}
	return m, acts
}

// start: keepalived enters BACKUP (or FAULT); only an address owner configured with
// "state MASTER" becomes master at once (RFC 5798 6.4.1 for priority 255).
func (m *Machine) start(ev Event) []Action {
	if m.State != StateInit {
		return nil
	}
	m.Faulted = ev.Fault
	if m.Faulted {
		return m.enter(StateFault, ev.Now, "fault at start: "+ev.Reason)
	}
	if m.IsOwner() && m.P.StartMaster {
		return m.becomeMaster(ev.Now, "address owner (priority 255) with state MASTER")
	}
	return m.becomeBackup(ev.Now, "start")
}

func (m *Machine) becomeBackup(now time.Time, reason string) []Action {
	acts := m.enter(StateBackup, now, reason)
	m.MasterDownAt = now.Add(m.MasterDownInterval())
	return acts
}

func (m *Machine) becomeMaster(now time.Time, reason string) []Action {
	acts := m.enter(StateMaster, now, reason)
	m.MasterAdverInt = m.P.AdvertInt
	m.MasterAddr, m.MasterPriority = m.P.PrimaryAddr, m.Priority
	m.AdvertAt = now.Add(m.P.AdvertInt)
	if m.P.GARPMasterDelay > 0 {
		m.GARPAt = now.Add(m.P.GARPMasterDelay)
	}
	if m.P.GARPMasterRefresh > 0 {
		m.RefreshAt = now.Add(m.P.GARPMasterRefresh)
	}
	return append(acts,
		Action{Kind: ActSendAdvert, Priority: m.Priority},
		Action{Kind: ActAddVIPs},
		Action{Kind: ActAnnounce, Count: m.P.GARPMasterRepeat})
}

// leaveMaster sends the priority-0 advert that lets a backup take over after its skew
// only (RFC 5798 6.4.3), and removes the addresses.
func (m *Machine) leaveMaster() []Action {
	return []Action{{Kind: ActSendAdvert, Priority: 0}, {Kind: ActRemoveVIPs}}
}

// enter changes state, clears every deadline and records the transition.
func (m *Machine) enter(s State, now time.Time, reason string) []Action {
	m.State = s
	m.MasterDownAt, m.AdvertAt, m.GARPAt, m.RefreshAt, m.PreemptDelayStart = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	m.WantMaster = false
	m.LastTransition, m.Reason = now, reason
	return []Action{{Kind: ActTransition, State: s, Reason: reason}}
}

// higher reports whether an advert (priority p from src) beats us (RFC 5798 6.4.3: a
// greater priority, or an equal one from a greater primary address).
func (m *Machine) higher(p uint8, src netip.Addr) bool {
	if p != m.Priority {
		return p > m.Priority
	}
	return src.Compare(m.P.PrimaryAddr) > 0
}

func (m *Machine) advert(ev Event) []Action {
	a := ev.Advert
	if m.P.Version == 2 && a.Interval != m.P.AdvertInt {
		// keepalived drops a v2 advert with another interval (RFC 3768 7.1 says
		// the interval must match) to avoid dual masters being masked.
		return []Action{{Kind: ActCount, Counter: "advert_interval_err"}}
	}
	switch m.State {
	case StateBackup:
		return m.backupAdvert(ev.Now, a)
	case StateMaster:
		return m.masterAdvert(ev.Now, a)
	}
	return nil
}

// backupAdvert is RFC 5798 6.4.2 with keepalived's preempt_delay.
func (m *Machine) backupAdvert(now time.Time, a RxAdvert) []Action {
	if a.Priority == 0 {
		m.MasterDownAt = now.Add(m.SkewTime())
		return nil
	}
	accept := !m.P.Preempt || a.Priority >= m.Priority
	if !accept && m.P.PreemptDelay > 0 {
		if m.PreemptDelayStart.IsZero() {
			m.PreemptDelayStart = now
		}
		accept = now.Sub(m.PreemptDelayStart) < m.P.PreemptDelay
	}
	if a.Priority >= m.Priority {
		m.PreemptDelayStart = time.Time{}
	}
	if !accept {
		// "received lower priority advert - discarding": the master-down timer keeps
		// running and we take over when it expires.
		return nil
	}
	if m.P.Version == 3 {
		m.MasterAdverInt = a.Interval
	}
	m.MasterAddr, m.MasterPriority = a.Src, a.Priority
	m.MasterDownAt = now.Add(m.MasterDownInterval())
	m.WantMaster = false
	return nil
}

// masterAdvert is RFC 5798 6.4.3 with keepalived's answers to a lower priority.
func (m *Machine) masterAdvert(now time.Time, a RxAdvert) []Action {
	if a.Priority == 0 {
		m.AdvertAt = now.Add(m.P.AdvertInt)
		return []Action{{Kind: ActSendAdvert, Priority: m.Priority}}
	}
	if m.higher(a.Priority, a.Src) {
		var acts []Action
		if m.P.HigherPrioSendAdvert {
			acts = append(acts, Action{Kind: ActSendAdvert, Priority: m.Priority})
		}
		reason := fmt.Sprintf("higher priority %d from %s", a.Priority, a.Src)
		if a.Priority == m.Priority {
			reason = fmt.Sprintf("equal priority %d from higher address %s", a.Priority, a.Src)
		}
		acts = append(acts, Action{Kind: ActRemoveVIPs})
		acts = append(acts, m.becomeBackup(now, reason)...)
		if m.P.Version == 3 {
			m.MasterAdverInt = a.Interval
			m.MasterDownAt = now.Add(m.MasterDownInterval())
		}
		m.MasterAddr, m.MasterPriority = a.Src, a.Priority
		return acts
	}
	// A lower priority (or an equal one from a lower address) is talking: answer at
	// once so it stands down, and re-announce the addresses it may have taken.
	var acts []Action
	if !m.P.LowerPrioNoAdvert {
		m.AdvertAt = now.Add(m.P.AdvertInt)
		acts = append(acts, Action{Kind: ActSendAdvert, Priority: m.Priority})
	}
	if m.P.GARPLowerPrioRepeat > 0 {
		acts = append(acts, Action{Kind: ActAnnounce, Count: m.P.GARPLowerPrioRepeat})
	}
	return append(acts, Action{Kind: ActNotifyLowerPrio, Src: a.Src, Priority: a.Priority})
}

func (m *Machine) timer(now time.Time) []Action {
	var acts []Action
	switch m.State {
	case StateBackup:
		if !m.MasterDownAt.IsZero() && !now.Before(m.MasterDownAt) {
			if m.P.SyncGroup {
				// keepalived: a sync group member only goes MASTER when every member
				// wants to; until then it keeps asking every Master_Down_Interval.
				m.WantMaster = true
				m.MasterDownAt = now.Add(m.MasterDownInterval())
				return []Action{{Kind: ActWantMaster}}
			}
			return m.becomeMaster(now, "master down timer expired")
		}
	case StateMaster:
		if !m.AdvertAt.IsZero() && !now.Before(m.AdvertAt) {
			m.AdvertAt = now.Add(m.P.AdvertInt)
			acts = append(acts, Action{Kind: ActSendAdvert, Priority: m.Priority})
		}
		if !m.GARPAt.IsZero() && !now.Before(m.GARPAt) {
			m.GARPAt = time.Time{}
			acts = append(acts, Action{Kind: ActAnnounce, Count: m.P.GARPMasterRepeat})
		}
		if !m.RefreshAt.IsZero() && !now.Before(m.RefreshAt) {
			m.RefreshAt = now.Add(m.P.GARPMasterRefresh)
			acts = append(acts, Action{Kind: ActAnnounce, Count: m.P.GARPMasterRefreshRepeat})
		}
	}
	return acts
}

// priority applies a new effective priority. An owner's 255 never changes. A backup
// restarts its master-down timer with the new skew (keepalived); a master advertises
// the new priority at once so a better backup can start preempting.
func (m *Machine) priority(ev Event) []Action {
	if m.IsOwner() || ev.Priority == m.Priority {
		return nil
	}
	m.Priority = ev.Priority
	switch m.State {
	case StateBackup:
		m.MasterDownAt = ev.Now.Add(m.MasterDownInterval())
	case StateMaster:
		m.MasterPriority = m.Priority
		m.AdvertAt = ev.Now.Add(m.P.AdvertInt)
		return []Action{{Kind: ActSendAdvert, Priority: m.Priority}}
	}
	return nil
}

func (m *Machine) fault(ev Event) []Action {
	if ev.Fault == m.Faulted || m.State == StateInit {
		m.Faulted = ev.Fault
		return nil
	}
	m.Faulted = ev.Fault
	if ev.Fault {
		var acts []Action
		if m.State == StateMaster {
			acts = m.leaveMaster()
		}
		return append(acts, m.enter(StateFault, ev.Now, ev.Reason)...)
	}
	if m.State == StateFault {
		return m.becomeBackup(ev.Now, "fault cleared: "+ev.Reason)
	}
	return nil
}

func (m *Machine) shutdown(now time.Time) []Action {
	var acts []Action
	if m.State == StateMaster {
		acts = m.leaveMaster()
	}
	return append(acts, m.enter(StateInit, now, "shutdown")...)
}

// groupBackup follows another sync group member out of MASTER: a master gives up its
// addresses (with a priority-0 advert so the peer group takes over at once); a backup
// forgets that it wanted MASTER and starts a fresh master-down timer.
func (m *Machine) groupBackup(ev Event) []Action {
	switch m.State {
	case StateMaster:
		return append(m.leaveMaster(), m.becomeBackup(ev.Now, "sync group member left MASTER")...)
	case StateBackup:
		m.WantMaster = false
		m.MasterDownAt = ev.Now.Add(m.MasterDownInterval())
	}
	return nil
}
