package parser

import (
	"io"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Token types of the statement lexer.
const (
	tokWord lexer.TokenType = iota + 1
	tokString
	tokRaw
	tokLBrace
	tokRBrace
	tokEOL
)

var tokenSymbols = map[string]lexer.TokenType{
	"EOF": lexer.EOF, "Word": tokWord, "String": tokString, "Raw": tokRaw,
	"LBrace": tokLBrace, "RBrace": tokRBrace, "EOL": tokEOL,
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

// lexLines turns preprocessed lines into tokens. Braces outside quotes always split
// ("a {", "{ x }", "}}" all work); '"..."' is one token with the quotes removed and no
// escapes; after a script keyword the rest of the line up to an unquoted '}' is one raw token.
func lexLines(lines []Line, ds *diagSet) []lexer.Token {
	toks := make([]lexer.Token, 0, len(lines)*4)
	for _, l := range lines {
		toks = lexLine(toks, l, ds)
	}
	return toks
}

func lexLine(toks []lexer.Token, l Line, ds *diagSet) []lexer.Token {
	s := l.Text
	at := func(i int) lexer.Position {
		return lexer.Position{Filename: l.Pos.File, Line: l.Pos.Line, Column: l.Pos.Col + i}
	}
	stmtStart := true
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			i++
		case c == '{':
			toks = append(toks, lexer.Token{Type: tokLBrace, Value: "{", Pos: at(i)})
			stmtStart = true
			i++
		case c == '}':
			toks = append(toks, lexer.Token{Type: tokRBrace, Value: "}", Pos: at(i)})
			stmtStart = true
			i++
		case c == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				ds.add(posOf(at(i)), Error, "unmatched quote")
				toks = append(toks, lexer.Token{Type: tokString, Value: s[i+1:], Pos: at(i)})
				i = len(s)
				break
			}
			toks = append(toks, lexer.Token{Type: tokString, Value: s[i+1 : i+1+end], Pos: at(i)})
			stmtStart = false
			i += end + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\v\f{}\"", rune(s[j])) {
				j++
			}
			word := s[i:j]
			toks = append(toks, lexer.Token{Type: tokWord, Value: word, Pos: at(i)})
			i = j
			if stmtStart && scriptKeywords[word] {
				for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
					i++
				}
				end := rawEnd(s, i)
				if raw := strings.TrimRight(s[i:end], " \t"); raw != "" {
					toks = append(toks, lexer.Token{Type: tokRaw, Value: raw, Pos: at(i)})
				}
				i = end
			}
			stmtStart = false
		}
	}
	return append(toks, lexer.Token{Type: tokEOL, Value: "\n", Pos: at(len(s))})
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

func posOf(p lexer.Position) Pos {
	return Pos{File: p.Filename, Line: p.Line, Col: p.Column}
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

// lexDefinition is the participle lexer definition; Lex reads a single file without
// preprocessing (participle needs it only to know the symbols).
type lexDefinition struct{}

func (lexDefinition) Symbols() map[string]lexer.TokenType { return tokenSymbols }

func (lexDefinition) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var ds diagSet
	var lines []Line
	for i, l := range strings.Split(string(data), "\n") {
		lines = append(lines, Line{Pos: Pos{File: filename, Line: i + 1, Col: 1}, Text: l})
	}
	return &tokenSource{toks: lexLines(lines, &ds)}, nil
}
