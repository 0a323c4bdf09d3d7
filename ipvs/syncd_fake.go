package ipvs

import (
	"fmt"
	"net/netip"
	"sync"
)

// FakeSync is an in-memory [SyncKernel] that behaves as the kernel does: one daemon per
// state, unset parameters reported with the kernel's defaults, EEXIST and ESRCH as
// ErrExist and ErrNoService. SetFail makes the named call ("start", "stop", "list")
// return an error.
type FakeSync struct {
	mu      sync.Mutex
	daemons map[SyncState]SyncDaemon
	calls   []string
	fail    map[string]error
}

// The kernel's sync daemon defaults, as it reports them.
var (
	fakeSyncPort   uint16 = 8848
	fakeSyncTTL    uint8  = 1
	fakeSyncMaxLen uint16 = 1472
	fakeSyncGroup         = netip.MustParseAddr("224.0.0.81")
)

// SyncDaemons implements [SyncKernel].
func (f *FakeSync) SyncDaemons() ([]SyncDaemon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["list"]; err != nil {
		return nil, err
	}
	var out []SyncDaemon
	for _, st := range []SyncState{SyncMaster, SyncBackup} {
		if d, ok := f.daemons[st]; ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// StartSyncDaemon implements [SyncKernel].
func (f *FakeSync) StartSyncDaemon(d SyncDaemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("start %s %s id %d", d.State, d.Interface, d.SyncID))
	if err := f.fail["start"]; err != nil {
		return err
	}
	if _, ok := f.daemons[d.State]; ok {
		return ErrExist
	}
	if d.Port == 0 {
		d.Port = fakeSyncPort
	}
	if d.TTL == 0 {
		d.TTL = fakeSyncTTL
	}
	if d.MaxLen == 0 {
		d.MaxLen = fakeSyncMaxLen
	}
	if !d.Group.IsValid() {
		d.Group = fakeSyncGroup
	}
	if f.daemons == nil {
		f.daemons = map[SyncState]SyncDaemon{}
	}
	f.daemons[d.State] = d
	return nil
}

// StopSyncDaemon implements [SyncKernel].
func (f *FakeSync) StopSyncDaemon(s SyncState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "stop "+s.String())
	if err := f.fail["stop"]; err != nil {
		return err
	}
	if _, ok := f.daemons[s]; !ok {
		return ErrNoService
	}
	delete(f.daemons, s)
	return nil
}

// Calls returns the start and stop calls made since the last Calls.
func (f *FakeSync) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// SetFail sets (or with nil clears) the error of call.
func (f *FakeSync) SetFail(call string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]error{}
	}
	f.fail[call] = err
}
