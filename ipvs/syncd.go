package ipvs

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"gokeepalived/parser"
)

// SyncState is the role of one of the kernel's IPVS connection synchronisation
// daemons: a master sends the connections of this director, a backup receives its
// peer's.
type SyncState uint32

// The kernel's sync daemon states (IP_VS_STATE_MASTER, IP_VS_STATE_BACKUP).
const (
	SyncMaster SyncState = 1
	SyncBackup SyncState = 2
)

func (s SyncState) String() string {
	switch s {
	case SyncMaster:
		return "master"
	case SyncBackup:
		return "backup"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// SyncDaemon is one sync daemon as `ipvsadm --start-daemon` describes it. MaxLen,
// Port, TTL and Group zero mean the kernel's defaults.
type SyncDaemon struct {
	State     SyncState
	Interface string
	SyncID    uint8
	MaxLen    uint16
	Port      uint16
	TTL       uint8
	Group     netip.Addr
}

// String describes d as `ipvsadm -L --daemon` does, without the state when it is unset.
func (d SyncDaemon) String() string {
	s := fmt.Sprintf("sync daemon (mcast=%s, syncid=%d", d.Interface, d.SyncID)
	if d.State != 0 {
		s = d.State.String() + " " + s
	}
	if d.MaxLen != 0 {
		s += fmt.Sprintf(", maxlen=%d", d.MaxLen)
	}
	if d.Group.IsValid() {
		s += ", group=" + d.Group.String()
	}
	if d.Port != 0 {
		s += fmt.Sprintf(", port=%d", d.Port)
	}
	if d.TTL != 0 {
		s += fmt.Sprintf(", ttl=%d", d.TTL)
	}
	return s + ")"
}

// satisfies reports whether the running daemon have serves as want: same state,
// interface and id, and the same value for every parameter want sets.
func (have SyncDaemon) satisfies(want SyncDaemon) bool {
	return have.State == want.State && have.Interface == want.Interface && have.SyncID == want.SyncID &&
		(want.MaxLen == 0 || have.MaxLen == want.MaxLen) && (want.Port == 0 || have.Port == want.Port) &&
		(want.TTL == 0 || have.TTL == want.TTL) && (!want.Group.IsValid() || have.Group == want.Group)
}

// SyncDaemonOf returns the daemon of lvs_sync_daemon (its State unset).
func SyncDaemonOf(c *parser.LVSSyncDaemon) SyncDaemon {
	return SyncDaemon{Interface: c.Interface, SyncID: uint8(c.SyncID), MaxLen: uint16(c.MaxLen),
		Port: uint16(c.Port), TTL: uint8(c.TTL), Group: c.Group}
}

// SyncKernel lists, starts and stops the kernel's sync daemons.
type SyncKernel interface {
	// SyncDaemons returns the running daemons (at most one per state).
	SyncDaemons() ([]SyncDaemon, error)
	// StartSyncDaemon starts d in d.State; ErrExist if one runs in that state.
	StartSyncDaemon(d SyncDaemon) error
	// StopSyncDaemon stops the daemon in state s; ErrNoService if none runs.
	StopSyncDaemon(s SyncState) error
}

// syncRetry is how long after a failed change the controller tries again.
const syncRetry = 5 * time.Second

// SyncController keeps the kernel's sync daemons as lvs_sync_daemon and the VRRP
// instance's state say: the daemon in the role runs with the configured parameters and
// the daemon of the other role does not. It reconciles against what the kernel reports,
// so a restart that finds the right daemon running leaves it alone (its peer keeps
// syncing); a failed change is retried every syncRetry until it succeeds, the role
// changes or Stop.
type SyncController struct {
	k   SyncKernel
	log *slog.Logger

	mu         sync.Mutex
	cfg        SyncDaemon
	role       SyncState
	retry      *time.Timer
	retryAfter time.Duration
	stopped    bool
	lastErr    error
}

// NewSyncController returns a controller of the daemons configured as cfg (its State
// is ignored). It changes nothing until SetRole.
func NewSyncController(k SyncKernel, cfg SyncDaemon, log *slog.Logger) *SyncController {
	return &SyncController{k: k, cfg: cfg, log: log, retryAfter: syncRetry}
}

// SetRole makes role's daemon run and stops the other one.
func (c *SyncController) SetRole(role SyncState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.role = role
	return c.reconcileLocked()
}

// Reconfigure replaces the configuration (a reload) and applies it in the current role.
func (c *SyncController) Reconfigure(cfg SyncDaemon) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg = cfg
	if c.stopped || c.role == 0 {
		return nil
	}
	return c.reconcileLocked()
}

// Role returns the role last set (0 before SetRole).
func (c *SyncController) Role() SyncState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.role
}

// Err returns the error of the last change, nil once a change (or its retry) worked.
func (c *SyncController) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Stop stops the daemon of the current role, as keepalived does when it exits, and
// ends the retries. Before any SetRole it changes nothing.
func (c *SyncController) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.retry != nil {
		c.retry.Stop()
	}
	if c.role == 0 {
		return nil
	}
	have, err := c.k.SyncDaemons()
	if err != nil {
		return fmt.Errorf("sync daemons: %w", err)
	}
	for _, d := range have {
		if d.State != c.role {
			continue
		}
		if err := c.k.StopSyncDaemon(d.State); err != nil && !errors.Is(err, ErrNoService) {
			return fmt.Errorf("stop %s: %w", d, err)
		}
		c.log.Info("IPVS sync daemon stopped", "daemon", d.String())
	}
	return nil
}

// reconcileLocked brings the kernel to the role's daemon, scheduling a retry if it
// could not.
func (c *SyncController) reconcileLocked() error {
	if c.retry != nil {
		c.retry.Stop()
		c.retry = nil
	}
	err := c.applyLocked()
	c.lastErr = err
	if err != nil {
		c.retry = time.AfterFunc(c.retryAfter, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.stopped {
				return
			}
			if err := c.reconcileLocked(); err != nil {
				c.log.Warn("IPVS sync daemon: retry failed", "err", err, "next", c.retryAfter)
			}
		})
	}
	return err
}

func (c *SyncController) applyLocked() error {
	want := c.cfg
	want.State = c.role
	other := SyncBackup
	if c.role == SyncBackup {
		other = SyncMaster
	}
	have, err := c.k.SyncDaemons()
	if err != nil {
		return fmt.Errorf("sync daemons: %w", err)
	}
	running := false
	for _, d := range have {
		switch {
		case d.State == other:
			if err := c.k.StopSyncDaemon(other); err != nil && !errors.Is(err, ErrNoService) {
				return fmt.Errorf("stop %s: %w", d, err)
			}
			c.log.Info("IPVS sync daemon stopped", "daemon", d.String())
		case d.satisfies(want):
			running = true
		default: // our role, other parameters
			if err := c.k.StopSyncDaemon(d.State); err != nil && !errors.Is(err, ErrNoService) {
				return fmt.Errorf("stop %s to restart it as %s: %w", d, want, err)
			}
			c.log.Info("IPVS sync daemon stopped to change its parameters", "daemon", d.String())
		}
	}
	if running {
		return nil
	}
	if err := c.k.StartSyncDaemon(want); err != nil {
		return fmt.Errorf("start %s: %w", want, err)
	}
	c.log.Info("IPVS sync daemon started", "daemon", want.String())
	return nil
}
