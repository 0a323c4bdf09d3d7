package parser

import (
	"io"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Token types of the statement lexer. A statement head (keyword and arguments, up to a
// brace or the end of the line) is one tokHead token; participle then only sees heads and
// braces, which keeps the tree build linear and cheap.
const (
	tokHead lexer.TokenType = iota + 1
	tokLBrace
	tokRBrace
)

var tokenSymbols = map[string]lexer.TokenType{
	"EOF": lexer.EOF, "Head": tokHead, "LBrace": tokLBrace, "RBrace": tokRBrace,
}

// scriptKeywords take the rest of their line as one raw, shell-quoted argument
// (keepalived's install_keyword_quoted).
var scriptKeywords = map[string]bool{
	"script": true, "misc_path": true,
	"notify": true, "notify_master": true, "notify_backup": true, "notify_fault": true,
	"notify_stop": true, "notify_deleted": true, "notify_master_rx_lower_pri": true,
	"notify_up": true, "notify_down": true, "quorum_up": true, "quorum_down": true,
	"startup_script": true, "shutdown_script": true,
	"notify_fifo_script": true, "vrrp_notify_fifo_script": true, "lvs_notify_fifo_script": true,
}

// Kinds of statement words.
const (
	wordPlain  = iota // unquoted
	wordQuoted        // "..." with the quotes removed
	wordRaw           // the raw rest of a script keyword's line
)

// lexed is the lexer's output: the token stream for participle and, for each tokHead
// token (its Pos.Offset is the index), the span of words of that head.
type lexed struct {
	toks  []lexer.Token
	words []Arg
	heads []span
	// runEnd[i] is, for a head token standing for a run of heads (see mergeLeaves)
	// whose Offset is i, the index of the last head of the run.
	runEnd map[int]int
}

// span is a range of lexed.words.
type span struct{ lo, hi int }

// lexLines splits preprocessed lines into statement heads and braces. Braces outside
// quotes always split ("a {", "{ x }", "}}" all work); "..." is one word with the quotes
// removed and no escapes; after a script keyword the rest of the line up to an unquoted
// '}' is one raw word.
func lexLines(lines []Line, ds *diagSet) lexed {
	lx := lexed{
		toks:  make([]lexer.Token, 0, len(lines)+len(lines)/4),
		words: make([]Arg, 0, 3*len(lines)),
		heads: make([]span, 0, len(lines)),
	}
	for _, l := range lines {
		lx.line(l, ds)
	}
	return lx
}

func (lx *lexed) line(l Line, ds *diagSet) {
	s := l.Text
	at := func(i int) Pos { return Pos{File: l.Pos.File, Line: l.Pos.Line, Col: l.Pos.Col + i} }
	start := len(lx.words)
	add := func(w Arg) { lx.words = append(lx.words, w) }
	flush := func() {
		if len(lx.words) == start {
			return
		}
		first := lx.words[start]
		lx.toks = append(lx.toks, lexer.Token{Type: tokHead, Value: first.text,
			Pos: lexer.Position{Filename: first.pos.File, Line: first.pos.Line, Column: first.pos.Col, Offset: len(lx.heads)}})
		lx.heads = append(lx.heads, span{start, len(lx.words)})
		start = len(lx.words)
	}
	brace := func(t lexer.TokenType, v string, i int) {
		flush()
		p := at(i)
		lx.toks = append(lx.toks, lexer.Token{Type: t, Value: v,
			Pos: lexer.Position{Filename: p.File, Line: p.Line, Column: p.Col}})
	}
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			i++
		case c == '{':
			brace(tokLBrace, "{", i)
			i++
		case c == '}':
			brace(tokRBrace, "}", i)
			i++
		case c == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				ds.add(at(i), Error, "unmatched quote")
				add(Arg{text: s[i+1:], kind: wordQuoted, pos: at(i)})
				i = len(s)
				break
			}
			add(Arg{text: s[i+1 : i+1+end], kind: wordQuoted, pos: at(i)})
			i += end + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\v\f{}\"", rune(s[j])) {
				j++
			}
			add(Arg{text: s[i:j], kind: wordPlain, pos: at(i)})
			i = j
			if len(lx.words)-start == 1 && scriptKeywords[lx.words[start].text] {
				for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
					i++
				}
				end := rawEnd(s, i)
				if raw := strings.TrimRight(s[i:end], " \t"); raw != "" {
					add(Arg{text: raw, kind: wordRaw, pos: at(i)})
				}
				i = end
			}
		}
	}
	flush()
}

// rawEnd finds the end of a raw script argument: the first '}' outside shell quotes.
func rawEnd(s string, i int) int {
	var quote byte
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\\':
			i++
		case c == '"' || c == '\'':
			quote = c
		case c == '}':
			return i
		}
	}
	return len(s)
}

// tokenSource feeds a token slice to participle.
type tokenSource struct {
	toks []lexer.Token
	i    int
}

func (t *tokenSource) Next() (lexer.Token, error) {
	if t.i >= len(t.toks) {
		var pos lexer.Position
		if len(t.toks) > 0 {
			pos = t.toks[len(t.toks)-1].Pos
		}
		return lexer.EOFToken(pos), nil
	}
	tok := t.toks[t.i]
	t.i++
	return tok, nil
}

// lexDefinition is the participle lexer definition. Parsing always goes through
// ParseFromLexer with tokens from lexLines; Lex exists to satisfy the interface.
type lexDefinition struct{}

func (lexDefinition) Symbols() map[string]lexer.TokenType { return tokenSymbols }

func (lexDefinition) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var ds diagSet
	lines, _ := PreprocessBytes(filename, data, Options{})
	return &tokenSource{toks: lexLines(lines, &ds).toks}, nil
}
