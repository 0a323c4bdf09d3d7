package ipvs

import (
	"strings"
	"testing"

	"gokeepalived/parser"
)

// load parses a keepalived.conf text, which must have no error.
func load(t testing.TB, conf string) *parser.Config {
	t.Helper()
	cfg, ds := parser.LoadBytes("t.conf", []byte(conf), parser.Options{
		ConfigID: "t", RandomSeed: 1, Getenv: func(string) string { return "" },
	})
	if ds.ExitCode() != parser.ExitOK {
		var b strings.Builder
		for _, d := range ds {
			b.WriteString(d.String() + "\n")
		}
		t.Fatalf("config does not parse cleanly:\n%s\n%s", b.String(), conf)
	}
	return cfg
}

// specLines renders desired services and their destinations, one a line.
func specLines(specs []ServiceSpec) string {
	var b strings.Builder
	for _, s := range specs {
		b.WriteString(s.Service.String() + "\n")
		for _, d := range s.Destinations {
			b.WriteString("  -> " + d.String() + "\n")
		}
	}
	return b.String()
}

func intp(v int) *int { return &v }
