//go:build linux

package vrrp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gokeepalived/parser"
	"gokeepalived/tests/netns"
)

// trackSleepBinary copies sleep(1) to a file named name, so that its processes have
// a name no other process has.
func trackSleepBinary(t *testing.T, name string) string {
	t.Helper()
	src, err := exec.LookPath("sleep")
	if err != nil {
		netns.SkipUnlessCI(t, "no sleep binary: "+err.Error())
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// trackStartProc starts bin with args; the process is killed and reaped when the
// test ends.
func trackStartProc(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	// Wait until /proc shows the new program's command line: the tests compare it, and
	// a busy machine was seen to show another one right after Start.
	want := strings.Join(append([]string{bin}, args...), "\x00") + "\x00"
	cmdline := fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(cmdline); err == nil && string(b) == want {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(cmdline)
			t.Fatalf("%s is %q after 10 s, want %q", cmdline, b, want)
		}
	}
	return cmd
}

func trackUniqueName(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
}

func trackNewProcess(t *testing.T, cfg *parser.TrackProcess) *ProcessTracker {
	t.Helper()
	pt, err := NewProcessTracker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	pt.interval = 20 * time.Millisecond
	return pt
}

// TestTrackProcessQuorum counts processes by name against quorum..quorum_max; a
// zombie does not count.
func TestTrackProcessQuorum(t *testing.T) {
	t.Parallel()
	name := trackUniqueName("gkaq")
	bin := trackSleepBinary(t, name)
	qmax := 3
	pt := trackNewProcess(t, &parser.TrackProcess{Name: "p", Process: name, Quorum: 2, QuorumMax: &qmax, Weight: 5})
	rec := &trackRecorder{}
	trackRun(t, rec, pt.Run)
	if s := rec.wait(t, 5*time.Second, "first report", func(TrackStatus) bool { return true }); s.OK || s.Value != 0 || s.Weight != 5 {
		t.Fatalf("first report %+v; want no quorum with 0 processes", s)
	}
	var procs []*exec.Cmd
	for range 2 {
		procs = append(procs, trackStartProc(t, bin, "100"))
	}
	rec.wait(t, 5*time.Second, "quorum with 2", func(s TrackStatus) bool { return s.OK && s.Value == 2 })
	for range 2 {
		procs = append(procs, trackStartProc(t, bin, "100"))
	}
	rec.wait(t, 5*time.Second, "quorum lost with 4 > quorum_max 3", func(s TrackStatus) bool { return !s.OK && s.Value == 4 })
	// Killed but not reaped: zombies, which must not count.
	for _, p := range procs[:2] {
		if err := p.Process.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	rec.wait(t, 5*time.Second, "quorum with 2 live and 2 zombies", func(s TrackStatus) bool { return s.OK && s.Value == 2 })
	for _, p := range procs {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	rec.wait(t, 5*time.Second, "quorum lost with none", func(s TrackStatus) bool { return !s.OK && s.Value == 0 })
}

// TestTrackProcessMatch checks name and command-line matching against one process.
func TestTrackProcessMatch(t *testing.T) {
	t.Parallel()
	long := trackUniqueName("gkamatch-long-name-") // longer than the 15 bytes of comm
	bin := trackSleepBinary(t, long)
	proc := trackStartProc(t, bin, "100", "200")
	dir := filepath.Join("/proc", fmt.Sprint(proc.Process.Pid))
	tests := []struct {
		name string
		cfg  parser.TrackProcess
		want bool
	}{
		{"name truncated like comm", parser.TrackProcess{Process: long}, true},
		{"name is not the path", parser.TrackProcess{Process: bin}, false},
		{"other name", parser.TrackProcess{Process: "gkamatch-other"}, false},
		{"full_command compares argv[0] only", parser.TrackProcess{Process: bin, FullCommand: true}, true},
		{"full_command with the name", parser.TrackProcess{Process: long, FullCommand: true}, false},
		{"exact parameters", parser.TrackProcess{Process: bin, Params: []string{"100", "200"}, ParamMatch: "exact", FullCommand: true}, true},
		{"exact: missing parameter", parser.TrackProcess{Process: bin, Params: []string{"100"}, ParamMatch: "exact", FullCommand: true}, false},
		{"exact: no parameters", parser.TrackProcess{Process: bin, ParamMatch: "exact", FullCommand: true}, false},
		{"partial: first parameters", parser.TrackProcess{Process: bin, Params: []string{"100"}, ParamMatch: "partial", FullCommand: true}, true},
		{"partial: whole parameters only", parser.TrackProcess{Process: bin, Params: []string{"10"}, ParamMatch: "partial", FullCommand: true}, false},
		{"partial: too many", parser.TrackProcess{Process: bin, Params: []string{"100", "200", "300"}, ParamMatch: "partial", FullCommand: true}, false},
		{"initial: last parameter a prefix", parser.TrackProcess{Process: bin, Params: []string{"100", "2"}, ParamMatch: "initial", FullCommand: true}, true},
		{"initial: first parameter a prefix", parser.TrackProcess{Process: bin, Params: []string{"1"}, ParamMatch: "initial", FullCommand: true}, true},
		{"initial: mismatch", parser.TrackProcess{Process: bin, Params: []string{"100", "3"}, ParamMatch: "initial", FullCommand: true}, false},
	}
	for _, tc := range tests {
		tc.cfg.Name = "p"
		pt, err := NewProcessTracker(&tc.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := pt.matches(dir); got != tc.want {
			t.Errorf("%s: match %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTrackProcessDelay checks fork_delay and terminate_delay: changes are reported
// only once they have lasted the delay, and a process that lives shorter than
// fork_delay is never reported.
func TestTrackProcessDelay(t *testing.T) {
	t.Parallel()
	name := trackUniqueName("gkad")
	bin := trackSleepBinary(t, name)
	const fork, term = 300 * time.Millisecond, 200 * time.Millisecond
	pt := trackNewProcess(t, &parser.TrackProcess{
		Name: "p", Process: name, Quorum: 1,
		ForkDelay: parser.Duration(fork), TerminateDelay: parser.Duration(term),
	})
	rec := &trackRecorder{}
	trackRun(t, rec, pt.Run)
	rec.wait(t, 5*time.Second, "first report", func(TrackStatus) bool { return true })

	begin := time.Now()
	long := trackStartProc(t, bin, "100")
	rec.wait(t, 5*time.Second, "quorum", func(s TrackStatus) bool { return s.OK })
	if d := time.Since(begin); d < fork {
		t.Errorf("quorum reported %v after the fork, before fork_delay %v", d, fork)
	}
	begin = time.Now()
	if err := long.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = long.Wait()
	rec.wait(t, 5*time.Second, "quorum lost", func(s TrackStatus) bool { return !s.OK })
	if d := time.Since(begin); d < term {
		t.Errorf("loss reported %v after the kill, before terminate_delay %v", d, term)
	}

	// A bounce: a process living 30 ms, well below fork_delay, is never reported.
	// The next long-lived process is, once. (A gap shorter than the scan interval
	// between the two is not seen: the second then counts from the first.)
	short := trackStartProc(t, bin, "0.03")
	if err := short.Wait(); err != nil {
		t.Fatal(err)
	}
	trackStartProc(t, bin, "100")
	rec.wait(t, 5*time.Second, "quorum again", func(s TrackStatus) bool { return s.OK })
	var got []bool
	for _, s := range rec.reports() {
		got = append(got, s.OK)
	}
	if fmt.Sprint(got) != "[false true false true]" {
		t.Errorf("reported states %v; want down, up, down, up: the short process must not show", got)
	}
}
