package parser

import (
	"path/filepath"
	"sort"
	"strings"
)

// includeVariants maps each include keyword to the checks it adds to include_check.
var includeVariants = map[string]int{
	"include":  0,
	"includer": incReadable,
	"includem": incMatch,
	"includew": incMatch | incWildcardMatch,
	"includeb": incBraceMatch,
	"includea": incReadable | incMatch | incWildcardMatch | incBraceMatch,
}

// parseIncludeCheck applies "include_check [+-]readable|match|wildcard_match|brace_match"
// (no argument means all checks).
func parseIncludeCheck(level int, args string) int {
	words := strings.Fields(args)
	if len(words) == 0 {
		return incReadable | incMatch | incWildcardMatch | incBraceMatch
	}
	names := map[string]int{
		"readable": incReadable, "match": incMatch,
		"wildcard_match": incWildcardMatch, "brace_match": incBraceMatch,
	}
	set := 0
	for _, w := range words {
		switch {
		case strings.HasPrefix(w, "+"):
			level |= names[w[1:]]
		case strings.HasPrefix(w, "-"):
			level &^= names[w[1:]]
		default:
			set |= names[w]
		}
	}
	if set != 0 {
		level = set
	}
	return level
}

// include reads the files matching a glob (with csh braces), relative to the directory of
// the including file. Failures are Fatal when the check level asks for them, otherwise
// warnings (plain include never fails, as in keepalived).
func (p *preprocessor) include(fst *fileState, arg string, pos Pos, level int) {
	pattern := strings.Trim(arg, "\"")
	if pattern == "" {
		p.diags.add(pos, Error, "include needs a file name")
		return
	}
	if !filepath.IsAbs(pattern) {
		// Relative to the including file, named as that file was (so diagnostics
		// keep the operator's relative paths).
		pattern = filepath.Join(filepath.Dir(fst.name), pattern)
	}
	wild := strings.ContainsAny(pattern, "*?[")
	terms := expandBraces(pattern)
	var files []string
	seen := map[string]bool{}
	for _, t := range terms {
		matches, err := p.opts.Glob(t)
		if err != nil {
			p.diags.add(pos, Fatal, "include %q: bad pattern: %v", arg, err)
			return
		}
		if len(matches) == 0 && len(terms) > 1 && level&incBraceMatch != 0 {
			p.diags.add(pos, Fatal, "include %q: nothing matches %s", arg, t)
		}
		sort.Strings(matches)
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				files = append(files, m)
			}
		}
	}
	if len(files) == 0 {
		switch {
		case level&incMatch != 0 && (!wild || level&incWildcardMatch != 0):
			p.diags.add(pos, Fatal, "include %q: no file matches", arg)
		default:
			p.diags.add(pos, Warning, "include %q: no file matches", arg)
		}
		return
	}
	for _, f := range files {
		data, err := p.opts.ReadFile(f)
		if err != nil {
			sev := Warning
			if level&incReadable != 0 {
				sev = Fatal
			}
			p.diags.add(pos, sev, "include %q: cannot read %s: %v", arg, f, unwrapPathErr(err))
			continue
		}
		p.file(f, data, fst.check)
		if p.capped {
			return
		}
	}
}

// expandBraces expands csh-style braces: "a{b,c{d,e}}f" gives abf, acdf, acef.
func expandBraces(s string) []string {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return []string{s}
	}
	depth, closeAt := 0, -1
	var commas []int
	for i := open; i < len(s) && closeAt < 0; i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				closeAt = i
			}
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		}
	}
	if closeAt < 0 {
		return []string{s}
	}
	prefix, suffix := s[:open], s[closeAt+1:]
	bounds := append(append([]int{open}, commas...), closeAt)
	var out []string
	for i := 0; i+1 < len(bounds); i++ {
		alt := s[bounds[i]+1 : bounds[i+1]]
		out = append(out, expandBraces(prefix+alt+suffix)...)
	}
	return out
}
