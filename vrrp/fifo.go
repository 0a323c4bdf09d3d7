package vrrp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// fifoMaxLine is PIPE_BUF on Linux: a write of at most this many bytes to a pipe is
// atomic, so readers never see half a line or two lines interleaved.
const fifoMaxLine = 4096

// *_fifo_script restart policy: the first restart after fifoRestartMin, each next one
// after twice the previous delay up to fifoRestartMax; after fifoMaxRestarts restarts
// in a row the script is given up. A run of at least fifoStableRun starts over. Tests
// shorten them.
var (
	fifoRestartMin  = time.Second
	fifoRestartMax  = 30 * time.Second
	fifoMaxRestarts = 10
	fifoStableRun   = time.Minute
)

// FIFOStats counts the lines of a FIFO.
type FIFOStats struct {
	Written uint64 // lines written
	Dropped uint64 // lines lost because the FIFO was full (nobody reading) or closed
}

// FIFO is a notify FIFO (notify_fifo, vrrp_notify_fifo or lvs_notify_fifo) and its
// optional *_fifo_script.
//
// OpenFIFO creates the FIFO when the path does not exist (mode 0644 less the umask, as
// keepalived, then owned by the configured user and group) and refuses a path that is
// something else than a FIFO (keepalived would open a regular file and append to it).
// The FIFO is opened read-write and non-blocking, as keepalived does, so writes never
// wait for a reader: lines wait in the pipe buffer (64 KiB by default) and are dropped
// (and counted) once it is full. Every line is written with one write of at most
// PIPE_BUF bytes, hence whole and in the order of the WriteLine calls.
//
// The script, if any, is started once with the FIFO path appended to its arguments and
// no timeout; when it exits it is restarted after 1 s, then 2 s, 4 s... up to 30 s, and
// given up after 10 restarts in a row (a run of a minute or more starts over). keepalived
// does not restart it.
type FIFO struct {
	path       string
	log        *slog.Logger
	cancel     context.CancelFunc // stops the script; nil without one
	scriptDone chan struct{}

	mu      sync.Mutex
	fd      int         // -1 once stopped
	created fs.FileInfo // the FIFO we made, removed by Stop; nil if it existed
	full    bool        // the last write failed
	stats   FIFOStats
}

// OpenFIFO creates (if missing) and opens a notify FIFO, and starts its script when
// script is not nil. r runs the script and gives the logger.
func OpenFIFO(cfg *parser.FIFO, script *parser.Script, r *NotifyRunner) (*FIFO, error) {
	f := &FIFO{path: cfg.Path, log: r.logger().With(slog.String("fifo", cfg.Path)), fd: -1}
	created, err := fifoCreate(cfg.Path)
	if err != nil {
		return nil, err
	}
	f.created = created
	if created != nil && (cfg.User != "" || cfg.Group != "") {
		f.chown(cfg)
	}
	fd, err := unix.Open(cfg.Path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err == nil {
		var st unix.Stat_t
		if err = unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFIFO {
			err = errors.New("not a FIFO")
		}
		if err != nil {
			_ = unix.Close(fd)
		}
	}
	if err != nil {
		if created != nil {
			_ = os.Remove(cfg.Path)
		}
		return nil, fmt.Errorf("open notify FIFO %s: %w", cfg.Path, err)
	}
	f.fd = fd
	if script != nil {
		ctx, cancel := context.WithCancel(context.Background())
		f.cancel, f.scriptDone = cancel, make(chan struct{})
		go f.superviseScript(ctx, r, script)
	}
	return f, nil
}

// fifoCreate makes the FIFO at path unless one is there. It returns what it made, or
// nil when the FIFO existed.
func fifoCreate(path string) (fs.FileInfo, error) {
	fi, err := os.Lstat(path)
	if err == nil {
		if fi.Mode().Type() != fs.ModeNamedPipe {
			return nil, fmt.Errorf("notify FIFO %s: the path exists and is not a FIFO (%v)", path, fi.Mode().Type())
		}
		return nil, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("notify FIFO %s: %w", path, err)
	}
	if err := unix.Mkfifo(path, 0o644); err != nil {
		return nil, fmt.Errorf("create notify FIFO %s: %w", path, err)
	}
	fi, err = os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("notify FIFO %s: %w", path, err)
	}
	return fi, nil
}

// chown gives the FIFO we created to its configured owner. Failing is logged, as
// keepalived does: the daemon can still write.
func (f *FIFO) chown(cfg *parser.FIFO) {
	id, err := notifyIdentityOf(cfg.User, cfg.Group)
	if err == nil {
		err = os.Lchown(cfg.Path, int(id.uid), int(id.gid))
	}
	if err != nil {
		f.log.Warn("cannot set the owner of the notify FIFO", "user", cfg.User, "group", cfg.Group, "err", err)
	}
}

// WriteLine writes one line (a newline is added when missing) without blocking. It
// fails, and the line is lost, when the FIFO is full or stopped.
func (f *FIFO) WriteLine(line string) error {
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	if len(line) > fifoMaxLine {
		return fmt.Errorf("notify FIFO %s: line of %d bytes is longer than %d", f.path, len(line), fifoMaxLine)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		f.stats.Dropped++
		return fmt.Errorf("notify FIFO %s: stopped", f.path)
	}
	if _, err := unix.Write(f.fd, []byte(line)); err != nil {
		f.stats.Dropped++
		if !f.full {
			f.full = true
			f.log.Warn("notify FIFO is full (is its reader running?); dropping lines until it is read", "err", err)
		}
		return fmt.Errorf("write notify FIFO %s: %w", f.path, err)
	}
	if f.full {
		f.full = false
		f.log.Info("notify FIFO is read again", "dropped_so_far", f.stats.Dropped)
	}
	f.stats.Written++
	return nil
}

// Stats returns the line counters.
func (f *FIFO) Stats() FIFOStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Stop terminates the script (SIGTERM to its process group, SIGKILL after the runner's
// grace), closes the FIFO and removes it if OpenFIFO created it (and it is still the
// same file). A FIFO that existed before is left in place. If ctx ends before the script
// is gone, Stop goes on closing and reports ctx's error.
func (f *FIFO) Stop(ctx context.Context) error {
	var errs []error
	if f.cancel != nil {
		f.cancel()
		select {
		case <-f.scriptDone:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("notify FIFO %s: script not yet stopped: %w", f.path, ctx.Err()))
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd >= 0 {
		if err := unix.Close(f.fd); err != nil {
			errs = append(errs, fmt.Errorf("close notify FIFO %s: %w", f.path, err))
		}
		f.fd = -1
	}
	if f.created != nil {
		if fi, err := os.Lstat(f.path); err == nil && os.SameFile(fi, f.created) {
			if err := os.Remove(f.path); err != nil {
				errs = append(errs, fmt.Errorf("remove notify FIFO: %w", err))
			}
		}
		f.created = nil
	}
	return errors.Join(errs...)
}

// superviseScript runs the FIFO script with the path as last argument until ctx ends,
// restarting it with backoff when it exits.
func (f *FIFO) superviseScript(ctx context.Context, r *NotifyRunner, s *parser.Script) {
	defer close(f.scriptDone)
	backoff, restarts := fifoRestartMin, 0
	for {
		start := time.Now()
		err := r.run(ctx, f.log, s, []string{f.path}, 0)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) >= fifoStableRun {
			backoff, restarts = fifoRestartMin, 0
		}
		if restarts >= fifoMaxRestarts {
			f.log.Error("FIFO script keeps exiting; not restarting it any more", "restarts", restarts, "err", err)
			return
		}
		restarts++
		f.log.Warn("FIFO script exited; restarting it", "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, fifoRestartMax)
	}
}

// LVSService names a virtual server the way keepalived's LVS FIFO lines do.
type LVSService struct {
	// Group, for `virtual_server group NAME`, prints as [NAME]:PORT (port of Addr).
	Group string
	// FWMark, for `virtual_server fwmark N`, prints as FWM N.
	FWMark uint32
	// Addr and Protocol (TCP, UDP or SCTP, any case; empty prints none) print as
	// [ADDR]:proto:PORT.
	Addr     netip.AddrPort
	Protocol string
}

// String formats the service as keepalived's FMT_VS.
func (s LVSService) String() string {
	switch {
	case s.Group != "":
		return fmt.Sprintf("[%s]:%d", s.Group, s.Addr.Port())
	case s.FWMark != 0:
		return fmt.Sprintf("FWM %d", s.FWMark)
	}
	return fifoTrio(s.Addr, s.Protocol)
}

// fifoTrio formats an address, protocol and port as keepalived's inet_sockaddrtotrio.
func fifoTrio(a netip.AddrPort, proto string) string {
	p := strings.ToLower(proto)
	if p == "" {
		p = "none"
	}
	return fmt.Sprintf("[%s]:%s:%d", a.Addr().Unmap().WithZone(""), p, a.Port())
}

func fifoUpDown(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}

// FormatVSLine returns the LVS FIFO line of a virtual server's quorum change, as
// keepalived writes it: `VS [192.168.201.15]:tcp:80 UP` and a newline.
func FormatVSLine(vs LVSService, up bool) string {
	return fmt.Sprintf("VS %s %s\n", vs, fifoUpDown(up))
}

// FormatRSLine returns the LVS FIFO line of a real server's health change, as keepalived
// writes it: `RS [1.2.3.4]:tcp:80 [192.168.201.15]:tcp:80 DOWN` and a newline. The real
// server is printed with the virtual server's protocol.
func FormatRSLine(rs netip.AddrPort, vs LVSService, up bool) string {
	return fmt.Sprintf("RS %s %s %s\n", fifoTrio(rs, vs.Protocol), vs, fifoUpDown(up))
}
