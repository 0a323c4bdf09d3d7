//go:build linux

package vrrp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gokeepalived/parser"
)

// processScanInterval is how often /proc is scanned.
const processScanInterval = time.Second

// processCommLen is the longest process name the kernel keeps (TASK_COMM_LEN - 1).
const processCommLen = 15

// ProcessTracker counts the running processes matching a vrrp_track_process and
// reports whether the count is within quorum..quorum_max.
//
// It scans /proc every second. (keepalived instead scans /proc once and then follows
// the kernel's process events connector; scanning is simpler, needs no
// CAP_NET_ADMIN, and a second is well within the delays this is used with.) Zombies
// do not count.
//
// Matching follows keepalived. Without full_command or parameters, "process" is
// compared with the process name (/proc/PID/comm, the Name: of /proc/PID/status);
// the kernel keeps 15 bytes of it, so a longer configured name is compared by its
// first 15 bytes. With full_command, "process" is compared with argv[0] of
// /proc/PID/cmdline, and the parameters by param_match: exact (the default when
// parameters are given: the same parameters, no more), partial (the configured
// parameters are the first ones) or initial (like partial, but the last configured
// parameter need only be a prefix). full_command alone compares argv[0] only.
//
// fork_delay and terminate_delay damp changes: a change of state caused by more
// matching processes than before (a fork) takes effect only once it has lasted
// fork_delay, one caused by fewer (a termination) once it has lasted
// terminate_delay; a change that reverts within its delay is never reported. (A
// process that lives less than the scan interval may go unseen, and so may a gap
// shorter than it between two processes.) Reports are sent when OK changes.
type ProcessTracker struct {
	cfg      *parser.TrackProcess
	log      *slog.Logger
	interval time.Duration
	comm     string // the name to compare with comm
	params   []byte // the parameters as in cmdline: each followed by a NUL
}

// NewProcessTracker prepares a tracker for cfg.
func NewProcessTracker(cfg *parser.TrackProcess, log *slog.Logger) (*ProcessTracker, error) {
	if cfg.Process == "" {
		return nil, fmt.Errorf("vrrp_track_process %s: no process", cfg.Name)
	}
	t := &ProcessTracker{cfg: cfg, log: trackLogger(log, TrackProcess, cfg.Name), interval: processScanInterval}
	t.comm = cfg.Process
	if len(t.comm) > processCommLen {
		t.comm = t.comm[:processCommLen]
	}
	for _, p := range cfg.Params {
		t.params = append(append(t.params, p...), 0)
	}
	return t, nil
}

// Run scans until ctx ends.
func (t *ProcessTracker) Run(ctx context.Context, report func(TrackStatus)) {
	count := t.count()
	ok := t.inQuorum(count)
	report(t.status(ok, count))

	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	// pendingSince is when the count left the reported state (zero: it has not), and
	// pendingWait how long that must last: fork_delay when more processes caused the
	// change, terminate_delay when fewer did.
	var pendingSince time.Time
	var pendingWait time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-delay.C:
		}
		prev := count
		count = t.count()
		if t.inQuorum(count) == ok {
			pendingSince = time.Time{}
			delay.Stop()
			continue
		}
		now := time.Now()
		if pendingSince.IsZero() {
			pendingSince, pendingWait = now, t.cfg.TerminateDelay.D()
			if count > prev {
				pendingWait = t.cfg.ForkDelay.D()
			}
		}
		if left := pendingSince.Add(pendingWait).Sub(now); left > 0 {
			delay.Reset(left)
			continue
		}
		pendingSince = time.Time{}
		ok = !ok
		report(t.status(ok, count))
	}
}

func (t *ProcessTracker) inQuorum(n int) bool {
	return n >= t.cfg.Quorum && (t.cfg.QuorumMax == nil || n <= *t.cfg.QuorumMax)
}

func (t *ProcessTracker) status(ok bool, n int) TrackStatus {
	want := fmt.Sprintf("%d..", t.cfg.Quorum)
	if t.cfg.QuorumMax != nil {
		want += fmt.Sprint(*t.cfg.QuorumMax)
	}
	return TrackStatus{
		Kind: TrackProcess, Name: t.cfg.Name, Weight: t.cfg.Weight, Reverse: t.cfg.Reverse,
		OK: ok, Value: n, Detail: fmt.Sprintf("%d running, quorum %s", n, want),
	}
}

// count returns how many live processes match.
func (t *ProcessTracker) count() int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.log.Error("cannot list processes", "err", err)
		return 0
	}
	n := 0
	for _, e := range ents {
		if name := e.Name(); name[0] >= '1' && name[0] <= '9' && t.matches(filepath.Join("/proc", name)) {
			n++
		}
	}
	return n
}

// matches reports whether the process at dir (/proc/PID) is alive and matches.
func (t *ProcessTracker) matches(dir string) bool {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return false // gone meanwhile
	}
	// pid (comm) state ...: comm may hold anything, ")" included.
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open || end+2 >= len(stat) || stat[end+2] == 'Z' || stat[end+2] == 'X' {
		return false
	}
	if !t.cfg.FullCommand {
		return string(stat[open+1:end]) == t.comm
	}
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return false
	}
	argv0, params, found := bytes.Cut(cmdline, []byte{0})
	if !found || string(argv0) != t.cfg.Process {
		return false
	}
	switch t.cfg.ParamMatch {
	case "":
		return true
	case "partial":
		return bytes.HasPrefix(params, t.params)
	case "initial":
		return bytes.HasPrefix(params, bytes.TrimSuffix(t.params, []byte{0}))
	}
	return bytes.Equal(params, t.params)
}
