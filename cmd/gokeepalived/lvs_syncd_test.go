package main

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

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

func wantCalls(t *testing.T, f *ipvs.FakeSync, want ...string) {
	t.Helper()
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Errorf("kernel calls %q, want %q", got, want)
	}
}

// TestSyncDaemonsFollowInstance: backup from the start, master while the named instance
// is MASTER (other instances and the end of an instance change nothing), a reload that
// changes the parameters restarts it, one that drops lvs_sync_daemon stops it.
func TestSyncDaemonsFollowInstance(t *testing.T) {
	f := &ipvs.FakeSync{}
	var logs bytes.Buffer
	s := newSyncDaemons(syncConf(t, "lvs_sync_daemon eth1 VI_1"), func() (ipvs.SyncKernel, error) { return f, nil }, slog.New(slog.NewTextHandler(&logs, nil)))
	wantCalls(t, f, "start backup eth1 id 51")

	s.transition(vrrp.Transition{Instance: "VI_2", From: vrrp.StateBackup, To: vrrp.StateMaster})
	wantCalls(t, f)
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateInit, To: vrrp.StateBackup})
	wantCalls(t, f)
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster})
	wantCalls(t, f, "stop backup", "start master eth1 id 51")
	if d := s.status(); d == nil || *d != (syncDaemonDoc{Interface: "eth1", Instance: "VI_1", SyncID: 51, Role: "master"}) {
		t.Errorf("status %+v", d)
	}
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateMaster, To: vrrp.StateFault})
	wantCalls(t, f, "stop master", "start backup eth1 id 51")
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateFault, To: vrrp.StateMaster})
	wantCalls(t, f, "stop backup", "start master eth1 id 51")
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateMaster, To: vrrp.StateInit})
	wantCalls(t, f)

	s.apply(syncConf(t, "lvs_sync_daemon eth1 VI_1").Global.LVSSyncDaemon)
	wantCalls(t, f)
	s.apply(syncConf(t, "lvs_sync_daemon eth1 VI_1 id 9").Global.LVSSyncDaemon)
	wantCalls(t, f, "stop master", "start master eth1 id 9")
	s.apply(nil)
	wantCalls(t, f, "stop master")
	if d := s.status(); d != nil {
		t.Errorf("status without lvs_sync_daemon: %+v", d)
	}
	s.transition(vrrp.Transition{Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster})
	s.stop()
	wantCalls(t, f)

	// A reload that adds it starts it as a backup; stop stops it.
	s.apply(syncConf(t, "lvs_sync_daemon eth2 VI_2").Global.LVSSyncDaemon)
	wantCalls(t, f, "start backup eth2 id 52")
	s.stop()
	wantCalls(t, f, "stop backup")
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs.String())
	}
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
