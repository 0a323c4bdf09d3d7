package vrrp

import (
	"net/netip"
	"slices"
	"sync"

	"gokeepalived/parser"
)

// FakeFirewall is an in-memory Firewall for engine tests: it keeps each owner's
// blocked addresses, records every call and can be told to fail. It is safe for
// concurrent use; the zero value is ready.
type FakeFirewall struct {
	mu     sync.Mutex
	owners map[string][]netip.Addr
	calls  []FirewallCall
	err    error
}

// FirewallCall is a call recorded by FakeFirewall.
type FirewallCall struct {
	Op    string // "block" or "unblock"
	Owner string
	Addrs []netip.Addr // block: the addresses
}

var _ Firewall = (*FakeFirewall)(nil)

// Block records the call and, unless told to fail, sets the owner's addresses.
func (f *FakeFirewall) Block(owner string, vips []*parser.VIP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var addrs []netip.Addr
	for _, v := range vips {
		addrs = append(addrs, v.Prefix.Addr())
	}
	f.calls = append(f.calls, FirewallCall{Op: "block", Owner: owner, Addrs: addrs})
	if f.err != nil {
		return f.err
	}
	if f.owners == nil {
		f.owners = map[string][]netip.Addr{}
	}
	f.owners[owner] = addrs
	return nil
}

// Unblock records the call and, unless told to fail, forgets the owner's addresses.
func (f *FakeFirewall) Unblock(owner string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, FirewallCall{Op: "unblock", Owner: owner})
	if f.err != nil {
		return f.err
	}
	delete(f.owners, owner)
	return nil
}

// Where names the fake.
func (f *FakeFirewall) Where() string { return "fake firewall" }

// Close forgets every owner.
func (f *FakeFirewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.owners = nil
	return nil
}

// Fail makes later Block and Unblock calls return err (after recording them); nil
// makes them succeed.
func (f *FakeFirewall) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Blocked reports whether traffic to addr is dropped.
func (f *FakeFirewall) Blocked(addr netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, addrs := range f.owners {
		if slices.Contains(addrs, addr) {
			return true
		}
	}
	return false
}

// Calls returns the calls recorded so far.
func (f *FakeFirewall) Calls() []FirewallCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}
