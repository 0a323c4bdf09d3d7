package parser

import (
	"strconv"
	"strings"
)

// maxExpandedLine bounds the length of a line after substitution, so that a
// self-referencing definition ($M=$M $M) cannot grow without limit.
const maxExpandedLine = 1 << 20

// expand substitutes $NAME (followed by a blank or the end of the line) and ${NAME}
// (anywhere), including the built-in names. Undefined names are left as they are, so a
// '$' in a script survives. Substitution is repeated until nothing changes, because a
// value may itself contain references (keepalived expands lazily, at use time).
func (p *preprocessor) expand(fst *fileState, s string, pos Pos) (string, bool) {
	changed := false
	for pass := 0; ; pass++ {
		out, did := p.expandOnce(fst, s, pos)
		if !did {
			return s, changed
		}
		if len(out) > maxExpandedLine {
			p.diags.add(pos, Error, "line grows past %d bytes during parameter substitution (recursive definition?)", maxExpandedLine)
			return s, changed
		}
		if pass >= maxExpandDepth {
			p.diags.add(pos, Error, "parameter substitution does not terminate (recursive definition?)")
			return out, true
		}
		s, changed = out, true
	}
}

func (p *preprocessor) expandOnce(fst *fileState, s string, pos Pos) (string, bool) {
	var b strings.Builder
	did := false
	i := 0
	for i < len(s) {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			break
		}
		j += i
		b.WriteString(s[i:j])
		val, n, ok := p.reference(fst, s[j:], pos)
		if !ok {
			b.WriteByte('$')
			i = j + 1
			continue
		}
		b.WriteString(val)
		did = true
		i = j + n
	}
	if !did {
		return s, false
	}
	b.WriteString(s[i:])
	return b.String(), true
}

// reference resolves the reference at the start of s ("$NAME" or "${...}") and returns
// its value and length; ok is false when s holds no resolvable reference.
func (p *preprocessor) reference(fst *fileState, s string, pos Pos) (string, int, bool) {
	if strings.HasPrefix(s, "${") {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", 0, false
		}
		v, ok := p.lookup(fst, strings.TrimSpace(s[2:end]), pos)
		return v, end + 1, ok
	}
	i := 1
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	if i == 1 || !isNameStart(s[1]) {
		return "", 0, false
	}
	if i < len(s) && s[i] != ' ' && s[i] != '\t' {
		return "", 0, false
	}
	v, ok := p.lookup(fst, s[1:i], pos)
	return v, i, ok
}

// lookup resolves a name, possibly a built-in with arguments ("_ENV HOME", "_RANDOM 1 6").
func (p *preprocessor) lookup(fst *fileState, expr string, pos Pos) (string, bool) {
	name, args := splitWord(expr)
	switch name {
	case "_PWD":
		return fst.dir, true
	case "_INSTANCE":
		return p.opts.ConfigID, true
	case "_HASH":
		return "#", true
	case "_BANG":
		return "!", true
	case "_ENV":
		v := strings.TrimSpace(args)
		if v == "" {
			p.diags.add(pos, Error, "${_ENV} needs a variable name")
			return "", true
		}
		return p.opts.Getenv(v), true
	case "_RANDOM":
		return p.random(strings.Fields(args), pos), true
	}
	if args != "" {
		return "", false
	}
	d := p.defs[name]
	if d == nil {
		return "", false
	}
	if d.multi {
		p.diags.add(pos, Error, "multi-line definition $%s must be used alone on its line", name)
		return strings.Join(d.lines, " "), true
	}
	return d.lines[0], true
}

// random implements ${_RANDOM [MIN [MAX]]}: an integer in [MIN, MAX], default [0, 32767].
func (p *preprocessor) random(args []string, pos Pos) string {
	lo, hi := 0, 32767
	var err error
	if len(args) > 0 {
		if lo, err = strconv.Atoi(args[0]); err != nil || lo < 0 {
			p.diags.add(pos, Error, "${_RANDOM} minimum %q is not a non-negative integer", args[0])
			lo = 0
		}
	}
	if len(args) > 1 {
		if hi, err = strconv.Atoi(args[1]); err != nil || hi < 0 {
			p.diags.add(pos, Error, "${_RANDOM} maximum %q is not a non-negative integer", args[1])
			hi = 32767
		}
	}
	if hi < lo {
		p.diags.add(pos, Error, "${_RANDOM} maximum %d is below minimum %d", hi, lo)
		hi = lo
	}
	return strconv.Itoa(lo + p.rnd.Intn(hi-lo+1))
}
