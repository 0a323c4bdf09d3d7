package ipvs

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logBuffer collects a manager's log lines; safe for the manager's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// stateManager returns a manager over k that keeps its owned services in path (none
// when empty) and logs to w.
func stateManager(k *Fake, path string, w io.Writer) *Manager {
	m := NewManager(k, slog.New(slog.NewTextHandler(w, nil)))
	m.StateFile = path
	return m
}

// stateServices returns the services that the state file at path lists, in its order.
func stateServices(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Version  int
		Services []string
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Version != 1 || st.Services == nil {
		t.Fatalf("state file %s: version %d, services %v, %v:\n%s", path, st.Version, st.Services, err, data)
	}
	return st.Services
}

// tcpService is the service TCP addr:80 with rr.
func tcpService(addr string) Service {
	return Service{Family: IPv4, Protocol: TCP, Addr: netip.MustParseAddr(addr), Port: 80, Scheduler: "rr"}
}

// TestStateFileFormat: the owned services are written sorted as the Fake's table is
// (family, mark, protocol, address, port), the same set always as the same bytes, and
// read back as themselves; an empty set is an empty list.
func TestStateFileFormat(t *testing.T) {
	owned := OwnedSet{}
	for _, k := range []ServiceKey{
		tcpService("10.0.1.1").Key(), {Family: IPv6, FWMark: 3}, {Family: IPv4, FWMark: 3},
		{Family: IPv6, Protocol: SCTP, Addr: netip.MustParseAddr("fd00::1"), Port: 3868},
		{Family: IPv4, Protocol: UDP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 53},
	} {
		owned[k] = struct{}{}
	}
	data, err := encodeOwned(owned)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "version": 1,
  "services": [
    "TCP 10.0.1.1:80",
    "UDP 10.0.0.1:53",
    "FWM 3 IPv4",
    "SCTP [fd00::1]:3868",
    "FWM 3 IPv6"
  ]
}
`
	if string(data) != want {
		t.Errorf("encoded:\n%s\nwant:\n%s", data, want)
	}
	if again, _ := encodeOwned(maps.Clone(owned)); string(again) != string(data) {
		t.Errorf("the same set encoded differently:\n%s", again)
	}
	back, err := decodeOwned(data)
	if err != nil || !maps.Equal(back, owned) {
		t.Errorf("read back as %v, %v", back, err)
	}
	empty, _ := encodeOwned(OwnedSet{})
	if back, err := decodeOwned(empty); err != nil || back == nil || len(back) != 0 || !strings.Contains(string(empty), `"services": []`) {
		t.Errorf("empty set: %s read back as %v, %v", empty, back, err)
	}
}

// restartScenario starts a manager over {A, B} (TCP 10.0.0.1:80 and 10.0.1.1:80) beside
// a foreign service C, stops it keeping the table (-I), and restarts it over {A}, both
// with the state file path (none when empty). It returns the kernel and its calls
// during the restart.
func restartScenario(t *testing.T, path string) (*Fake, []string) {
	t.Helper()
	k := &Fake{}
	if err := k.AddService(tcpService("10.9.0.1")); err != nil {
		t.Fatal(err)
	}
	m := stateManager(k, path, io.Discard)
	startedManager(t, m, load(t, farmConf(2, 2, "", "")))
	if err := m.Stop(true); err != nil {
		t.Fatal(err)
	}
	if path != "" {
		if got, want := stateServices(t, path), []string{"TCP 10.0.0.1:80", "TCP 10.0.1.1:80"}; !slices.Equal(got, want) {
			t.Errorf("state file after a stop with -I: %q, want %q", got, want)
		}
	}
	k.ResetCalls()
	m = stateManager(k, path, io.Discard)
	startedManager(t, m, load(t, farmConf(1, 2, "", "")))
	if err := m.Stop(true); err != nil {
		t.Fatal(err)
	}
	return k, callLines(k)
}

// TestManagerStateRestart: after a stop that keeps the table (-I), a restart over a
// configuration that dropped a virtual server deletes its service, which the state file
// lists; the service still configured is not written to, the foreign one not touched.
func TestManagerStateRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "owned.json")
	k, calls := restartScenario(t, path)
	want := []string{"services", "destinations TCP 10.0.0.1:80", "del-service TCP 10.0.1.1:80"}
	if !slices.Equal(calls, want) {
		t.Errorf("kernel calls at restart:\n got %q\nwant %q", calls, want)
	}
	table := "TCP 10.0.0.1:80 rr\n  -> 10.1.0.1:8080 NAT weight 1\n  -> 10.1.0.2:8080 NAT weight 1\nTCP 10.9.0.1:80 rr\n"
	if d := k.Dump(); d != table {
		t.Errorf("table:\n%s\nwant:\n%s", d, table)
	}
	if got := stateServices(t, path); !slices.Equal(got, []string{"TCP 10.0.0.1:80"}) {
		t.Errorf("state file after the restart: %q", got)
	}
}

// TestManagerStateRestartWithout: without a state file the restart knows nothing of the
// dropped virtual server's service, which stays (keepalived's behaviour too).
func TestManagerStateRestartWithout(t *testing.T) {
	k, calls := restartScenario(t, "")
	if want := []string{"services", "destinations TCP 10.0.0.1:80"}; !slices.Equal(calls, want) {
		t.Errorf("kernel calls at restart:\n got %q\nwant %q", calls, want)
	}
	if d := k.Dump(); !strings.Contains(d, "TCP 10.0.1.1:80 rr\n") {
		t.Errorf("the dropped service is gone:\n%s", d)
	}
}

// TestManagerStateCorrupt: a state file that cannot be used is reported with its path
// and reason; the manager starts owning nothing from it, deletes nothing, and writes the
// file anew after its first pass.
func TestManagerStateCorrupt(t *testing.T) {
	for name, content := range map[string]string{
		"truncated":   `{"version":1,"services":["TCP 10.0.1.1:80","TCP 10.0`,
		"empty":       ``,
		"version":     `{"version":2,"services":["TCP 10.0.1.1:80"]}`,
		"bad service": `{"version":1,"services":["TCP 10.0.1.1:80","ICMP 10.0.0.9:80"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "owned.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			k := &Fake{}
			if err := k.AddService(tcpService("10.0.1.1")); err != nil { // B, from an earlier run
				t.Fatal(err)
			}
			var log logBuffer
			m := stateManager(k, path, &log)
			startedManager(t, m, load(t, farmConf(1, 2, "", "")))
			if err := m.Stop(true); err != nil {
				t.Fatal(err)
			}
			if l := log.String(); !strings.Contains(l, "level=WARN msg=\"IPVS state file unusable") || !strings.Contains(l, "file="+path) || !strings.Contains(l, "err=") {
				t.Errorf("no warning naming the file and the reason:\n%s", l)
			}
			if n := k.Count("del-service"); n != 0 || !strings.Contains(k.Dump(), "TCP 10.0.1.1:80 rr\n") {
				t.Errorf("%d services deleted; table:\n%s", n, k.Dump())
			}
			if got := stateServices(t, path); !slices.Equal(got, []string{"TCP 10.0.0.1:80"}) {
				t.Errorf("state file after the first pass: %q", got)
			}
		})
	}
}

// TestManagerStateUnwritable: a state file that cannot be written is reported once, and
// the manager serves on: health changes and reloads reach the kernel. Once it can be
// written, it is, and that is reported.
func TestManagerStateUnwritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	path := filepath.Join(dir, "owned.json")
	k := &Fake{}
	var log logBuffer
	m := stateManager(k, path, &log)
	cfg := load(t, farmConf(2, 2, "", ""))
	startedManager(t, m, cfg)
	setHealth(m, cfg, 0, 1, false)
	waitFor(t, 5*time.Second, "the destination removed", func() bool { return !strings.Contains(k.Dump(), "10.1.0.2:8080") })
	if err := m.Reload(load(t, farmConf(1, 2, "", ""))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the service removed", func() bool { return !strings.Contains(k.Dump(), "10.0.1.1:80") })
	if n := strings.Count(log.String(), "cannot write the IPVS state file"); n != 1 {
		t.Errorf("%d reports of the failed writes, want 1:\n%s", n, log.String())
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "IPVS state file written again") {
		t.Errorf("the recovery is not reported:\n%s", log.String())
	}
	if got := stateServices(t, path); len(got) != 0 {
		t.Errorf("state file after a stop that removed everything: %q", got)
	}
}

// TestManagerStateWritesOnChange: the state file is written when the owned services
// change, and only then: not for health changes, a reload that keeps the services, a
// stop with -I or a restart over the same configuration.
func TestManagerStateWritesOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "owned.json")
	k := &Fake{}
	var writes atomic.Int32
	newManager := func() *Manager {
		m := stateManager(k, path, io.Discard)
		m.writeState = func(p string, data []byte) error {
			writes.Add(1)
			return writeFileAtomic(p, data)
		}
		return m
	}
	expect := func(n int32, after string) {
		t.Helper()
		if w := writes.Load(); w != n {
			t.Errorf("after %s: %d writes of the state file, want %d", after, w, n)
		}
	}
	cfg := load(t, farmConf(3, 2, "", ""))
	m := newManager()
	startedManager(t, m, cfg)
	setHealth(m, cfg, 1, 0, false)
	waitFor(t, 5*time.Second, "the destination removed", func() bool { return !strings.Contains(k.Dump(), "10.1.1.1:8080") })
	setHealth(m, cfg, 1, 0, true)
	waitFor(t, 5*time.Second, "the destination back", func() bool { return strings.Contains(k.Dump(), "10.1.1.1:8080") })
	dumps := k.Count("services")
	if err := m.Reload(load(t, farmConf(3, 2, "", ""))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the reload's pass", func() bool { return k.Count("services") > dumps })
	m.Stop(true) // waits for the pass under way
	expect(1, "a start, health changes, a reload of the same services and a stop with -I")

	m = newManager()
	startedManager(t, m, cfg)
	m.Stop(true)
	expect(1, "a restart over the same configuration")

	m = newManager()
	startedManager(t, m, load(t, farmConf(2, 2, "", "")))
	m.Stop(false)
	expect(3, "a restart that deleted a service and a stop that deleted the others")
	if got := stateServices(t, path); len(got) != 0 {
		t.Errorf("state file after the stop: %q", got)
	}
}

// TestManagerStateWriteAhead: a service is in the state file before the pass creates
// it, so that a crash in between does not leave it unowned.
func TestManagerStateWriteAhead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "owned.json")
	k := &Fake{}
	var listed []bool
	var mu sync.Mutex
	k.SetHook(func(c Call) error {
		if c.Op == "add-service" {
			data, _ := os.ReadFile(path)
			mu.Lock()
			listed = append(listed, strings.Contains(string(data), `"`+c.Service.String()+`"`))
			mu.Unlock()
		}
		return nil
	})
	m := stateManager(k, path, io.Discard)
	startedManager(t, m, load(t, farmConf(1, 1, "", "")))
	if err := m.Reload(load(t, farmConf(2, 1, "", ""))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the second service", func() bool { return strings.Contains(k.Dump(), "10.0.1.1:80") })
	m.Stop(true)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(listed, []bool{true, true}) {
		t.Errorf("each service created listed in the state file beforehand: %v, want [true true]", listed)
	}
}
