package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"gokeepalived/parser"
)

// DefaultNotifyQueue is how many events a Notifier keeps waiting behind the script that
// runs. When the queue is full the oldest waiting event is dropped (and counted): the
// newest events describe the current state, which is what scripts must end up seeing.
const DefaultNotifyQueue = 16

// NotifyKind is the first word of a notify FIFO line and of the arguments appended to
// the generic notify script: INSTANCE for a vrrp_instance, GROUP for a vrrp_sync_group.
type NotifyKind uint8

// Notify kinds.
const (
	NotifyInstance NotifyKind = iota
	NotifyGroup
)

// String returns INSTANCE or GROUP.
func (k NotifyKind) String() string {
	if k == NotifyGroup {
		return "GROUP"
	}
	return "INSTANCE"
}

// NotifyState is the state or event word keepalived writes to notify FIFOs and passes
// to the generic notify script.
type NotifyState uint8

// Notify states and events. MASTER_RX_LOWER_PRI, MASTER_PRIORITY and BACKUP_PRIORITY
// are events of an instance, not states: the first runs notify_master_rx_lower_pri, the
// priority ones (sent only with notify_priority_changes) are FIFO lines only.
const (
	NotifyStateMaster NotifyState = iota + 1
	NotifyStateBackup
	NotifyStateFault
	NotifyStateStop
	NotifyStateDeleted
	NotifyStateMasterRxLowerPri
	NotifyStateMasterPriority
	NotifyStateBackupPriority
)

var notifyStateNames = [...]string{
	NotifyStateMaster:           "MASTER",
	NotifyStateBackup:           "BACKUP",
	NotifyStateFault:            "FAULT",
	NotifyStateStop:             "STOP",
	NotifyStateDeleted:          "DELETED",
	NotifyStateMasterRxLowerPri: "MASTER_RX_LOWER_PRI",
	NotifyStateMasterPriority:   "MASTER_PRIORITY",
	NotifyStateBackupPriority:   "BACKUP_PRIORITY",
}

// String returns the word keepalived uses, or {UNKNOWN} as keepalived does.
func (s NotifyState) String() string {
	if int(s) < len(notifyStateNames) && notifyStateNames[s] != "" {
		return notifyStateNames[s]
	}
	return "{UNKNOWN}"
}

// NotifyStateFor maps an instance state to its notify state. INIT has none: keepalived
// sends no notifies for it.
func NotifyStateFor(s State) (NotifyState, bool) {
	switch s {
	case StateMaster:
		return NotifyStateMaster, true
	case StateBackup:
		return NotifyStateBackup, true
	case StateFault:
		return NotifyStateFault, true
	}
	return 0, false
}

// FormatInstanceLine returns the notify FIFO line of an event, exactly as keepalived
// writes it: `INSTANCE "VI_1" MASTER 100` and a newline.
func FormatInstanceLine(kind NotifyKind, name string, state NotifyState, prio uint8) string {
	return fmt.Sprintf("%s \"%s\" %s %d\n", kind, name, state, prio)
}

// NotifyEvent is one state change or event to report.
type NotifyEvent struct {
	State NotifyState
	// Priority is the instance's effective priority (also for MASTER_RX_LOWER_PRI, where
	// it is our priority, not the one heard). Groups always report 0, as keepalived does.
	Priority uint8
}

// NotifierConfig says what a Notifier reports and where.
type NotifierConfig struct {
	Kind NotifyKind
	Name string
	// Scripts are the notify_* keywords of the instance or sync group.
	Scripts parser.Notifies
	// MasterRxLowerPri is notify_master_rx_lower_pri (instances only).
	MasterRxLowerPri *parser.Script
	// FIFOs get the line of every event when it is enqueued (notify_fifo and
	// vrrp_notify_fifo). They are shared by all notifiers and not stopped by Stop.
	FIFOs []*FIFO
	// QueueLen bounds the waiting events; zero means DefaultNotifyQueue.
	QueueLen int
}

// NotifyStats counts what a Notifier did.
type NotifyStats struct {
	Pending int    // events waiting
	Ran     uint64 // scripts started (or refused)
	Failed  uint64 // scripts that were refused, failed to start, exited non-zero or were killed
	Dropped uint64 // events dropped because the queue was full or Stop gave up
}

// Notifier runs the notify scripts of one vrrp_instance or vrrp_sync_group.
//
// keepalived starts notify scripts fire-and-forget, so they can run concurrently and
// finish out of order (keepalived#996): a slow notify_backup may complete after the
// notify_master that followed it. A Notifier instead keeps the events of its instance
// in a queue served by one goroutine, and for each event runs, one after the other,
// the state's script (notify_master, notify_backup, notify_fault, notify_stop, the
// notify_deleted script, or notify_master_rx_lower_pri) and then the generic notify
// script with the four arguments TYPE NAME STATE PRIORITY appended (not for
// MASTER_RX_LOWER_PRI, as keepalived). Each script has the NotifyRunner's timeout, so a
// hung script delays the next ones by at most that.
//
// Enqueue never blocks: it writes the FIFO lines (non-blocking writes) and appends to a
// bounded queue, dropping the oldest waiting event when full.
type Notifier struct {
	cfg    NotifierConfig
	run    *NotifyRunner
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}
	done   chan struct{}

	mu     sync.Mutex
	queue  []NotifyEvent
	closed bool
	stats  NotifyStats
}

// NewNotifier starts the goroutine that runs the scripts of one instance or group.
// Call Stop to end it.
func NewNotifier(cfg NotifierConfig, r *NotifyRunner) *Notifier {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultNotifyQueue
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{
		cfg:    cfg,
		run:    r,
		log:    r.logger().With(slog.String("notify", cfg.Kind.String()), slog.String("name", cfg.Name)),
		ctx:    ctx,
		cancel: cancel,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go n.loop()
	return n
}

// Enqueue reports an event: it writes the FIFO line now and queues the scripts. It never
// blocks. It returns false once Stop has been called.
func (n *Notifier) Enqueue(ev NotifyEvent) bool {
	if n.cfg.Kind == NotifyGroup {
		ev.Priority = 0
	}
	line := FormatInstanceLine(n.cfg.Kind, n.cfg.Name, ev.State, ev.Priority)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	for _, f := range n.cfg.FIFOs {
		_ = f.WriteLine(line) // a full FIFO drops the line; FIFO counts and logs it
	}
	if script, generic := n.scriptsFor(ev.State); script == nil && !generic {
		return true
	}
	if len(n.queue) >= n.cfg.QueueLen {
		n.log.Warn("notify queue full; dropping the oldest event", "dropped", n.queue[0].State.String())
		n.queue = n.queue[1:]
		n.stats.Dropped++
	}
	n.queue = append(n.queue, ev)
	select {
	case n.wake <- struct{}{}:
	default:
	}
	return true
}

// Removed reports that a reload deleted the instance: DELETED when notify_deleted is
// configured, otherwise FAULT, as keepalived does.
func (n *Notifier) Removed(prio uint8) bool {
	st := NotifyStateFault
	if n.cfg.Scripts.NotifyDeleted {
		st = NotifyStateDeleted
	}
	return n.Enqueue(NotifyEvent{State: st, Priority: prio})
}

// Stop refuses further events and waits until the queued ones (typically the STOP
// event just enqueued) have run. When ctx ends first it returns at once with ctx's
// error; the running script is then terminated in the background (SIGTERM, then SIGKILL
// after the runner's grace) and the remaining events are dropped.
func (n *Notifier) Stop(ctx context.Context) error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		n.cancel()
		return fmt.Errorf("notify %s %s: stop before the queued scripts ran: %w", n.cfg.Kind, n.cfg.Name, ctx.Err())
	}
}

// Stats returns the counters.
func (n *Notifier) Stats() NotifyStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stats
	s.Pending = len(n.queue)
	return s
}

// scriptsFor returns the state-specific script of a state and whether the generic
// notify script runs for it.
func (n *Notifier) scriptsFor(st NotifyState) (*parser.Script, bool) {
	sc := &n.cfg.Scripts
	generic := sc.Notify != nil
	switch st {
	case NotifyStateMaster:
		return sc.NotifyMaster, generic
	case NotifyStateBackup:
		return sc.NotifyBackup, generic
	case NotifyStateFault:
		return sc.NotifyFault, generic
	case NotifyStateStop:
		return sc.NotifyStop, generic
	case NotifyStateDeleted:
		return sc.NotifyDeletedScript, generic
	case NotifyStateMasterRxLowerPri:
		return n.cfg.MasterRxLowerPri, false
	}
	return nil, false
}

// loop runs the queued events in order until Stop.
func (n *Notifier) loop() {
	defer close(n.done)
	defer n.cancel()
	for {
		n.mu.Lock()
		if n.ctx.Err() != nil {
			n.stats.Dropped += uint64(len(n.queue))
			n.queue = nil
			n.mu.Unlock()
			return
		}
		if len(n.queue) == 0 {
			closed := n.closed
			n.mu.Unlock()
			if closed {
				return
			}
			select {
			case <-n.wake:
			case <-n.ctx.Done():
			}
			continue
		}
		ev := n.queue[0]
		n.queue = n.queue[1:]
		n.mu.Unlock()
		n.process(ev)
	}
}

// process runs the scripts of one event.
func (n *Notifier) process(ev NotifyEvent) {
	script, generic := n.scriptsFor(ev.State)
	if script != nil {
		n.exec(script)
	}
	if generic {
		n.exec(n.cfg.Scripts.Notify, n.cfg.Kind.String(), n.cfg.Name, ev.State.String(), fmt.Sprint(ev.Priority))
	}
}

// exec runs one script and counts the result.
func (n *Notifier) exec(s *parser.Script, extra ...string) {
	err := n.run.run(n.ctx, n.log, s, extra, n.run.timeout())
	n.mu.Lock()
	n.stats.Ran++
	if err != nil {
		n.stats.Failed++
	}
	n.mu.Unlock()
}
