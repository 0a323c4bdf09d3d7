package vrrp

import (
	"strings"
	"testing"
)

// TestEffectivePriority has one row per keepalived tracking rule (reference §3
// "Effective priority" and "FAULT", vrrp_track.c) and per rule of the track_ping
// extension.
func TestEffectivePriority(t *testing.T) {
	iface := func(name string, w int, rev, ok bool) TrackStatus {
		return TrackStatus{Kind: TrackInterface, Name: name, Weight: w, Reverse: rev, OK: ok}
	}
	script := func(name string, w int, rev, ok bool) TrackStatus {
		return TrackStatus{Kind: TrackScript, Name: name, Weight: w, Reverse: rev, OK: ok}
	}
	proc := func(name string, w int, rev, ok bool) TrackStatus {
		return TrackStatus{Kind: TrackProcess, Name: name, Weight: w, Reverse: rev, OK: ok}
	}
	file := func(name string, w int, rev bool, v int) TrackStatus {
		return TrackStatus{Kind: TrackFile, Name: name, Weight: w, Reverse: rev, Value: v}
	}
	ping := func(name string, w int, rev bool, up, total, quorum int) TrackStatus {
		return TrackStatus{Kind: TrackPing, Name: name, Weight: w, Reverse: rev, Value: up, Total: total, Quorum: quorum}
	}
	initScript := TrackStatus{Kind: TrackScript, Name: "chk", Init: true}

	tests := []struct {
		name      string
		base      uint8
		ts        []TrackStatus
		eff       uint8
		fault     bool
		pending   bool
		reasonHas string
	}{
		{name: "§3 effective priority: no trackers keeps base", base: 100, eff: 100, reasonHas: "100 = 100"},
		{name: "§3 effective priority: positive weight added while OK",
			base: 100, ts: []TrackStatus{script("chk", 10, false, true)}, eff: 110, reasonHas: "+10 track_script chk"},
		{name: "§3 effective priority: positive weight adds nothing while failed",
			base: 100, ts: []TrackStatus{script("chk", 10, false, false)}, eff: 100},
		{name: "§3 effective priority: negative weight subtracted while failed",
			base: 100, ts: []TrackStatus{iface("eth1", -20, false, false)}, eff: 80},
		{name: "§3 effective priority: negative weight takes nothing while OK",
			base: 100, ts: []TrackStatus{iface("eth1", -20, false, true)}, eff: 100},
		{name: "§3 effective priority: reverse negates a positive weight while OK",
			base: 100, ts: []TrackStatus{script("chk", 10, true, true)}, eff: 90},
		{name: "§3 effective priority: reverse positive weight adds nothing while failed",
			base: 100, ts: []TrackStatus{script("chk", 10, true, false)}, eff: 100},
		{name: "§3 effective priority: reverse negative weight adds |W| while failed",
			base: 100, ts: []TrackStatus{proc("haproxy", -20, true, false)}, eff: 120},
		{name: "§3 effective priority: contributions of every kind add up",
			base: 100, ts: []TrackStatus{
				iface("eth1", 5, false, true), script("a", -10, false, false),
				file("f", 2, false, 3), proc("p", 7, false, true), ping("gw", 1, false, 2, 3, 0),
			}, eff: 100 + 5 - 10 + 6 + 7 + 2},
		{name: "§3 effective priority: clamped to 254",
			base: 250, ts: []TrackStatus{script("chk", 50, false, true)}, eff: 254, reasonHas: "clamped to 254"},
		{name: "§3 effective priority: clamped to 1",
			base: 10, ts: []TrackStatus{iface("eth1", -253, false, false)}, eff: 1, reasonHas: "clamped to 1"},
		{name: "§3 effective priority: base 255 never changed by weights",
			base: 255, ts: []TrackStatus{iface("eth1", -50, false, false), script("chk", 10, false, true)}, eff: 255},
		{name: "§3 FAULT: address owner still faults on weight 0",
			base: 255, ts: []TrackStatus{iface("eth1", 0, false, false)}, eff: 255, fault: true, reasonHas: "track_interface eth1: down"},
		{name: "§3 FAULT: track_interface weight 0 down",
			base: 100, ts: []TrackStatus{iface("eth1", 0, false, false)}, eff: 100, fault: true},
		{name: "§3 FAULT: track_interface weight 0 up is fine",
			base: 100, ts: []TrackStatus{iface("eth1", 0, false, true)}, eff: 100},
		{name: "§3 FAULT: weight 0 reverse faults while up",
			base: 100, ts: []TrackStatus{iface("eth1", 0, true, true)}, eff: 100, fault: true},
		{name: "§3 FAULT: weight 0 reverse is fine while down",
			base: 100, ts: []TrackStatus{iface("eth1", 0, true, false)}, eff: 100},
		{name: "§3 FAULT: script weight 0 failed after fall",
			base: 100, ts: []TrackStatus{script("chk", 0, false, false)}, eff: 100, fault: true, reasonHas: "track_script chk: failed"},
		{name: "§3 FAULT: process quorum lost with weight 0",
			base: 100, ts: []TrackStatus{proc("haproxy", 0, false, false)}, eff: 100, fault: true},
		{name: "§3 FAULT: faults and weights combine; reason names every fault",
			base: 100, ts: []TrackStatus{iface("eth1", 0, false, false), script("a", 0, false, false), script("b", 10, false, true)},
			eff: 110, fault: true, reasonHas: "track_interface eth1: down, weight 0; track_script a: failed"},
		{name: "§3 startup: weight-0 script in init holds the instance (pending, no fault)",
			base: 100, ts: []TrackStatus{initScript}, eff: 100, pending: true, reasonHas: "100 = 100"},
		{name: "§3 startup: weighted script in init contributes nothing and does not hold",
			base: 100, ts: []TrackStatus{{Kind: TrackScript, Name: "chk", Weight: -30, Init: true}}, eff: 100},
		{name: "§3 FAULT: track_file weight 0 value not 0",
			base: 100, ts: []TrackStatus{file("f", 0, false, 1)}, eff: 100, fault: true},
		{name: "§3 FAULT: track_file weight 0 value 0 is fine",
			base: 100, ts: []TrackStatus{file("f", 0, false, 0)}, eff: 100},
		{name: "§3 FAULT: track_file weight 0 reverse faults on value 0",
			base: 100, ts: []TrackStatus{file("f", 0, true, 0)}, eff: 100, fault: true},
		{name: "§3 effective priority: track_file adds value × weight",
			base: 100, ts: []TrackStatus{file("f", 3, false, 5)}, eff: 115},
		{name: "§3 effective priority: track_file negative value lowers priority",
			base: 100, ts: []TrackStatus{file("f", 1, false, -30)}, eff: 70},
		{name: "§3 effective priority: track_file reverse negates value × weight",
			base: 100, ts: []TrackStatus{file("f", 3, true, 5)}, eff: 85},
		{name: "§3 effective priority: track_file contribution capped at 253",
			base: 1, ts: []TrackStatus{file("f", 2, false, 200)}, eff: 254},
		{name: "§3 FAULT: track_file value × weight ≤ -254",
			base: 100, ts: []TrackStatus{file("f", 2, false, -127)}, eff: 100, fault: true, reasonHas: "-254 ≤ -254"},
		{name: "§3 effective priority: track_file value clamped to ±254 before weighting",
			base: 100, ts: []TrackStatus{file("f", -1, false, 100000)}, eff: 100, fault: true},
		{name: "track_ping: positive weight adds W per address up",
			base: 100, ts: []TrackStatus{ping("gw", 10, false, 3, 4, 0)}, eff: 130},
		{name: "track_ping: negative weight subtracts |W| per address down",
			base: 100, ts: []TrackStatus{ping("gw", -10, false, 3, 4, 0)}, eff: 90},
		{name: "track_ping: reverse negates",
			base: 100, ts: []TrackStatus{ping("gw", 10, true, 3, 4, 0)}, eff: 70},
		{name: "track_ping: quorum held with weight",
			base: 100, ts: []TrackStatus{ping("gw", 5, false, 2, 3, 2)}, eff: 110},
		{name: "track_ping: fewer than quorum up faults even with a weight",
			base: 100, ts: []TrackStatus{ping("gw", 5, false, 1, 3, 2)}, eff: 105, fault: true, reasonHas: "quorum 2 lost"},
		{name: "track_ping: weight 0 without quorum needs one answer",
			base: 100, ts: []TrackStatus{ping("gw", 0, false, 0, 3, 0)}, eff: 100, fault: true},
		{name: "track_ping: weight 0 with one answer is fine",
			base: 100, ts: []TrackStatus{ping("gw", 0, false, 1, 3, 0)}, eff: 100},
		{name: "track_ping: weight 0 with quorum",
			base: 100, ts: []TrackStatus{ping("gw", 0, false, 2, 3, 3)}, eff: 100, fault: true},
		{name: "track_ping: weight 0 reverse faults while up",
			base: 100, ts: []TrackStatus{ping("gw", 0, true, 3, 3, 0)}, eff: 100, fault: true},
		{name: "track_ping: in init a quorum holds the instance even with a weight",
			base: 100, ts: []TrackStatus{{Kind: TrackPing, Name: "gw", Weight: 5, Quorum: 1, Total: 2, Init: true}}, eff: 100, pending: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eff, fault, reason, parts := EffectivePriority(tc.base, tc.ts)
			if eff != tc.eff || fault != tc.fault {
				t.Errorf("EffectivePriority = %d, fault %v (%q); want %d, fault %v", eff, fault, reason, tc.eff, tc.fault)
			}
			if tc.reasonHas != "" && !strings.Contains(reason, tc.reasonHas) {
				t.Errorf("reason %q does not contain %q", reason, tc.reasonHas)
			}
			if len(parts) != len(tc.ts) {
				t.Fatalf("%d parts for %d trackers", len(parts), len(tc.ts))
			}
			pending, faults, sum := false, false, int(tc.base)
			for i, p := range parts {
				if p.Kind != tc.ts[i].Kind || p.Name != tc.ts[i].Name || p.Why == "" {
					t.Errorf("part %d = %+v does not describe %+v", i, p, tc.ts[i])
				}
				pending = pending || p.Pending
				faults = faults || p.Fault
				sum += p.Delta
			}
			if pending != tc.pending || faults != tc.fault {
				t.Errorf("parts pending %v fault %v; want %v %v: %+v", pending, faults, tc.pending, tc.fault, parts)
			}
			if tc.base != 255 && uint8(min(max(sum, 1), 254)) != eff {
				t.Errorf("parts add up to %d, not to %d: %+v", sum, eff, parts)
			}
		})
	}
}

// TestTrackCounter checks the rise/fall counter against keepalived's vrrp_script
// result arithmetic.
func TestTrackCounter(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		initFail   bool
		results    string // s = success, f = failure
		states     string // after each result: O = OK, F = failed
		changes    string // after each result: 1 = state changed
	}{
		{"init: one success is enough", 3, 2, false, "s", "O", "1"},
		{"init: one failure is enough", 3, 2, false, "f", "F", "1"},
		{"fall consecutive failures", 3, 2, false, "sffsff", "OOFFFF", "101000"},
		{"a success resets the fall count", 2, 3, false, "sffsfff", "OOOOOOF", "1000001"},
		{"rise consecutive successes", 3, 1, false, "fsssfsss", "FFFOFFFO", "10011001"},
		{"init_fail needs rise successes", 2, 2, true, "ss", "FO", "01"},
		{"init_fail failure changes nothing", 2, 2, true, "f", "F", "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTrackCounter(tc.rise, tc.fall, tc.initFail)
			if c.ok() || c.init == tc.initFail {
				t.Fatalf("initial counter %+v", c)
			}
			for i, r := range tc.results {
				changed := c.add(r == 's')
				if got := map[bool]byte{true: 'O', false: 'F'}[c.ok()]; got != tc.states[i] {
					t.Errorf("after result %d (%c): state %c, want %c", i, r, got, tc.states[i])
				}
				if changed != (tc.changes[i] == '1') {
					t.Errorf("after result %d (%c): changed %v", i, r, changed)
				}
			}
		})
	}
}

func TestTrackerKindString(t *testing.T) {
	for k, want := range map[TrackerKind]string{
		TrackInterface: "track_interface", TrackScript: "track_script", TrackFile: "track_file",
		TrackProcess: "track_process", TrackPing: "track_ping", 0: "TrackerKind(0)",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d: %q, want %q", k, got, want)
		}
	}
}
