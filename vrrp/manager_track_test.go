package vrrp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gokeepalived/parser"
)

// fakeSensors hands out test-controlled sensors: Set changes a tracker's status.
type fakeSensors struct {
	mu      sync.Mutex
	reports map[trackKey][]func(TrackStatus)
	initial map[trackKey]TrackStatus
}

func newFakeSensors() *fakeSensors {
	return &fakeSensors{reports: map[trackKey][]func(TrackStatus){}, initial: map[trackKey]TrackStatus{}}
}

type fakeSensor struct {
	fs  *fakeSensors
	key trackKey
}

func (s fakeSensor) Run(ctx context.Context, report func(TrackStatus)) {
	s.fs.mu.Lock()
	s.fs.reports[s.key] = append(s.fs.reports[s.key], report)
	st, ok := s.fs.initial[s.key]
	s.fs.mu.Unlock()
	if !ok {
		st = TrackStatus{Kind: s.key.kind, Name: s.key.name, OK: true}
	}
	report(st)
	<-ctx.Done()
}

func (fs *fakeSensors) factory(kind TrackerKind, name string, _ *parser.Config, _ *slog.Logger) (Sensor, error) {
	return fakeSensor{fs, trackKey{kind, name}}, nil
}

// Set reports a new status to every instance using the tracker.
func (fs *fakeSensors) Set(kind TrackerKind, name string, ok bool) {
	fs.mu.Lock()
	rs := fs.reports[trackKey{kind, name}]
	fs.mu.Unlock()
	for _, r := range rs {
		r(TrackStatus{Kind: kind, Name: name, OK: ok})
	}
}

func startTracked(t *testing.T, link *FakeLink, last byte, fs *fakeSensors, text string) *director {
	t.Helper()
	cfg, ds := parser.LoadBytes("fake.conf", []byte(text), parser.Options{ConfigID: "x"})
	if ds.ExitCode() != parser.ExitOK {
		t.Fatalf("config: %v", ds)
	}
	d := &director{addr: netip.AddrFrom4([4]byte{10, 0, 0, last}), addrs: &FakeAddrs{}, ann: &FakeAnnouncer{}}
	d.mgr = NewManager(Kernel{
		Listen: func(ifname string, f Family, opts ConnOptions) (AdvertConn, error) {
			return link.Listen(f, opts, d.addr)
		},
		Addrs: d.addrs, Announcer: d.ann,
		PrimaryAddr: func(string, Family) (netip.Addr, error) { return d.addr, nil },
		NewSensor:   fs.factory,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := d.mgr.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.mgr.Stop)
	return d
}

func trackedConfig(prio int) string {
	return fmt.Sprintf(`
global_defs {
    enable_script_security
}
vrrp_script chk {
    script /bin/true
    weight -60
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    version 3
    advert_int 0.05
    priority %d
    track_script {
        chk
    }
    virtual_ipaddress {
        192.168.71.205/24
    }
}
`, prio)
}

// TestTrackerWeightMovesMaster: a failing weighted script drops the master's priority
// (150 - 60 = 90) below the backup's 100, which then preempts; the breakdown says why.
func TestTrackerWeightMovesMaster(t *testing.T) {
	link := NewFakeLink()
	f1, f2 := newFakeSensors(), newFakeSensors()
	d1 := startTracked(t, link, 1, f1, trackedConfig(150))
	d2 := startTracked(t, link, 2, f2, trackedConfig(100))
	eventually(t, 3*time.Second, "d1 master", func() bool { return d1.state() == StateMaster })
	f1.Set(TrackScript, "chk", false)
	eventually(t, 3*time.Second, "d2 takes over", func() bool { return d2.state() == StateMaster && d1.state() == StateBackup })
	st := d1.mgr.Status()[0]
	if st.Priority != 90 {
		t.Errorf("effective priority %d, want 90", st.Priority)
	}
	found := false
	for _, c := range st.Trackers {
		if c.Kind == TrackScript && c.Name == "chk" && c.Delta == -60 {
			found = true
		}
	}
	if !found {
		t.Errorf("breakdown lacks track_script chk -60: %+v", st.Trackers)
	}
	f1.Set(TrackScript, "chk", true)
	eventually(t, 3*time.Second, "d1 preempts back", func() bool { return d1.state() == StateMaster })
}

// TestInterfaceDownFaults: the instance's own interface going down is a FAULT (keepalived
// §3), which releases the VIP; coming back up makes it BACKUP and then master again.
func TestInterfaceDownFaults(t *testing.T) {
	link := NewFakeLink()
	f1, f2 := newFakeSensors(), newFakeSensors()
	d1 := startTracked(t, link, 1, f1, trackedConfig(150))
	d2 := startTracked(t, link, 2, f2, trackedConfig(100))
	eventually(t, 3*time.Second, "d1 master", func() bool { return d1.state() == StateMaster })
	f1.Set(TrackInterface, "eth0", false)
	eventually(t, 3*time.Second, "d1 FAULT, d2 master", func() bool {
		return d1.state() == StateFault && d2.state() == StateMaster && !d1.holdsVIP()
	})
	f1.Set(TrackInterface, "eth0", true)
	eventually(t, 3*time.Second, "d1 master again", func() bool { return d1.state() == StateMaster })
}

func syncConfig(prio int) string {
	inst := func(name string, vrid int, vip string) string {
		return fmt.Sprintf(`
vrrp_instance %s {
    interface eth0
    virtual_router_id %d
    version 3
    advert_int 0.05
    priority %d
    virtual_ipaddress {
        %s
    }
}
`, name, vrid, prio, vip)
	}
	return `
vrrp_sync_group G {
    group {
        VI_OUT
        VI_IN
    }
    track_interface {
        eth1
    }
}
` + inst("VI_OUT", 51, "192.168.71.205/24") + inst("VI_IN", 52, "192.168.72.254/24")
}

// TestSyncGroupMovesTogether: a fault on one director's inside link takes both members
// of its sync group to FAULT, so the other director holds both addresses.
func TestSyncGroupMovesTogether(t *testing.T) {
	link := NewFakeLink()
	f1, f2 := newFakeSensors(), newFakeSensors()
	d1 := startTracked(t, link, 1, f1, syncConfig(150))
	d2 := startTracked(t, link, 2, f2, syncConfig(100))
	states := func(d *director) (State, State) { s := d.mgr.Status(); return s[0].State, s[1].State }
	eventually(t, 3*time.Second, "d1 master of both", func() bool {
		a, b := states(d1)
		return a == StateMaster && b == StateMaster
	})
	f1.Set(TrackInterface, "eth1", false)
	eventually(t, 3*time.Second, "d2 master of both", func() bool {
		a, b := states(d2)
		x, y := states(d1)
		return a == StateMaster && b == StateMaster && x == StateFault && y == StateFault
	})
	f1.Set(TrackInterface, "eth1", true)
	eventually(t, 3*time.Second, "d1 master of both again", func() bool {
		a, b := states(d1)
		return a == StateMaster && b == StateMaster
	})
}
