package vm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type cpioEntry struct {
	mode       uint32
	rmaj, rmin uint32
	data       string
}

// readCPIO parses a newc archive as the kernel does, checking magic and alignment.
func readCPIO(t *testing.T, b []byte) (map[string]cpioEntry, []string) {
	t.Helper()
	entries := map[string]cpioEntry{}
	var order []string
	off := 0
	field := func(i int) int {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+6+8*i+8]), 16, 32)
		if err != nil {
			t.Fatalf("offset %d field %d: %v", off, i, err)
		}
		return int(v)
	}
	for {
		if off%4 != 0 || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at offset %d", off)
		}
		mode, size, rmaj, rmin, nameSize := field(1), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+nameSize-1])
		dataOff := (off + 110 + nameSize + 3) &^ 3
		if name == "TRAILER!!!" {
			return entries, order
		}
		if _, dup := entries[name]; dup {
			t.Fatalf("duplicate entry %s", name)
		}
		entries[name] = cpioEntry{mode: uint32(mode), rmaj: uint32(rmaj), rmin: uint32(rmin), data: string(b[dataOff : dataOff+size])}
		order = append(order, name)
		off = (dataOff + size + 3) &^ 3
	}
}

func TestCPIO(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "lib.so")
	if err := os.WriteFile(src, []byte("12345"), 0o640); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := newCPIO(&buf)
	w.dir("/proc")
	w.charDev("/dev/console", 0o600, 5, 1)
	w.bytes("/init", 0o755, []byte("#!/bin/sh\n"))
	w.hostFile(File{Src: src, Dst: "/usr/lib/x/lib.so"})
	w.hostFile(File{Src: src, Dst: "/usr/lib/x/lib.so"}) // same file again: ignored
	w.hostFile(File{Src: src, Dst: "/a", Mode: 0o700})
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	got, order := readCPIO(t, buf.Bytes())
	want := map[string]cpioEntry{
		"proc":             {mode: sIFDIR | 0o755},
		"dev":              {mode: sIFDIR | 0o755},
		"dev/console":      {mode: sIFCHR | 0o600, rmaj: 5, rmin: 1},
		"init":             {mode: sIFREG | 0o755, data: "#!/bin/sh\n"},
		"usr":              {mode: sIFDIR | 0o755},
		"usr/lib":          {mode: sIFDIR | 0o755},
		"usr/lib/x":        {mode: sIFDIR | 0o755},
		"usr/lib/x/lib.so": {mode: sIFREG | 0o640, data: "12345"},
		"a":                {mode: sIFREG | 0o700, data: "12345"},
	}
	if len(got) != len(want) {
		t.Errorf("entries %q, want %d", order, len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok || g.mode != w.mode || g.rmaj != w.rmaj || g.rmin != w.rmin || g.data != w.data {
			t.Errorf("%s: got %+v (present %v), want mode %o data %q", name, g, ok, w.mode, w.data)
		}
	}
	// Parents come before their children.
	if strings.Join(order[:3], " ") != "proc dev dev/console" {
		t.Errorf("order %q", order)
	}

	for _, bad := range []func(w *cpioWriter){
		func(w *cpioWriter) { w.bytes("/init", 0o755, nil); w.bytes("/init", 0o755, nil) },
		func(w *cpioWriter) { w.bytes("relative", 0o644, nil) },
		func(w *cpioWriter) { w.bytes("/x/../y", 0o644, nil) },
		func(w *cpioWriter) { w.dir("/d"); w.bytes("/d", 0o644, nil) },
		func(w *cpioWriter) { w.hostFile(File{Src: dir, Dst: "/dir"}) },
		func(w *cpioWriter) { w.hostFile(File{Src: filepath.Join(dir, "missing"), Dst: "/m"}) },
	} {
		w := newCPIO(&bytes.Buffer{})
		bad(w)
		if err := w.close(); err == nil {
			t.Error("bad archive accepted")
		}
	}
}

func TestShellQuote(t *testing.T) {
	args := []string{"plain", "", "it's", `a "b" $HOME \n`, "-test.run=^TestA$|B"}
	var quoted []string
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	out, err := exec.Command("sh", "-c", "set -- "+strings.Join(quoted, " ")+`; for a in "$@"; do printf '%s\0' "$a"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00"); strings.Join(got, "|") != strings.Join(args, "|") || len(got) != len(args) {
		t.Errorf("round trip: got %q, want %q", got, args)
	}
}

func TestConsoleMarkers(t *testing.T) {
	c := newConsole("N0NCE")
	start := time.Now()
	for _, chunk := range []string{"\x1bc\x1b[?7l\x1b[2JSeaBIOS\r\n", "GKA-VM-EXIT OTHER 5\r\n", "GKA-VM-STA", "RT N0NCE\r\nok\r\nGKA-VM-EX", "IT N0NCE 1", "7\r\n"} {
		if n, err := c.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	select {
	case <-c.exited:
	default:
		t.Fatal("exit marker not noticed")
	}
	r := c.result(start)
	if r.ExitCode != 17 || r.Boot <= 0 || r.Elapsed < r.Boot {
		t.Errorf("result %+v", r)
	}
	if want := "SeaBIOS\nGKA-VM-EXIT OTHER 5\nGKA-VM-START N0NCE\nok\nGKA-VM-EXIT N0NCE 17\n"; r.Output != want {
		t.Errorf("output %q, want %q", r.Output, want)
	}

	if r := newConsole("N0NCE").result(start); r.ExitCode != -1 || r.Boot != 0 {
		t.Errorf("no markers: %+v", r)
	}
}

func TestBinaryWithLibs(t *testing.T) {
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Fatal(err)
	}
	files, err := BinaryWithLibs(ls, "/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	var dsts []string
	for _, f := range files {
		dsts = append(dsts, f.Dst)
		if f.Dst != "/bin/ls" && f.Src != f.Dst {
			t.Errorf("library %s copied to %s", f.Src, f.Dst)
		}
	}
	all := strings.Join(dsts, " ")
	if dsts[0] != "/bin/ls" || !strings.Contains(all, "/libc.so.6") || !strings.Contains(all, "/ld-linux-x86-64.so.2") {
		t.Errorf("BinaryWithLibs(ls) = %q", dsts)
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dynamic, err := isDynamic(self)
	if err != nil {
		t.Fatal(err)
	}
	files, err = BinaryWithLibs(self, "/x")
	if err != nil || (!dynamic && len(files) != 1) || (dynamic && len(files) < 2) {
		t.Errorf("BinaryWithLibs(test binary, dynamic=%v) = %v, %v", dynamic, files, err)
	}
}
