package parser

import (
	"sort"
	"strings"
)

// ctx carries what the typed parse functions share: the diagnostics and the config
// being built (for cross-references checked later).
type ctx struct {
	ds  *diagSet
	cfg *Config
}

func (c *ctx) errorf(pos Pos, format string, args ...any) { c.ds.add(pos, Error, format, args...) }
func (c *ctx) warnf(pos Pos, format string, args ...any)  { c.ds.add(pos, Warning, format, args...) }
func (c *ctx) fatalf(pos Pos, format string, args ...any) { c.ds.add(pos, Fatal, format, args...) }

// handler parses one keyword of a block into *T.
type handler[T any] func(c *ctx, s *Stmt, t *T)

// keywords is the table of a block: keyword -> handler. Its keys also feed "did you mean".
type keywords[T any] map[string]handler[T]

// parseBlock dispatches every statement of blk's block through the table. Unknown
// keywords are reported (with a suggestion); an unknown block is skipped whole, so its
// closing brace never ends the enclosing block (unlike keepalived).
func parseBlock[T any](c *ctx, blk *Stmt, t *T, table keywords[T]) {
	if !blk.Open {
		c.errorf(blk.At(), "'%s' needs a block: '%s ... { ... }'", blk.Key, blk.Key)
		return
	}
	for _, s := range blk.Block {
		if h, ok := table[s.Key]; ok {
			h(c, s, t)
			continue
		}
		c.unknown(s, blk.Key, keysOf(table))
	}
}

func keysOf[T any](table keywords[T]) []string {
	out := make([]string, 0, len(table))
	for k := range table {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// topLevelBlocks are keywords that only make sense at the top level; finding one inside
// a block usually means a '}' is missing above it.
var topLevelBlocks = map[string]bool{
	"global_defs": true, "vrrp_instance": true, "vrrp_sync_group": true, "vrrp_script": true,
	"virtual_server": true, "virtual_server_group": true,
	"vrrp_track_process": true, "vrrp_track_ping": true, "static_ipaddress": true,
	"static_routes": true, "static_rules": true,
}

// unknown reports an unknown keyword once, with the nearest known keyword if close.
func (c *ctx) unknown(s *Stmt, parent string, known []string) {
	what := "keyword"
	if s.Open {
		what = "block"
	}
	msg := "unknown " + what + " '" + s.Key + "'"
	if parent != "" {
		msg += " in " + parent
	}
	if topLevelBlocks[s.Key] && parent != "" {
		msg += " (is a '}' missing above it?)"
	} else if sugg := suggest(s.Key, known); sugg != "" {
		msg += "; did you mean '" + sugg + "'?"
	}
	if s.Open {
		msg += "; block skipped"
	}
	c.errorf(s.At(), "%s", msg)
}

// suggest returns the known keyword closest to k, if it is close enough to be a typo.
func suggest(k string, known []string) string {
	best, bestD := "", 1<<30
	for _, cand := range known {
		d := editDistance(strings.ToLower(k), strings.ToLower(cand))
		if d < bestD {
			best, bestD = cand, d
		}
	}
	limit := 2
	if len(k) > 10 {
		limit = 3
	}
	if bestD <= limit && bestD < len(k) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ignored is the handler for keepalived keywords gokeepalived recognises but does not
// implement: a warning, never an error, so that existing files stay valid.
func ignored[T any](c *ctx, s *Stmt, _ *T) {
	c.warnf(s.At(), "'%s' is a keepalived keyword that gokeepalived does not implement; ignored", s.Key)
}

// ignoredKeywords are the keywords some table accepts as ignored (for the reference).
var ignoredKeywords = map[string]bool{}

// withIgnored adds the keywords in names to the table as ignored.
func withIgnored[T any](table keywords[T], names ...string) keywords[T] {
	for _, n := range names {
		ignoredKeywords[n] = true
		if _, ok := table[n]; !ok {
			table[n] = ignored[T]
		}
	}
	return table
}
