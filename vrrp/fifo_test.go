package vrrp

import (
	"context"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gokeepalived/parser"
	"gokeepalived/tests/netns"
)

// fifoTestStop stops a FIFO at the end of a test.
func fifoTestStop(t *testing.T, f *FIFO) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Stop(ctx); err != nil {
		t.Error(err)
	}
}

// fifoTestReadN reads exactly n bytes from a FIFO reader, failing after a few seconds.
func fifoTestReadN(t *testing.T, r *os.File, n int) string {
	t.Helper()
	if err := r.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, b)
	}
	return string(b)
}

func TestFIFOFormat(t *testing.T) {
	vs := LVSService{Addr: netip.MustParseAddrPort("192.168.201.15:80"), Protocol: "TCP"}
	rs := netip.MustParseAddrPort("1.2.3.4:80")
	for _, tc := range []struct{ got, want string }{
		{FormatInstanceLine(NotifyInstance, "VI_1", NotifyStateMaster, 100), "INSTANCE \"VI_1\" MASTER 100\n"},
		{FormatInstanceLine(NotifyGroup, "G 1", NotifyStateFault, 0), "GROUP \"G 1\" FAULT 0\n"},
		{FormatInstanceLine(NotifyInstance, "VI_1", NotifyStateMasterRxLowerPri, 255), "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 255\n"},
		{FormatVSLine(vs, true), "VS [192.168.201.15]:tcp:80 UP\n"},
		{FormatRSLine(rs, vs, false), "RS [1.2.3.4]:tcp:80 [192.168.201.15]:tcp:80 DOWN\n"},
		{FormatVSLine(LVSService{Addr: netip.MustParseAddrPort("[2001:db8::1]:53"), Protocol: "udp"}, false), "VS [2001:db8::1]:udp:53 DOWN\n"},
		{FormatVSLine(LVSService{FWMark: 7}, true), "VS FWM 7 UP\n"},
		{FormatRSLine(rs, LVSService{FWMark: 7}, true), "RS [1.2.3.4]:none:80 FWM 7 UP\n"},
		{FormatVSLine(LVSService{Group: "web", Addr: netip.AddrPortFrom(netip.Addr{}, 443)}, true), "VS [web]:443 UP\n"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestFIFOLinesReadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify.fifo")
	r := notifyTestRunner()
	f, err := OpenFIFO(&parser.FIFO{Path: path}, nil, r)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != fs.ModeNamedPipe || fi.Mode().Perm()&0o622 != 0o600 {
		t.Fatalf("created %v, %v; want a FIFO writable by its owner only", fi.Mode(), err)
	}
	reader, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()

	inst := NewNotifier(NotifierConfig{Kind: NotifyInstance, Name: "VI_1", FIFOs: []*FIFO{f}}, r)
	grp := NewNotifier(NotifierConfig{Kind: NotifyGroup, Name: "G1", FIFOs: []*FIFO{f}}, r)
	inst.Enqueue(NotifyEvent{State: NotifyStateBackup, Priority: 100})
	inst.Enqueue(NotifyEvent{State: NotifyStateMaster, Priority: 100})
	grp.Enqueue(NotifyEvent{State: NotifyStateMaster, Priority: 100})
	inst.Enqueue(NotifyEvent{State: NotifyStateMasterRxLowerPri, Priority: 100})
	inst.Enqueue(NotifyEvent{State: NotifyStateBackupPriority, Priority: 90})
	vs := LVSService{Addr: netip.MustParseAddrPort("192.168.201.15:80"), Protocol: "TCP"}
	if err := f.WriteLine(FormatVSLine(vs, true)); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteLine(FormatRSLine(netip.MustParseAddrPort("1.2.3.4:80"), vs, false)); err != nil {
		t.Fatal(err)
	}
	want := `INSTANCE "VI_1" BACKUP 100
INSTANCE "VI_1" MASTER 100
GROUP "G1" MASTER 0
INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100
INSTANCE "VI_1" BACKUP_PRIORITY 90
VS [192.168.201.15]:tcp:80 UP
RS [1.2.3.4]:tcp:80 [192.168.201.15]:tcp:80 DOWN
`
	if got := fifoTestReadN(t, reader, len(want)); got != want {
		t.Errorf("read\n%s\nwant\n%s", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range []*Notifier{inst, grp} {
		if err := n.Stop(ctx); err != nil {
			t.Error(err)
		}
	}
	if st := f.Stats(); st.Written != 7 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
	fifoTestStop(t, f)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the FIFO we created is still there after Stop (%v)", err)
	}
	if err := f.WriteLine("late"); err == nil {
		t.Error("write after Stop succeeded")
	}
}

func TestFIFONoReaderDoesNotBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	f, err := OpenFIFO(&parser.FIFO{Path: path}, nil, notifyTestRunner())
	if err != nil {
		t.Fatal(err)
	}
	defer fifoTestStop(t, f)
	line := FormatInstanceLine(NotifyInstance, "VI_1", NotifyStateMaster, 100)
	const lines = 20000 // far more than a pipe holds
	start := time.Now()
	for range lines {
		_ = f.WriteLine(line)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("%d writes without a reader took %v", lines, took)
	}
	st := f.Stats()
	if st.Written == 0 || st.Dropped == 0 || st.Written+st.Dropped != lines {
		t.Fatalf("stats %+v", st)
	}
	// What was written is whole lines, readable once a reader comes.
	reader, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if got := fifoTestReadN(t, reader, int(st.Written)*len(line)); got != strings.Repeat(line, int(st.Written)) {
		t.Error("buffered lines are not whole")
	}
	if err := f.WriteLine(line); err != nil { // room again
		t.Errorf("write after the reader drained: %v", err)
	}
}

func TestFIFOScriptStartedAndRestarted(t *testing.T) {
	saved := []any{fifoRestartMin, fifoRestartMax, fifoMaxRestarts}
	t.Cleanup(func() {
		fifoRestartMin, fifoRestartMax, fifoMaxRestarts = saved[0].(time.Duration), saved[1].(time.Duration), saved[2].(int)
	})
	fifoRestartMin, fifoRestartMax, fifoMaxRestarts = 10*time.Millisecond, 40*time.Millisecond, 3

	dir := t.TempDir()
	path := filepath.Join(dir, "fifo")
	log := filepath.Join(dir, "log")
	s := notifyTestScript(t, dir, "reader", `echo "$# $1 $2" >> '`+log+`'`)
	f, err := OpenFIFO(&parser.FIFO{Path: path}, notifyTestSc(s, "first"), notifyTestRunner())
	if err != nil {
		t.Fatal(err)
	}
	defer fifoTestStop(t, f)
	want := strings.Repeat("2 first "+path+"\n", 4) // one start and three restarts
	notifyTestWaitFor(t, 5*time.Second, "the script restarts", func() bool {
		return notifyTestRead(t, log) == want
	})
	<-f.scriptDone // given up
	if got := notifyTestRead(t, log); got != want {
		t.Errorf("script ran:\n%s\nwant:\n%s", got, want)
	}
}

func TestFIFOScriptReadsAndIsStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fifo")
	out := filepath.Join(dir, "out")
	pidf := filepath.Join(dir, "pid")
	s := notifyTestScript(t, dir, "reader", `echo $$ > '`+pidf+`'; exec cat "$1" > '`+out+`'`)
	f, err := OpenFIFO(&parser.FIFO{Path: path}, notifyTestSc(s), notifyTestRunner())
	if err != nil {
		t.Fatal(err)
	}
	want := ""
	for _, st := range []NotifyState{NotifyStateBackup, NotifyStateMaster} {
		line := FormatInstanceLine(NotifyInstance, "VI_1", st, 100)
		want += line
		if err := f.WriteLine(line); err != nil {
			t.Fatal(err)
		}
	}
	notifyTestWaitFor(t, 5*time.Second, "the script to read the lines", func() bool {
		return notifyTestRead(t, out) == want
	})
	pid := notifyTestPid(t, pidf)
	fifoTestStop(t, f)
	if live := notifyTestLiveGroup(t, pid); len(live) != 0 {
		t.Errorf("FIFO script still running after Stop: %v", live)
	}
}

func TestFIFOExistingPath(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFIFO(&parser.FIFO{Path: regular}, nil, notifyTestRunner()); err == nil || !strings.Contains(err.Error(), "not a FIFO") {
		t.Errorf("regular file accepted as FIFO: %v", err)
	}
	if got := notifyTestRead(t, regular); got != "keep\n" {
		t.Errorf("regular file changed to %q", got)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFIFO(&parser.FIFO{Path: link}, nil, notifyTestRunner()); err == nil {
		t.Error("symbolic link accepted as FIFO")
	}

	// A FIFO that was there is used and left in place.
	existing := filepath.Join(dir, "existing")
	if err := unix.Mkfifo(existing, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFIFO(&parser.FIFO{Path: existing}, nil, notifyTestRunner())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteLine("x"); err != nil {
		t.Fatal(err)
	}
	fifoTestStop(t, f)
	if fi, err := os.Lstat(existing); err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
		t.Errorf("existing FIFO removed by Stop: %v", err)
	}
}

func TestFIFOOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		netns.SkipUnlessCI(t, "needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		netns.SkipUnlessCI(t, "no user nobody")
	}
	path := filepath.Join(t.TempDir(), "fifo")
	f, err := OpenFIFO(&parser.FIFO{Path: path, User: "nobody"}, nil, notifyTestRunner())
	if err != nil {
		t.Fatal(err)
	}
	defer fifoTestStop(t, f)
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if strconv.Itoa(int(st.Uid)) != nobody.Uid || strconv.Itoa(int(st.Gid)) != nobody.Gid {
		t.Errorf("FIFO owned by %d:%d, want nobody's %s:%s", st.Uid, st.Gid, nobody.Uid, nobody.Gid)
	}
}
