package parser

import "slices"

// SyncGroup is a vrrp_sync_group block: instances that change state together.
type SyncGroup struct {
	Name    string   `json:"name"`
	Members []string `json:"group"`

	TrackInterfaces []*TrackRef `json:"track_interface,omitempty"`
	TrackScripts    []*TrackRef `json:"track_script,omitempty"`
	TrackFiles      []*TrackRef `json:"track_file,omitempty"`
	TrackProcesses  []*TrackRef `json:"track_process,omitempty"`
	TrackPings      []*TrackRef `json:"track_ping,omitempty"`

	Notifies
	// NotifyPriorityChanges and SMTPAlert are resolved from global_defs when not set.
	NotifyPriorityChanges bool `json:"notify_priority_changes,omitempty"`
	SMTPAlert             bool `json:"smtp_alert,omitempty"`
	// TrackingWeight (sync_group_tracking_weight) keeps the weights of trackers on
	// member instances, which are otherwise ignored.
	TrackingWeight bool `json:"sync_group_tracking_weight,omitempty"`
	Pos            Pos  `json:"-"`

	memberPos []Pos
	at        map[string]Pos
}

func sgTrack(field func(*SyncGroup) *[]*TrackRef, lo, hi int64, noreverse bool) handler[SyncGroup] {
	return func(c *ctx, s *Stmt, g *SyncGroup) {
		*field(g) = append(*field(g), parseTrackBlock(c, s, lo, hi, noreverse)...)
	}
}

var syncGroupKeywords = notifyKeywords(keywords[SyncGroup]{
	"group": func(c *ctx, s *Stmt, g *SyncGroup) {
		if g.memberPos != nil {
			c.errorf(s.At(), "sync group %s: 'group' is already set; this one is ignored", g.Name)
			return
		}
		g.memberPos = []Pos{}
		for _, l := range c.addressLines(s) {
			for _, a := range append([]Arg{keyArg(l)}, l.Args...) {
				if slices.Contains(g.Members, a.Value()) {
					c.errorf(a.At(), "sync group %s: '%s' is listed twice; ignored", g.Name, a.Value())
					continue
				}
				g.Members = append(g.Members, a.Value())
				g.memberPos = append(g.memberPos, a.At())
			}
		}
	},
	"track_interface": sgTrack(func(g *SyncGroup) *[]*TrackRef { return &g.TrackInterfaces }, -253, 253, false),
	"track_script":    sgTrack(func(g *SyncGroup) *[]*TrackRef { return &g.TrackScripts }, -253, 253, true),
	"track_file":      sgTrack(func(g *SyncGroup) *[]*TrackRef { return &g.TrackFiles }, -254, 254, true),
	"track_process":   sgTrack(func(g *SyncGroup) *[]*TrackRef { return &g.TrackProcesses }, -254, 254, true),
	"track_ping":      sgTrack(func(g *SyncGroup) *[]*TrackRef { return &g.TrackPings }, -253, 253, true),
	"track_bfd":       trackBFD[SyncGroup],
	"notify_priority_changes": explicitBool(func(g *SyncGroup) *bool { return &g.NotifyPriorityChanges },
		func(g *SyncGroup) map[string]Pos { return g.at }),
	"smtp_alert": explicitBool(func(g *SyncGroup) *bool { return &g.SMTPAlert },
		func(g *SyncGroup) map[string]Pos { return g.at }),
	"sync_group_tracking_weight": func(c *ctx, s *Stmt, g *SyncGroup) {
		c.want(s, 0, 0)
		g.TrackingWeight = true
	},
	"global_tracking": func(c *ctx, s *Stmt, g *SyncGroup) {
		c.want(s, 0, 0)
		c.warnf(s.At(), "'global_tracking' is deprecated; use track_interface/track_script/track_file on the sync group (sync_group_tracking_weight set)")
		g.TrackingWeight = true
	},
}, func(g *SyncGroup) *Notifies { return &g.Notifies })

// parseSyncGroup parses a vrrp_sync_group block.
func parseSyncGroup(c *ctx, s *Stmt) *SyncGroup {
	name, ok := c.blockName(s)
	if !ok {
		return nil
	}
	g := &SyncGroup{Name: name, Pos: s.At(), at: map[string]Pos{}}
	parseBlock(c, s, g, syncGroupKeywords)
	return g
}
