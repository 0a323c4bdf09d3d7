package parser

import (
	"fmt"
	"sort"
)

// Pos is a position in a configuration file: file name, 1-based line and column.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

// String renders the position as file:line:col.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Severity classifies a diagnostic. The order matters: it decides the exit code of -t.
type Severity int

// Severities, from least to most serious.
const (
	// Warning marks something legal but suspicious, or recognised but not implemented.
	Warning Severity = iota
	// Error marks a mistake that the daemon works around (the default is used, the line ignored).
	Error
	// Security marks a script-security violation (keepalived's exit code 6).
	Security
	// Fatal marks a configuration that cannot run (missing file, failed mandatory include).
	Fatal
)

// String names the severity as printed in diagnostics.
func (s Severity) String() string {
	switch s {
	case Warning:
		return "warning"
	case Error:
		return "error"
	case Security:
		return "security"
	case Fatal:
		return "fatal"
	}
	return "unknown"
}

// MarshalText renders the severity by name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Diagnostic is one message about the configuration, tied to where it was found.
type Diagnostic struct {
	Pos      Pos      `json:"pos"`
	Severity Severity `json:"severity"`
	Msg      string   `json:"msg"`
}

// String renders the diagnostic as "file:line:col: severity: message".
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Pos, d.Severity, d.Msg)
}

// Diagnostics is the list of messages produced by one parse, in source order.
type Diagnostics []Diagnostic

// Exit codes of "gokeepalived -t", the ones keepalived's code actually uses.
const (
	ExitOK       = 0 // clean configuration (warnings allowed)
	ExitFatal    = 4 // the configuration cannot run
	ExitErrors   = 5 // errors, but the daemon would run
	ExitSecurity = 6 // script security violation
)

// ExitCode maps the worst diagnostic to keepalived's config-test exit codes.
func (ds Diagnostics) ExitCode() int {
	worst := Warning
	any := false
	for _, d := range ds {
		if d.Severity > Warning {
			any = true
		}
		if d.Severity > worst {
			worst = d.Severity
		}
	}
	if !any {
		return ExitOK
	}
	switch worst {
	case Fatal:
		return ExitFatal
	case Security:
		return ExitSecurity
	}
	return ExitErrors
}

// Count returns how many diagnostics have exactly severity s.
func (ds Diagnostics) Count(s Severity) int {
	n := 0
	for _, d := range ds {
		if d.Severity == s {
			n++
		}
	}
	return n
}

// diagSet collects diagnostics, reporting each (position, message) pair once: a line
// produced many times by a multi-line definition or ~SEQ is reported only once.
type diagSet struct {
	list Diagnostics
	seen map[Diagnostic]bool
}

func (s *diagSet) add(pos Pos, sev Severity, format string, args ...any) {
	d := Diagnostic{Pos: pos, Severity: sev, Msg: fmt.Sprintf(format, args...)}
	if s.seen == nil {
		s.seen = map[Diagnostic]bool{}
	}
	if s.seen[d] {
		return
	}
	s.seen[d] = true
	s.list = append(s.list, d)
}

// ordered returns the diagnostics sorted by position: files in the order they were first
// mentioned, then line and column. Equal positions keep the order they were reported in.
func (s *diagSet) ordered() Diagnostics {
	rank := map[string]int{}
	for _, d := range s.list {
		if _, ok := rank[d.Pos.File]; !ok {
			rank[d.Pos.File] = len(rank)
		}
	}
	out := append(Diagnostics(nil), s.list...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Pos, out[j].Pos
		if a.File != b.File {
			return rank[a.File] < rank[b.File]
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return out
}
