package vrrp

import (
	"context"
	"net/netip"
	"slices"
	"sync"

	"gokeepalived/parser"
)

// FakeAddrs is an in-memory AddrManager for engine tests. It keeps the set of
// addresses per interface, records every call, can be told to fail, and delivers an
// AddrEvent to its watchers for every change, its own and those simulated with
// Inject and Remove (someone else adding or deleting an address). Like the kernel it
// matches addresses by interface, address and prefix length. It is safe for
// concurrent use; the zero value is ready.
type FakeAddrs struct {
	mu       sync.Mutex
	present  map[fakeAddrKey]bool
	calls    []AddrCall
	errs     map[string]error
	watchers map[*fakeWatcher]struct{}
}

// AddrCall is a call recorded by FakeAddrs. VIP is a copy taken at the time of the call.
type AddrCall struct {
	Op  string // "add", "del" or "has"
	VIP parser.VIP
}

type fakeAddrKey struct {
	dev    string
	prefix netip.Prefix
}

var _ AddrManager = (*FakeAddrs)(nil)

// Fail makes every later call of op ("add", "del" or "has") return err, after
// recording it and without changing anything; a nil err makes op work again.
func (f *FakeAddrs) Fail(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = map[string]error{}
	}
	f.errs[op] = err
}

// record notes a call and returns the error set for op.
func (f *FakeAddrs) record(op string, v *parser.VIP) error {
	f.calls = append(f.calls, AddrCall{Op: op, VIP: *v})
	return f.errs[op]
}

// Add installs the address.
func (f *FakeAddrs) Add(v *parser.VIP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("add", v); err != nil {
		return err
	}
	f.set(v.Dev, v.Prefix, true)
	return nil
}

// Del removes the address.
func (f *FakeAddrs) Del(v *parser.VIP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("del", v); err != nil {
		return err
	}
	f.set(v.Dev, v.Prefix, false)
	return nil
}

// Has reports whether the address is installed.
func (f *FakeAddrs) Has(v *parser.VIP) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("has", v); err != nil {
		return false, err
	}
	return f.present[fakeAddrKey{v.Dev, v.Prefix}], nil
}

// Watch delivers every change to fn, from the calling goroutine, until ctx ends; it
// then returns nil.
func (f *FakeAddrs) Watch(ctx context.Context, fn func(AddrEvent)) error {
	w := &fakeWatcher{wake: make(chan struct{}, 1)}
	f.mu.Lock()
	if f.watchers == nil {
		f.watchers = map[*fakeWatcher]struct{}{}
	}
	f.watchers[w] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, w)
		f.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
			for _, e := range w.take() {
				fn(e)
			}
		}
	}
}

// Watchers returns how many Watch calls are running, so that a test can wait for its
// engine to be watching before it simulates a change.
func (f *FakeAddrs) Watchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers)
}

// Inject installs an address without recording a call, as a predecessor that left it
// behind or another program would.
func (f *FakeAddrs) Inject(dev string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set(dev, p, true)
}

// Remove deletes an address without recording a call, as an administrator running
// "ip addr del" would.
func (f *FakeAddrs) Remove(dev string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set(dev, p, false)
}

// Present reports whether an address is installed.
func (f *FakeAddrs) Present(dev string, p netip.Prefix) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.present[fakeAddrKey{dev, p}]
}

// Addrs returns the installed addresses of an interface, sorted.
func (f *FakeAddrs) Addrs(dev string) []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netip.Prefix
	for k := range f.present {
		if k.dev == dev {
			out = append(out, k.prefix)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

// Calls returns the calls recorded so far.
func (f *FakeAddrs) Calls() []AddrCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// set changes the state of an address and, when it changed, tells the watchers.
// f.mu is held.
func (f *FakeAddrs) set(dev string, p netip.Prefix, on bool) {
	k := fakeAddrKey{dev, p}
	if f.present[k] == on {
		return
	}
	if on {
		if f.present == nil {
			f.present = map[fakeAddrKey]bool{}
		}
		f.present[k] = true
	} else {
		delete(f.present, k)
	}
	for w := range f.watchers {
		w.push(AddrEvent{Ifname: dev, Prefix: p, Added: on})
	}
}

// fakeWatcher is the unbounded event queue of one Watch call: changes never block on
// a slow watcher, and a watcher never runs under FakeAddrs' lock.
type fakeWatcher struct {
	mu    sync.Mutex
	queue []AddrEvent
	wake  chan struct{}
}

func (w *fakeWatcher) push(e AddrEvent) {
	w.mu.Lock()
	w.queue = append(w.queue, e)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *fakeWatcher) take() []AddrEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// FakeAnnouncer is an Announcer for engine tests: it records every call and can be told
// to fail. It is safe for concurrent use; the zero value is ready.
type FakeAnnouncer struct {
	mu    sync.Mutex
	calls []AnnounceCall
	err   error
}

// AnnounceCall is a call recorded by FakeAnnouncer.
type AnnounceCall struct {
	Ifname string
	Addrs  []netip.Addr
	Count  int
}

var _ Announcer = (*FakeAnnouncer)(nil)

// Announce records the call and returns the error set with Fail.
func (f *FakeAnnouncer) Announce(ifname string, addrs []netip.Addr, count int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, AnnounceCall{Ifname: ifname, Addrs: slices.Clone(addrs), Count: count})
	return f.err
}

// Fail makes later calls return err (after recording them); nil makes them succeed.
func (f *FakeAnnouncer) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Calls returns the calls recorded so far.
func (f *FakeAnnouncer) Calls() []AnnounceCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}
