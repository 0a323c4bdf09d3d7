//go:build linux

package vrrp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gokeepalived/parser"
)

func trackNewFile(t *testing.T, cfg *parser.TrackFile, poll time.Duration) *FileTracker {
	t.Helper()
	ft, err := NewFileTracker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ft.poll = poll
	return ft
}

func trackWaitValue(t *testing.T, rec *trackRecorder, v int) {
	t.Helper()
	rec.wait(t, 5*time.Second, fmt.Sprintf("value %d", v), func(s TrackStatus) bool { return s.Value == v })
}

// TestTrackFileWatch follows a file through writes, replacement by rename and
// deletion with inotify alone (the periodic re-read is disabled).
func TestTrackFileWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "prio")
	cfg := &parser.TrackFile{Name: "f", File: path, Weight: 2, Reverse: true, InitFile: &parser.TrackFileInit{Value: 5}}
	ft := trackNewFile(t, cfg, time.Hour)
	rec := &trackRecorder{}
	trackRun(t, rec, ft.Run)

	s := rec.wait(t, 5*time.Second, "first report", func(TrackStatus) bool { return true })
	if s.Kind != TrackFile || s.Name != "f" || s.Value != 5 || s.Weight != 2 || !s.Reverse {
		t.Fatalf("first report %+v; want init_file's 5 with the block's weight", s)
	}
	if b, _ := os.ReadFile(path); string(b) != "5\n" {
		t.Errorf("init_file wrote %q", b)
	}
	steps := []struct {
		what string
		do   func() error
		want int
	}{
		{"write in place", func() error { return os.WriteFile(path, []byte("7\n"), 0o644) }, 7},
		{"replace by rename", func() error {
			if err := os.WriteFile(path+".new", []byte("-3"), 0o644); err != nil {
				return err
			}
			return os.Rename(path+".new", path)
		}, -3},
		{"delete", func() error { return os.Remove(path) }, 0},
		{"create by rename", func() error {
			if err := os.WriteFile(filepath.Join(dir, "other"), []byte("0x0c"), 0o644); err != nil {
				return err
			}
			return os.Rename(filepath.Join(dir, "other"), path)
		}, 12},
		{"garbage", func() error { return os.WriteFile(path, []byte("up"), 0o644) }, 0},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		s := rec.wait(t, 5*time.Second, st.what, func(s TrackStatus) bool { return s.Value == st.want })
		if s.OK != (st.want == 0) || !strings.Contains(s.Detail, path) {
			t.Errorf("%s: %+v", st.what, s)
		}
	}
	// Only changes are reported.
	all := rec.reports()
	for i := 1; i < len(all); i++ {
		if all[i].Value == all[i-1].Value {
			t.Errorf("report %d repeats value %d: %+v", i, all[i].Value, all)
		}
	}
}

// TestTrackFileInit checks init_file with and without overwrite on an existing file.
func TestTrackFileInit(t *testing.T) {
	for _, overwrite := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "prio")
		if err := os.WriteFile(path, []byte("9"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := &parser.TrackFile{Name: "f", File: path, Weight: 1, InitFile: &parser.TrackFileInit{Value: -1, Overwrite: overwrite}}
		rec := &trackRecorder{}
		stop := trackRun(t, rec, trackNewFile(t, cfg, time.Hour).Run)
		want := 9
		if overwrite {
			want = -1
		}
		if s := rec.wait(t, 5*time.Second, "first report", func(TrackStatus) bool { return true }); s.Value != want {
			t.Errorf("overwrite %v: value %d, want %d", overwrite, s.Value, want)
		}
		stop()
	}
}

// TestTrackFilePoll checks the periodic re-read: a write through a hard link in
// another directory, which the directory watch does not see, and a directory that
// only appears later.
func TestTrackFilePoll(t *testing.T) {
	t.Parallel()
	t.Run("hard link", func(t *testing.T) {
		t.Parallel()
		dir, other := t.TempDir(), t.TempDir()
		path, link := filepath.Join(dir, "prio"), filepath.Join(other, "link")
		if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(path, link); err != nil {
			t.Fatal(err)
		}
		rec := &trackRecorder{}
		trackRun(t, rec, trackNewFile(t, &parser.TrackFile{Name: "f", File: path}, 30*time.Millisecond).Run)
		trackWaitValue(t, rec, 1)
		f, err := os.OpenFile(link, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("4"); err != nil {
			t.Fatal(err)
		}
		f.Close()
		trackWaitValue(t, rec, 4)
	})
	t.Run("directory created later", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "later")
		path := filepath.Join(dir, "prio")
		rec := &trackRecorder{}
		trackRun(t, rec, trackNewFile(t, &parser.TrackFile{Name: "f", File: path}, 30*time.Millisecond).Run)
		trackWaitValue(t, rec, 0)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("3"), 0o644); err != nil {
			t.Fatal(err)
		}
		trackWaitValue(t, rec, 3)
	})
}
