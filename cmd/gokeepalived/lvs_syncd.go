package main

import (
	"fmt"
	"log/slog"
	"sync"

	"gokeepalived/ipvs"
	"gokeepalived/parser"
	"gokeepalived/vrrp"
)

// syncDaemons runs global_defs lvs_sync_daemon as keepalived's VRRP process does: the
// kernel's IPVS connection sync daemon is a backup from the start and a master while
// the named vrrp_instance is MASTER, and the daemon of the current role is stopped at
// exit. Role changes are made by a goroutine of its own, so that the kernel calls never
// hold up the instance that changed state (keepalived makes them in its VRRP thread).
// The zero value (no lvs_sync_daemon) does nothing.
type syncDaemons struct {
	log    *slog.Logger
	kernel func() (ipvs.SyncKernel, error)
	wake   chan struct{} // a role to apply (capacity 1)
	quit   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	ctl      *ipvs.SyncController
	instance string
	want     ipvs.SyncState // the role the last transition asked for
	// stateOf, when set, tells an instance's state, for a reload that adds
	// lvs_sync_daemon or moves it to another instance.
	stateOf func(instance string) vrrp.State
	cfg     *parser.LVSSyncDaemon // as configured, for status
	openErr error                 // why there is no controller for cfg
}

// syncDaemonDoc is lvs_sync_daemon in the status document.
type syncDaemonDoc struct {
	Interface string `json:"interface"`
	Instance  string `json:"instance"`
	SyncID    int    `json:"syncid"`
	// Role is master or backup, empty when the daemon could not be run.
	Role  string `json:"role,omitempty"`
	Error string `json:"error,omitempty"`
}

// newSyncDaemons returns the sync daemons of cfg, started as backup (no instance runs
// yet); kernel opens the kernel's sync daemon interface when the configuration first
// asks for one.
func newSyncDaemons(cfg *parser.Config, kernel func() (ipvs.SyncKernel, error), log *slog.Logger) *syncDaemons {
	s := &syncDaemons{log: log, kernel: kernel, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	s.apply(cfg.Global.LVSSyncDaemon)
	go s.work()
	return s
}

// work applies the role the transitions ask for, the latest one when several came in
// while a change was being made.
func (s *syncDaemons) work() {
	defer close(s.done)
	for {
		select {
		case <-s.quit:
			return
		case <-s.wake:
		}
		s.mu.Lock()
		ctl, role, instance := s.ctl, s.want, s.instance
		s.mu.Unlock()
		if ctl == nil || role == 0 || role == ctl.Role() {
			continue
		}
		if err := ctl.SetRole(role); err != nil {
			s.log.Error("lvs_sync_daemon: cannot switch the IPVS sync daemon; retrying", "instance", instance, "role", role.String(), "err", err)
		}
	}
}

// netlinkSyncKernel is the Linux sync daemon interface, refused without IPVS.
func netlinkSyncKernel() (ipvs.SyncKernel, error) {
	return ipvs.NewSyncNetlink(ipvs.DefaultCallTimeout)
}

// apply starts, reconfigures or stops the controller for c (nil: no sync daemon).
func (s *syncDaemons) apply(c *parser.LVSSyncDaemon) {
	role := ipvs.SyncBackup // asked before locking: stateOf waits for the instances
	if c != nil && s.stateOf != nil && s.stateOf(c.Instance) == vrrp.StateMaster {
		role = ipvs.SyncMaster
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg, s.openErr = c, nil
	switch {
	case c == nil && s.ctl != nil:
		s.stopLocked()
	case c == nil:
	case s.ctl == nil:
		k, err := s.kernel()
		if err != nil {
			s.log.Error("lvs_sync_daemon: cannot run the IPVS sync daemon", "interface", c.Interface, "instance", c.Instance, "err", err)
			s.openErr = err
			return
		}
		s.ctl, s.instance, s.want = ipvs.NewSyncController(k, ipvs.SyncDaemonOf(c), s.log), c.Instance, role
		if err := s.ctl.SetRole(role); err != nil {
			s.log.Error("lvs_sync_daemon: cannot start the sync daemon; retrying", "role", role.String(), "err", err)
		}
	default:
		if c.Instance != s.instance {
			s.log.Info("lvs_sync_daemon follows another instance", "instance", c.Instance, "was", s.instance, "role", role.String())
			s.instance, s.want = c.Instance, role
			s.kick()
		}
		if err := s.ctl.Reconfigure(ipvs.SyncDaemonOf(c)); err != nil {
			s.log.Error("lvs_sync_daemon: cannot apply the new parameters; retrying", "err", err)
		}
	}
}

// transition makes the daemon a master when its instance becomes MASTER and a backup
// when it leaves MASTER. The end of an instance (INIT, at stop or when a reload removes
// it) changes nothing: stop stops the daemon at exit.
func (s *syncDaemons) transition(t vrrp.Transition) {
	s.mu.Lock()
	if s.ctl == nil || t.Instance != s.instance || t.To == vrrp.StateInit {
		s.mu.Unlock()
		return
	}
	s.want = ipvs.SyncBackup
	if t.To == vrrp.StateMaster {
		s.want = ipvs.SyncMaster
	}
	s.mu.Unlock()
	s.kick()
}

// kick wakes the worker; a wake-up already pending reads the latest role too.
func (s *syncDaemons) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// status describes the sync daemon for the status document; nil without one.
func (s *syncDaemons) status() *syncDaemonDoc {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg == nil {
		return nil
	}
	d := &syncDaemonDoc{Interface: s.cfg.Interface, Instance: s.cfg.Instance, SyncID: s.cfg.SyncID}
	err := s.openErr
	if s.ctl != nil {
		d.Role, err = s.ctl.Role().String(), s.ctl.Err()
	}
	if err != nil {
		d.Error = err.Error()
	}
	return d
}

// stop ends the role changes and stops the daemon of the current role.
func (s *syncDaemons) stop() {
	if s.quit != nil {
		close(s.quit)
		<-s.done
		s.quit = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctl != nil {
		s.stopLocked()
	}
}

func (s *syncDaemons) stopLocked() {
	if err := s.ctl.Stop(); err != nil {
		s.log.Error("lvs_sync_daemon: cannot stop the IPVS sync daemon", "err", err)
	}
	s.ctl = nil
}

// syncDaemonChange describes what a reload from old to next does to lvs_sync_daemon
// ("" for nothing), for reload --dry-run.
func syncDaemonChange(old, next *parser.LVSSyncDaemon) string {
	show := func(c *parser.LVSSyncDaemon) string {
		return fmt.Sprintf("%s for %s (%s)", c.Interface, c.Instance, ipvs.SyncDaemonOf(c))
	}
	switch {
	case old == nil && next == nil:
		return ""
	case old == nil:
		return "lvs_sync_daemon: + " + show(next)
	case next == nil:
		return "lvs_sync_daemon: - " + show(old)
	case old.Instance == next.Instance && ipvs.SyncDaemonOf(old) == ipvs.SyncDaemonOf(next):
		return ""
	}
	return "lvs_sync_daemon: ~ " + show(old) + " -> " + show(next)
}
