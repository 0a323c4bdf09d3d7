package vrrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// Script run defaults.
const (
	// DefaultNotifyTimeout bounds one notify script run. keepalived has none (its
	// scripts are fire-and-forget); ours are serialized, so a hung script must not hold
	// back the next ones forever. Ten seconds matches startup_script_timeout.
	DefaultNotifyTimeout = 10 * time.Second
	// DefaultNotifyKillGrace is how long a timed-out script's process group has between
	// SIGTERM and SIGKILL.
	DefaultNotifyKillGrace = 2 * time.Second
)

const (
	// notifyPipeGrace is how long output is still read after a script exited, for
	// background children that inherited its stdout; the pipe is closed then.
	notifyPipeGrace = 100 * time.Millisecond
	// notifyMaxLines and notifyMaxLine bound the output logged per run.
	notifyMaxLines = 20
	notifyMaxLine  = 512
	// notifyEnvPath is the PATH scripts get.
	notifyEnvPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// errNotifyUnsafe marks a script refused by enable_script_security.
var errNotifyUnsafe = errors.New("unsafe permissions for a script run as root")

// NotifyRunner executes scripts: notify scripts (bounded by Timeout) and the long-running
// *_fifo_script programs.
//
// A script is executed directly, never through a shell: argv is parser.Script.Args
// (a bare program name is looked up in /usr/local/sbin:/usr/local/bin:/usr/sbin:
// /usr/bin:/sbin:/bin, as the configuration check does), with / as working directory,
// stdin from /dev/null, and stdout and stderr logged (at most 20 lines of 512 bytes per
// run). Its environment is only PATH (the list above), HOME, and USER and LOGNAME when
// the user has a name. It runs in a process group of its own; on timeout the whole
// group gets SIGTERM, then SIGKILL as soon as the script exited or KillGrace passed.
// Background processes a script leaves behind when it exits normally are left alone
// (notify scripts may start services), but their inherited stdout is closed shortly
// after the script exits.
//
// User: the script's own user and group, else global script_user and group; a user
// without a group runs with the user's primary group, and supplementary groups are
// cleared (as keepalived). keepalived runs a script with neither as user
// keepalived_script when that user exists, else as root; we do not look up
// keepalived_script: such a script runs as the daemon itself (root in production), which
// is what the configuration check (parser, -t) assumes when it applies the root-script
// rules.
//
// Security: with enable_script_security a script that would run as root (user or group
// root, or a set-user/group-ID root file) is refused at each run when it, or a
// directory above it, is not owned by root or is writable by a non-root group or by
// everyone (a sticky directory such as /tmp may be); the same rule as the check done at
// configuration time, repeated because files can change after it. Without
// enable_script_security scripts run unchecked, as in keepalived.
type NotifyRunner struct {
	// User and Group are global_defs script_user; empty means the daemon's own identity.
	User, Group string
	// Security is global_defs enable_script_security.
	Security bool
	// Timeout bounds a notify script run; zero means DefaultNotifyTimeout.
	Timeout time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL; zero means DefaultNotifyKillGrace.
	KillGrace time.Duration
	// Log receives the script results and output; nil means slog.Default().
	Log *slog.Logger
}

// NewNotifyRunner returns a runner with the script user and security of global_defs and
// the default timeouts.
func NewNotifyRunner(g *parser.GlobalDefs, log *slog.Logger) *NotifyRunner {
	return &NotifyRunner{User: g.ScriptUser, Group: g.ScriptGroup, Security: g.EnableScriptSecurity, Log: log}
}

// Run runs a script with extra arguments appended and waits for it, at most Timeout
// or until ctx ends, after which its process group is killed. It returns an error for
// a refused script, a start failure, a non-zero exit or a kill.
func (r *NotifyRunner) Run(ctx context.Context, s *parser.Script, extra ...string) error {
	return r.run(ctx, r.logger(), s, extra, r.timeout())
}

func (r *NotifyRunner) logger() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

func (r *NotifyRunner) timeout() time.Duration {
	if r.Timeout <= 0 {
		return DefaultNotifyTimeout
	}
	return r.Timeout
}

func (r *NotifyRunner) grace() time.Duration {
	if r.KillGrace <= 0 {
		return DefaultNotifyKillGrace
	}
	return r.KillGrace
}

// run runs a script until it exits, ctx ends or timeout (zero: none) passes.
func (r *NotifyRunner) run(ctx context.Context, log *slog.Logger, s *parser.Script, extra []string, timeout time.Duration) error {
	log = log.With(slog.String("script", s.Path()))
	cmd, err := r.command(s, extra)
	if err != nil {
		log.Error("script not run", "err", err)
		return err
	}
	out := &notifyOutput{log: log}
	cmd.Stdout, cmd.Stderr = out, out
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		err = fmt.Errorf("start script %s: %w", cmd.Path, err)
		log.Error("script not run", "err", err)
		return err
	}
	err = notifyWait(ctx, cmd, r.grace())
	out.flush()
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		err = fmt.Errorf("script %s: %w", cmd.Path, err)
		log.Warn("script failed", "args", cmd.Args[1:], "took", took, "err", err)
		return err
	}
	log.Info("script done", "args", cmd.Args[1:], "took", took)
	return nil
}

// command prepares the process of a script: program, user, security, environment.
func (r *NotifyRunner) command(s *parser.Script, extra []string) (*exec.Cmd, error) {
	if s.Path() == "" {
		return nil, errors.New("empty script")
	}
	path, err := notifyResolvePath(s.Path())
	if err != nil {
		return nil, err
	}
	userName, groupName := s.User, s.Group
	if userName == "" {
		userName, groupName = r.User, r.Group
	}
	id, err := notifyIdentityOf(userName, groupName)
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", path, err)
	}
	if r.Security {
		if err := notifyCheckScript(path, id); err != nil {
			return nil, fmt.Errorf("script %s refused (enable_script_security): %w", path, err)
		}
	}
	env := []string{"PATH=" + notifyEnvPath, "HOME=" + id.home}
	if id.name != "" {
		env = append(env, "USER="+id.name, "LOGNAME="+id.name)
	}
	return &exec.Cmd{
		Path:        path,
		Args:        append(slices.Clone(s.Args), extra...),
		Env:         env,
		Dir:         "/",
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Credential: id.cred},
		WaitDelay:   notifyPipeGrace,
	}, nil
}

// notifyWait waits for a started command. When ctx ends first, the process group gets
// SIGTERM, then SIGKILL once the leader exited or the grace passed. The leader is only
// reaped (by cmd.Wait) after that, so its process group ID cannot have been reused.
func notifyWait(ctx context.Context, cmd *exec.Cmd, grace time.Duration) error {
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		var info unix.Siginfo
		for {
			if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != unix.EINTR {
				return
			}
		}
	}()
	var killed error
	select {
	case <-exited:
	case <-ctx.Done():
		killed = ctx.Err()
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-exited:
		case <-t.C:
		}
		t.Stop()
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
	err := cmd.Wait()
	if killed != nil {
		return fmt.Errorf("process group killed: %w", killed)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return nil // exited fine; a background child still held its output
	}
	return err
}

// notifyResolvePath finds the program of a script: an absolute path as is, a bare name
// in the search path. Relative paths are refused, as by the configuration check.
func notifyResolvePath(p string) (string, error) {
	if strings.Contains(p, "/") {
		if !filepath.IsAbs(p) {
			return "", fmt.Errorf("script %s: relative path; give an absolute path", p)
		}
		return p, nil
	}
	dirs := filepath.SplitList(notifyEnvPath)
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, p)); err == nil && fi.Mode().IsRegular() {
			return filepath.Join(d, p), nil
		}
	}
	return "", fmt.Errorf("script %s: not found in %s", p, notifyEnvPath)
}

// notifyIdentity is who a script runs as.
type notifyIdentity struct {
	cred       *syscall.Credential // nil: the daemon's own identity
	uid, gid   uint32
	name, home string
}

// notifyIdentityOf resolves a script user and group (names or numbers); empty ones mean
// the daemon's own. Tests replace it.
var notifyIdentityOf = func(userName, groupName string) (*notifyIdentity, error) {
	id := &notifyIdentity{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()), home: "/"}
	if userName == "" && groupName == "" {
		if u, err := user.LookupId(strconv.Itoa(os.Geteuid())); err == nil {
			id.name, id.home = u.Username, u.HomeDir
		}
		return id, nil
	}
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			if u, err = user.LookupId(userName); err != nil {
				return nil, fmt.Errorf("unknown user %q: %w", userName, err)
			}
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("user %q: %w", userName, err)
		}
		id.uid, id.gid, id.name, id.home = uint32(uid), uint32(gid), u.Username, u.HomeDir
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			if g, err = user.LookupGroupId(groupName); err != nil {
				return nil, fmt.Errorf("unknown group %q: %w", groupName, err)
			}
		}
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", groupName, err)
		}
		id.gid = uint32(gid)
	}
	id.cred = &syscall.Credential{Uid: id.uid, Gid: id.gid, Groups: []uint32{id.gid}}
	return id, nil
}

// notifyFileInfo is what the security check needs to know about a path.
type notifyFileInfo struct {
	mode     fs.FileMode
	uid, gid uint32
}

// notifyStat stats a path, following symbolic links. Tests replace it.
var notifyStat = func(path string) (notifyFileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return notifyFileInfo{}, err
	}
	info := notifyFileInfo{mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		info.uid, info.gid = st.Uid, st.Gid
	}
	return info, nil
}

// notifyCheckScript applies enable_script_security. A script that runs with root's user
// or group, or is set-user/group-ID root, must be owned by root, like every directory
// above it, and neither may be writable by a non-root group or by everyone (a directory
// with the sticky bit may be).
func notifyCheckScript(path string, id *notifyIdentity) error {
	fi, err := notifyStat(path)
	if err != nil {
		return fmt.Errorf("cannot check %s: %w", path, err)
	}
	setuidRoot := (fi.uid == 0 && fi.mode&fs.ModeSetuid != 0) || (fi.gid == 0 && fi.mode&fs.ModeSetgid != 0)
	if id.uid != 0 && id.gid != 0 && !setuidRoot {
		return nil
	}
	var chain []string
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		chain = append(chain, p)
		if p == "/" || p == "." {
			break
		}
	}
	slices.Reverse(chain)
	for _, p := range chain {
		fi, err := notifyStat(p)
		if err != nil {
			return fmt.Errorf("cannot check %s: %w", p, err)
		}
		checkWrite := fi.mode.IsRegular() || (fi.mode.IsDir() && fi.mode&fs.ModeSticky == 0)
		switch {
		case fi.uid != 0:
			return fmt.Errorf("%w: %s is owned by uid %d", errNotifyUnsafe, p, fi.uid)
		case checkWrite && fi.gid != 0 && fi.mode&0o020 != 0:
			return fmt.Errorf("%w: %s is writable by group %d", errNotifyUnsafe, p, fi.gid)
		case checkWrite && fi.mode&0o002 != 0:
			return fmt.Errorf("%w: %s is writable by everyone", errNotifyUnsafe, p)
		}
	}
	return nil
}

// notifyOutput logs a script's stdout and stderr line by line, bounded. os/exec writes
// to it from one goroutine (stdout and stderr are the same writer) that ends before
// Wait returns.
type notifyOutput struct {
	log     *slog.Logger
	buf     []byte
	lines   int
	dropped int
}

func (w *notifyOutput) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > notifyMaxLine {
		w.line(w.buf)
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// line logs one line, or counts it once the limit is reached.
func (w *notifyOutput) line(b []byte) {
	if w.lines >= notifyMaxLines {
		w.dropped++
		return
	}
	w.lines++
	w.log.Info("script output", "line", string(b[:min(len(b), notifyMaxLine)]))
}

// flush logs a last unterminated line and how many lines were not logged.
func (w *notifyOutput) flush() {
	if len(w.buf) > 0 {
		w.line(w.buf)
		w.buf = nil
	}
	if w.dropped > 0 {
		w.log.Info("script output truncated", "lines_not_logged", w.dropped)
		w.dropped = 0
	}
}
