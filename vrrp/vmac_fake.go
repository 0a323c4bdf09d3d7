package vrrp

import (
	"bytes"
	"slices"
	"sync"
)

// FakeVMACs is an in-memory VMACManager for engine tests: it keeps the macvlans it was
// asked for and records every call. Leave simulates one left by a previous run. It is
// safe for concurrent use; the zero value is ready.
type FakeVMACs struct {
	mu    sync.Mutex
	links map[string]VMACSpec
	calls []VMACCall
	err   error
}

// VMACCall is a call recorded by FakeVMACs: Op is "ensure" (with Spec) or "delete"
// (with Spec.Name).
type VMACCall struct {
	Op   string
	Spec VMACSpec
}

var _ VMACManager = (*FakeVMACs)(nil)

// Ensure records the call and makes the macvlan exist as spec says.
func (f *FakeVMACs) Ensure(spec VMACSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, VMACCall{Op: "ensure", Spec: spec})
	if f.err != nil {
		return f.err
	}
	if f.links == nil {
		f.links = map[string]VMACSpec{}
	}
	spec.MAC = bytes.Clone(spec.MAC)
	f.links[spec.Name] = spec
	return nil
}

// Delete records the call and removes the macvlan.
func (f *FakeVMACs) Delete(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, VMACCall{Op: "delete", Spec: VMACSpec{Name: name}})
	if f.err != nil {
		return f.err
	}
	delete(f.links, name)
	return nil
}

// Leave adds a macvlan as a crashed previous run would have left it.
func (f *FakeVMACs) Leave(spec VMACSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.links == nil {
		f.links = map[string]VMACSpec{}
	}
	f.links[spec.Name] = spec
}

// Fail makes later calls return err (after recording them); nil makes them succeed.
func (f *FakeVMACs) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Link returns the macvlan of that name and whether it exists.
func (f *FakeVMACs) Link(name string) (VMACSpec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.links[name]
	return s, ok
}

// Calls returns the calls recorded so far.
func (f *FakeVMACs) Calls() []VMACCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}
