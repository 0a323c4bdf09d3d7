package parser

import (
	"strings"
	"testing"
)

// TestTreeShapes checks brace placement variants, leaf runs and repairs give the same
// statements in the same order.
func TestTreeShapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a 1\nb 2\nc {\n d\n e 3\n}\nf\n", "a(1) b(2) c{d() e(3)} f()"},
		{"c\n{\n d\n}\n", "c{d()}"},
		{"c { d }\ne { f { g h } }\n", "c{d()} e{f{g(h)}}"},
		{"c {}\nd\n", "c{} d()"},
		{"a\n{ x }\n{ y }\nb\n", "a{x()} b()"},
		{"a\n}\nb\n", "a() b()"},
		{"a {\n b\n", "a{b()}"},
		{"x 1\ny 2\n", "x(1) y(2)"},
	}
	for _, tc := range tests {
		var ds diagSet
		lines, _ := PreprocessBytes("t.conf", []byte(tc.in), testOptions())
		got := render1(buildTree(lines, &ds))
		if got != tc.want {
			t.Errorf("%q: got %s, want %s", tc.in, got, tc.want)
		}
	}
}

func render1(stmts []*Stmt) string {
	var parts []string
	for _, s := range stmts {
		p := s.Key
		if s.Open {
			p += "{" + render1(s.Block) + "}"
		} else {
			p += "(" + strings.Join(s.Values(), ",") + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}
