//go:build linux

package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gokeepalived/check"
	"gokeepalived/parser"
)

// filePollInterval is how often a track_file is re-read whatever inotify says.
const filePollInterval = time.Second

// FileTracker watches a track_file and reports the number it holds.
//
// The file is read as keepalived reads it (check.ReadTrackFile): its first 127 bytes
// are parsed like strtol(buf, NULL, 0); a missing, unreadable, empty or unparsable
// file is 0, as in keepalived. A number outside the 32-bit range is taken as read
// (saturated at the int64 range), where a FILE_CHECK keeps its previous value.
//
// Changes are seen through inotify on the file's directory (close after writing,
// creation by rename, deletion), so replacing the file by rename, the safe way to
// update it, works. The file is also re-read every second in case an event is missed
// (a write through another hard link, a directory created later, a full inotify
// queue). Reports are sent when the value changes.
type FileTracker struct {
	cfg  *parser.TrackFile
	log  *slog.Logger
	poll time.Duration
}

// NewFileTracker prepares a tracker for cfg.
func NewFileTracker(cfg *parser.TrackFile, log *slog.Logger) (*FileTracker, error) {
	if cfg.File == "" {
		return nil, fmt.Errorf("track_file %s: no file", cfg.Name)
	}
	return &FileTracker{cfg: cfg, log: trackLogger(log, TrackFile, cfg.Name), poll: filePollInterval}, nil
}

// Run first applies init_file (writes the initial value when the file does not exist,
// or always with overwrite), then watches the file until ctx ends.
func (t *FileTracker) Run(ctx context.Context, report func(TrackStatus)) {
	if err := t.initFile(); err != nil {
		t.log.Error("cannot initialise track file", "err", err)
	}
	path := t.cfg.File
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p // keepalived follows a symbolic link once, at start
	}
	last, _ := check.ReadTrackFile(path)
	report(t.status(last, path))

	w := newFileWatch(path, t.log)
	defer w.close()
	stop := context.AfterFunc(ctx, w.interrupt)
	defer stop()
	for ctx.Err() == nil {
		w.wait(ctx, t.poll)
		if v, _ := check.ReadTrackFile(path); v != last {
			last = v
			report(t.status(v, path))
		}
	}
}

// initFile writes init_file's value as keepalived does.
func (t *FileTracker) initFile() error {
	in := t.cfg.InitFile
	if in == nil {
		return nil
	}
	data := []byte(fmt.Sprintf("%d\n", in.Value))
	if !in.Overwrite {
		f, err := os.OpenFile(t.cfg.File, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", t.cfg.File, err)
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", t.cfg.File, err)
		}
		return nil
	}
	// Overwrite by renaming a complete file over the old one: a reader never sees it
	// empty.
	tmp := t.cfg.File + ".gokeepalived-init"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, t.cfg.File); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", t.cfg.File, err)
	}
	return nil
}

func (t *FileTracker) status(v int64, path string) TrackStatus {
	return TrackStatus{
		Kind: TrackFile, Name: t.cfg.Name, Weight: t.cfg.Weight, Reverse: t.cfg.Reverse,
		Value: int(v), OK: v == 0, Detail: fmt.Sprintf("%d read from %s", v, path),
	}
}

// fileWatch is an inotify watch on the directory of a track file.
type fileWatch struct {
	dir, name string
	log       *slog.Logger
	f         *os.File // the inotify descriptor; nil when inotify is unavailable
	fd        int      // f's descriptor (f.Fd would make it blocking)
	watching  bool
}

const fileWatchMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_CREATE

func newFileWatch(path string, log *slog.Logger) *fileWatch {
	w := &fileWatch{dir: filepath.Dir(path), name: filepath.Base(path), log: log}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		log.Warn("inotify unavailable; polling the track file", "err", err)
		return w
	}
	w.f, w.fd = os.NewFile(uintptr(fd), "inotify"), fd
	w.add()
	return w
}

// add watches the directory, once it exists.
func (w *fileWatch) add() {
	if w.f == nil || w.watching {
		return
	}
	if _, err := unix.InotifyAddWatch(w.fd, w.dir, fileWatchMask); err != nil {
		w.log.Debug("cannot watch the track file's directory yet; polling", "dir", w.dir, "err", err)
		return
	}
	w.watching = true
}

// wait returns after an event concerning the file, after poll, or once ctx ends
// (interrupt makes a blocked read return).
func (w *fileWatch) wait(ctx context.Context, poll time.Duration) {
	if !w.watching {
		t := time.NewTimer(poll)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		w.add()
		return
	}
	deadline := time.Now().Add(poll)
	buf := make([]byte, 4096)
	for {
		if err := w.f.SetReadDeadline(deadline); err != nil {
			w.log.Warn("inotify read deadline; polling the track file", "err", err)
			w.watching = false
			return
		}
		if ctx.Err() != nil {
			return
		}
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				w.log.Warn("inotify read", "err", err)
			}
			return
		}
		if w.concerns(buf[:n]) {
			return
		}
	}
}

// concerns reports whether the inotify events in b concern the file (or were lost).
func (w *fileWatch) concerns(b []byte) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			return true
		}
		name := b[unix.SizeofInotifyEvent:end]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		if ev.Mask&(unix.IN_Q_OVERFLOW|unix.IN_IGNORED) != 0 || string(name) == w.name {
			if ev.Mask&unix.IN_IGNORED != 0 {
				w.watching = false // the directory went away: poll until it is back
			}
			return true
		}
		b = b[end:]
	}
	return false
}

// interrupt makes a blocked wait return.
func (w *fileWatch) interrupt() {
	if w.f != nil {
		_ = w.f.SetReadDeadline(time.Now())
	}
}

func (w *fileWatch) close() {
	if w.f != nil {
		_ = w.f.Close()
	}
}
