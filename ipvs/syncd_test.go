package ipvs

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"gokeepalived/parser"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func expectCalls(t *testing.T, f *FakeSync, want ...string) {
	t.Helper()
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

func daemonsOf(t *testing.T, f *FakeSync) []SyncDaemon {
	t.Helper()
	ds, err := f.SyncDaemons()
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestSyncControllerFollowsVRRP walks keepalived's sequence: backup at start, master
// on becoming MASTER (the backup daemon stopped first), backup again on leaving it, the
// current role's daemon stopped at exit.
func TestSyncControllerFollowsVRRP(t *testing.T) {
	f := &FakeSync{}
	c := NewSyncController(f, SyncDaemon{Interface: "eth1", SyncID: 51}, quietLog())
	steps := []struct {
		role SyncState
		want []string
	}{
		{SyncBackup, []string{"start backup eth1 id 51"}},
		{SyncBackup, nil}, // already so: nothing
		{SyncMaster, []string{"stop backup", "start master eth1 id 51"}},
		{SyncBackup, []string{"stop master", "start backup eth1 id 51"}},
	}
	for i, s := range steps {
		if err := c.SetRole(s.role); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		expectCalls(t, f, s.want...)
		if ds := daemonsOf(t, f); len(ds) != 1 || ds[0].State != s.role {
			t.Fatalf("step %d: daemons %v, want one %s", i, ds, s.role)
		}
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, f, "stop backup")
	if ds := daemonsOf(t, f); len(ds) != 0 {
		t.Errorf("after Stop: %v", ds)
	}
	if err := c.SetRole(SyncMaster); err != nil || len(f.Calls()) != 0 {
		t.Errorf("SetRole after Stop changed the kernel (err %v)", err)
	}
}

// TestSyncControllerAdopts: a restart that finds its daemon running with the right
// parameters (as the kernel reports them, defaults filled in) leaves it alone; one with
// other parameters is restarted.
func TestSyncControllerAdopts(t *testing.T) {
	f := &FakeSync{}
	cfg := SyncDaemon{Interface: "eth1", SyncID: 5, TTL: 2}
	if err := NewSyncController(f, cfg, quietLog()).SetRole(SyncMaster); err != nil {
		t.Fatal(err)
	}
	f.Calls()
	if err := NewSyncController(f, cfg, quietLog()).SetRole(SyncMaster); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, f) // adopted

	c := NewSyncController(f, SyncDaemon{Interface: "eth1", SyncID: 6}, quietLog())
	if err := c.SetRole(SyncMaster); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, f, "stop master", "start master eth1 id 6")

	// A reload that changes the group restarts it; one that changes nothing does not.
	g := netip.MustParseAddr("239.0.0.9")
	if err := c.Reconfigure(SyncDaemon{Interface: "eth1", SyncID: 6, Group: g}); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, f, "stop master", "start master eth1 id 6")
	if ds := daemonsOf(t, f); len(ds) != 1 || ds[0].Group != g || ds[0].Port != fakeSyncPort {
		t.Errorf("daemons %v", ds)
	}
	if err := c.Reconfigure(SyncDaemon{Interface: "eth1", SyncID: 6, Group: g}); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, f)
}

// TestSyncControllerRetries: a failed start is reported and retried until it works; a
// later role change or Stop ends the retries.
func TestSyncControllerRetries(t *testing.T) {
	f := &FakeSync{}
	c := NewSyncController(f, SyncDaemon{Interface: "eth9", SyncID: 1}, quietLog())
	c.retryAfter = 20 * time.Millisecond
	boom := errors.New("no such device")
	f.SetFail("start", boom)
	if err := c.SetRole(SyncBackup); !errors.Is(err, boom) || !errors.Is(c.Err(), boom) {
		t.Fatalf("SetRole = %v, Err = %v; want %v", err, c.Err(), boom)
	}
	f.SetFail("start", nil)
	deadline := time.Now().Add(5 * time.Second)
	for len(daemonsOf(t, f)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the failed start was not retried")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err after the retry worked: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestSyncDaemonOf(t *testing.T) {
	got := SyncDaemonOf(&parser.LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 200, MaxLen: 1400, Port: 8849, TTL: 3, Group: netip.MustParseAddr("ff02::81")})
	want := SyncDaemon{Interface: "eth1", SyncID: 200, MaxLen: 1400, Port: 8849, TTL: 3, Group: netip.MustParseAddr("ff02::81")}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if s := want.String(); s != "sync daemon (mcast=eth1, syncid=200, maxlen=1400, group=ff02::81, port=8849, ttl=3)" {
		t.Errorf("String() = %q", s)
	}
}
