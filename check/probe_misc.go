package check

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gokeepalived/parser"
)

// miscKillGrace is how long a timed-out MISC_CHECK script's process group has between
// SIGTERM and SIGKILL.
const miscKillGrace = time.Second

// miscProbe is a MISC_CHECK: misc_path runs (as its user and group when set) in a
// process group of its own, with its output discarded. Exit status 0 passes, anything
// else fails; with misc_dynamic, 1 fails and 2-255 pass with Result.Weight set to the
// status minus 2 (0 leaves the weight alone).
//
// The script gets misc_timeout (else delay_loop), and no more than ctx's deadline: at
// the first of the two its whole process group gets SIGTERM and the check fails at
// once; the group gets SIGKILL when the script exits or miscKillGrace later, whichever
// comes first (Script.Stop), and the script is reaped in the background.
type miscProbe struct {
	args    []string
	cred    *syscall.Credential
	timeout time.Duration
	dynamic bool
	grace   time.Duration
}

func newMiscProbe(c *parser.Checker) (*miscProbe, error) {
	m := c.Misc
	if m == nil || m.Path == nil || len(m.Path.Args) == 0 || m.Path.Args[0] == "" {
		return nil, errors.New("MISC_CHECK: no misc_path")
	}
	p := &miscProbe{args: m.Path.Args, timeout: m.Timeout.D(), dynamic: m.Dynamic, grace: miscKillGrace}
	if p.timeout <= 0 && c.Timing != nil {
		p.timeout = c.Timing.DelayLoop.D()
	}
	if m.Path.User != "" || m.Path.Group != "" {
		cred, err := miscCredential(m.Path.User, m.Path.Group)
		if err != nil {
			return nil, fmt.Errorf("MISC_CHECK %s: %w", m.Path.Path(), err)
		}
		p.cred = cred
	}
	return p, nil
}

// miscCredential resolves a user (name or number; empty: the current one) and an
// optional group (else the user's primary group) with the user's supplementary groups,
// as initgroups would give them.
func miscCredential(userName, groupName string) (*syscall.Credential, error) {
	var u *user.User
	var err error
	if userName == "" {
		u, err = user.Current()
	} else if u, err = user.Lookup(userName); err != nil {
		if _, nerr := strconv.Atoi(userName); nerr == nil {
			u, err = user.LookupId(userName)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", userName, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q: %w", userName, u.Uid, err)
	}
	gidStr := u.Gid
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			if _, nerr := strconv.Atoi(groupName); nerr != nil {
				return nil, fmt.Errorf("group %q: %w", groupName, err)
			}
			g = &user.Group{Gid: groupName}
		}
		gidStr = g.Gid
	}
	gid, err := strconv.ParseUint(gidStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("group %q: gid %q: %w", groupName, gidStr, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if n, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(n))
			}
		}
	}
	return cred, nil
}

// Check runs the script and interprets its exit status.
func (p *miscProbe) Check(ctx context.Context) Result {
	start := time.Now()
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	ctx, cancel := probeContext(ctx, 0)
	defer cancel()
	fail := func(err error) Result {
		return probeResult(start, fmt.Errorf("MISC_CHECK %s: %w", strings.Join(p.args, " "), err))
	}
	s, err := StartScript(p.args, p.cred, "")
	if err != nil {
		return fail(err)
	}
	select {
	case <-s.Done():
		_, err := s.Wait()
		return p.result(start, err, fail)
	case <-ctx.Done():
	}
	s.Stop(p.grace)
	return fail(fmt.Errorf("no exit within %v: process group sent SIGTERM, then SIGKILL: %w", time.Since(start).Round(time.Millisecond), context.Cause(ctx)))
}

// result interprets how the script ended.
func (p *miscProbe) result(start time.Time, err error, fail func(error) Result) Result {
	status := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return fail(err)
		}
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if !ok || !ws.Exited() {
			return fail(err) // killed by a signal
		}
		status = ws.ExitStatus()
	}
	switch {
	case status == 0:
		return probeResult(start, nil)
	case p.dynamic && status >= 2:
		r := probeResult(start, nil)
		w := status - 2
		r.Weight = &w
		return r
	}
	return fail(fmt.Errorf("exit status %d", status))
}
