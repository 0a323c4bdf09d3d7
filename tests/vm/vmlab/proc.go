//go:build vmguest

package vmlab

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Log is a goroutine-safe buffer for a process's output.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Proc is a daemon a test started, in a process group of its own.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	// Out collects the standard output and error, unless the caller points Cmd.Stdout
	// and Cmd.Stderr elsewhere before Start.
	Out  *Log
	done chan struct{}
	err  error
}

// NewProc prepares the daemon name, the command args; Start starts it.
func NewProc(name string, args ...string) *Proc {
	p := &Proc{Name: name, Out: &Log{}, done: make(chan struct{})}
	p.Cmd = exec.Command(args[0], args[1:]...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return p
}

// Start starts the process inside namespace n, or in the root namespace when n is nil.
func (p *Proc) Start(n *NS) error {
	start := p.Cmd.Start
	if n != nil {
		// The child is forked by the calling thread, so it inherits the thread's namespace.
		start = func() error { return n.Do(p.Cmd.Start) }
	}
	if err := start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	return nil
}

// StartProc starts a daemon in the root namespace; it is killed when the test ends if
// still running, and its output is logged then.
func StartProc(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	p := NewProc(name, args...)
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.Exited() {
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
		t.Logf("%s output:\n%s", p.Name, p.Out.String())
	})
	return p
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, once it has exited.
func (p *Proc) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Stop sends sig and waits for the process to exit; it returns its exit error. After
// timeout it kills the process.
func (p *Proc) Stop(sig syscall.Signal, timeout time.Duration) error {
	if p.Exited() {
		return fmt.Errorf("%s had already exited: %v", p.Name, p.err)
	}
	if err := p.Cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return errors.Join(fmt.Errorf("%s did not exit within %v of %v; killed", p.Name, timeout, sig), p.err)
	}
}

// Kill sends SIGKILL and waits for the process to be gone (10 s at most).
func (p *Proc) Kill() error {
	if p.Exited() {
		return fmt.Errorf("%s had already exited: %v", p.Name, p.err)
	}
	if err := p.Cmd.Process.Kill(); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s still running 10 s after SIGKILL", p.Name)
	}
}

// WaitLog waits until the process has printed s (and has not exited), failing the test
// after timeout or at once if it exits.
func (p *Proc) WaitLog(t testing.TB, s string, timeout time.Duration) time.Duration {
	t.Helper()
	return WaitFor(t, timeout, fmt.Sprintf("%s logs %q", p.Name, s), func() (bool, string) {
		if p.Exited() {
			t.Fatalf("%s exited: %v\n%s", p.Name, p.err, p.Out.String())
		}
		return strings.Contains(p.Out.String(), s), "not yet"
	})
}
