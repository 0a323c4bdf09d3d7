package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"gokeepalived/parser"
)

// Sensor watches one tracked object and reports its status (once at start, then on
// every change) until ctx ends.
type Sensor interface {
	Run(ctx context.Context, report func(TrackStatus))
}

// LinuxSensor builds the real sensor for a tracked object of the configuration.
func LinuxSensor(kind TrackerKind, name string, cfg *parser.Config, log *slog.Logger) (Sensor, error) {
	switch kind {
	case TrackInterface:
		return NewInterfaceTracker(name, log)
	case TrackScript:
		for _, s := range cfg.Scripts {
			if s.Name == name {
				return NewScriptTracker(s, log)
			}
		}
	case TrackPing:
		for _, p := range cfg.TrackPings {
			if p.Name == name {
				return NewPingTracker(p, log)
			}
		}
	case TrackFile:
		for _, f := range cfg.TrackFiles {
			if f.Name == name {
				return NewFileTracker(f, log)
			}
		}
	case TrackProcess:
		for _, p := range cfg.TrackProcesses {
			if p.Name == name {
				return NewProcessTracker(p, log)
			}
		}
	}
	return nil, fmt.Errorf("vrrp: no %s named %s", kind, name)
}

type trackKey struct {
	kind TrackerKind
	name string
}

// trackRef is one tracker as an instance uses it (with the instance's weight).
type trackRef struct {
	key     trackKey
	weight  int
	reverse bool
}

// tracking is an instance's view of its trackers.
type tracking struct {
	refs   []trackRef
	status map[trackKey]TrackStatus

	eff       uint8
	ownFault  bool
	ownReason string
	fault     bool // own fault or a sync group member's
	parts     []Contribution
}

// trackers runs the sensors of a configuration and turns their reports into priority
// and fault events for the instances.
type trackers struct {
	mu     sync.Mutex
	subs   map[trackKey][]*instance
	byInst map[*instance]*tracking
	log    *slog.Logger
}

// refsOf lists an instance's trackers: its own, its sync group's, and its interface
// (weight 0: down is FAULT) unless dont_track_primary.
func refsOf(c *parser.VRRPInstance, g *parser.SyncGroup) []trackRef {
	var refs []trackRef
	add := func(kind TrackerKind, list []*parser.TrackRef) {
		for _, r := range list {
			refs = append(refs, trackRef{key: trackKey{kind, r.Name}, weight: r.Weight, reverse: r.Reverse})
		}
	}
	if !c.DontTrackPrimary {
		refs = append(refs, trackRef{key: trackKey{TrackInterface, c.Interface}})
	}
	add(TrackInterface, c.TrackInterfaces)
	add(TrackScript, c.TrackScripts)
	add(TrackFile, c.TrackFiles)
	add(TrackProcess, c.TrackProcesses)
	add(TrackPing, c.TrackPings)
	if g != nil {
		add(TrackInterface, g.TrackInterfaces)
		add(TrackScript, g.TrackScripts)
		add(TrackFile, g.TrackFiles)
		add(TrackProcess, g.TrackProcesses)
		add(TrackPing, g.TrackPings)
	}
	return refs
}

// newTrackers subscribes every instance to its trackers and computes the initial state:
// until a tracker reports, it counts as pending, which holds the instance in FAULT. seed
// holds the statuses known before a reload, so kept instances do not flap meanwhile.
func newTrackers(cfg *parser.Config, insts []*instance, log *slog.Logger, seed map[trackKey]TrackStatus) *trackers {
	ts := &trackers{subs: map[trackKey][]*instance{}, byInst: map[*instance]*tracking{}, log: log}
	groups := map[string]*parser.SyncGroup{}
	for _, g := range cfg.SyncGroups {
		groups[g.Name] = g
	}
	for _, in := range insts {
		tr := &tracking{refs: refsOf(in.cfg, groups[in.cfg.SyncGroup]), status: map[trackKey]TrackStatus{}}
		ts.byInst[in] = tr
		for _, r := range tr.refs {
			ts.subs[r.key] = append(ts.subs[r.key], in)
			if st, ok := seed[r.key]; ok {
				tr.status[r.key] = st
			}
		}
		ts.evaluate(in, tr)
	}
	for _, in := range insts {
		ts.byInst[in].fault = ts.groupFault(in)
	}
	return ts
}

// initial returns the fault state an instance starts with.
func (ts *trackers) initial(in *instance) (bool, string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	tr := ts.byInst[in]
	return tr.fault, tr.ownReason
}

// run starts one sensor per tracked object.
func (ts *trackers) run(ctx context.Context, wg *sync.WaitGroup, cfg *parser.Config, newSensor func(TrackerKind, string, *parser.Config, *slog.Logger) (Sensor, error)) {
	for key := range ts.subs {
		s, err := newSensor(key.kind, key.name, cfg, ts.log)
		if err != nil {
			ts.log.Error("cannot start tracker; it stays down", "tracker", key.kind.String()+" "+key.name, "err", err)
			ts.report(key, TrackStatus{Kind: key.kind, Name: key.name, Detail: err.Error()})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Run(ctx, func(st TrackStatus) { ts.report(key, st) })
		}()
	}
}

// report records a sensor's status and sends the instances that use it their new
// priority and fault state.
func (ts *trackers) report(key trackKey, st TrackStatus) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, in := range ts.subs[key] {
		tr := ts.byInst[in]
		tr.status[key] = st
		oldEff, oldOwn := tr.eff, tr.ownFault
		ts.evaluate(in, tr)
		if tr.eff != oldEff {
			in.deliver(Event{Kind: EvPriority, Priority: tr.eff})
		}
		if tr.ownFault != oldOwn {
			ts.propagate(in)
		}
	}
}

// evaluate recomputes an instance's effective priority and own fault.
func (ts *trackers) evaluate(in *instance, tr *tracking) {
	list := make([]TrackStatus, 0, len(tr.refs))
	for _, r := range tr.refs {
		st, ok := tr.status[r.key]
		if !ok {
			st = TrackStatus{Kind: r.key.kind, Name: r.key.name, Init: true}
		}
		st.Weight, st.Reverse = r.weight, r.reverse
		list = append(list, st)
	}
	eff, fault, reason, parts := EffectivePriority(uint8(in.cfg.Priority), list)
	var pending []string
	for _, p := range parts {
		if p.Pending {
			pending = append(pending, p.Kind.String()+" "+p.Name)
		}
	}
	if !fault && len(pending) > 0 {
		fault, reason = true, "waiting for the first result of "+strings.Join(pending, ", ")
	}
	tr.eff, tr.ownFault, tr.ownReason, tr.parts = eff, fault, reason, parts
}

// groupFault: a member is in FAULT when it or another member of its sync group is.
func (ts *trackers) groupFault(in *instance) bool {
	if ts.byInst[in].ownFault {
		return true
	}
	if in.group == nil {
		return false
	}
	for _, m := range in.group.members {
		if ts.byInst[m].ownFault {
			return true
		}
	}
	return false
}

// propagate delivers the fault state to an instance and, in a sync group, to the other
// members (one member in FAULT drags the group).
func (ts *trackers) propagate(in *instance) {
	members := []*instance{in}
	if in.group != nil {
		members = in.group.members
	}
	for _, m := range members {
		tr := ts.byInst[m]
		f := ts.groupFault(m)
		if f == tr.fault && m != in {
			continue
		}
		tr.fault = f
		reason := tr.ownReason
		if f && !tr.ownFault {
			reason = "sync group member " + in.name + ": " + ts.byInst[in].ownReason
		} else if !f {
			reason = "trackers up"
		}
		m.deliver(Event{Kind: EvFault, Fault: f, Reason: reason})
	}
}

// breakdown returns the per-tracker contributions of an instance, for status output.
func (ts *trackers) breakdown(in *instance) []Contribution {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if tr := ts.byInst[in]; tr != nil {
		return append([]Contribution(nil), tr.parts...)
	}
	return nil
}

// current returns an instance's effective priority and fault state.
func (ts *trackers) current(in *instance) (uint8, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	tr := ts.byInst[in]
	return tr.eff, tr.fault
}

// statuses returns the last status of every tracker, to seed the next generation.
func (ts *trackers) statuses() map[trackKey]TrackStatus {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := map[trackKey]TrackStatus{}
	for _, tr := range ts.byInst {
		for k, st := range tr.status {
			out[k] = st
		}
	}
	return out
}
