package parser

import (
	"errors"
	"strconv"
	"strings"
)

// Script is a command configured for a script keyword (track script, notify, misc_path...):
// its argv after keepalived's shell-like quoting, and the optional user and group to run as.
type Script struct {
	Args  []string `json:"args"`
	User  string   `json:"user,omitempty"`
	Group string   `json:"group,omitempty"`
	Pos   Pos      `json:"-"`
}

// Path returns the program the script runs.
func (s *Script) Path() string {
	if s == nil || len(s.Args) == 0 {
		return ""
	}
	return s.Args[0]
}

// errUnterminatedQuote is returned for a script line with an open quote.
var errUnterminatedQuote = errors.New("unterminated quote")

// shellWords splits s the way keepalived splits quoted-script keywords: blanks separate
// words; '...' and "..." group (and concatenate with adjacent text); backslash escapes
// (\a \b \E \f \n \r \t \v \nnn \xHH \cC, \C for any other C) work outside single quotes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			inWord = true
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errUnterminatedQuote
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			inWord = true
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					n := unescape(s[j+1:], &cur)
					j += n
					continue
				}
				cur.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, errUnterminatedQuote
			}
			i = j
		case c == '\\' && i+1 < len(s):
			inWord = true
			i += unescape(s[i+1:], &cur)
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// unescape writes the character escaped at the start of s (the text after a backslash)
// and returns how many bytes of s it used.
func unescape(s string, b *strings.Builder) int {
	simple := map[byte]byte{'a': '\a', 'b': '\b', 'E': 0x1b, 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}
	c := s[0]
	if r, ok := simple[c]; ok {
		b.WriteByte(r)
		return 1
	}
	switch {
	case c >= '0' && c <= '7':
		n := 1
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			n++
		}
		v, _ := strconv.ParseUint(s[:n], 8, 16)
		b.WriteByte(byte(v))
		return n
	case c == 'x':
		n := 1
		for n < len(s) && strings.IndexByte("0123456789abcdefABCDEF", s[n]) >= 0 {
			n++
		}
		if n == 1 {
			b.WriteByte('x')
			return 1
		}
		v, _ := strconv.ParseUint(s[1:min(n, 3)], 16, 8)
		b.WriteByte(byte(v))
		return min(n, 3)
	case c == 'c' && len(s) > 1:
		b.WriteByte(s[1] & 0x1f)
		return 2
	}
	b.WriteByte(c)
	return 1
}

// script parses a quoted-script statement: "CMD ARGS" [user [group]] where the first
// word is itself split into argv (single quotes keep spaces inside an argument).
func (c *ctx) script(s *Stmt) *Script {
	if !c.want(s, 1, 1) {
		return nil
	}
	raw := s.Args[0].Value()
	words, err := shellWords(raw)
	if err != nil {
		c.errorf(s.Args[0].At(), "'%s': %v", s.Key, err)
		return nil
	}
	if len(words) == 0 {
		c.errorf(s.At(), "'%s' needs a command", s.Key)
		return nil
	}
	argv, err := shellWords(words[0])
	if err != nil || len(argv) == 0 {
		argv = []string{words[0]}
	}
	sc := &Script{Args: argv, Pos: s.At()}
	if len(words) > 1 {
		sc.User = words[1]
		if strings.Contains(words[1], ":") {
			u, g, _ := strings.Cut(words[1], ":")
			sc.User, sc.Group = u, g
		}
	}
	if len(words) > 2 {
		sc.Group = strings.TrimPrefix(words[2], ":")
	}
	if len(words) > 3 {
		c.warnf(s.Args[0].At(), "'%s': extra words after the group ignored (quote the command if it has arguments)", s.Key)
	}
	return sc
}
