package vrrp

import (
	"fmt"
	"strings"
)

// Contribution is one tracker's part in an effective priority: the breakdown the
// status API shows to explain a priority or a FAULT.
type Contribution struct {
	Kind    TrackerKind `json:"kind"`
	Name    string      `json:"name"`
	Weight  int         `json:"weight"`
	Reverse bool        `json:"reverse,omitempty"`
	// Delta is what the tracker adds to the base priority (0 for an address owner).
	Delta int `json:"delta"`
	// Fault means the tracker puts the instance in FAULT.
	Fault bool `json:"fault,omitempty"`
	// Pending means the tracker has no result yet and holds the instance in INIT.
	Pending bool `json:"pending,omitempty"`
	// Why explains Delta, Fault or Pending in words.
	Why string `json:"why"`
}

// EffectivePriority applies keepalived's tracking rules (reference §3 "Effective
// priority" and "FAULT"; vrrp_track.c) to the statuses an instance tracks:
//
//   - A boolean tracker (interface, script, process) with weight W > 0 adds W while
//     OK; with W < 0 it subtracts |W| while failed. reverse negates the result: W > 0
//     then subtracts W while OK, W < 0 adds |W| while failed. (keepalived multiplies
//     by -1; it does not flip OK, which would shift the priority by |W|.)
//   - Weight 0: FAULT while failed, or, with reverse, while OK.
//   - A tracker in Init contributes nothing; with weight 0 it is Pending (the
//     instance waits in INIT) instead of faulting.
//   - track_file: the value, clamped to [-254, 254], times the weight (reverse
//     negates) is added, at most 253; a result of -254 or less is a FAULT. Weight 0:
//     FAULT when the value is not 0 (with reverse, when it is 0).
//   - track_ping (extension, like Heartbeat's pingd -m): each answering address
//     counts as an OK boolean tracker of weight W, so W > 0 adds W per address up and
//     W < 0 subtracts |W| per address down; reverse negates. Quorum N > 0 with fewer
//     than N addresses up is a FAULT. Weight 0: FAULT while fewer than max(N, 1)
//     answer (with reverse, while that many do).
//   - effective = clamp(base + Σ deltas, 1, 254). An address owner (base 255) keeps
//     255: its weighted trackers are ignored, but weight-0 trackers still fault.
//
// fault is true when any part faults; reason then names the faulting trackers, and
// otherwise shows the sum ("100 +10 track_script chk = 110"). parts follows ts.
func EffectivePriority(base uint8, ts []TrackStatus) (eff uint8, fault bool, reason string, parts []Contribution) {
	owner := base == 255
	total := int(base)
	var faults, sum []string
	parts = make([]Contribution, 0, len(ts))
	for _, s := range ts {
		c := s.contribution()
		if owner && c.Delta != 0 {
			c.Why += fmt.Sprintf("; %+d ignored: address owner (priority 255)", c.Delta)
			c.Delta = 0
		}
		total += c.Delta
		if c.Fault {
			faults = append(faults, fmt.Sprintf("%s %s: %s", c.Kind, c.Name, c.Why))
		}
		if c.Delta != 0 {
			sum = append(sum, fmt.Sprintf("%+d %s %s", c.Delta, c.Kind, c.Name))
		}
		parts = append(parts, c)
	}
	switch {
	case owner:
		eff = 255
	case total < 1:
		eff = 1
	case total > 254:
		eff = 254
	default:
		eff = uint8(total)
	}
	if len(faults) > 0 {
		return eff, true, strings.Join(faults, "; "), parts
	}
	reason = strings.Join(append([]string{fmt.Sprint(base)}, sum...), " ")
	if int(eff) != total && !owner {
		reason += fmt.Sprintf(" = %d, clamped to %d", total, eff)
	} else {
		reason += fmt.Sprintf(" = %d", eff)
	}
	return eff, false, reason, parts
}

// contribution applies the rules of s's kind, without the address-owner rule.
func (s TrackStatus) contribution() Contribution {
	c := Contribution{Kind: s.Kind, Name: s.Name, Weight: s.Weight, Reverse: s.Reverse}
	sign := 1
	if s.Reverse {
		sign = -1
	}
	detail := s.Detail
	if detail != "" {
		detail = " (" + detail + ")"
	}
	if s.Init && (s.Kind == TrackScript || s.Kind == TrackPing) {
		c.Pending = s.Weight == 0 || (s.Kind == TrackPing && s.Quorum > 0)
		c.Why = "no result yet" + detail
		if c.Pending {
			c.Why += "; holds the instance in INIT"
		}
		return c
	}
	switch s.Kind {
	case TrackFile:
		v := min(max(s.Value, -254), 254)
		if s.Weight == 0 {
			c.Fault = (v != 0) != s.Reverse
			c.Why = fmt.Sprintf("value %d, weight 0", s.Value)
			if s.Reverse {
				c.Why += " reverse"
			}
			c.Why += detail
			return c
		}
		st := v * s.Weight * sign
		c.Why = fmt.Sprintf("value %d × weight %d", v, s.Weight)
		if s.Reverse {
			c.Why += " × -1 (reverse)"
		}
		if st <= -254 {
			c.Fault = true
			c.Why += fmt.Sprintf(" = %d ≤ -254", st) + detail
			return c
		}
		c.Delta = min(st, 253)
		c.Why += fmt.Sprintf(" = %+d", c.Delta) + detail
		return c
	case TrackPing:
		need := max(s.Quorum, 1)
		up := s.Value >= need
		c.Why = fmt.Sprintf("%d of %d up", s.Value, s.Total)
		if s.Weight == 0 {
			c.Fault = up == s.Reverse
			c.Why += fmt.Sprintf(", %d needed, weight 0", need)
			if s.Reverse {
				c.Why += " reverse"
			}
			c.Why += detail
			return c
		}
		if s.Weight > 0 {
			c.Delta = sign * s.Weight * s.Value
		} else {
			c.Delta = sign * s.Weight * (s.Total - s.Value)
		}
		c.Why += fmt.Sprintf(", weight %d", s.Weight)
		if s.Reverse {
			c.Why += " reverse"
		}
		c.Why += fmt.Sprintf(": %+d", c.Delta)
		if s.Quorum > 0 && s.Value < s.Quorum {
			c.Fault = true
			c.Why += fmt.Sprintf("; quorum %d lost", s.Quorum)
		}
		c.Why += detail
		return c
	}
	state := "failed"
	switch {
	case s.OK && s.Kind == TrackInterface:
		state = "up"
	case s.OK:
		state = "OK"
	case s.Kind == TrackInterface:
		state = "down"
	}
	if s.Weight == 0 {
		c.Fault = s.OK == s.Reverse
		c.Why = state + ", weight 0"
		if s.Reverse {
			c.Why += " reverse"
		}
		c.Why += detail
		return c
	}
	if s.OK == (s.Weight > 0) {
		c.Delta = sign * s.Weight
	}
	c.Why = fmt.Sprintf("%s, weight %d", state, s.Weight)
	if s.Reverse {
		c.Why += " reverse"
	}
	c.Why += fmt.Sprintf(": %+d", c.Delta) + detail
	return c
}
