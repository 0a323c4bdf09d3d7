package vrrp

import (
	"sync"

	"gokeepalived/parser"
)

// FakeRoutes is an in-memory RouteManager for tests: the routes and rules present, by
// their text ("rule " before a rule's).
type FakeRoutes struct {
	mu      sync.Mutex
	present map[string]bool
}

var _ RouteManager = (*FakeRoutes)(nil)

// Add marks r present.
func (f *FakeRoutes) Add(r *parser.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.present == nil {
		f.present = map[string]bool{}
	}
	f.present[r.Text] = true
	return nil
}

// Del marks r absent.
func (f *FakeRoutes) Del(r *parser.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.present, r.Text)
	return nil
}

// Present reports whether the route with text is installed.
func (f *FakeRoutes) Present(text string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.present[text]
}

// AddRule marks r present.
func (f *FakeRoutes) AddRule(r *parser.Rule) error {
	return f.Add(&parser.Route{Text: "rule " + r.Text})
}

// DelRule marks r absent.
func (f *FakeRoutes) DelRule(r *parser.Rule) error {
	return f.Del(&parser.Route{Text: "rule " + r.Text})
}
