package main

import (
	"bytes"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"gokeepalived/ipvs"
	"gokeepalived/parser"
	"gokeepalived/vrrp"
)

func syncConf(t *testing.T, global string) *parser.Config {
	t.Helper()
	conf := "global_defs {\n " + global + "\n}\n" +
		"vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n" +
		"vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n priority 100\n virtual_ipaddress {\n 10.0.0.2\n }\n}\n"
	cfg, ds := parser.LoadBytes("t.conf", []byte(conf), parser.Options{ConfigID: "t", Getenv: func(string) string { return "" }})
	if ds.ExitCode() != parser.ExitOK {
		t.Fatalf("config: %v", ds)
	}
	return cfg
}

// callLog collects the fake kernel's calls, which the worker makes asynchronously.
type callLog struct {
	f   *ipvs.FakeSync
	got []string
}

// wait waits until the calls since the last wait are want (5 s at most); a call that
// should not have happened shows up as a mismatch.
func (l *callLog) wait(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.got = append(l.got, l.f.Calls()...)
		if slices.Equal(l.got, want) {
			l.got = nil
			return
		}
		if len(l.got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("kernel calls %q, want %q", l.got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSyncDaemonsFollowInstance: backup from the start, master while the named instance
// is MASTER (other instances and the end of an instance change nothing), a reload that
// changes the parameters restarts it, one that drops lvs_sync_daemon stops it.
func TestSyncDaemonsFollowInstance(t *testing.T) {
	f := &ipvs.FakeSync{}
	calls := &callLog{f: f}
	var logs bytes.Buffer
	s := newSyncDaemons(syncConf(t, "lvs_sync_daemon eth1 VI_1"), func() (ipvs.SyncKernel, error) { return f, nil }, slog.New(slog.NewTextHandler(&logs, nil)))
	calls.wait(t, "start backup eth1 id 51")

	s.transition(vrrp.Transition{Instance: "VI_2", From: vrrp.StateBackup, To: vrrp.StateMaster})
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateInit, To: vrrp.StateBackup})
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster})
	calls.wait(t, "stop backup", "start master eth1 id 51")
	if d := s.status(); d == nil || *d != (syncDaemonDoc{Interface: "eth1", Instance: "VI_1", SyncID: 51, Role: "master"}) {
		t.Errorf("status %+v", d)
	}
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateMaster, To: vrrp.StateFault})
	calls.wait(t, "stop master", "start backup eth1 id 51")
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateFault, To: vrrp.StateMaster})
	calls.wait(t, "stop backup", "start master eth1 id 51")
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateMaster, To: vrrp.StateInit})

	s.apply(syncConf(t, "lvs_sync_daemon eth1 VI_1").Global.LVSSyncDaemon)
	s.apply(syncConf(t, "lvs_sync_daemon eth1 VI_1 id 9").Global.LVSSyncDaemon)
	calls.wait(t, "stop master", "start master eth1 id 9")
	s.apply(nil)
	calls.wait(t, "stop master")
	if d := s.status(); d != nil {
		t.Errorf("status without lvs_sync_daemon: %+v", d)
	}
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster})
	s.stop()
	calls.wait(t)
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs.String())
	}
}

// TestSyncDaemonsReloadWhileMaster: a reload that adds lvs_sync_daemon for an instance
// that is MASTER starts a master at once; one that moves it to a BACKUP instance makes
// it a backup; stop stops it.
func TestSyncDaemonsReloadWhileMaster(t *testing.T) {
	f := &ipvs.FakeSync{}
	calls := &callLog{f: f}
	s := newSyncDaemons(syncConf(t, ""), func() (ipvs.SyncKernel, error) { return f, nil }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.stateOf = func(name string) vrrp.State {
		if name == "VI_2" {
			return vrrp.StateMaster
		}
		return vrrp.StateBackup
	}
	s.apply(syncConf(t, "lvs_sync_daemon eth2 VI_2").Global.LVSSyncDaemon)
	calls.wait(t, "start master eth2 id 52")
	s.apply(syncConf(t, "lvs_sync_daemon eth2 VI_1 id 52").Global.LVSSyncDaemon)
	calls.wait(t, "stop master", "start backup eth2 id 52")
	s.stop()
	calls.wait(t, "stop backup")
}

// TestSyncDaemonsWithoutIPVS: a kernel without IPVS is an error in the log, and the
// daemon goes on without a sync daemon.
func TestSyncDaemonsWithoutIPVS(t *testing.T) {
	var logs bytes.Buffer
	s := newSyncDaemons(syncConf(t, "lvs_sync_daemon eth1 VI_1"), func() (ipvs.SyncKernel, error) { return nil, ipvs.ErrNoIPVS }, slog.New(slog.NewTextHandler(&logs, nil)))
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster})
	d := s.status()
	if d == nil || d.Role != "" || !strings.Contains(d.Error, "IPVS is not available") {
		t.Errorf("status %+v", d)
	}
	var text strings.Builder
	writeStatusText(&text, statusDoc{SyncDaemon: d})
	if want := "LVS sync daemon on eth1 for VI_1 (syncid 51): not running; last change failed: IPVS is not available"; !strings.HasPrefix(text.String(), want) {
		t.Errorf("status text %q, want it to start with %q", text.String(), want)
	}
	s.stop()
	if !strings.Contains(logs.String(), "cannot run the IPVS sync daemon") || !strings.Contains(logs.String(), "IPVS is not available") {
		t.Errorf("log:\n%s", logs.String())
	}
}

func TestSyncDaemonChange(t *testing.T) {
	a := syncConf(t, "lvs_sync_daemon eth1 VI_1").Global.LVSSyncDaemon
	b := syncConf(t, "lvs_sync_daemon eth1 VI_1 ttl 2").Global.LVSSyncDaemon
	tests := []struct {
		old, next *parser.LVSSyncDaemon
		want      string
	}{
		{nil, nil, ""},
		{a, syncConf(t, "lvs_sync_daemon eth1 VI_1").Global.LVSSyncDaemon, ""},
		{nil, a, "lvs_sync_daemon: + eth1 for VI_1 (sync daemon (mcast=eth1, syncid=51))"},
		{a, nil, "lvs_sync_daemon: - eth1 for VI_1 (sync daemon (mcast=eth1, syncid=51))"},
		{a, b, "lvs_sync_daemon: ~ eth1 for VI_1 (sync daemon (mcast=eth1, syncid=51)) -> eth1 for VI_1 (sync daemon (mcast=eth1, syncid=51, ttl=2))"},
	}
	for i, tt := range tests {
		if got := syncDaemonChange(tt.old, tt.next); got != tt.want {
			t.Errorf("%d: %q, want %q", i, got, tt.want)
		}
	}
}
