package ipvs

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Fake is an in-memory [Kernel] for tests. It behaves as the kernel does for the
// outcomes the reconciler relies on (ErrExist, ErrNoService, ErrNoDest), records every
// call, and lets a test inject errors or block a call. It is safe for concurrent use;
// the zero value is an empty table.
type Fake struct {
	mu       sync.Mutex
	services map[ServiceKey]*fakeService
	timeouts Timeouts
	calls    []Call
	hook     func(Call) error
}

type fakeService struct {
	svc   Service
	dests map[DestKey]Destination
}

// Call is a call recorded by [Fake].
type Call struct {
	Op      string // services, destinations, add-service, update-service, del-service, add-dest, update-dest, del-dest, set-timeouts, flush
	Service ServiceKey
	Dest    DestKey
}

// Write reports whether the call asks the kernel to change something.
func (c Call) Write() bool { return c.Op != "services" && c.Op != "destinations" }

// String renders the call: "add-dest TCP 10.0.0.1:80 -> 10.0.1.1:8080".
func (c Call) String() string {
	switch {
	case c.Dest != DestKey{}:
		return c.Op + " " + c.Service.String() + " -> " + c.Dest.String()
	case c.Service != ServiceKey{}:
		return c.Op + " " + c.Service.String()
	}
	return c.Op
}

var _ Kernel = (*Fake)(nil)

// SetHook makes every later call run fn first, outside the Fake's lock, after the call
// is recorded: a non-nil error is returned instead of doing the call, and fn may block
// to simulate a kernel that does not answer. A nil fn removes the hook.
func (f *Fake) SetHook(fn func(Call) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = fn
}

// Calls returns the calls recorded so far.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Writes returns the number of recorded calls that change the table.
func (f *Fake) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Write() {
			n++
		}
	}
	return n
}

// Count returns the number of recorded calls of op ("services", "del-dest"...).
func (f *Fake) Count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Op == op {
			n++
		}
	}
	return n
}

// ResetCalls forgets the recorded calls.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// Timeouts returns the timeouts set so far (zero fields never set).
func (f *Fake) Timeouts() Timeouts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeouts
}

// Dump renders the table, one service per line followed by its destinations indented,
// sorted, for comparisons in tests.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, fs := range f.sortedLocked() {
		b.WriteString(fs.svc.String() + "\n")
		for _, d := range sortedDests(fs.dests) {
			b.WriteString("  -> " + d.String() + "\n")
		}
	}
	return b.String()
}

func (f *Fake) sortedLocked() []*fakeService {
	out := make([]*fakeService, 0, len(f.services))
	for _, fs := range f.services {
		out = append(out, fs)
	}
	slices.SortFunc(out, func(a, b *fakeService) int { return compareKeys(a.svc.Key(), b.svc.Key()) })
	return out
}

func sortedDests(m map[DestKey]Destination) []Destination {
	out := make([]Destination, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Destination) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	return out
}

func compareKeys(a, b ServiceKey) int {
	return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.FWMark, b.FWMark),
		cmp.Compare(a.Protocol, b.Protocol), a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}

// begin records c and runs the hook; the caller holds no lock.
func (f *Fake) begin(c Call) error {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(c); err != nil {
			return fmt.Errorf("fake %s: %w", c, err)
		}
	}
	return nil
}

// lookup returns the service with key k, or an ErrNoService error; f.mu is held.
func (f *Fake) lookup(op string, k ServiceKey) (*fakeService, error) {
	fs := f.services[k]
	if fs == nil {
		return nil, fmt.Errorf("fake %s %s: %w", op, k, ErrNoService)
	}
	return fs, nil
}

// Services returns the services, sorted by key.
func (f *Fake) Services() ([]Service, error) {
	if err := f.begin(Call{Op: "services"}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Service
	for _, fs := range f.sortedLocked() {
		out = append(out, fs.svc)
	}
	return out, nil
}

// Destinations returns the destinations of s, sorted; ErrNoService if s is not there
// (the kernel answers an empty list: the reconciler copes with both).
func (f *Fake) Destinations(s Service) ([]Destination, error) {
	if err := f.begin(Call{Op: "destinations", Service: s.Key()}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fs, err := f.lookup("destinations", s.Key())
	if err != nil {
		return nil, err
	}
	return sortedDests(fs.dests), nil
}

// AddService creates s.
func (f *Fake) AddService(s Service) error {
	if err := f.begin(Call{Op: "add-service", Service: s.Key()}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.services[s.Key()] != nil {
		return fmt.Errorf("fake add-service %s: %w", s.Key(), ErrExist)
	}
	if f.services == nil {
		f.services = map[ServiceKey]*fakeService{}
	}
	f.services[s.Key()] = &fakeService{svc: s.normalized(), dests: map[DestKey]Destination{}}
	return nil
}

// UpdateService replaces the settings of the service with s's key.
func (f *Fake) UpdateService(s Service) error {
	if err := f.begin(Call{Op: "update-service", Service: s.Key()}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fs, err := f.lookup("update-service", s.Key())
	if err != nil {
		return err
	}
	fs.svc = s.normalized()
	return nil
}

// DelService deletes the service with s's key.
func (f *Fake) DelService(s Service) error {
	if err := f.begin(Call{Op: "del-service", Service: s.Key()}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.lookup("del-service", s.Key()); err != nil {
		return err
	}
	delete(f.services, s.Key())
	return nil
}

// AddDest adds d to s.
func (f *Fake) AddDest(s Service, d Destination) error {
	if err := f.begin(Call{Op: "add-dest", Service: s.Key(), Dest: d.Key()}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fs, err := f.lookup("add-dest", s.Key())
	if err != nil {
		return err
	}
	if _, ok := fs.dests[d.Key()]; ok {
		return fmt.Errorf("fake add-dest %s -> %s: %w", s.Key(), d.Key(), ErrExist)
	}
	fs.dests[d.Key()] = d.normalized()
	return nil
}

// UpdateDest replaces d in s.
func (f *Fake) UpdateDest(s Service, d Destination) error {
	if err := f.begin(Call{Op: "update-dest", Service: s.Key(), Dest: d.Key()}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fs, err := f.lookup("update-dest", s.Key())
	if err != nil {
		return err
	}
	if _, ok := fs.dests[d.Key()]; !ok {
		return fmt.Errorf("fake update-dest %s -> %s: %w", s.Key(), d.Key(), ErrNoDest)
	}
	fs.dests[d.Key()] = d.normalized()
	return nil
}

// DelDest removes d from s.
func (f *Fake) DelDest(s Service, d Destination) error {
	if err := f.begin(Call{Op: "del-dest", Service: s.Key(), Dest: d.Key()}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fs, err := f.lookup("del-dest", s.Key())
	if err != nil {
		return err
	}
	if _, ok := fs.dests[d.Key()]; !ok {
		return fmt.Errorf("fake del-dest %s -> %s: %w", s.Key(), d.Key(), ErrNoDest)
	}
	delete(fs.dests, d.Key())
	return nil
}

// SetTimeouts records the non-zero timeouts of t.
func (f *Fake) SetTimeouts(t Timeouts) error {
	if err := f.begin(Call{Op: "set-timeouts"}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.TCP != 0 {
		f.timeouts.TCP = t.TCP
	}
	if t.TCPFin != 0 {
		f.timeouts.TCPFin = t.TCPFin
	}
	if t.UDP != 0 {
		f.timeouts.UDP = t.UDP
	}
	return nil
}

// Flush deletes every service.
func (f *Fake) Flush() error {
	if err := f.begin(Call{Op: "flush"}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.services)
	return nil
}
