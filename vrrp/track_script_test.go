//go:build linux

package vrrp

import (
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gokeepalived/parser"
	"gokeepalived/tests/netns"
)

func trackScriptCfg(name string, interval, timeout time.Duration, args ...string) *parser.VRRPScript {
	return &parser.VRRPScript{
		Name: name, Script: &parser.Script{Args: args},
		Interval: parser.Duration(interval), Timeout: parser.Duration(timeout), Rise: 1, Fall: 1,
	}
}

func trackNewScript(t *testing.T, cfg *parser.VRRPScript) *ScriptTracker {
	t.Helper()
	st, err := NewScriptTracker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// trackWriteAtomic replaces path's content by renaming a new file over it, so that a
// script never reads a half-written file.
func trackWriteAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestTrackScriptResult checks how one run's ending is judged.
func TestTrackScriptResult(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		ok     bool
		detail string
	}{
		{"exit 0", []string{"/bin/sh", "-c", "exit 0"}, true, "exit status 0"},
		{"exit 3", []string{"/bin/sh", "-c", "exit 3"}, false, "exit status 3"},
		{"killed by a signal", []string{"/bin/sh", "-c", "kill -KILL $$"}, false, "killed by signal 9 (killed)"},
		{"cannot start", []string{"/nonexistent/script"}, false, "start /nonexistent/script"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := trackNewScript(t, trackScriptCfg("chk", time.Hour, 0, tc.args...))
			rec := &trackRecorder{}
			trackRun(t, rec, st.Run)
			s := rec.wait(t, 5*time.Second, "first result", func(s TrackStatus) bool { return !s.Init })
			if s.OK != tc.ok || !strings.Contains(s.Detail, tc.detail) || s.Kind != TrackScript || s.Name != "chk" {
				t.Errorf("status %+v; want OK %v, detail containing %q", s, tc.ok, tc.detail)
			}
			if first := rec.reports()[0]; !first.Init || first.OK {
				t.Errorf("first report %+v is not the init state", first)
			}
		})
	}
}

// TestTrackScriptRiseFall checks that it takes exactly fall consecutive failures to
// fail and rise consecutive successes to recover, counting runs in a log the script
// appends to. The hook reads the log on the tracker's goroutine, before the next run
// can start.
func TestTrackScriptRiseFall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, logf := filepath.Join(dir, "code"), filepath.Join(dir, "log")
	trackWriteAtomic(t, code, "0")
	cfg := trackScriptCfg("chk", 20*time.Millisecond, 0, "/bin/sh", "-c",
		`n=$(cat `+code+`); echo $n >> `+logf+`; exit $n`)
	cfg.Rise, cfg.Fall, cfg.Weight = 3, 2, -10
	st := trackNewScript(t, cfg)

	type seen struct {
		s    TrackStatus
		runs []string
	}
	ch := make(chan seen, 16)
	rec := &trackRecorder{hook: func(s TrackStatus) {
		b, _ := os.ReadFile(logf)
		ch <- seen{s, strings.Fields(string(b))}
	}}
	trackRun(t, rec, st.Run)
	next := func(what string) seen {
		t.Helper()
		select {
		case v := <-ch:
			return v
		case <-time.After(5 * time.Second):
			t.Fatalf("no report: %s", what)
			return seen{}
		}
	}
	// trailing counts the runs at the end of the log that returned code.
	trailing := func(runs []string, code string) int {
		n := 0
		for i := len(runs) - 1; i >= 0 && runs[i] == code; i-- {
			n++
		}
		return n
	}

	if v := next("init"); !v.s.Init || len(v.runs) != 0 || v.s.Weight != -10 {
		t.Fatalf("first report %+v after runs %v", v.s, v.runs)
	}
	if v := next("first success"); !v.s.OK || v.s.Init || len(v.runs) != 1 {
		t.Fatalf("after one success (init: one is enough): %+v after runs %v", v.s, v.runs)
	}
	trackWriteAtomic(t, code, "1")
	v := next("failure")
	if v.s.OK || v.s.Detail != "exit status 1" || trailing(v.runs, "1") != 2 {
		t.Fatalf("failed %+v after runs %v; want after exactly fall=2 failures", v.s, v.runs)
	}
	trackWriteAtomic(t, code, "0")
	v = next("recovery")
	if !v.s.OK || trailing(v.runs, "0") != 3 {
		t.Fatalf("recovered %+v after runs %v; want after exactly rise=3 successes", v.s, v.runs)
	}
}

// TestTrackScriptInitFail checks that init_fail starts failed, out of init, and needs
// rise successes.
func TestTrackScriptInitFail(t *testing.T) {
	t.Parallel()
	cfg := trackScriptCfg("chk", 20*time.Millisecond, 0, "/bin/true")
	cfg.InitFail, cfg.Rise = true, 2
	st := trackNewScript(t, cfg)
	rec := &trackRecorder{}
	trackRun(t, rec, st.Run)
	rec.wait(t, 5*time.Second, "OK", func(s TrackStatus) bool { return s.OK })
	all := rec.reports()
	if len(all) != 2 || all[0].OK || all[0].Init || all[0].Detail != "init_fail" {
		t.Errorf("reports %+v; want failed (not init) then OK", all)
	}
}

// trackGroupMembers lists the live (non-zombie) processes of a process group.
func trackGroupMembers(t *testing.T, pgid int) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			out = append(out, string(b[:i+1]))
		}
	}
	return out
}

// TestTrackScriptTimeout checks that a run over its timeout fails, that its whole
// process group dies (including a child that survives the leader), and that runs due
// meanwhile are skipped.
func TestTrackScriptTimeout(t *testing.T) {
	tests := []struct {
		name   string
		script string // $1: file to write the process group id to
		grace  time.Duration
		min    time.Duration // the failure cannot come earlier
	}{
		// The leader and its foreground sleep die of SIGTERM; a background child
		// ignoring SIGTERM is killed once the leader is reaped, long before the
		// grace ends.
		{"SIGTERM then the rest of the group", `echo $$ > "$1"; (trap '' TERM; exec sleep 100) & sleep 100`, time.Hour, 200 * time.Millisecond},
		// Everyone ignores SIGTERM: SIGKILL after the grace.
		{"SIGKILL after the grace", `trap '' TERM; echo $$ > "$1"; sleep 100 & sleep 100`, 100 * time.Millisecond, 300 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pgidFile := filepath.Join(t.TempDir(), "pgid")
			var logs trackLogBuffer
			cfg := trackScriptCfg("slow", 50*time.Millisecond, 200*time.Millisecond, "/bin/sh", "-c", tc.script, "sh", pgidFile)
			st, err := NewScriptTracker(cfg, logs.logger())
			if err != nil {
				t.Fatal(err)
			}
			st.grace = tc.grace
			rec := &trackRecorder{}
			begin := time.Now()
			trackRun(t, rec, st.Run)
			s := rec.wait(t, 5*time.Second, "timeout failure", func(s TrackStatus) bool { return !s.Init })
			if s.OK || s.Detail != "timed out after 200ms" {
				t.Errorf("status %+v; want a timeout failure", s)
			}
			if d := time.Since(begin); d < tc.min {
				t.Errorf("failure after %v, before timeout and grace", d)
			}
			b, err := os.ReadFile(pgidFile)
			if err != nil {
				t.Fatal(err)
			}
			pgid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pgid <= 1 {
				t.Fatalf("process group %q: %v", b, err)
			}
			netns.Eventually(t, 5*time.Second, "the script's process group is gone", func() bool {
				return len(trackGroupMembers(t, pgid)) == 0
			})
			if l := logs.String(); !strings.Contains(l, "Track script slow is already running, expect idle - skipping run") {
				t.Errorf("no skipped run logged:\n%s", l)
			}
		})
	}
}

// TestTrackScriptCancelKillsRun checks that ending Run kills a run in progress and
// its process group.
func TestTrackScriptCancelKillsRun(t *testing.T) {
	t.Parallel()
	pgidFile := filepath.Join(t.TempDir(), "pgid")
	st := trackNewScript(t, trackScriptCfg("slow", time.Hour, 0, "/bin/sh", "-c", `echo $$ > "$1"; sleep 100 & sleep 100`, "sh", pgidFile))
	rec := &trackRecorder{}
	stop := trackRun(t, rec, st.Run)
	var pgid int
	netns.Eventually(t, 5*time.Second, "the script starts", func() bool {
		b, err := os.ReadFile(pgidFile)
		if err != nil {
			return false
		}
		pgid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && len(trackGroupMembers(t, pgid)) >= 2
	})
	stop()
	// SIGKILL was sent to the whole group before Run returned; its members die as
	// soon as the kernel delivers it.
	netns.Eventually(t, 5*time.Second, "the script's process group is gone", func() bool {
		return len(trackGroupMembers(t, pgid)) == 0
	})
}

// TestTrackScriptUser runs a script as nobody and checks its user and group ids.
func TestTrackScriptUser(t *testing.T) {
	netns.RequireRoot(t)
	t.Parallel()
	nobody, err := user.Lookup("nobody")
	if err != nil {
		netns.SkipUnlessCI(t, "no user nobody: "+err.Error())
	}
	dir, err := os.MkdirTemp("", "gka-script-user")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ids")
	cfg := trackScriptCfg("who", time.Hour, 0, "/bin/sh", "-c", `echo $(id -u) $(id -g) $(id -G) > `+out)
	cfg.Script.User = "nobody"
	st := trackNewScript(t, cfg)
	rec := &trackRecorder{}
	trackRun(t, rec, st.Run)
	if s := rec.wait(t, 5*time.Second, "result", func(s TrackStatus) bool { return !s.Init }); !s.OK {
		t.Fatalf("script as nobody failed: %+v", s)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := nobody.Uid + " " + nobody.Gid + " " + nobody.Gid
	if got := strings.TrimSpace(string(b)); got != want {
		t.Errorf("uid gid groups = %q, want %q", got, want)
	}

	if _, err := NewScriptTracker(&parser.VRRPScript{Name: "x", Script: &parser.Script{Args: []string{"/bin/true"}, User: "no-such-user-gka"}}, nil); err == nil {
		t.Error("unknown user accepted")
	}
}
