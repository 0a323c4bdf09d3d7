package parser

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Line is one logical configuration line after preprocessing: comments removed,
// includes followed, conditionals applied, parameters substituted and ~SEQ/~LST expanded.
// Pos is where the line came from (for expanded lines, the line of the definition).
type Line struct {
	Pos  Pos
	Text string
}

// Options tune preprocessing. The zero value reads real files and uses the short host name.
type Options struct {
	// ConfigID selects @ID conditional lines (keepalived's -i/--config-id).
	// Empty means the host name up to the first dot.
	ConfigID string
	// Getenv resolves ${_ENV NAME}; nil means os.Getenv.
	Getenv func(string) string
	// RandomSeed seeds ${_RANDOM}; 0 means the time of day, as keepalived. A
	// "random_seed N" line (global_defs) reseeds from that point on.
	RandomSeed int64
	// ReadFile and Glob give access to files; nil means the real file system.
	ReadFile func(name string) ([]byte, error)
	Glob     func(pattern string) ([]string, error)
	// MaxLines bounds the number of lines produced by expansion (0 means 20 million).
	MaxLines int
}

func (o *Options) fill() {
	if o.ConfigID == "" {
		o.ConfigID = shortHostname()
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.Glob == nil {
		o.Glob = filepath.Glob
	}
	if o.MaxLines == 0 {
		o.MaxLines = 20_000_000
	}
	if o.RandomSeed == 0 {
		o.RandomSeed = time.Now().UnixNano()
	}
}

func shortHostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	if i := strings.IndexByte(h, '.'); i >= 0 {
		h = h[:i]
	}
	return h
}

// include check levels (keepalived's include_check and the include variants).
const (
	incReadable = 1 << iota
	incMatch
	incWildcardMatch
	incBraceMatch
)

// definition is a $NAME= parameter: one line, or several for a multi-line definition.
type definition struct {
	lines []string
	multi bool
	pos   Pos
}

// fileState is the per-file part of the preprocessor state.
type fileState struct {
	name    string // as given (relative paths relative to the includer)
	dir     string
	check   int         // include_check level, saved and restored per file
	pending *definition // multi-line definition being collected
	pendKey string
}

type preprocessor struct {
	opts   Options
	diags  *diagSet
	defs   map[string]*definition
	out    []Line
	stack  []string // absolute paths of the files being read, to detect include loops
	rnd    *rand.Rand
	capped bool
	steps  int // lines processed, expansions included: bounds runaway recursion
}

// Preprocess reads the configuration file at path with all its includes and returns the
// logical lines. A missing main file is a Fatal diagnostic.
func Preprocess(path string, opts Options) ([]Line, Diagnostics) {
	var ds diagSet
	lines := preprocessFile(path, opts, &ds)
	return lines, ds.ordered()
}

func preprocessFile(path string, opts Options, ds *diagSet) []Line {
	opts.fill()
	p := newPreprocessor(opts, ds)
	data, err := opts.ReadFile(path)
	if err != nil {
		ds.add(Pos{File: path}, Fatal, "cannot read configuration file: %v", unwrapPathErr(err))
		return nil
	}
	p.out = make([]Line, 0, bytes.Count(data, []byte{'\n'})+1)
	p.file(path, data, 0)
	return p.out
}

// PreprocessBytes preprocesses data as if it were the file name (includes are resolved
// relative to name's directory).
func PreprocessBytes(name string, data []byte, opts Options) ([]Line, Diagnostics) {
	var ds diagSet
	lines := preprocessBytes(name, data, opts, &ds)
	return lines, ds.ordered()
}

func preprocessBytes(name string, data []byte, opts Options, ds *diagSet) []Line {
	opts.fill()
	p := newPreprocessor(opts, ds)
	p.out = make([]Line, 0, bytes.Count(data, []byte{'\n'})+1)
	p.file(name, data, 0)
	return p.out
}

func newPreprocessor(opts Options, ds *diagSet) *preprocessor {
	return &preprocessor{
		opts:  opts,
		diags: ds,
		defs:  map[string]*definition{},
		rnd:   rand.New(rand.NewSource(opts.RandomSeed)),
	}
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

const maxIncludeDepth = 32

// file processes the contents of one configuration file.
func (p *preprocessor) file(name string, data []byte, check int) {
	abs, err := filepath.Abs(name)
	if err != nil {
		abs = name
	}
	for _, f := range p.stack {
		if f == abs {
			p.diags.add(Pos{File: name}, Fatal, "include loop: %s includes itself", name)
			return
		}
	}
	if len(p.stack) >= maxIncludeDepth {
		p.diags.add(Pos{File: name}, Fatal, "includes nested more than %d deep", maxIncludeDepth)
		return
	}
	p.stack = append(p.stack, abs)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()

	fst := &fileState{name: name, dir: filepath.Dir(abs), check: check}
	text := string(data)
	lineNo := 0
	for len(text) > 0 {
		var raw string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			raw, text = text[:i], text[i+1:]
		} else {
			raw, text = text, ""
		}
		lineNo++
		raw = strings.TrimSuffix(raw, "\r")
		pos := Pos{File: name, Line: lineNo, Col: 1}
		if strings.IndexByte(raw, 0) >= 0 {
			p.diags.add(pos, Error, "line contains a NUL byte; ignored")
			continue
		}
		line := p.decomment(raw, pos)
		if fst.pending != nil {
			cont := strings.HasSuffix(line, "\\")
			if cont {
				line = strings.TrimSuffix(line, "\\")
			}
			if t := strings.TrimSpace(line); t != "" {
				fst.pending.lines = append(fst.pending.lines, t)
			}
			if !cont {
				p.defs[fst.pendKey] = fst.pending
				fst.pending = nil
			}
			continue
		}
		p.line(fst, line, pos, 0)
	}
	if fst.pending != nil {
		p.diags.add(fst.pending.pos, Error, "multi-line definition $%s is not terminated at end of file", fst.pendKey)
		p.defs[fst.pendKey] = fst.pending
	}
}

// decomment strips a comment ('#' or '!' outside double quotes) and trailing blanks.
// "\#" and "\!" stand for the characters themselves.
func (p *preprocessor) decomment(s string, pos Pos) string {
	if !strings.ContainsAny(s, "#!\\") {
		return strings.TrimRight(s, " \t")
	}
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '#' || s[i+1] == '!'):
			b.WriteByte(s[i+1])
			i++
			continue
		case c == '"':
			inQuote = !inQuote
		case (c == '#' || c == '!') && !inQuote:
			return strings.TrimRight(b.String(), " \t")
		}
		b.WriteByte(c)
	}
	return strings.TrimRight(b.String(), " \t")
}

const maxExpandDepth = 64

// line runs one line through the pipeline: include, @conditional, $definition,
// ~SEQ/~LST, $substitution; then emits it.
func (p *preprocessor) line(fst *fileState, line string, pos Pos, depth int) {
	if p.capped {
		return
	}
	if p.steps++; p.steps > 4*p.opts.MaxLines {
		p.diags.add(pos, Fatal, "preprocessing does not terminate (recursive multi-line definition?); stopped")
		p.capped = true
		return
	}
	if depth > maxExpandDepth {
		p.diags.add(pos, Fatal, "definitions nested more than %d deep (recursive definition?); stopped", maxExpandDepth)
		p.capped = true
		return
	}
	trimmed := strings.TrimLeft(line, " \t")
	if trimmed == "" {
		return
	}
	indent := len(line) - len(trimmed)
	word, rest := splitWord(trimmed)

	if lvl, ok := includeVariants[word]; ok {
		p.include(fst, strings.TrimSpace(rest), pos, fst.check|lvl)
		return
	}
	switch word {
	case "include_check":
		fst.check = parseIncludeCheck(fst.check, rest)
	case "random_seed":
		if n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64); err == nil {
			p.rnd.Seed(n)
		}
	}

	if trimmed[0] == '@' {
		keep, after, ok := p.conditional(trimmed)
		if !ok {
			p.diags.add(pos, Error, "'@' must be followed by a config id and a space")
			return
		}
		if !keep {
			return
		}
		p.line(fst, after, shift(pos, indent+len(trimmed)-len(after)), depth)
		return
	}

	if trimmed[0] == '$' {
		if name, value, ok := splitDefinition(trimmed); ok {
			d := &definition{pos: pos}
			if strings.HasSuffix(value, "\\") {
				d.multi = true
				if v := strings.TrimSpace(strings.TrimSuffix(value, "\\")); v != "" {
					d.lines = append(d.lines, v)
				}
				fst.pending, fst.pendKey = d, name
				return
			}
			d.lines = []string{value}
			p.defs[name] = d
			return
		}
	}

	if strings.HasPrefix(trimmed, "~SEQ") || strings.HasPrefix(trimmed, "~LST") {
		p.repeat(fst, trimmed, pos, depth)
		return
	}

	if strings.IndexByte(trimmed, '$') >= 0 {
		if name, ok := aloneReference(trimmed); ok {
			if d := p.defs[name]; d != nil && d.multi {
				for _, l := range d.lines {
					p.line(fst, l, d.pos, depth+1)
				}
				return
			}
		}
		expanded, changed := p.expand(fst, trimmed, pos)
		if changed {
			pos = shift(pos, indent)
			if t := strings.TrimLeft(expanded, " \t"); t != "" && (t[0] == '@' || t[0] == '$' || strings.HasPrefix(t, "~")) {
				p.line(fst, expanded, pos, depth+1)
				return
			}
			p.emit(Line{Pos: pos, Text: expanded})
			return
		}
	}
	p.emit(Line{Pos: shift(pos, indent), Text: trimmed})
}

// shift moves a position n columns to the right.
func shift(p Pos, n int) Pos {
	p.Col += n
	return p
}

func (p *preprocessor) emit(l Line) {
	if len(p.out) >= p.opts.MaxLines {
		p.diags.add(l.Pos, Fatal, "configuration expands to more than %d lines; stopped", p.opts.MaxLines)
		p.capped = true
		return
	}
	p.out = append(p.out, l)
}

// splitWord splits off the first blank-separated word.
func splitWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// conditional handles "@ID rest" and "@^ID rest".
func (p *preprocessor) conditional(s string) (keep bool, rest string, ok bool) {
	neg := strings.HasPrefix(s, "@^")
	body := s[1:]
	if neg {
		body = s[2:]
	}
	i := strings.IndexAny(body, " \t")
	if i <= 0 {
		return false, "", false
	}
	id := body[:i]
	match := id == p.opts.ConfigID
	return match != neg, body[i+1:], true
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

// splitDefinition recognises "$NAME=VALUE".
func splitDefinition(s string) (name, value string, ok bool) {
	if len(s) < 3 || s[0] != '$' || !isNameStart(s[1]) {
		return "", "", false
	}
	i := 2
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	if i >= len(s) || s[i] != '=' {
		return "", "", false
	}
	return s[1:i], strings.TrimSpace(s[i+1:]), true
}

// aloneReference reports whether s is exactly "$NAME" or "${NAME}".
func aloneReference(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") {
		s = "$" + s[2:len(s)-1]
	}
	if len(s) < 2 || s[0] != '$' || !isNameStart(s[1]) {
		return "", false
	}
	for i := 2; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return "", false
		}
	}
	return s[1:], true
}
