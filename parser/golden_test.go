package parser

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden .json and .diag files")

// testOptions makes every golden run reproducible: fixed config id, environment and seed.
func testOptions() Options {
	env := map[string]string{"GKA_TEST_IF": "eth7", "HOME": "/root"}
	return Options{ConfigID: "main", RandomSeed: 42, Getenv: func(k string) string { return env[k] }}
}

// render returns the golden text of a parse: the diagnostics then the exit code, and the
// typed model as indented JSON.
func render(t *testing.T, path string) (diag, js []byte) {
	t.Helper()
	cfg, ds := Load(path, testOptions())
	var b bytes.Buffer
	for _, d := range ds {
		fmt.Fprintln(&b, d)
	}
	fmt.Fprintf(&b, "exit: %d\n", ds.ExitCode())
	j, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatalf("%s: marshal: %v", path, err)
	}
	return b.Bytes(), append(j, '\n')
}

// TestGolden parses every testdata/{golden,errors}/*.conf and compares the diagnostics
// (NAME.diag) and the typed model (NAME.json) with the checked-in expectations.
// Run "go test ./parser -run Golden -update" to rewrite them after a deliberate change.
func TestGolden(t *testing.T) {
	for _, dir := range []string{"golden", "errors"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.conf"))
		if len(files) == 0 {
			t.Fatalf("no corpus in testdata/%s", dir)
		}
		for _, f := range files {
			t.Run(dir+"/"+filepath.Base(f), func(t *testing.T) {
				diag, js := render(t, f)
				base := strings.TrimSuffix(f, ".conf")
				if *update {
					must(t, os.WriteFile(base+".diag", diag, 0o644))
					must(t, os.WriteFile(base+".json", js, 0o644))
					return
				}
				compare(t, base+".diag", diag)
				compare(t, base+".json", js)
				code := bytes.HasSuffix(diag, []byte("exit: 0\n"))
				if dir == "golden" && !code {
					t.Errorf("%s: golden corpus must parse cleanly (exit 0):\n%s", f, diag)
				}
				if dir == "errors" && code {
					t.Errorf("%s: error corpus must not exit 0:\n%s", f, diag)
				}
			})
		}
	}
}

func compare(t *testing.T, path string, got []byte) {
	t.Helper()
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the parse:\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
