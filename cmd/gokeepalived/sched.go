package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// applyScheduling applies vrrp_priority (nice) and vrrp_rt_priority (SCHED_RR) to every
// thread of the process; threads the Go runtime starts later inherit them from the thread
// that creates them. keepalived applies them to its VRRP child; gokeepalived is one
// process, so the health checks share them.
func applyScheduling(g *parser.GlobalDefs) error {
	if g.VRRPPriority == nil && g.VRRPRTPriority == 0 {
		return nil
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("list threads: %w", err)
	}
	var errs []error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		attr := unix.SchedAttr{Policy: unix.SCHED_NORMAL}
		if g.VRRPPriority != nil {
			attr.Nice = int32(*g.VRRPPriority)
		}
		if g.VRRPRTPriority > 0 {
			attr.Policy, attr.Priority = unix.SCHED_RR, uint32(g.VRRPRTPriority)
		}
		if err := unix.SchedSetAttr(tid, &attr, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("thread %d: %w", tid, err))
		}
	}
	return errors.Join(errs...)
}
