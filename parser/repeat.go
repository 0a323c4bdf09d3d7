package parser

import (
	"strconv"
	"strings"
)

// repeat expands "~SEQ(var, [start,] [step,] end) rest", "~SEQx(...)" and
// "~LST(var, v1, v2...)" / "~LST({a,b}, {1,2}, {3,4})": rest is processed once for each
// value with the variable(s) defined. Several prefixes on one line nest.
func (p *preprocessor) repeat(fst *fileState, s string, pos Pos, depth int) {
	open := strings.IndexByte(s, '(')
	kind := ""
	if open > 0 {
		kind = s[:open]
	}
	if kind != "~SEQ" && kind != "~SEQx" && kind != "~LST" {
		p.diags.add(pos, Error, "unknown repetition %q (expected ~SEQ, ~SEQx or ~LST)", strings.SplitN(s, "(", 2)[0])
		return
	}
	closeAt := matchingParen(s, open)
	if closeAt < 0 {
		p.diags.add(pos, Error, "%s( has no closing ')'", kind)
		return
	}
	args := splitTopLevel(s[open+1 : closeAt])
	rest := strings.TrimSpace(s[closeAt+1:])
	restPos := shift(pos, closeAt+1+len(s[closeAt+1:])-len(strings.TrimLeft(s[closeAt+1:], " \t")))
	if rest == "" {
		p.diags.add(pos, Warning, "%s(...) is followed by nothing", kind)
		return
	}
	var names []string
	var rows [][]string
	var ok bool
	if kind == "~LST" {
		names, rows, ok = p.listRows(args, pos)
	} else {
		names, rows, ok = p.seqRows(args, kind == "~SEQx", pos)
	}
	if !ok {
		return
	}
	saved := make([]*definition, len(names))
	for i, n := range names {
		saved[i] = p.defs[n]
	}
	for _, row := range rows {
		if p.capped {
			break
		}
		for i, n := range names {
			p.defs[n] = &definition{lines: []string{row[i]}, pos: pos}
		}
		p.line(fst, rest, restPos, depth+1)
	}
	for i, n := range names {
		if saved[i] == nil {
			delete(p.defs, n)
		} else {
			p.defs[n] = saved[i]
		}
	}
}

// matchingParen finds the ')' closing the '(' at open, skipping {...} groups.
func matchingParen(s string, open int) int {
	braces := 0
	for i := open + 1; i < len(s); i++ {
		switch s[i] {
		case '{':
			braces++
		case '}':
			braces--
		case ')':
			if braces == 0 {
				return i
			}
		}
	}
	return -1
}

// splitTopLevel splits on commas that are not inside {...}, trimming each part.
func splitTopLevel(s string) []string {
	var out []string
	braces, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			braces++
		case '}':
			braces--
		case ',':
			if braces == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func validName(n string) bool {
	if n == "" || !isNameStart(n[0]) {
		return false
	}
	for i := 1; i < len(n); i++ {
		if !isNameChar(n[i]) {
			return false
		}
	}
	return true
}

func (p *preprocessor) seqRows(args []string, hex bool, pos Pos) ([]string, [][]string, bool) {
	if len(args) < 2 || len(args) > 4 {
		p.diags.add(pos, Error, "~SEQ needs (var, [start,] [step,] end), got %d arguments", len(args))
		return nil, nil, false
	}
	if !validName(args[0]) {
		p.diags.add(pos, Error, "~SEQ variable %q is not a valid name", args[0])
		return nil, nil, false
	}
	nums := make([]int64, len(args)-1)
	for i, a := range args[1:] {
		n, err := strconv.ParseInt(a, 0, 64)
		if err != nil {
			p.diags.add(pos, Error, "~SEQ value %q is not an integer", a)
			return nil, nil, false
		}
		nums[i] = n
	}
	var start, step, end int64
	switch len(nums) {
	case 1:
		end = nums[0]
		switch {
		case end > 0:
			start = 1
		case end < 0:
			start = -1
		}
	case 2:
		start, end = nums[0], nums[1]
	case 3:
		start, step, end = nums[0], nums[1], nums[2]
	}
	if step == 0 {
		if len(nums) == 3 {
			p.diags.add(pos, Error, "~SEQ step must not be 0")
			return nil, nil, false
		}
		step = 1
		if end < start {
			step = -1
		}
	}
	count := (end-start)/step + 1
	if count <= 0 {
		return []string{args[0]}, nil, true
	}
	if count > int64(p.opts.MaxLines) {
		p.diags.add(pos, Error, "~SEQ would repeat %d times (limit %d)", count, p.opts.MaxLines)
		return nil, nil, false
	}
	rows := make([][]string, 0, count)
	for v, i := start, int64(0); i < count; v, i = v+step, i+1 {
		if hex {
			rows = append(rows, []string{strconv.FormatInt(v, 16)})
		} else {
			rows = append(rows, []string{strconv.FormatInt(v, 10)})
		}
	}
	return []string{args[0]}, rows, true
}

func unbrace(s string) ([]string, bool) {
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		parts := strings.Split(s[1:len(s)-1], ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts, true
	}
	return []string{s}, false
}

func (p *preprocessor) listRows(args []string, pos Pos) ([]string, [][]string, bool) {
	if len(args) < 2 {
		p.diags.add(pos, Error, "~LST needs a variable and at least one value")
		return nil, nil, false
	}
	names, _ := unbrace(args[0])
	for _, n := range names {
		if !validName(n) {
			p.diags.add(pos, Error, "~LST variable %q is not a valid name", n)
			return nil, nil, false
		}
	}
	rows := make([][]string, 0, len(args)-1)
	for _, a := range args[1:] {
		vals, _ := unbrace(a)
		if len(vals) != len(names) {
			p.diags.add(pos, Error, "~LST value %s has %d items, want %d", a, len(vals), len(names))
			return nil, nil, false
		}
		rows = append(rows, vals)
	}
	return names, rows, true
}
