package check

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

// miscChecker is a MISC_CHECK running script with sh.
func miscChecker(script string, timeout time.Duration, dynamic bool) *parser.Checker {
	return &parser.Checker{
		Type:   "MISC_CHECK",
		Misc:   &parser.MiscCheck{Path: &parser.Script{Args: []string{"/bin/sh", "-c", script}}, Timeout: parser.Duration(timeout), Dynamic: dynamic},
		Timing: &parser.CheckTiming{DelayLoop: parser.Duration(10 * time.Second)},
	}
}

func TestMiscProbe(t *testing.T) {
	weight := func(w int) *int { return &w }
	tests := []struct {
		name       string
		script     string
		dynamic    bool
		wantOK     bool
		wantWeight *int
		wantErr    string
	}{
		{"exit 0", "exit 0", false, true, nil, ""},
		{"exit 1", "exit 1", false, false, nil, "exit status 1"},
		{"exit 3", "exit 3", false, false, nil, "exit status 3"},
		{"dynamic exit 0: weight unchanged", "exit 0", true, true, nil, ""},
		{"dynamic exit 1", "exit 1", true, false, nil, "exit status 1"},
		{"dynamic exit 2: weight 0", "exit 2", true, true, weight(0), ""},
		{"dynamic exit 12: weight 10", "exit 12", true, true, weight(10), ""},
		{"dynamic exit 255: weight 253", "exit 255", true, true, weight(253), ""},
		{"killed by a signal", "kill -9 $$", false, false, nil, "signal: killed"},
		{"output is discarded", "echo out; echo err >&2; exit 0", false, true, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runProbe(t, mustNew(t, miscChecker(tc.script, 5*time.Second, tc.dynamic)), 5*time.Second)
			if r.OK != tc.wantOK {
				t.Fatalf("OK = %v (%v), want %v", r.OK, r.Err, tc.wantOK)
			}
			if tc.wantErr != "" && !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", r.Err, tc.wantErr)
			}
			switch {
			case (r.Weight == nil) != (tc.wantWeight == nil):
				t.Errorf("weight %v, want %v", r.Weight, tc.wantWeight)
			case r.Weight != nil && *r.Weight != *tc.wantWeight:
				t.Errorf("weight %d, want %d", *r.Weight, *tc.wantWeight)
			}
		})
	}
	t.Run("missing program", func(t *testing.T) {
		c := miscChecker("", time.Second, false)
		c.Misc.Path.Args = []string{"/nonexistent/check-script"}
		r := runProbe(t, mustNew(t, c), time.Second)
		if r.OK || !strings.Contains(r.Err.Error(), "no such file") {
			t.Fatalf("OK=%v err=%v", r.OK, r.Err)
		}
	})
}

// procGone reports whether process pid has exited (or is a zombie nobody reaps).
func procGone(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// pid (comm) STATE ...
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// waitGone waits (at most 10 s) until the process whose pid is in file has exited.
func waitGone(t *testing.T, file string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var pid int
	for pid == 0 {
		b, _ := os.ReadFile(file)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", file)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for !procGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d of the timed-out script still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMiscProbeTimeoutKillsGroup(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		timeout  time.Duration // misc_timeout
		deadline time.Duration // ctx's
	}{
		// The script and a background child in its process group.
		{"misc_timeout", "sleep 30 & echo $! > %s; wait", 300 * time.Millisecond, 5 * time.Second},
		{"ctx deadline first", "sleep 30 & echo $! > %s; wait", 5 * time.Second, 300 * time.Millisecond},
		// Both ignore SIGTERM (an ignored signal stays ignored across exec): SIGKILL.
		{"SIGTERM ignored", "trap '' TERM; sleep 30 & echo $! > %s; wait", 300 * time.Millisecond, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pid")
			p := mustNew(t, miscChecker(strings.ReplaceAll(tc.script, "%s", pidFile), tc.timeout, false)).(*miscProbe)
			p.grace = 200 * time.Millisecond
			r := runProbe(t, p, min(tc.timeout, tc.deadline))
			if r.OK || !strings.Contains(r.Err.Error(), "process group sent SIGTERM") {
				t.Fatalf("OK=%v err=%v", r.OK, r.Err)
			}
			waitGone(t, pidFile)
		})
	}
}

func TestMiscProbeTimeoutDefaultsToDelayLoop(t *testing.T) {
	c := miscChecker("sleep 30", 0, false)
	c.Timing.DelayLoop = parser.Duration(200 * time.Millisecond)
	p := mustNew(t, c).(*miscProbe)
	if p.timeout != 200*time.Millisecond {
		t.Fatalf("timeout %v, want delay_loop", p.timeout)
	}
	if r := runProbe(t, p, 200*time.Millisecond); r.OK {
		t.Fatal("a script past its timeout passed")
	}
}

func TestMiscProbeUser(t *testing.T) {
	if os.Geteuid() != 0 {
		netns.SkipUnlessCI(t, "needs root to change user")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		netns.SkipUnlessCI(t, "no user nobody")
	}
	c := miscChecker(`test "$(id -u)" = "`+u.Uid+`" && test "$(id -g)" = "`+u.Gid+`"`, 5*time.Second, false)
	c.Misc.Path.User = "nobody"
	if r := runProbe(t, mustNew(t, c), 5*time.Second); !r.OK {
		t.Fatalf("as nobody: %v", r.Err)
	}
	c = miscChecker(`test "$(id -u)" = "`+u.Uid+`" && test "$(id -g)" = 0`, 5*time.Second, false)
	c.Misc.Path.User, c.Misc.Path.Group = "nobody", "root"
	if r := runProbe(t, mustNew(t, c), 5*time.Second); !r.OK {
		t.Fatalf("as nobody:root: %v", r.Err)
	}
	c.Misc.Path.User = "no-such-user-here"
	if _, err := New(c, nil, nil); err == nil || !strings.Contains(err.Error(), "no-such-user-here") {
		t.Errorf("unknown user: %v", err)
	}
}
