package vrrp

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var (
	t0    = time.Unix(1_000_000, 0)
	us    = netip.MustParseAddr("10.0.0.2")
	lower = netip.MustParseAddr("10.0.0.1")
	upper = netip.MustParseAddr("10.0.0.3")
)

func baseParams() Params {
	return Params{
		Version: 2, Priority: 100, AdvertInt: time.Second, Preempt: true,
		DownTimerAdverts: 3, PrimaryAddr: us,
		GARPMasterDelay: 5 * time.Second, GARPMasterRepeat: 5, GARPMasterRefreshRepeat: 1,
		GARPLowerPrioRepeat: 5,
	}
}

func at(d time.Duration) time.Time { return t0.Add(d) }

// skew2 is the v2 skew of priority p: (256-p)/256 s.
func skew2(p int) time.Duration { return time.Duration(256-p) * time.Second / 256 }

func adv(src netip.Addr, prio uint8, interval time.Duration, now time.Duration) Event {
	return Event{Kind: EvAdvert, Now: at(now), Advert: RxAdvert{Src: src, Priority: prio, Interval: interval}}
}

func start(now time.Duration) Event { return Event{Kind: EvStart, Now: at(now)} }
func tick(now time.Duration) Event  { return Event{Kind: EvTimer, Now: at(now)} }
func stop(now time.Duration) Event  { return Event{Kind: EvShutdown, Now: at(now)} }
func fault(now time.Duration, f bool) Event {
	return Event{Kind: EvFault, Now: at(now), Fault: f, Reason: "track_interface eth1"}
}
func prio(now time.Duration, p uint8) Event {
	return Event{Kind: EvPriority, Now: at(now), Priority: p}
}

func trans(s State, reason string) Action {
	return Action{Kind: ActTransition, State: s, Reason: reason}
}
func send(p uint8) Action   { return Action{Kind: ActSendAdvert, Priority: p} }
func announce(n int) Action { return Action{Kind: ActAnnounce, Count: n} }

var (
	addVIPs    = Action{Kind: ActAddVIPs}
	removeVIPs = Action{Kind: ActRemoveVIPs}
)

// masterUp is what becoming master does, in order.
func masterUp(p uint8, reason string) []Action {
	return []Action{trans(StateMaster, reason), send(p), addVIPs, announce(5)}
}

// TestStep: every rule of the state machine is one row. The row name cites the RFC
// section or the keepalived behaviour (shared/reference/keepalived.md §3).
func TestStep(t *testing.T) {
	mdi100 := 3*time.Second + skew2(100) // Master_Down_Interval at priority 100, 1 s adverts
	tests := []struct {
		name   string
		params func(*Params)
		setup  []Event // applied first; their actions are not checked
		ev     Event
		state  State
		acts   []Action
		check  func(t *testing.T, m Machine)
	}{
		{
			name: "RFC5798 6.4.1: start enters BACKUP with Master_Down_Interval",
			ev:   start(0), state: StateBackup, acts: []Action{trans(StateBackup, "start")},
			check: func(t *testing.T, m Machine) { wantTime(t, "master down", m.MasterDownAt, at(mdi100)) },
		},
		{
			name:   "keepalived §3 startup: state MASTER without priority 255 still waits master-down",
			params: func(p *Params) { p.StartMaster = true },
			ev:     start(0), state: StateBackup, acts: []Action{trans(StateBackup, "start")},
		},
		{
			name:   "RFC5798 6.4.1: address owner with state MASTER becomes master at once",
			params: func(p *Params) { p.Priority = 255; p.StartMaster = true },
			ev:     start(0), state: StateMaster,
			acts: masterUp(255, "address owner (priority 255) with state MASTER"),
			check: func(t *testing.T, m Machine) {
				wantTime(t, "advert", m.AdvertAt, at(time.Second))
				wantTime(t, "second GARP burst", m.GARPAt, at(5*time.Second))
			},
		},
		{
			name:   "keepalived §3 startup: owner in BACKUP waits 3 adverts + 1/256 s",
			params: func(p *Params) { p.Priority = 255 },
			ev:     start(0), state: StateBackup, acts: []Action{trans(StateBackup, "start")},
			check: func(t *testing.T, m Machine) {
				wantTime(t, "master down", m.MasterDownAt, at(3*time.Second+skew2(255)))
			},
		},
		{
			name:  "keepalived §3 FAULT: a fault at start enters FAULT, no timer",
			ev:    Event{Kind: EvStart, Now: t0, Fault: true, Reason: "eth1 down"},
			state: StateFault, acts: []Action{trans(StateFault, "fault at start: eth1 down")},
			check: func(t *testing.T, m Machine) { wantTime(t, "deadline", m.NextDeadline(), time.Time{}) },
		},
		{
			name:  "RFC5798 6.4.2: Master_Down_Timer fires: advert, addresses, announcements, MASTER",
			setup: []Event{start(0)}, ev: tick(mdi100),
			state: StateMaster, acts: masterUp(100, "master down timer expired"),
			check: func(t *testing.T, m Machine) { wantTime(t, "advert", m.AdvertAt, at(mdi100+time.Second)) },
		},
		{
			name:  "timer before the deadline changes nothing",
			setup: []Event{start(0)}, ev: tick(mdi100 - time.Microsecond), state: StateBackup,
		},
		{
			name:  "RFC5798 6.4.2: backup accepts a higher priority and resets Master_Down_Timer",
			setup: []Event{start(0)}, ev: adv(upper, 150, time.Second, 2*time.Second), state: StateBackup,
			check: func(t *testing.T, m Machine) {
				wantTime(t, "master down", m.MasterDownAt, at(2*time.Second+mdi100))
				if m.MasterAddr != upper || m.MasterPriority != 150 {
					t.Errorf("master %v/%d", m.MasterAddr, m.MasterPriority)
				}
			},
		},
		{
			name:  "RFC5798 6.4.2: backup accepts an equal priority",
			setup: []Event{start(0)}, ev: adv(lower, 100, time.Second, time.Second), state: StateBackup,
			check: func(t *testing.T, m Machine) { wantTime(t, "master down", m.MasterDownAt, at(time.Second+mdi100)) },
		},
		{
			name:  "RFC5798 6.4.2: priority 0 sets Master_Down_Timer to Skew_Time only",
			setup: []Event{start(0), adv(upper, 150, time.Second, time.Second)},
			ev:    adv(upper, 0, time.Second, 2*time.Second), state: StateBackup,
			check: func(t *testing.T, m Machine) {
				wantTime(t, "master down", m.MasterDownAt, at(2*time.Second+skew2(100)))
			},
		},
		{
			name:  "RFC5798 6.4.2: skew-only takeover after priority 0",
			setup: []Event{start(0), adv(upper, 0, time.Second, time.Second)},
			ev:    tick(time.Second + skew2(100)), state: StateMaster,
			acts: masterUp(100, "master down timer expired"),
		},
		{
			name:  "keepalived §3: preempt discards a lower priority; the timer keeps running",
			setup: []Event{start(0)}, ev: adv(lower, 50, time.Second, 2*time.Second), state: StateBackup,
			check: func(t *testing.T, m Machine) { wantTime(t, "master down", m.MasterDownAt, at(mdi100)) },
		},
		{
			name:   "RFC5798 6.4.2 / keepalived nopreempt: backup accepts a lower priority",
			params: func(p *Params) { p.Preempt = false },
			setup:  []Event{start(0)}, ev: adv(lower, 50, time.Second, 2*time.Second), state: StateBackup,
			check: func(t *testing.T, m Machine) { wantTime(t, "master down", m.MasterDownAt, at(2*time.Second+mdi100)) },
		},
		{
			name:   "keepalived §3 preempt_delay: lower priority accepted while the delay runs",
			params: func(p *Params) { p.PreemptDelay = 10 * time.Second },
			setup:  []Event{start(0), adv(lower, 50, time.Second, time.Second)},
			ev:     adv(lower, 50, time.Second, 10*time.Second), state: StateBackup,
			check: func(t *testing.T, m Machine) { wantTime(t, "master down", m.MasterDownAt, at(10*time.Second+mdi100)) },
		},
		{
			name:   "keepalived §3 preempt_delay: after the delay lower priority is discarded",
			params: func(p *Params) { p.PreemptDelay = 10 * time.Second },
			setup:  []Event{start(0), adv(lower, 50, time.Second, time.Second), adv(lower, 50, time.Second, 10*time.Second)},
			ev:     adv(lower, 50, time.Second, 11*time.Second), state: StateBackup,
			check: func(t *testing.T, m Machine) { wantTime(t, "master down", m.MasterDownAt, at(10*time.Second+mdi100)) },
		},
		{
			name:   "keepalived §3 preempt_delay: an equal-or-higher advert restarts the delay",
			params: func(p *Params) { p.PreemptDelay = 10 * time.Second },
			setup:  []Event{start(0), adv(lower, 50, time.Second, time.Second), adv(upper, 150, time.Second, 5*time.Second)},
			ev:     adv(lower, 50, time.Second, 12*time.Second), state: StateBackup,
			check: func(t *testing.T, m Machine) {
				wantTime(t, "delay start", m.PreemptDelayStart, at(12*time.Second))
				wantTime(t, "master down", m.MasterDownAt, at(12*time.Second+mdi100))
			},
		},
		{
			name:  "RFC3768 7.1 / keepalived §3: v2 advert with another interval is dropped and counted",
			setup: []Event{start(0)}, ev: adv(upper, 150, 2*time.Second, time.Second), state: StateBackup,
			acts:  []Action{{Kind: ActCount, Counter: "advert_interval_err"}},
			check: func(t *testing.T, m Machine) { wantTime(t, "master down", m.MasterDownAt, at(mdi100)) },
		},
		{
			name:   "RFC5798 6.4.2: v3 backup adopts the master's Max_Adver_Int",
			params: func(p *Params) { p.Version = 3 },
			setup:  []Event{start(0)}, ev: adv(upper, 150, 500*time.Millisecond, time.Second), state: StateBackup,
			check: func(t *testing.T, m Machine) {
				if m.MasterAdverInt != 500*time.Millisecond {
					t.Errorf("Master_Adver_Int %v", m.MasterAdverInt)
				}
				// 3 x 0.5 s + (156 x 0.5 s)/256
				wantTime(t, "master down", m.MasterDownAt, at(time.Second+1500*time.Millisecond+156*500*time.Millisecond/256))
			},
		},
		{
			name:   "RFC5798 6.1: v3 Skew_Time scales with Master_Adver_Int",
			params: func(p *Params) { p.Version = 3; p.AdvertInt = 100 * time.Millisecond },
			ev:     start(0), state: StateBackup, acts: []Action{trans(StateBackup, "start")},
			check: func(t *testing.T, m Machine) {
				wantTime(t, "master down", m.MasterDownAt, at(300*time.Millisecond+156*100*time.Millisecond/256))
			},
		},
		{
			name:   "keepalived §3: v2 Skew_Time is not scaled by advert_int",
			params: func(p *Params) { p.AdvertInt = 2 * time.Second },
			ev:     start(0), state: StateBackup, acts: []Action{trans(StateBackup, "start")},
			check: func(t *testing.T, m Machine) {
				wantTime(t, "master down", m.MasterDownAt, at(6*time.Second+skew2(100)))
			},
		},
		{
			name:   "keepalived down_timer_adverts: master down after N adverts + skew",
			params: func(p *Params) { p.DownTimerAdverts = 5 },
			ev:     start(0), state: StateBackup, acts: []Action{trans(StateBackup, "start")},
			check: func(t *testing.T, m Machine) {
				wantTime(t, "master down", m.MasterDownAt, at(5*time.Second+skew2(100)))
			},
		},
		{
			name:  "RFC5798 6.4.3: master sends an advert every Advertisement_Interval",
			setup: []Event{start(0), tick(mdi100)}, ev: tick(mdi100 + time.Second), state: StateMaster,
			acts:  []Action{send(100)},
			check: func(t *testing.T, m Machine) { wantTime(t, "advert", m.AdvertAt, at(mdi100+2*time.Second)) },
		},
		{
			name:  "keepalived garp_master_delay: second announcement burst",
			setup: []Event{start(0), tick(mdi100)}, ev: tick(mdi100 + 5*time.Second), state: StateMaster,
			acts:  []Action{send(100), announce(5)},
			check: func(t *testing.T, m Machine) { wantTime(t, "GARP", m.GARPAt, time.Time{}) },
		},
		{
			name: "keepalived garp_master_refresh: periodic announcements while master",
			params: func(p *Params) {
				p.GARPMasterDelay = 0
				p.GARPMasterRefresh = 30 * time.Second
				p.GARPMasterRefreshRepeat = 2
			},
			setup: []Event{start(0), tick(mdi100)}, ev: tick(mdi100 + 30*time.Second), state: StateMaster,
			acts:  []Action{send(100), announce(2)},
			check: func(t *testing.T, m Machine) { wantTime(t, "refresh", m.RefreshAt, at(mdi100+60*time.Second)) },
		},
		{
			name:  "RFC5798 6.4.3: master yields to a higher priority and removes its addresses",
			setup: []Event{start(0), tick(mdi100)}, ev: adv(upper, 150, time.Second, 5*time.Second),
			state: StateBackup, acts: []Action{removeVIPs, trans(StateBackup, "higher priority 150 from 10.0.0.3")},
			check: func(t *testing.T, m Machine) {
				wantTime(t, "master down", m.MasterDownAt, at(5*time.Second+mdi100))
				wantTime(t, "advert", m.AdvertAt, time.Time{})
			},
		},
		{
			name:  "RFC5798 6.4.3: equal priority from a higher primary address wins",
			setup: []Event{start(0), tick(mdi100)}, ev: adv(upper, 100, time.Second, 5*time.Second),
			state: StateBackup, acts: []Action{removeVIPs, trans(StateBackup, "equal priority 100 from higher address 10.0.0.3")},
		},
		{
			name:  "RFC5798 6.4.3 + keepalived §3: equal priority from a lower address: stay, answer, re-announce",
			setup: []Event{start(0), tick(mdi100)}, ev: adv(lower, 100, time.Second, 5*time.Second),
			state: StateMaster,
			acts:  []Action{send(100), announce(5), {Kind: ActNotifyLowerPrio, Src: lower, Priority: 100}},
		},
		{
			name:  "keepalived §3: master hearing a lower priority re-adverts and re-GARPs at once",
			setup: []Event{start(0), tick(mdi100)}, ev: adv(lower, 50, time.Second, 5*time.Second),
			state: StateMaster,
			acts:  []Action{send(100), announce(5), {Kind: ActNotifyLowerPrio, Src: lower, Priority: 50}},
			check: func(t *testing.T, m Machine) { wantTime(t, "advert", m.AdvertAt, at(6*time.Second)) },
		},
		{
			name:   "keepalived lower_prio_no_advert: no answering advert",
			params: func(p *Params) { p.LowerPrioNoAdvert = true; p.GARPLowerPrioRepeat = 0 },
			setup:  []Event{start(0), tick(mdi100)}, ev: adv(lower, 50, time.Second, 5*time.Second),
			state: StateMaster, acts: []Action{{Kind: ActNotifyLowerPrio, Src: lower, Priority: 50}},
		},
		{
			name:   "keepalived higher_prio_send_advert: one advert before yielding",
			params: func(p *Params) { p.HigherPrioSendAdvert = true },
			setup:  []Event{start(0), tick(mdi100)}, ev: adv(upper, 150, time.Second, 5*time.Second),
			state: StateBackup, acts: []Action{send(100), removeVIPs, trans(StateBackup, "higher priority 150 from 10.0.0.3")},
		},
		{
			name:  "RFC5798 6.4.3: master hearing priority 0 sends an advert at once",
			setup: []Event{start(0), tick(mdi100)}, ev: adv(upper, 0, time.Second, 5*time.Second),
			state: StateMaster, acts: []Action{send(100)},
		},
		{
			name:   "RFC5798 6.4.3: v3 master yields and adopts the new master's interval",
			params: func(p *Params) { p.Version = 3 },
			setup:  []Event{start(0), tick(mdi100)}, ev: adv(upper, 150, 200*time.Millisecond, 5*time.Second),
			state: StateBackup, acts: []Action{removeVIPs, trans(StateBackup, "higher priority 150 from 10.0.0.3")},
			check: func(t *testing.T, m Machine) {
				wantTime(t, "master down", m.MasterDownAt, at(5*time.Second+600*time.Millisecond+156*200*time.Millisecond/256))
			},
		},
		{
			name:  "RFC5798 6.4.3 shutdown: master sends priority 0 and removes its addresses",
			setup: []Event{start(0), tick(mdi100)}, ev: stop(10 * time.Second),
			state: StateInit, acts: []Action{send(0), removeVIPs, trans(StateInit, "shutdown")},
			check: func(t *testing.T, m Machine) { wantTime(t, "deadline", m.NextDeadline(), time.Time{}) },
		},
		{
			name:  "shutdown from BACKUP sends nothing",
			setup: []Event{start(0)}, ev: stop(time.Second),
			state: StateInit, acts: []Action{trans(StateInit, "shutdown")},
		},
		{
			name:  "keepalived §3 FAULT: master entering FAULT sends priority 0 and removes addresses",
			setup: []Event{start(0), tick(mdi100)}, ev: fault(5*time.Second, true),
			state: StateFault, acts: []Action{send(0), removeVIPs, trans(StateFault, "track_interface eth1")},
		},
		{
			name:  "keepalived §3 FAULT: backup entering FAULT stops its timer",
			setup: []Event{start(0)}, ev: fault(time.Second, true),
			state: StateFault, acts: []Action{trans(StateFault, "track_interface eth1")},
			check: func(t *testing.T, m Machine) { wantTime(t, "deadline", m.NextDeadline(), time.Time{}) },
		},
		{
			name:  "keepalived §3 FAULT: leaving FAULT enters BACKUP with a fresh master-down timer",
			setup: []Event{start(0), fault(time.Second, true)}, ev: fault(4*time.Second, false),
			state: StateBackup, acts: []Action{trans(StateBackup, "fault cleared: track_interface eth1")},
			check: func(t *testing.T, m Machine) { wantTime(t, "master down", m.MasterDownAt, at(4*time.Second+mdi100)) },
		},
		{
			name:  "adverts are ignored in FAULT",
			setup: []Event{start(0), fault(time.Second, true)}, ev: adv(upper, 0, time.Second, 2*time.Second),
			state: StateFault,
		},
		{
			name:  "keepalived §3: a priority change restarts a backup's master-down with the new skew",
			setup: []Event{start(0)}, ev: prio(2*time.Second, 120), state: StateBackup,
			check: func(t *testing.T, m Machine) {
				wantTime(t, "master down", m.MasterDownAt, at(2*time.Second+3*time.Second+skew2(120)))
			},
		},
		{
			name:  "a master advertises a priority change at once",
			setup: []Event{start(0), tick(mdi100)}, ev: prio(5*time.Second, 80), state: StateMaster,
			acts: []Action{send(80)},
		},
		{
			name:   "keepalived §2.3 sync group: master-down expiry only asks the group",
			params: func(p *Params) { p.SyncGroup = true },
			setup:  []Event{start(0)}, ev: tick(mdi100), state: StateBackup,
			acts: []Action{{Kind: ActWantMaster}},
			check: func(t *testing.T, m Machine) {
				if !m.WantMaster {
					t.Error("WantMaster not set")
				}
				wantTime(t, "master down", m.MasterDownAt, at(2*mdi100))
			},
		},
		{
			name:   "keepalived §2.3 sync group: the group's go makes a waiting member MASTER",
			params: func(p *Params) { p.SyncGroup = true },
			setup:  []Event{start(0), tick(mdi100)}, ev: Event{Kind: EvGroupMaster, Now: at(mdi100 + time.Millisecond)},
			state: StateMaster, acts: masterUp(100, "sync group going MASTER"),
		},
		{
			name:   "keepalived §2.3 sync group: a member that hears its master again stops wanting",
			params: func(p *Params) { p.SyncGroup = true },
			setup:  []Event{start(0), tick(mdi100), adv(upper, 150, time.Second, mdi100+time.Millisecond)},
			ev:     Event{Kind: EvGroupMaster, Now: at(mdi100 + 2*time.Millisecond)}, state: StateBackup,
		},
		{
			name:   "keepalived §2.3 sync group: a master follows a member out of MASTER",
			params: func(p *Params) { p.SyncGroup = true },
			setup:  []Event{start(0), tick(mdi100), {Kind: EvGroupMaster, Now: at(mdi100)}},
			ev:     Event{Kind: EvGroupBackup, Now: at(5 * time.Second)}, state: StateBackup,
			acts: []Action{send(0), removeVIPs, trans(StateBackup, "sync group member left MASTER")},
		},
		{
			name:   "keepalived §3: the owner's priority 255 never changes",
			params: func(p *Params) { p.Priority = 255; p.StartMaster = true },
			setup:  []Event{start(0)}, ev: prio(time.Second, 200), state: StateMaster,
			check: func(t *testing.T, m Machine) {
				if m.Priority != 255 {
					t.Errorf("priority %d", m.Priority)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := baseParams()
			if tc.params != nil {
				tc.params(&p)
			}
			m := NewMachine(p)
			for _, ev := range tc.setup {
				m, _ = m.Step(ev)
			}
			m, acts := m.Step(tc.ev)
			if m.State != tc.state {
				t.Errorf("state %v, want %v", m.State, tc.state)
			}
			if !reflect.DeepEqual(acts, tc.acts) {
				t.Errorf("actions\n got %+v\nwant %+v", acts, tc.acts)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s at %v, want %v", what, got.Sub(t0), want.Sub(t0))
	}
}
