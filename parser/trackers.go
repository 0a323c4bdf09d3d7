package parser

import (
	"net/netip"
	"strconv"
)

// TrackRef is one line of a track_* block of a vrrp_instance or vrrp_sync_group:
// "NAME [weight W [reverse|noreverse]]". Weight and Reverse are effective values: the
// line's own when given, else the tracked object's defaults (0 for interfaces).
type TrackRef struct {
	Name    string `json:"name"`
	Weight  int    `json:"weight"`
	Reverse bool   `json:"reverse,omitempty"`
	Pos     Pos    `json:"-"`

	weightSet  bool
	reverseSet bool
}

// blockName returns the name of a named top-level block ("vrrp_script NAME { ... }").
func (c *ctx) blockName(s *Stmt) (string, bool) {
	if len(s.Args) == 0 {
		c.errorf(s.At(), "'%s' needs a name: '%s NAME { ... }'; block ignored", s.Key, s.Key)
		return "", false
	}
	if len(s.Args) > 1 {
		c.warnf(s.Args[1].At(), "extra arguments to '%s' ignored", s.Key)
	}
	if !s.Open {
		c.errorf(s.At(), "'%s %s' needs a block: '%s NAME { ... }'", s.Key, s.Args[0].Value(), s.Key)
		return "", false
	}
	return s.Args[0].Value(), true
}

// keyArg returns the keyword of s as an argument (for block lines that are values).
func keyArg(s *Stmt) Arg { return Arg{text: s.Key, pos: s.At()} }

// weightArgs parses "W [reverse|noreverse]" (args starts at W). reverse is nil when
// neither was given. ok is false when W is invalid.
func (c *ctx) weightArgs(s *Stmt, args []Arg, lo, hi int64, noreverse bool) (w int, reverse *bool, ok bool) {
	what := "weight "
	if s.Key == "weight" {
		what = ""
	}
	n, err := strconv.ParseInt(args[0].Value(), 10, 64)
	if err != nil {
		c.errorf(args[0].At(), "'%s': %s%q is not an integer; ignored", s.Key, what, args[0].Value())
		return 0, nil, false
	}
	if n < lo || n > hi {
		c.errorf(args[0].At(), "'%s': %s%d is outside [%d, %d]; ignored", s.Key, what, n, lo, hi)
		return 0, nil, false
	}
	if len(args) > 1 {
		r := args[1].Value()
		switch {
		case r == "reverse":
			t := true
			reverse = &t
		case r == "noreverse" && noreverse:
			f := false
			reverse = &f
		default:
			allowed := "reverse"
			if noreverse {
				allowed = "reverse or noreverse"
			}
			c.errorf(args[1].At(), "'%s': unknown weight option '%s' (expected %s); ignored", s.Key, r, allowed)
		}
		if len(args) > 2 {
			c.warnf(args[2].At(), "extra arguments to '%s' ignored", s.Key)
		}
	}
	return int(n), reverse, true
}

// parseTrackBlock parses the lines of a track_* block. Weights must lie in [lo, hi];
// noreverse tells whether "noreverse" is accepted.
func parseTrackBlock(c *ctx, s *Stmt, lo, hi int64, noreverse bool) []*TrackRef {
	lines := c.addressLines(s)
	var out []*TrackRef
	seen := map[string]bool{}
	for _, l := range lines {
		t := &TrackRef{Name: l.Key, Pos: l.At()}
		if len(l.Args) > 0 {
			switch {
			case l.Args[0].Value() != "weight":
				c.errorf(l.Args[0].At(), "%s '%s': unknown option '%s' (expected 'weight W'); ignored", s.Key, l.Key, l.Args[0].Value())
			case len(l.Args) < 2:
				c.errorf(l.Args[0].At(), "%s '%s': 'weight' needs a value; ignored", s.Key, l.Key)
			default:
				ws := &Stmt{pos: l.pos, Key: s.Key + " " + l.Key}
				if w, rev, ok := c.weightArgs(ws, l.Args[1:], lo, hi, noreverse); ok {
					t.Weight, t.weightSet = w, true
					if rev != nil {
						t.Reverse, t.reverseSet = *rev, true
					}
				}
			}
		}
		if seen[l.Key] {
			c.errorf(l.At(), "%s '%s' is listed twice; ignored", s.Key, l.Key)
			continue
		}
		seen[l.Key] = true
		out = append(out, t)
	}
	return out
}

// TrackFile is a track_file (vrrp_track_file) block: a file holding a number.
type TrackFile struct {
	Name     string         `json:"name"`
	File     string         `json:"file"`
	Weight   int            `json:"weight"`
	Reverse  bool           `json:"reverse,omitempty"`
	InitFile *TrackFileInit `json:"init_file,omitempty"`
	Pos      Pos            `json:"-"`
}

// TrackFileInit is init_file: the value written at startup if the file does not exist
// (always, with Overwrite).
type TrackFileInit struct {
	Value     int64 `json:"value"`
	Overwrite bool  `json:"overwrite,omitempty"`
}

var trackFileKeywords = keywords[TrackFile]{
	"file": func(c *ctx, s *Stmt, t *TrackFile) { c.setString(s, &t.File) },
	"weight": func(c *ctx, s *Stmt, t *TrackFile) {
		if !c.want(s, 1, 2) {
			return
		}
		if w, rev, ok := c.weightArgs(s, s.Args, -254, 254, false); ok {
			t.Weight, t.Reverse = w, rev != nil && *rev
		}
	},
	"init_file": func(c *ctx, s *Stmt, t *TrackFile) {
		c.want(s, 0, 2)
		in := &TrackFileInit{}
		for _, a := range s.Args[:min(len(s.Args), 2)] {
			if a.Value() == "overwrite" {
				in.Overwrite = true
				continue
			}
			n, err := strconv.ParseInt(a.Value(), 10, 64)
			if err != nil || n < -1<<31 || n >= 1<<31 {
				c.errorf(a.At(), "'init_file': %q is not a 32-bit integer or 'overwrite'; ignored", a.Value())
				continue
			}
			in.Value = n
		}
		t.InitFile = in
	},
}

// parseTrackFile parses a track_file block.
func parseTrackFile(c *ctx, s *Stmt) *TrackFile {
	name, ok := c.blockName(s)
	if !ok {
		return nil
	}
	t := &TrackFile{Name: name, Weight: 1, Pos: s.At()}
	parseBlock(c, s, t, trackFileKeywords)
	if t.File == "" {
		c.errorf(s.At(), "track_file %s has no 'file'; ignored", name)
		return nil
	}
	return t
}

// TrackProcess is a vrrp_track_process block: processes that must be running.
type TrackProcess struct {
	Name    string   `json:"name"`
	Process string   `json:"process"`
	Params  []string `json:"params,omitempty"`
	// ParamMatch is "" (match the name only), exact, initial or partial.
	ParamMatch string `json:"param_match,omitempty"`
	Weight     int    `json:"weight"`
	Reverse    bool   `json:"reverse,omitempty"`
	Quorum     int    `json:"quorum"`
	// QuorumMax is nil when there is no upper limit.
	QuorumMax      *int     `json:"quorum_max,omitempty"`
	ForkDelay      Duration `json:"fork_delay"`
	TerminateDelay Duration `json:"terminate_delay"`
	FullCommand    bool     `json:"full_command,omitempty"`
	Pos            Pos      `json:"-"`

	quorumSet bool
	maxPos    Pos
}

var trackProcessKeywords = keywords[TrackProcess]{
	"process": func(c *ctx, s *Stmt, t *TrackProcess) {
		if !c.want(s, 1, -1) {
			return
		}
		if t.Process != "" {
			c.errorf(s.At(), "'process' given twice; '%s' ignored", s.Args[0].Value())
			return
		}
		vals := s.Values()
		t.Process, t.Params = vals[0], vals[1:]
		if len(t.Params) > 0 {
			if t.ParamMatch == "" {
				t.ParamMatch = "exact"
			}
			t.FullCommand = true
		}
	},
	"param_match": func(c *ctx, s *Stmt, t *TrackProcess) {
		c.want(s, 0, 1)
		if len(s.Args) == 0 {
			t.ParamMatch, t.FullCommand = "exact", true
			return
		}
		if v, ok := c.oneOf(s, s.Args[0], "initial", "partial"); ok {
			t.ParamMatch, t.FullCommand = v, true
		}
	},
	"weight": func(c *ctx, s *Stmt, t *TrackProcess) {
		if !c.want(s, 1, 2) {
			return
		}
		if w, rev, ok := c.weightArgs(s, s.Args, -254, 254, false); ok {
			t.Weight, t.Reverse = w, rev != nil && *rev
		}
	},
	"quorum": func(c *ctx, s *Stmt, t *TrackProcess) {
		if setInt(c, s, &t.Quorum, 1, 65535) {
			t.quorumSet = true
		}
	},
	"quorum_max": func(c *ctx, s *Stmt, t *TrackProcess) {
		var n int
		if setInt(c, s, &n, 0, 65535) {
			t.QuorumMax, t.maxPos = &n, s.At()
		}
	},
	"delay": func(c *ctx, s *Stmt, t *TrackProcess) {
		if c.setPositiveTimer(s, &t.ForkDelay, 3600) {
			t.TerminateDelay = t.ForkDelay
		}
	},
	"fork_delay":      func(c *ctx, s *Stmt, t *TrackProcess) { c.setPositiveTimer(s, &t.ForkDelay, 3600) },
	"terminate_delay": func(c *ctx, s *Stmt, t *TrackProcess) { c.setPositiveTimer(s, &t.TerminateDelay, 3600) },
	"full_command": func(c *ctx, s *Stmt, t *TrackProcess) {
		c.want(s, 0, 0)
		t.FullCommand = true
	},
}

// setPositiveTimer parses a <TIMER> in (0, hi] seconds into *dst.
func (c *ctx) setPositiveTimer(s *Stmt, dst *Duration, hi float64) bool {
	var d Duration
	if !c.setTimer(s, &d, 0, hi) {
		return false
	}
	if d == 0 {
		c.errorf(s.Args[0].At(), "'%s' must be greater than 0; ignored", s.Key)
		return false
	}
	*dst = d
	return true
}

// parseTrackProcess parses a vrrp_track_process block.
func parseTrackProcess(c *ctx, s *Stmt) *TrackProcess {
	name, ok := c.blockName(s)
	if !ok {
		return nil
	}
	t := &TrackProcess{Name: name, Quorum: 1, Pos: s.At()}
	parseBlock(c, s, t, trackProcessKeywords)
	if t.Process == "" {
		c.errorf(s.At(), "vrrp_track_process %s has no 'process'; ignored", name)
		return nil
	}
	if t.QuorumMax != nil {
		switch {
		case *t.QuorumMax == 0 && !t.quorumSet:
			t.Quorum = 0 // quorum_max 0 alone: up while no such process runs
		case *t.QuorumMax < t.Quorum:
			c.errorf(t.maxPos, "vrrp_track_process %s: quorum_max %d is less than quorum %d; quorum_max ignored", name, *t.QuorumMax, t.Quorum)
			t.QuorumMax = nil
		}
	}
	return t
}

// TrackPing is the EXTENSION vrrp_track_ping block: ICMP echo targets whose answers
// decide the tracker's state, with rise/fall hysteresis like a vrrp_script.
type TrackPing struct {
	Name      string       `json:"name"`
	Addresses []netip.Addr `json:"addresses"`
	Interval  Duration     `json:"interval"`
	Timeout   Duration     `json:"timeout"`
	Rise      int          `json:"rise"`
	Fall      int          `json:"fall"`
	Weight    int          `json:"weight"`
	Reverse   bool         `json:"reverse,omitempty"`
	// Quorum is how many addresses must answer for the tracker to be up; 0 (the
	// default) means no quorum: one answer is enough.
	Quorum int `json:"quorum"`
	Pos    Pos `json:"-"`

	quorumPos  Pos
	timeoutPos Pos
}

func (t *TrackPing) addAddr(c *ctx, key string, a Arg) {
	ip, err := netip.ParseAddr(a.Value())
	if err != nil {
		c.errorf(a.At(), "'%s': %q is not an IP address; ignored", key, a.Value())
		return
	}
	t.Addresses = append(t.Addresses, ip)
}

var trackPingKeywords = keywords[TrackPing]{
	"address": func(c *ctx, s *Stmt, t *TrackPing) {
		if len(s.Args) == 0 && !s.Open {
			c.errorf(s.At(), "'address' needs a value")
			return
		}
		for _, a := range s.Args {
			t.addAddr(c, s.Key, a)
		}
		for _, l := range s.Block {
			if l.Open {
				c.errorf(l.At(), "'%s' does not take a block; block ignored", l.Key)
			}
			t.addAddr(c, s.Key, keyArg(l))
			for _, a := range l.Args {
				t.addAddr(c, s.Key, a)
			}
		}
	},
	"interval": func(c *ctx, s *Stmt, t *TrackPing) { c.setTimer(s, &t.Interval, 0.01, 3600) },
	"timeout": func(c *ctx, s *Stmt, t *TrackPing) {
		if c.setTimer(s, &t.Timeout, 0.01, 3600) {
			t.timeoutPos = s.At()
		}
	},
	"rise": func(c *ctx, s *Stmt, t *TrackPing) { setInt(c, s, &t.Rise, 1, 1<<31-1) },
	"fall": func(c *ctx, s *Stmt, t *TrackPing) { setInt(c, s, &t.Fall, 1, 1<<31-1) },
	"weight": func(c *ctx, s *Stmt, t *TrackPing) {
		if !c.want(s, 1, 2) {
			return
		}
		if w, rev, ok := c.weightArgs(s, s.Args, -253, 253, false); ok {
			t.Weight, t.Reverse = w, rev != nil && *rev
		}
	},
	"quorum": func(c *ctx, s *Stmt, t *TrackPing) {
		if setInt(c, s, &t.Quorum, 0, 65535) {
			t.quorumPos = s.At()
		}
	},
}

// parseTrackPing parses a vrrp_track_ping block (gokeepalived extension).
func parseTrackPing(c *ctx, s *Stmt) *TrackPing {
	name, ok := c.blockName(s)
	if !ok {
		return nil
	}
	t := &TrackPing{Name: name, Interval: Seconds(1), Timeout: Seconds(1), Rise: 1, Fall: 1, Pos: s.At()}
	parseBlock(c, s, t, trackPingKeywords)
	if len(t.Addresses) == 0 {
		c.errorf(s.At(), "vrrp_track_ping %s has no 'address'; ignored", name)
		return nil
	}
	if t.Quorum > len(t.Addresses) {
		c.errorf(t.quorumPos, "vrrp_track_ping %s: quorum %d is more than its %d address(es); quorum ignored", name, t.Quorum, len(t.Addresses))
		t.Quorum = 0
	}
	if t.Timeout > t.Interval {
		pos := t.timeoutPos
		if pos == (Pos{}) {
			pos = s.At()
		}
		c.warnf(pos, "vrrp_track_ping %s: timeout %s is longer than interval %s", name, t.Timeout.D(), t.Interval.D())
	}
	return t
}
