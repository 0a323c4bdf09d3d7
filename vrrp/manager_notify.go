package vrrp

import (
	"context"
	"errors"
	"time"

	"gokeepalived/parser"
)

// notifyStopTimeout bounds how long Stop waits for the queued notify scripts (notify_stop
// among them) and the FIFO scripts.
const notifyStopTimeout = 15 * time.Second

// notifications are the notify scripts and FIFOs of a running configuration.
type notifications struct {
	runner    *NotifyRunner
	fifos     []*FIFO
	byName    map[string]*Notifier
	notifiers []*Notifier
}

// openNotifications opens the FIFOs and makes one Notifier per instance. A FIFO that
// cannot be opened is logged and left out; notify scripts still run.
func (m *Manager) openNotifications(cfg *parser.Config) *notifications {
	g := &cfg.Global
	nt := &notifications{runner: NewNotifyRunner(g, m.log), byName: map[string]*Notifier{}}
	open := func(f *parser.FIFO, s *parser.Script) {
		if f == nil {
			return
		}
		fifo, err := OpenFIFO(f, s, nt.runner)
		if err != nil {
			m.log.Error("cannot open notify FIFO", "path", f.Path, "err", err)
			return
		}
		nt.fifos = append(nt.fifos, fifo)
	}
	open(g.NotifyFIFO, g.NotifyFIFOScript)
	open(g.VRRPNotifyFIFO, g.VRRPNotifyFIFOScript)
	for _, c := range cfg.Instances {
		n := NewNotifier(NotifierConfig{Kind: NotifyInstance, Name: c.Name, Scripts: c.Notifies,
			MasterRxLowerPri: c.NotifyMasterRxLowerPri, FIFOs: nt.fifos}, nt.runner)
		nt.byName[c.Name] = n
		nt.notifiers = append(nt.notifiers, n)
	}
	return nt
}

// transition queues the notify event of a state change: the new state, or STOP when the
// instance shuts down, or, when a reload deleted it, DELETED with notify_deleted and
// FAULT without, as keepalived does.
func (nt *notifications) transition(t Transition) {
	n := nt.byName[t.Instance]
	if n == nil {
		return
	}
	if t.Removed {
		n.Removed(t.Priority)
		return
	}
	st, ok := NotifyStateFor(t.To)
	if t.To == StateInit {
		st, ok = NotifyStateStop, true
	}
	if ok {
		n.Enqueue(NotifyEvent{State: st, Priority: t.Priority})
	}
}

// lowerPrio queues MASTER_RX_LOWER_PRI with our own priority, as keepalived writes it.
func (nt *notifications) lowerPrio(instance string, ours uint8) {
	if n := nt.byName[instance]; n != nil {
		n.Enqueue(NotifyEvent{State: NotifyStateMasterRxLowerPri, Priority: ours})
	}
}

// priority queues MASTER_PRIORITY or BACKUP_PRIORITY with the new priority
// (notify_priority_changes: FIFO lines only).
func (nt *notifications) priority(instance string, st State, prio uint8) {
	n := nt.byName[instance]
	if n == nil {
		return
	}
	ev := NotifyEvent{State: NotifyStateBackupPriority, Priority: prio}
	if st == StateMaster {
		ev.State = NotifyStateMasterPriority
	}
	n.Enqueue(ev)
}

// stop runs what is queued (notify_stop included), then stops the FIFO scripts.
func (nt *notifications) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), notifyStopTimeout)
	defer cancel()
	var errs []error
	for _, n := range nt.notifiers {
		errs = append(errs, n.Stop(ctx))
	}
	for _, f := range nt.fifos {
		errs = append(errs, f.Stop(ctx))
	}
	return errors.Join(errs...)
}
