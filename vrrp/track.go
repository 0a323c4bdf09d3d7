package vrrp

import (
	"fmt"
	"log/slog"
)

// Trackers watch something outside VRRP and report it as a TrackStatus; the priority
// rules in EffectivePriority turn the statuses an instance tracks into its effective
// priority and FAULT condition.
//
// # Sensors
//
// Each kind of tracked object has a sensor type with the same shape:
//
//	NewXxxTracker(cfg, log) (*XxxTracker, error)   // validates, opens what must be opened now
//	(*XxxTracker).Run(ctx, report func(TrackStatus)) // reports once at start, then on every change
//
// Run blocks until ctx ends, then releases everything the tracker opened (sockets,
// child processes, inotify and netlink handles) before returning: no goroutine
// outlives it. Run is called once per tracker. report is called from Run's goroutine
// only, never concurrently, and must not block for long: hand the status to the
// instance's event loop.
//
// Sensors that depend on the network namespace (ScriptTracker does not, PingTracker
// and InterfaceTracker do) bind to the namespace of the thread that calls their
// constructor.
//
// # Wiring (engine)
//
// One sensor per tracked object, shared by every instance and sync group tracking it:
// a vrrp_script, a track_file, a vrrp_track_process or a vrrp_track_ping block, or an
// interface name. A sensor fills Kind, Name and the observation (OK, Init, Value,
// Total, Quorum, Detail) and, for kinds that have them, the block's own default
// Weight and Reverse. For each instance the engine keeps the latest status of every
// tracker it tracks, with Weight and Reverse replaced by the instance's
// parser.TrackRef (those are the effective values), and on every report recomputes
// EffectivePriority(cfg.Priority, statuses):
//
//   - a changed eff is fed to the state machine as EvPriority;
//   - a changed fault is fed as EvFault with reason;
//   - parts is kept for the status API.
//
// Before EvStart the engine waits until no part is Pending: keepalived holds an
// instance in INIT while a weight-0 vrrp_script has not returned yet (§3 Startup).
// A sync group's trackers are added to every member's list. keepalived's rule for
// the weighted trackers of a member's own (§2.3, "ignoring tracked script X with
// weights due to SYNC group", unless sync_group_tracking_weight) is the engine's to
// apply before calling EffectivePriority, which knows nothing of sync groups. The
// instance interface's own state, when not dont_track_primary, is an
// InterfaceTracker status with weight 0.

// TrackerKind is the kind of object a tracker watches.
type TrackerKind uint8

// Tracker kinds.
const (
	TrackInterface TrackerKind = iota + 1 // track_interface: a network interface
	TrackScript                           // track_script: a vrrp_script
	TrackFile                             // track_file: a file holding a number
	TrackProcess                          // track_process: a vrrp_track_process
	TrackPing                             // track_ping: a vrrp_track_ping (extension)
)

// String returns the configuration keyword of the kind ("track_script"...).
func (k TrackerKind) String() string {
	switch k {
	case TrackInterface:
		return "track_interface"
	case TrackScript:
		return "track_script"
	case TrackFile:
		return "track_file"
	case TrackProcess:
		return "track_process"
	case TrackPing:
		return "track_ping"
	}
	return fmt.Sprintf("TrackerKind(%d)", uint8(k))
}

// TrackStatus is what a tracker observes, plus the weight and direction with which
// an instance tracks it.
type TrackStatus struct {
	Kind TrackerKind `json:"kind"`
	Name string      `json:"name"`
	// Weight and Reverse are how the instance tracks the object (parser.TrackRef).
	// Sensors fill in the block's defaults; the engine overrides them per instance.
	Weight  int  `json:"weight"`
	Reverse bool `json:"reverse,omitempty"`

	// OK is the state of the boolean kinds: interface up and running, script
	// succeeded (after rise/fall), process quorum held. For track_file it says the
	// value is 0 and for track_ping that the quorum (at least one address) answers,
	// for display: EffectivePriority uses Value for those.
	OK bool `json:"ok"`
	// Init means the tracker has no result yet (vrrp_script and track_ping before
	// their first run completes; keepalived's SCRIPT_INIT_STATE_INIT). It contributes
	// nothing, and a weight-0 tracker in Init holds the instance in INIT.
	Init bool `json:"init,omitempty"`
	// Value is the number read for track_file, the number of addresses answering
	// for track_ping, and the number of matching processes for track_process
	// (informational: OK is what counts).
	Value int `json:"value"`
	// Total is the number of addresses of a track_ping.
	Total int `json:"total,omitempty"`
	// Quorum is the quorum of a track_ping (0: none).
	Quorum int `json:"quorum,omitempty"`
	// Detail says in words what the sensor saw ("exit status 1", "no carrier").
	Detail string `json:"detail,omitempty"`
}

// trackLogger returns log (slog.Default when nil) annotated with the tracker.
func trackLogger(log *slog.Logger, kind TrackerKind, name string) *slog.Logger {
	if log == nil {
		log = slog.Default()
	}
	return log.With("tracker", kind.String(), "name", name)
}

// trackCounter is keepalived's rise/fall result counter of a vrrp_script (the
// "result" field, vrrp_scheduler.c), used by scripts and by each ping target.
// result runs from 0 to rise+fall-1 and the state is OK when result >= rise, so it
// takes rise consecutive successes to become OK and fall consecutive failures to
// fail. In the init state (no result yet) the first result decides either way:
// keepalived starts result at rise-1 ("one success is enough") and fails a script
// in init on its first failure. init_fail starts at 0, failed, not in init.
type trackCounter struct {
	rise, fall int
	result     int
	init       bool
}

func newTrackCounter(rise, fall int, initFail bool) trackCounter {
	rise, fall = max(rise, 1), max(fall, 1)
	if initFail {
		return trackCounter{rise: rise, fall: fall}
	}
	return trackCounter{rise: rise, fall: fall, result: rise - 1, init: true}
}

// ok reports whether the state is OK (false while in init).
func (c *trackCounter) ok() bool { return !c.init && c.result >= c.rise }

// add records one result and reports whether ok or init changed.
func (c *trackCounter) add(success bool) bool {
	wasOK, wasInit := c.ok(), c.init
	top := c.rise + c.fall - 1
	switch {
	case success && c.result < c.rise-1:
		c.result++
	case success:
		c.result = top
	case c.result > c.rise:
		c.result--
	default:
		c.result = 0
	}
	c.init = false
	return c.ok() != wasOK || c.init != wasInit
}
