package vrrp

import (
	"context"
	"errors"
	"log/slog"
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

// notifyTestScript writes an executable shell script and returns its path.
func notifyTestScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// notifyTestRunner returns a runner that logs nowhere (scripts killed in the background
// may log after the test ended).
func notifyTestRunner() *NotifyRunner {
	return &NotifyRunner{Log: slog.New(slog.DiscardHandler), KillGrace: 200 * time.Millisecond}
}

func notifyTestSc(args ...string) *parser.Script { return &parser.Script{Args: args} }

// notifyTestRead returns a file's content, "" when it does not exist.
func notifyTestRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// notifyTestWaitFor polls cond for up to d.
func notifyTestWaitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// notifyTestLiveGroup lists the processes of process group pgid that are not zombies.
func notifyTestLiveGroup(t *testing.T, pgid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var live []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state ppid pgrp ...
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			live = append(live, pid)
		}
	}
	return live
}

// notifyTestPid reads a pid a script wrote.
func notifyTestPid(t *testing.T, p string) int {
	t.Helper()
	var pid int
	notifyTestWaitFor(t, 5*time.Second, "the script's pid", func() bool {
		var err error
		pid, err = strconv.Atoi(strings.TrimSpace(notifyTestRead(t, p)))
		return err == nil
	})
	return pid
}

func TestNotifyOrderSerialized(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	n := NewNotifier(NotifierConfig{Kind: NotifyInstance, Name: "VI_1", Scripts: parser.Notifies{
		NotifyBackup: notifyTestSc(notifyTestScript(t, dir, "backup", "sleep 0.2; echo BACKUP >> '"+log+"'")),
		NotifyMaster: notifyTestSc(notifyTestScript(t, dir, "master", "echo MASTER >> '"+log+"'")),
		NotifyFault:  notifyTestSc(notifyTestScript(t, dir, "fault", "echo FAULT >> '"+log+"'")),
	}}, notifyTestRunner())
	for _, st := range []NotifyState{NotifyStateBackup, NotifyStateMaster, NotifyStateFault} {
		if !n.Enqueue(NotifyEvent{State: st, Priority: 100}) {
			t.Fatalf("Enqueue(%v) refused", st)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := notifyTestRead(t, log), "BACKUP\nMASTER\nFAULT\n"; got != want {
		t.Errorf("scripts ran as %q, want %q", got, want)
	}
	if st := n.Stats(); st.Ran != 3 || st.Failed != 0 || st.Dropped != 0 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestNotifyGenericArgs(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	generic := notifyTestScript(t, dir, "generic", `for a in "$@"; do printf '%s|' "$a" >> '`+log+`'; done; echo >> '`+log+`'`)
	mark := func(name string) *parser.Script {
		return notifyTestSc(notifyTestScript(t, dir, name, "echo "+name+" >> '"+log+"'"))
	}
	inst := NewNotifier(NotifierConfig{Kind: NotifyInstance, Name: "VI_1",
		Scripts: parser.Notifies{
			NotifyMaster: mark("master"), Notify: notifyTestSc(generic, "fixed", "two words"),
			NotifyDeleted: true, NotifyDeletedScript: mark("deleted"),
		},
		MasterRxLowerPri: mark("rxlower"),
	}, notifyTestRunner())
	grp := NewNotifier(NotifierConfig{Kind: NotifyGroup, Name: "G1",
		Scripts: parser.Notifies{Notify: notifyTestSc(generic)}}, notifyTestRunner())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	inst.Enqueue(NotifyEvent{State: NotifyStateMaster, Priority: 100})
	inst.Enqueue(NotifyEvent{State: NotifyStateMasterRxLowerPri, Priority: 100}) // its script only
	inst.Enqueue(NotifyEvent{State: NotifyStateMasterPriority, Priority: 90})    // FIFO only
	inst.Enqueue(NotifyEvent{State: NotifyStateBackup, Priority: 90})            // generic only
	inst.Removed(90)
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	want := "master\nfixed|two words|INSTANCE|VI_1|MASTER|100|\nrxlower\n" +
		"fixed|two words|INSTANCE|VI_1|BACKUP|90|\ndeleted\nfixed|two words|INSTANCE|VI_1|DELETED|90|\n"
	if got := notifyTestRead(t, log); got != want {
		t.Errorf("instance notifies:\n%s\nwant:\n%s", got, want)
	}
	if st := inst.Stats(); st.Ran != 6 || st.Failed != 0 {
		t.Errorf("instance stats %+v, want 6 runs", st)
	}

	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	grp.Enqueue(NotifyEvent{State: NotifyStateBackup, Priority: 100}) // groups report priority 0
	grp.Removed(100)                                                  // no notify_deleted: FAULT
	if err := grp.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := notifyTestRead(t, log), "GROUP|G1|BACKUP|0|\nGROUP|G1|FAULT|0|\n"; got != want {
		t.Errorf("group notifies %q, want %q", got, want)
	}
	if grp.Enqueue(NotifyEvent{State: NotifyStateMaster}) {
		t.Error("Enqueue after Stop accepted")
	}
}

func TestNotifyTimeoutKillsGroup(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"term", ""},
		{"term-ignored", "trap '' TERM"}, // children inherit the ignored SIGTERM: SIGKILL needed
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pidf := filepath.Join(dir, "pid")
			s := notifyTestScript(t, dir, "hang", tc.body+"\nsleep 100 &\necho $$ > '"+pidf+"'\nsleep 100")
			r := notifyTestRunner()
			r.Timeout = 300 * time.Millisecond
			start := time.Now()
			err := r.Run(context.Background(), notifyTestSc(s))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Run = %v, want a deadline error", err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Run took %v", took)
			}
			pgid := notifyTestPid(t, pidf)
			notifyTestWaitFor(t, 2*time.Second, "the process group to die", func() bool {
				return len(notifyTestLiveGroup(t, pgid)) == 0
			})
		})
	}
}

func TestNotifyEnqueueNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	pidf := filepath.Join(dir, "pid")
	hang := notifyTestSc(notifyTestScript(t, dir, "hang", "echo $$ > '"+pidf+"'\nexec sleep 100"))
	r := notifyTestRunner()
	r.Timeout = time.Minute
	n := NewNotifier(NotifierConfig{Kind: NotifyInstance, Name: "VI_1", QueueLen: 4,
		Scripts: parser.Notifies{NotifyMaster: hang, NotifyBackup: hang}}, r)
	const events = 1000
	start := time.Now()
	for i := range events {
		st := NotifyStateMaster
		if i%2 == 1 {
			st = NotifyStateBackup
		}
		n.Enqueue(NotifyEvent{State: st, Priority: 100})
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("%d Enqueue calls took %v", events, took)
	}
	pid := notifyTestPid(t, pidf)
	// One event runs; the queue is full, less the running one if it was taken after
	// the last Enqueue; the rest were dropped.
	if st := n.Stats(); st.Pending < 3 || st.Dropped+uint64(st.Pending)+1 != events {
		t.Errorf("stats %+v: want 1 running, 3 or 4 pending, the rest dropped", st)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	err := n.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want the deadline error", err)
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > time.Second {
		t.Errorf("Stop took %v, want about its 300ms deadline", took)
	}
	notifyTestWaitFor(t, 3*time.Second, "the hung script to be killed", func() bool {
		return len(notifyTestLiveGroup(t, pid)) == 0
	})
	notifyTestWaitFor(t, time.Second, "the queue to be dropped", func() bool {
		return n.Stats().Dropped == events-1
	})
}

func TestNotifyStopRunsQueued(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	n := NewNotifier(NotifierConfig{Kind: NotifyInstance, Name: "VI_1", Scripts: parser.Notifies{
		NotifyBackup: notifyTestSc(notifyTestScript(t, dir, "backup", "sleep 0.1; echo BACKUP >> '"+log+"'")),
		NotifyStop:   notifyTestSc(notifyTestScript(t, dir, "stop", "sleep 0.1; echo STOP >> '"+log+"'")),
	}}, notifyTestRunner())
	n.Enqueue(NotifyEvent{State: NotifyStateBackup, Priority: 100})
	n.Enqueue(NotifyEvent{State: NotifyStateStop, Priority: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := notifyTestRead(t, log); got != "BACKUP\nSTOP\n" {
		t.Errorf("ran %q before Stop returned", got)
	}
}

func TestNotifyEnvironment(t *testing.T) {
	t.Setenv("NOTIFY_TEST_SENTINEL", "leak")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	s := notifyTestScript(t, dir, "env", "env > '"+out+"'; pwd >> '"+out+"'; cat >> '"+out+"'")
	if err := notifyTestRunner().Run(context.Background(), notifyTestSc(s)); err != nil {
		t.Fatal(err)
	}
	got := notifyTestRead(t, out)
	if !strings.Contains(got, "PATH="+notifyEnvPath+"\n") || !strings.Contains(got, "HOME=") {
		t.Errorf("environment lacks PATH or HOME:\n%s", got)
	}
	if strings.Contains(got, "NOTIFY_TEST_SENTINEL") {
		t.Errorf("the daemon's environment leaked:\n%s", got)
	}
	if !strings.HasSuffix(got, "\n/\n") { // cwd /, and stdin empty
		t.Errorf("want cwd / and empty stdin, got:\n%s", got)
	}
}

func TestNotifyRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		netns.SkipUnlessCI(t, "needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		netns.SkipUnlessCI(t, "no user nobody")
	}
	dir, err := os.MkdirTemp("", "notify-user")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	s := notifyTestScript(t, dir, "id", "id -u > '"+out+"'; id -G >> '"+out+"'; echo $USER >> '"+out+"'")
	r := notifyTestRunner()
	r.User = "nobody" // global script_user; the script has none
	if err := r.Run(context.Background(), notifyTestSc(s)); err != nil {
		t.Fatal(err)
	}
	want := nobody.Uid + "\n" + nobody.Gid + "\nnobody\n"
	if got := notifyTestRead(t, out); got != want {
		t.Errorf("script ran as %q, want %q", got, want)
	}
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	// The script's own user wins over script_user.
	r.User = "nobody"
	sc := notifyTestSc(s)
	sc.User = "root"
	if err := r.Run(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	if got := notifyTestRead(t, out); !strings.HasPrefix(got, "0\n") {
		t.Errorf("script with user root ran as %q", got)
	}
}

func TestNotifySecurityRefusesWritableScript(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	s := notifyTestSc(notifyTestScript(t, dir, "s", "touch '"+marker+"'"))
	// Pretend every path is owned by root and by group 1000, so that only the mode
	// bits decide, whoever runs the test.
	realStat, realIdentity := notifyStat, notifyIdentityOf
	t.Cleanup(func() { notifyStat, notifyIdentityOf = realStat, realIdentity })
	notifyStat = func(p string) (notifyFileInfo, error) {
		fi, err := realStat(p)
		fi.uid, fi.gid = 0, 1000
		return fi, err
	}
	runAs := uint32(0)
	notifyIdentityOf = func(string, string) (*notifyIdentity, error) {
		return &notifyIdentity{uid: runAs, gid: runAs, home: "/"}, nil
	}
	r := notifyTestRunner()
	r.Security = true
	run := func() (bool, error) {
		os.Remove(marker)
		err := r.Run(context.Background(), s)
		_, statErr := os.Stat(marker)
		return statErr == nil, err
	}

	if err := os.Chmod(s.Path(), 0o775); err != nil {
		t.Fatal(err)
	}
	if ran, err := run(); !errors.Is(err, errNotifyUnsafe) || ran || !strings.Contains(err.Error(), "writable by group 1000") {
		t.Errorf("group-writable root script: err %v, ran %v; want refused", err, ran)
	}
	runAs = 1000 // the rule is for scripts run as root only
	if ran, err := run(); err != nil || !ran {
		t.Errorf("group-writable script run as uid 1000: err %v, ran %v", err, ran)
	}
	runAs = 0
	r.Security = false // without enable_script_security scripts run unchecked
	if ran, err := run(); err != nil || !ran {
		t.Errorf("without enable_script_security: err %v, ran %v", err, ran)
	}
	r.Security = true
	if err := os.Chmod(s.Path(), 0o755); err != nil {
		t.Fatal(err)
	}
	if ran, err := run(); err != nil || !ran {
		t.Errorf("safe script: err %v, ran %v", err, ran)
	}
	if err := os.Chmod(dir, 0o775); err != nil { // its directory now group-writable
		t.Fatal(err)
	}
	if ran, err := run(); !errors.Is(err, errNotifyUnsafe) || ran {
		t.Errorf("script in a group-writable directory: err %v, ran %v; want refused", err, ran)
	}
}

func TestNotifyScriptErrors(t *testing.T) {
	dir := t.TempDir()
	r := notifyTestRunner()
	ctx := context.Background()
	if err := r.Run(ctx, notifyTestSc(notifyTestScript(t, dir, "fail", "exit 3"))); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("failing script: %v", err)
	}
	if err := r.Run(ctx, notifyTestSc("relative/script")); err == nil {
		t.Error("relative path accepted")
	}
	if err := r.Run(ctx, notifyTestSc("no-such-notify-script")); err == nil {
		t.Error("missing bare name accepted")
	}
	if err := r.Run(ctx, notifyTestSc("true")); err != nil { // bare name: searched in PATH
		t.Errorf("true: %v", err)
	}
}

func TestNotifyStateNames(t *testing.T) {
	for st, want := range map[NotifyState]string{
		NotifyStateMaster: "MASTER", NotifyStateBackup: "BACKUP", NotifyStateFault: "FAULT",
		NotifyStateStop: "STOP", NotifyStateDeleted: "DELETED", NotifyStateMasterRxLowerPri: "MASTER_RX_LOWER_PRI",
		NotifyStateMasterPriority: "MASTER_PRIORITY", NotifyStateBackupPriority: "BACKUP_PRIORITY", 0: "{UNKNOWN}",
	} {
		if got := st.String(); got != want {
			t.Errorf("NotifyState(%d) = %q, want %q", st, got, want)
		}
	}
	for s, want := range map[State]NotifyState{StateMaster: NotifyStateMaster, StateBackup: NotifyStateBackup, StateFault: NotifyStateFault} {
		if got, ok := NotifyStateFor(s); !ok || got != want {
			t.Errorf("NotifyStateFor(%v) = %v, %v", s, got, ok)
		}
	}
	if _, ok := NotifyStateFor(StateInit); ok {
		t.Error("INIT has a notify state")
	}
}
