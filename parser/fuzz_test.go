package parser

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary text through the preprocessor, the statement tree and the typed
// parsers. It must never panic, and every diagnostic must carry a position.
// Seeds: the checked-in corpus in testdata/fuzz/FuzzLoad plus every golden and error file.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"golden", "errors"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.conf"))
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	opts := testOptions()
	opts.MaxLines = 20000
	opts.ReadFile = func(name string) ([]byte, error) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	opts.Glob = func(string) ([]string, error) { return nil, nil }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, ds := LoadBytes("fuzz.conf", data, opts)
		if cfg == nil {
			t.Fatal("nil config")
		}
		for _, d := range ds {
			if d.Pos.File == "" && d.Severity != Fatal {
				t.Errorf("diagnostic without a file: %v", d)
			}
		}
	})
}
