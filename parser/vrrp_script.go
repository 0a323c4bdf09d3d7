package parser

import "strings"

// VRRPScript is a vrrp_script block: a command run every Interval whose exit status is
// tracked by instances and sync groups (track_script).
type VRRPScript struct {
	Name   string  `json:"name"`
	Script *Script `json:"script"`
	// Interval defaults to 1s; Timeout defaults to Interval.
	Interval Duration `json:"interval"`
	Timeout  Duration `json:"timeout"`
	Weight   int      `json:"weight"`
	Reverse  bool     `json:"reverse,omitempty"`
	Rise     int      `json:"rise"`
	Fall     int      `json:"fall"`
	// InitFail starts the script in the failed state.
	InitFail bool `json:"init_fail,omitempty"`
	Pos      Pos  `json:"-"`

	timeoutSet bool
	user       *Stmt
}

// setSeconds parses a positive <TIMER>; 0 is accepted as keepalived does, as 1s.
func (c *ctx) setSeconds(s *Stmt, dst *Duration) bool {
	var d Duration
	if !c.setTimer(s, &d, 0, 4294) {
		return false
	}
	if d == 0 {
		c.errorf(s.Args[0].At(), "'%s' must be greater than 0; using 1s", s.Key)
		d = Seconds(1)
	}
	*dst = d
	return true
}

var vrrpScriptKeywords = keywords[VRRPScript]{
	"script":   func(c *ctx, s *Stmt, v *VRRPScript) { v.Script = c.script(s) },
	"interval": func(c *ctx, s *Stmt, v *VRRPScript) { c.setSeconds(s, &v.Interval) },
	"timeout": func(c *ctx, s *Stmt, v *VRRPScript) {
		if c.setSeconds(s, &v.Timeout) {
			v.timeoutSet = true
		}
	},
	"weight": func(c *ctx, s *Stmt, v *VRRPScript) {
		if !c.want(s, 1, 2) {
			return
		}
		if w, rev, ok := c.weightArgs(s, s.Args, -253, 253, false); ok {
			v.Weight, v.Reverse = w, rev != nil && *rev
		}
	},
	"rise": func(c *ctx, s *Stmt, v *VRRPScript) { setInt(c, s, &v.Rise, 1, 1<<31-1) },
	"fall": func(c *ctx, s *Stmt, v *VRRPScript) { setInt(c, s, &v.Fall, 1, 1<<31-1) },
	"user": func(c *ctx, s *Stmt, v *VRRPScript) {
		if c.want(s, 1, 2) {
			v.user = s
		}
	},
	"init_fail": func(c *ctx, s *Stmt, v *VRRPScript) {
		c.want(s, 0, 0)
		v.InitFail = true
	},
}

// parseVRRPScript parses a vrrp_script block.
func parseVRRPScript(c *ctx, s *Stmt) *VRRPScript {
	name, ok := c.blockName(s)
	if !ok {
		return nil
	}
	v := &VRRPScript{Name: name, Interval: Seconds(1), Rise: 1, Fall: 1, Pos: s.At()}
	parseBlock(c, s, v, vrrpScriptKeywords)
	if v.Script == nil {
		c.errorf(s.At(), "vrrp_script %s has no 'script'; ignored", name)
		return nil
	}
	if !v.timeoutSet {
		v.Timeout = v.Interval
	}
	if v.user != nil {
		// user USER [GROUP] (GROUP also as USER:GROUP) sets who runs the script.
		v.Script.User, v.Script.Group = v.user.Args[0].Value(), ""
		if u, g, ok := strings.Cut(v.Script.User, ":"); ok {
			v.Script.User, v.Script.Group = u, g
		}
		if len(v.user.Args) > 1 {
			v.Script.Group = strings.TrimPrefix(v.user.Args[1].Value(), ":")
		}
	}
	return v
}
