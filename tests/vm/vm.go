// Package vm boots a throw-away Linux VM (qemu, TCG) with Debian's kernel and a busybox
// initramfs, runs one statically linked test binary inside it and returns the binary's exit
// code and the whole console output. It exists because the hosts that run the test suite
// have no IPVS: tests of the real kernel IPVS run in the guest.
//
// The usual pattern (see smoke_test.go): a host-side test calls [Setup], compiles the
// guest-only tests of a package with [BuildTest], and hands the binary to [Run] with
// "-test.v" and friends as arguments, so that one boot runs the whole guest suite.
//
// The guest has no network device; tests use its loopback and their own namespaces.
package vm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults used by [Run] for zero [Config] fields.
const (
	DefaultMemory  = "1024M"
	DefaultCPUs    = 1
	DefaultTimeout = 10 * time.Minute
)

// GuestEnv is the environment variable /init sets to "1" for the guest binary. Guest-only
// tests refuse to run without it.
const GuestEnv = "GKA_IN_VM"

// guestDir is where the binary lives inside the guest.
const guestDir = "/gka"

// Config describes one VM run.
type Config struct {
	// Binary is the host path of a statically linked executable (for example a test binary
	// built by [BuildTest]); it runs as /gka/<its base name> in the guest, working
	// directory /, standard input /dev/null.
	Binary string
	// Args are passed to Binary unchanged.
	Args []string
	// Env holds extra KEY=VALUE pairs for Binary, besides PATH, HOME, TMPDIR and GKA_IN_VM=1.
	Env []string
	// Files are extra host files to copy into the guest (see [BinaryWithLibs]).
	Files []File
	// Modules are kernel modules to load after [DefaultModules]; their dependencies are
	// resolved from the modules' own metadata and loaded first.
	Modules []string
	// Timeout bounds the whole run, boot included (default [DefaultTimeout]).
	Timeout time.Duration
	// Memory is qemu's -m value (default [DefaultMemory]).
	Memory string
	// CPUs is the number of guest CPUs (default [DefaultCPUs]; under TCG a second CPU adds
	// about 2 s to the boot).
	CPUs int
	// Cache is the directory prepared by setup.sh (default [CacheDir]).
	Cache string
	// Console, when set, receives the serial console as it arrives (carriage returns
	// removed), for callers that show the guest's progress live.
	Console io.Writer
}

// File is a host file to copy into the guest.
type File struct {
	// Src is the host path; symbolic links are followed.
	Src string
	// Dst is the absolute guest path; missing parent directories are created.
	Dst string
	// Mode is the guest permission bits; zero keeps the host file's.
	Mode fs.FileMode
}

// Result is what a VM run produced.
type Result struct {
	// ExitCode is the guest binary's exit status (as the guest shell reports it: 128+n for
	// a death by signal n).
	ExitCode int
	// Output is the whole serial console: firmware and kernel messages, /init's messages
	// and the binary's stdout and stderr, without carriage returns and terminal control
	// sequences.
	Output string
	// Boot is the time from starting qemu until /init was about to start the binary.
	Boot time.Duration
	// Elapsed is the time from starting qemu until the guest reported the exit code.
	Elapsed time.Duration
}

// Run boots a VM as described by cfg, runs cfg.Binary in it and returns its exit code and
// console output. An error means the guest never reported an exit code (qemu failed, the
// kernel panicked, the timeout or ctx expired); the error then quotes the console's tail,
// and the partial Result is still returned.

// kernelClock makes the guest read time from the TSC, in the vDSO, as Linux does on
// real hardware. Under TCG the kernel distrusts the emulated TSC and picks the HPET,
// which the vDSO cannot read: every clock_gettime is then a system call and an
// emulated device access, tens of microseconds, a cost no real director pays (the
// LVS scale benchmark read it as 6 % of the checker's CPU). QEMU's TCG derives its TSC
// from the host's monotonic clock, the same for every vCPU.
const kernelClock = "clocksource=tsc tsc=reliable"

func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Binary == "" {
		return Result{}, errors.New("vm: Config.Binary is empty")
	}
	if err := requireStatic(cfg.Binary); err != nil {
		return Result{}, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Memory == "" {
		cfg.Memory = DefaultMemory
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = DefaultCPUs
	}
	if cfg.Cache == "" {
		dir, err := CacheDir()
		if err != nil {
			return Result{}, err
		}
		cfg.Cache = dir
	}
	k, err := findKernel(cfg.Cache)
	if err != nil {
		return Result{}, err
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return Result{}, fmt.Errorf("vm: qemu-system-x86_64 not found (run tests/vm/setup.sh): %w", err)
	}

	work, err := os.MkdirTemp("", "gka-vm-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(work)
	nonce := rand.Text()
	initrd := filepath.Join(work, "initrd.cpio")
	if err := buildInitramfs(initrd, k, cfg, nonce); err != nil {
		return Result{}, err
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu,
		"-accel", "tcg", "-cpu", "max", "-smp", strconv.Itoa(cfg.CPUs), "-m", cfg.Memory,
		"-kernel", k.vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1 "+kernelClock,
		"-nographic", "-no-reboot", "-nic", "none", "-monitor", "none", "-serial", "stdio")
	con := newConsole(nonce)
	con.live = cfg.Console
	var stderr bytes.Buffer
	cmd.Stdout = con
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("vm: start qemu: %w", err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()

	// The guest does not power off by itself right away (output still queued in its UART
	// would be lost): we stop qemu as soon as the exit marker has arrived.
	var qemuErr error
	select {
	case <-con.exited:
		_ = cmd.Process.Kill()
		<-waitErr
	case qemuErr = <-waitErr:
	}

	res := con.result(start)
	if res.ExitCode >= 0 {
		return res, nil
	}
	res.ExitCode = -1
	why := "guest reported no exit code"
	switch {
	case ctx.Err() != nil:
		why = fmt.Sprintf("%s (%v after %v)", why, ctx.Err(), time.Since(start).Round(time.Millisecond))
	case qemuErr != nil:
		why = fmt.Sprintf("%s (qemu: %v)", why, qemuErr)
	}
	return res, fmt.Errorf("vm: %s; qemu stderr: %q; console tail:\n%s", why, strings.TrimSpace(stderr.String()), tail(res.Output, 40))
}

// ansiRe matches the terminal control sequences SeaBIOS prints (reset, clear screen).
var ansiRe = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|c)`)

// console collects qemu's serial output and watches it for the start and exit markers.
type console struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	startRe *regexp.Regexp
	exitRe  *regexp.Regexp
	started time.Time
	ended   time.Time
	code    int
	exited  chan struct{}
	live    io.Writer // Config.Console
}

func newConsole(nonce string) *console {
	return &console{
		startRe: regexp.MustCompile(`GKA-VM-START ` + nonce),
		exitRe:  regexp.MustCompile(`GKA-VM-EXIT ` + nonce + ` (\d+)\n`),
		code:    -1,
		exited:  make(chan struct{}),
	}
}

// Write implements io.Writer for exec.Cmd.Stdout.
func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	clean := bytes.ReplaceAll(p, []byte("\r"), nil)
	c.buf.Write(clean)
	if c.live != nil {
		_, _ = c.live.Write(clean)
	}
	if c.code >= 0 {
		return len(p), nil
	}
	// A marker may be split across writes: search the recent tail of the buffer.
	b := c.buf.Bytes()
	recent := b[max(0, len(b)-len(p)-256):]
	if c.started.IsZero() && c.startRe.Match(recent) {
		c.started = time.Now()
	}
	if m := c.exitRe.FindSubmatch(recent); m != nil {
		c.code, _ = strconv.Atoi(string(m[1]))
		c.ended = time.Now()
		close(c.exited)
	}
	return len(p), nil
}

func (c *console) result(start time.Time) Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Result{ExitCode: c.code, Output: ansiRe.ReplaceAllString(c.buf.String(), "")}
	if !c.started.IsZero() {
		r.Boot = c.started.Sub(start)
	}
	if !c.ended.IsZero() {
		r.Elapsed = c.ended.Sub(start)
	}
	return r
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
