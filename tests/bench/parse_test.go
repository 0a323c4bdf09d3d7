package bench

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"gokeepalived/parser"
)

// Size of the generated configuration: 10,000 virtual servers x 4 real servers, HTTP_GET.
const (
	benchVS = 10000
	benchRS = 4
)

var (
	largeOnce sync.Once
	largePath string
	largeErr  error
)

// largeConfig writes the generated configuration once per run, in a directory that is
// removed when the process exits (GKA_BENCH_CONF names an existing file instead).
func largeConfig(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("GKA_BENCH_CONF"); p != "" {
		return p
	}
	largeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gka-bench-")
		if err != nil {
			largeErr = err
			return
		}
		largePath = filepath.Join(dir, "keepalived.conf")
		f, err := os.Create(largePath)
		if err != nil {
			largeErr = err
			return
		}
		defer f.Close()
		largeErr = writeLargeConfig(f, benchVS, benchRS)
	})
	if largeErr != nil {
		b.Fatal(largeErr)
	}
	return largePath
}

// BenchmarkParse10kVS measures gokeepalived's whole parse (preprocess, tree, typed model,
// semantic checks) of the generated file.
func BenchmarkParse10kVS(b *testing.B) {
	path := largeConfig(b)
	b.ReportAllocs()
	for b.Loop() {
		cfg, ds := parser.Load(path, parser.Options{ConfigID: "bench"})
		if code := ds.ExitCode(); code != parser.ExitOK || len(cfg.VirtualServers) != benchVS {
			b.Fatalf("exit %d, %d virtual servers: %v", code, len(cfg.VirtualServers), ds[:min(len(ds), 5)])
		}
	}
}

// BenchmarkKeepalivedConfigTest10kVS runs Debian's "keepalived -t" on the same file, for
// the ratio. keepalived must be installed (make bench installs it).
func BenchmarkKeepalivedConfigTest10kVS(b *testing.B) {
	path := largeConfig(b)
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		b.Fatal("keepalived is not installed (apt-get install keepalived)")
	}
	for b.Loop() {
		out, err := exec.Command(bin, "-t", "-f", path).CombinedOutput()
		if err != nil {
			b.Fatalf("keepalived -t: %v\n%s", err, out)
		}
	}
}

var outPath = flag.String("out", "", "TestWriteLargeConfig: where to write the generated configuration")

// TestWriteLargeConfig writes the benchmark's configuration to -out (parse.sh uses it
// for the whole-process comparison); without -out it checks a small one parses cleanly.
func TestWriteLargeConfig(t *testing.T) {
	path, nVS := *outPath, benchVS
	if path == "" {
		path, nVS = filepath.Join(t.TempDir(), "keepalived.conf"), 10
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := writeLargeConfig(f, nVS, benchRS); err != nil {
		t.Fatal(err)
	}
	cfg, ds := parser.Load(path, parser.Options{ConfigID: "bench"})
	if ds.ExitCode() != parser.ExitOK || len(cfg.VirtualServers) != nVS {
		t.Fatalf("generated config: %d virtual servers, %v", len(cfg.VirtualServers), ds)
	}
}
