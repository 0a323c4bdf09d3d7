package parser

import (
	"fmt"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// Stmt is one configuration statement: a keyword, its arguments and an optional block of
// nested statements. Every statement carries the position of its keyword.
type Stmt struct {
	Pos   lexer.Position
	Key   string  `parser:"@( Word | String )"`
	Args  []Arg   `parser:"@@*"`
	Open  bool    `parser:"( @LBrace EOL*"`
	Block []*Stmt `parser:"  ( @@ EOL* )* RBrace )?"`
}

// Arg is one argument of a statement.
type Arg struct {
	Tok lexer.Token `parser:"@( Word | String | Raw )"`
}

// Value returns the argument text (quotes removed).
func (a Arg) Value() string { return a.Tok.Value }

// Quoted reports whether the argument was written in double quotes.
func (a Arg) Quoted() bool { return a.Tok.Type == tokString }

// At returns the position of the argument.
func (a Arg) At() Pos { return posOf(a.Tok.Pos) }

// At returns the position of the statement's keyword.
func (s *Stmt) At() Pos { return posOf(s.Pos) }

// Values returns the argument texts.
func (s *Stmt) Values() []string {
	out := make([]string, len(s.Args))
	for i, a := range s.Args {
		out[i] = a.Tok.Value
	}
	return out
}

type treeFile struct {
	Stmts []*Stmt `parser:"EOL* ( @@ EOL* )*"`
}

var treeParser = participle.MustBuild[treeFile](participle.Lexer(lexDefinition{}))

// maxNesting bounds block depth; deeper blocks are dropped with an error.
const maxNesting = 64

// buildTree lexes the lines, repairs brace structure (reporting each repair once) and
// builds the statement tree with participle.
func buildTree(lines []Line, ds *diagSet) []*Stmt {
	toks := normalizeBraces(lexLines(lines, ds), ds)
	pl, err := lexer.Upgrade(&tokenSource{toks: toks})
	if err != nil {
		ds.add(Pos{}, Fatal, "lexer: %v", err)
		return nil
	}
	f, err := treeParser.ParseFromLexer(pl)
	if err != nil {
		var pos Pos
		if pe, ok := err.(participle.Error); ok {
			pos = posOf(pe.Position())
		}
		ds.add(pos, Fatal, "syntax: %v", err)
		return nil
	}
	return f.Stmts
}

type openBrace struct {
	key lexer.Token
}

// normalizeBraces attaches a '{' on its own line to the statement before it, drops a '}'
// that closes nothing, drops blocks that have no keyword, and closes blocks still open at
// the end of input.
func normalizeBraces(in []lexer.Token, ds *diagSet) []lexer.Token {
	out := make([]lexer.Token, 0, len(in)+8)
	var stack []openBrace
	var stmtKey lexer.Token
	atBoundary := true
	skipDepth := 0 // >0 while dropping a keyword-less block
	for _, t := range in {
		if skipDepth > 0 {
			switch t.Type {
			case tokLBrace:
				skipDepth++
			case tokRBrace:
				skipDepth--
			}
			continue
		}
		switch t.Type {
		case tokLBrace:
			for len(out) > 0 && out[len(out)-1].Type == tokEOL {
				out = out[:len(out)-1]
			}
			prev := lexer.TokenType(0)
			if len(out) > 0 {
				prev = out[len(out)-1].Type
			}
			if prev == 0 || prev == tokLBrace || prev == tokRBrace {
				ds.add(posOf(t.Pos), Error, "'{' without a keyword before it; block ignored")
				skipDepth = 1
				continue
			}
			if len(stack) >= maxNesting {
				ds.add(posOf(t.Pos), Error, "blocks nested more than %d deep; block ignored", maxNesting)
				skipDepth = 1
				continue
			}
			stack = append(stack, openBrace{key: stmtKey})
			atBoundary = true
		case tokRBrace:
			if len(stack) == 0 {
				ds.add(posOf(t.Pos), Error, "extra '}' ignored")
				continue
			}
			stack = stack[:len(stack)-1]
			atBoundary = true
		case tokEOL:
			atBoundary = true
		default:
			if atBoundary {
				stmtKey = t
				atBoundary = false
			}
		}
		out = append(out, t)
	}
	for i := len(stack) - 1; i >= 0; i-- {
		k := stack[i].key
		ds.add(posOf(k.Pos), Error, "missing '}': block %s is not closed", quoteKey(k.Value))
		pos := k.Pos
		if len(out) > 0 {
			pos = out[len(out)-1].Pos
		}
		out = append(out, lexer.Token{Type: tokRBrace, Value: "}", Pos: pos},
			lexer.Token{Type: tokEOL, Value: "\n", Pos: pos})
	}
	return out
}

func quoteKey(k string) string { return fmt.Sprintf("'%s'", k) }
