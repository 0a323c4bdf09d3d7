package parser

import (
	"errors"
	"runtime"
	"sync"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// Stmt is one configuration statement: a keyword, its arguments and an optional block of
// nested statements. Participle builds the structure from statement heads and braces;
// Key and Args are then filled from the lexer's words for that head.
type Stmt struct {
	Head  lexer.Token `parser:"@Head"`
	Open  bool        `parser:"( @LBrace"`
	Block []*Stmt     `parser:"  @@* RBrace )?"`

	Key  string
	Args []Arg
	pos  Pos
}

// Arg is one word of a statement: the keyword or an argument.
type Arg struct {
	text string
	kind int
	pos  Pos
}

// Value returns the argument text (quotes removed).
func (a Arg) Value() string { return a.text }

// Quoted reports whether the argument was written in double quotes.
func (a Arg) Quoted() bool { return a.kind == wordQuoted }

// At returns the position of the argument.
func (a Arg) At() Pos { return a.pos }

// At returns the position of the statement's keyword.
func (s *Stmt) At() Pos { return s.pos }

// Values returns the argument texts.
func (s *Stmt) Values() []string {
	out := make([]string, len(s.Args))
	for i, a := range s.Args {
		out[i] = a.text
	}
	return out
}

func posOf(p lexer.Position) Pos {
	return Pos{File: p.Filename, Line: p.Line, Col: p.Column}
}

type treeFile struct {
	Stmts []*Stmt `parser:"@@*"`
}

var treeParser = participle.MustBuild[treeFile](participle.Lexer(lexDefinition{}))

// maxNesting bounds block depth; deeper blocks are dropped with an error.
const maxNesting = 64

// chunkTokens is the size above which top-level statements are parsed as separate
// chunks, in parallel.
const chunkTokens = 4096

// buildTree lexes the lines, repairs brace structure (reporting each repair once) and
// builds the statement tree with participle, one chunk of top-level statements at a time
// on every CPU.
func buildTree(lines []Line, ds *diagSet) []*Stmt {
	lx := lexLines(lines, ds)
	toks := lx.mergeLeaves(normalizeBraces(lx.toks, ds))
	chunks := chunkTopLevel(toks)
	results := make([][]*Stmt, len(chunks))
	errs := make([]error, len(chunks))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(chunks)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i], errs[i] = parseChunk(chunks[i], &lx)
			}
		}()
	}
	for i := range chunks {
		next <- i
	}
	close(next)
	wg.Wait()
	var out []*Stmt
	for i, r := range results {
		if errs[i] != nil {
			var pos Pos
			var pe participle.Error
			if errors.As(errs[i], &pe) {
				pos = posOf(pe.Position())
			}
			ds.add(pos, Fatal, "syntax: %v", errs[i])
			continue
		}
		out = append(out, r...)
	}
	return out
}

func parseChunk(toks []lexer.Token, lx *lexed) ([]*Stmt, error) {
	pl, err := lexer.Upgrade(&tokenSource{toks: toks})
	if err != nil {
		return nil, err
	}
	f, err := treeParser.ParseFromLexer(pl)
	if err != nil {
		return nil, err
	}
	return fillHeads(f.Stmts, lx), nil
}

// fillHeads sets Key, Args and position of every statement from its head's words, and
// expands each run of leaf statements into its statements.
func fillHeads(stmts []*Stmt, lx *lexed) []*Stmt {
	out := stmts
	expanded := false
	for i, s := range stmts {
		if last, run := lx.runEnd[s.Head.Pos.Offset]; run {
			if !expanded {
				out, expanded = append([]*Stmt(nil), stmts[:i]...), true
			}
			first := s.Head.Pos.Offset
			run := make([]Stmt, last-first+1)
			for j := range run {
				lx.fill(&run[j], first+j)
				out = append(out, &run[j])
			}
			continue
		}
		lx.fill(s, s.Head.Pos.Offset)
		s.Block = fillHeads(s.Block, lx)
		if expanded {
			out = append(out, s)
		}
	}
	return out
}

func (lx *lexed) fill(s *Stmt, head int) {
	sp := lx.heads[head]
	s.Key, s.pos = lx.words[sp.lo].text, lx.words[sp.lo].pos
	if sp.hi > sp.lo+1 {
		s.Args = lx.words[sp.lo+1 : sp.hi : sp.hi] // shared with the lexer, never appended to
	}
}

// mergeLeaves replaces each run of two or more consecutive heads that have no block with
// one head token standing for the run (lx.runEnd tells where it ends): participle's cost
// is per node, and most statements are leaves.
func (lx *lexed) mergeLeaves(toks []lexer.Token) []lexer.Token {
	lx.runEnd = map[int]int{}
	out := toks[:0]
	for i := 0; i < len(toks); {
		t := toks[i]
		j := i
		for j < len(toks) && toks[j].Type == tokHead && (j+1 >= len(toks) || toks[j+1].Type != tokLBrace) &&
			(j == i || toks[j].Pos.Offset == toks[j-1].Pos.Offset+1) {
			j++
		}
		if j-i >= 2 {
			lx.runEnd[t.Pos.Offset] = toks[j-1].Pos.Offset
			out = append(out, t)
			i = j
			continue
		}
		out = append(out, t)
		i++
	}
	return out
}

// chunkTopLevel cuts a brace-balanced token stream into runs of whole top-level
// statements of about chunkTokens tokens each.
func chunkTopLevel(toks []lexer.Token) [][]lexer.Token {
	var chunks [][]lexer.Token
	depth, start := 0, 0
	for i, t := range toks {
		switch t.Type {
		case tokLBrace:
			depth++
		case tokRBrace:
			depth--
		case tokHead:
			if depth == 0 && i-start >= chunkTokens {
				chunks = append(chunks, toks[start:i])
				start = i
			}
		}
	}
	if start < len(toks) {
		chunks = append(chunks, toks[start:])
	}
	return chunks
}

// normalizeBraces drops a '}' that closes nothing and blocks that have no keyword, and
// closes blocks still open at the end of input, reporting each repair once. A '{' on the
// line after its keyword needs nothing: heads and braces carry no line breaks.
func normalizeBraces(in []lexer.Token, ds *diagSet) []lexer.Token {
	out := make([]lexer.Token, 0, len(in)+8)
	var open []lexer.Token // the head of each open block
	skipDepth := 0         // >0 while dropping a keyword-less or too deep block
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
			if len(out) == 0 || out[len(out)-1].Type != tokHead {
				ds.add(posOf(t.Pos), Error, "'{' without a keyword before it; block ignored")
				skipDepth = 1
				continue
			}
			if len(open) >= maxNesting {
				ds.add(posOf(t.Pos), Error, "blocks nested more than %d deep; block ignored", maxNesting)
				skipDepth = 1
				continue
			}
			open = append(open, out[len(out)-1])
		case tokRBrace:
			if len(open) == 0 {
				ds.add(posOf(t.Pos), Error, "extra '}' ignored")
				continue
			}
			open = open[:len(open)-1]
		}
		out = append(out, t)
	}
	for i := len(open) - 1; i >= 0; i-- {
		k := open[i]
		ds.add(posOf(k.Pos), Error, "missing '}': block '%s' is not closed", k.Value)
		out = append(out, lexer.Token{Type: tokRBrace, Value: "}", Pos: out[len(out)-1].Pos})
	}
	return out
}
