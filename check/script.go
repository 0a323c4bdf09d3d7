package check

import (
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Script is a program started in a process group of its own, so that it can be
// stopped together with everything it started. It is reaped as soon as it exits.
type Script struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, set before done is closed
}

// StartScript starts args[0] with the arguments args[1:] in a new process group (whose
// ID is the script's pid), as cred when not nil and in dir when not empty, with its
// standard input, output and error on /dev/null. The error is exec.Cmd.Start's.
func StartScript(args []string, cred *syscall.Credential, dir string) (*Script, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Script{cmd: cmd, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// Done is closed once the script has exited and been reaped.
func (s *Script) Done() <-chan struct{} { return s.done }

// Wait waits for the script to exit and returns how it ended: its process state and
// exec.Cmd.Wait's error (an *exec.ExitError when it exited non-zero or died of a signal).
func (s *Script) Wait() (*os.ProcessState, error) {
	<-s.done
	return s.cmd.ProcessState, s.err
}

// Signal sends sig to the script's whole process group.
func (s *Script) Signal(sig syscall.Signal) {
	_ = syscall.Kill(-s.cmd.Process.Pid, sig)
}

// Stop sends SIGTERM to the script's process group now, and SIGKILL at the first of the
// script's exit and grace, so that what it started (or what ignored SIGTERM) dies too.
// It returns at once; the SIGKILL comes from a goroutine.
func (s *Script) Stop(grace time.Duration) {
	s.Signal(syscall.SIGTERM)
	go func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-s.done:
		case <-t.C:
		}
		s.Signal(syscall.SIGKILL)
	}()
}
