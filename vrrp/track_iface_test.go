//go:build linux

package vrrp

import (
	"strings"
	"testing"
	"time"

	"gokeepalived/tests/netns"
)

// trackIfaceIn starts an interface tracker made inside ns.
func trackIfaceIn(t *testing.T, ns *netns.NS, ifname string) *trackRecorder {
	t.Helper()
	var it *InterfaceTracker
	if err := ns.Do(func() (err error) {
		it, err = NewInterfaceTracker(ifname, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rec := &trackRecorder{}
	trackRun(t, rec, it.Run)
	return rec
}

func trackWaitIface(t *testing.T, rec *trackRecorder, up bool, detail string) {
	t.Helper()
	rec.wait(t, 5*time.Second, "interface "+detail, func(s TrackStatus) bool {
		return s.OK == up && strings.Contains(s.Detail, detail)
	})
}

// TestTrackInterface follows a veth through administrative and carrier changes and
// deletion.
func TestTrackInterface(t *testing.T) {
	t.Parallel()
	ns := netns.New(t, "trif")
	ns.Run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	ns.Run("ip", "link", "set", "eth0", "up")
	ns.Run("ip", "link", "set", "eth0p", "up")
	rec := trackIfaceIn(t, ns, "eth0")
	s := rec.wait(t, 5*time.Second, "up", func(s TrackStatus) bool { return s.OK })
	if s.Kind != TrackInterface || s.Name != "eth0" || s.Weight != 0 {
		t.Errorf("status %+v", s)
	}
	steps := []struct {
		cmd    []string
		up     bool
		detail string
	}{
		{[]string{"ip", "link", "set", "eth0p", "down"}, false, "not running"}, // no carrier
		{[]string{"ip", "link", "set", "eth0p", "up"}, true, "up"},
		{[]string{"ip", "link", "set", "eth0", "down"}, false, "administratively down"},
		{[]string{"ip", "link", "set", "eth0", "up"}, true, "up"},
		{[]string{"ip", "link", "del", "eth0"}, false, "deleted"},
	}
	for _, st := range steps {
		ns.Run(st.cmd...)
		trackWaitIface(t, rec, st.up, st.detail)
	}
}

// TestTrackInterfaceByName tracks a name: missing at start, created later, renamed
// away and back.
func TestTrackInterfaceByName(t *testing.T) {
	t.Parallel()
	ns := netns.New(t, "trifn")
	rec := trackIfaceIn(t, ns, "if0")
	trackWaitIface(t, rec, false, "does not exist")
	steps := []struct {
		cmd    []string
		up     bool
		detail string
	}{
		{[]string{"ip", "link", "add", "if0", "type", "veth", "peer", "name", "peer0"}, false, "administratively down"},
		{[]string{"ip", "link", "set", "peer0", "up"}, false, "administratively down"},
		{[]string{"ip", "link", "set", "if0", "up"}, true, "up"},
		{[]string{"ip", "link", "set", "if0", "down"}, false, "administratively down"},
		{[]string{"ip", "link", "set", "if0", "name", "if1"}, false, "renamed to if1"},
		{[]string{"ip", "link", "set", "if1", "name", "if0"}, false, "administratively down"},
		{[]string{"ip", "link", "set", "if0", "up"}, true, "up"},
	}
	for _, st := range steps {
		ns.Run(st.cmd...)
		trackWaitIface(t, rec, st.up, st.detail)
	}
}
