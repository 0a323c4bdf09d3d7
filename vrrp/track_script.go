//go:build linux

package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"gokeepalived/check"
	"gokeepalived/parser"
)

// scriptKillGrace is how long a timed-out script has between SIGTERM and SIGKILL
// (keepalived: 2 s).
const scriptKillGrace = 2 * time.Second

// ScriptTracker runs a vrrp_script and reports its state.
//
// The script runs at once, then every interval, with its working directory "/",
// standard input and output on /dev/null, as the configured user and group (which
// needs root), in a process group of its own. A run still going when the next is due
// makes that next run be skipped, as keepalived does ("expect idle - skipping run").
// A run that takes longer than the timeout counts as a failure: its whole process
// group gets SIGTERM, then SIGKILL once the script is gone or after a grace of 2 s,
// whichever comes first (check.Script.Stop). A script that cannot be started
// counts as a failure. Exit status 0 is success; anything else, or death by a signal,
// is failure.
//
// rise and fall apply as in keepalived (see trackCounter). The state starts as
// failed with init_fail, and otherwise in Init until the first run ends: the first
// result then decides. Reports are sent when OK or Init change.
type ScriptTracker struct {
	cfg      *parser.VRRPScript
	cred     *syscall.Credential
	log      *slog.Logger
	interval time.Duration
	timeout  time.Duration
	grace    time.Duration
}

// NewScriptTracker prepares a tracker for cfg. It resolves the user and group the
// script runs as; an unknown user or group is an error.
func NewScriptTracker(cfg *parser.VRRPScript, log *slog.Logger) (*ScriptTracker, error) {
	if cfg.Script == nil || len(cfg.Script.Args) == 0 {
		return nil, fmt.Errorf("vrrp_script %s: no script", cfg.Name)
	}
	cred, err := scriptCredential(cfg.Script.User, cfg.Script.Group)
	if err != nil {
		return nil, fmt.Errorf("vrrp_script %s: %w", cfg.Name, err)
	}
	t := &ScriptTracker{
		cfg: cfg, cred: cred, log: trackLogger(log, TrackScript, cfg.Name),
		interval: cfg.Interval.D(), timeout: cfg.Timeout.D(), grace: scriptKillGrace,
	}
	if t.interval <= 0 {
		t.interval = time.Second
	}
	if t.timeout <= 0 {
		t.timeout = t.interval
	}
	return t, nil
}

// scriptCredential resolves "user [group]" (names or numeric ids); the group
// defaults to the user's primary group. nil means: run as ourselves.
func scriptCredential(userName, groupName string) (*syscall.Credential, error) {
	if userName == "" && groupName == "" {
		return nil, nil
	}
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			if u, err = user.LookupId(userName); err != nil {
				return nil, fmt.Errorf("script user %q: %w", userName, err)
			}
		}
		uid, gid = scriptParseID(u.Uid), scriptParseID(u.Gid)
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			if g, err = user.LookupGroupId(groupName); err != nil {
				return nil, fmt.Errorf("script group %q: %w", groupName, err)
			}
		}
		gid = scriptParseID(g.Gid)
	}
	if uid == uint32(os.Geteuid()) && gid == uint32(os.Getegid()) {
		return nil, nil // ourselves: nothing to change (and no right to drop groups)
	}
	// No supplementary groups: the script gets the rights of its user and group only.
	return &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}, nil
}

// scriptParseID parses a numeric id from the user database (always numeric on Linux).
func scriptParseID(s string) uint32 {
	n, _ := strconv.ParseUint(s, 10, 32)
	return uint32(n)
}

// scriptRun is one run of the script.
type scriptRun struct {
	script   *check.Script
	timedOut bool        // the timeout passed: the run is a failure whatever it returns
	timer    *time.Timer // the timeout
}

// Run runs the script until ctx ends; a run in progress then gets SIGKILL (its whole
// process group) and is waited for.
func (t *ScriptTracker) Run(ctx context.Context, report func(TrackStatus)) {
	cnt := newTrackCounter(t.cfg.Rise, t.cfg.Fall, t.cfg.InitFail)
	detail := "not run yet"
	if t.cfg.InitFail {
		detail = "init_fail"
	}
	report(t.status(&cnt, detail))

	tick := time.NewTicker(t.interval)
	defer tick.Stop()

	var cur *scriptRun
	start := func() {
		r, err := t.start()
		if err != nil {
			t.log.Warn("cannot run script", "err", err)
			if cnt.add(false) {
				report(t.status(&cnt, err.Error()))
			}
			return
		}
		cur = r
	}
	start()
	for {
		var timerC <-chan time.Time
		var doneC <-chan struct{}
		if cur != nil {
			timerC, doneC = cur.timer.C, cur.script.Done()
		}
		select {
		case <-ctx.Done():
			if cur != nil {
				cur.timer.Stop()
				cur.script.Signal(syscall.SIGKILL)
				<-cur.script.Done()
			}
			return
		case <-tick.C:
			if cur != nil {
				state := "already running"
				if cur.timedOut {
					state = "being timed out"
				}
				t.log.Info("Track script " + t.cfg.Name + " is " + state + ", expect idle - skipping run")
				continue
			}
			start()
		case <-timerC:
			cur.timedOut = true
			cur.script.Stop(t.grace)
		case <-doneC:
			cur.timer.Stop()
			ok, detail := t.judge(cur)
			cur = nil
			if cnt.add(ok) {
				report(t.status(&cnt, detail))
			}
		}
	}
}

// start starts one run.
func (t *ScriptTracker) start() (*scriptRun, error) {
	args := t.cfg.Script.Args
	s, err := check.StartScript(args, t.cred, "/")
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	return &scriptRun{script: s, timer: time.NewTimer(t.timeout)}, nil
}

// judge interprets how a run ended. A run that timed out is a failure.
func (t *ScriptTracker) judge(r *scriptRun) (ok bool, detail string) {
	if r.timedOut {
		return false, fmt.Sprintf("timed out after %v", t.timeout)
	}
	st, err := r.script.Wait()
	var exitErr *exec.ExitError
	switch {
	case st == nil || (err != nil && !errors.As(err, &exitErr)):
		return false, fmt.Sprintf("wait: %v", err)
	case st.Exited() && st.ExitCode() == 0:
		return true, "exit status 0"
	case st.Exited():
		return false, fmt.Sprintf("exit status %d", st.ExitCode())
	}
	if ws, isWS := st.Sys().(syscall.WaitStatus); isWS && ws.Signaled() {
		return false, fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return false, st.String()
}

// status builds the report for the counter's state.
func (t *ScriptTracker) status(c *trackCounter, detail string) TrackStatus {
	return TrackStatus{
		Kind: TrackScript, Name: t.cfg.Name, Weight: t.cfg.Weight, Reverse: t.cfg.Reverse,
		OK: c.ok(), Init: c.init, Detail: detail,
	}
}
