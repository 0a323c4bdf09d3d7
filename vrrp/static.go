package vrrp

import "gokeepalived/parser"

// applyStatic converges the static_ipaddress, static_routes and static_rules of the
// kernel from those of old (nil: none installed yet) to those of cfg (nil: remove them
// all). They do not follow VRRP: the daemon installs them at start, whatever the
// state, and removes them at stop. Adding is idempotent, so everything cfg lists is
// (re)installed; what only old lists is removed, rules first, addresses last.
func (m *Manager) applyStatic(old, cfg *parser.Config) {
	var want staticSet
	if cfg != nil {
		want = staticOf(cfg)
	}
	var had staticSet
	if old != nil {
		had = staticOf(old)
	}
	k := m.kernel
	if k.Routes != nil {
		for _, r := range had.rules {
			if !want.has("rule " + r.Text) {
				if err := k.Routes.DelRule(r); err != nil {
					m.log.Error("cannot remove static rule", "rule", r.Text, "err", err)
				}
			}
		}
		for _, r := range had.routes {
			if !want.has("route " + r.Text) {
				if err := k.Routes.Del(r); err != nil {
					m.log.Error("cannot remove static route", "route", r.Text, "err", err)
				}
			}
		}
	}
	for _, a := range had.addrs {
		if !want.has("addr " + a.Prefix.String() + " " + a.Dev) {
			if err := k.Addrs.Del(a); err != nil {
				m.log.Error("cannot remove static address", "addr", a.Prefix, "dev", a.Dev, "err", err)
			}
		}
	}
	for _, a := range want.addrs {
		if err := k.Addrs.Add(a); err != nil {
			m.log.Error("cannot add static address", "addr", a.Prefix, "dev", a.Dev, "err", err)
		}
	}
	if k.Routes == nil {
		if len(want.routes)+len(want.rules) > 0 {
			m.log.Warn("static_routes and static_rules are not installed: no route manager")
		}
		return
	}
	for _, r := range want.routes {
		if err := k.Routes.Add(r); err != nil {
			m.log.Error("cannot add static route", "route", r.Text, "err", err)
		}
	}
	for _, r := range want.rules {
		if err := k.Routes.AddRule(r); err != nil {
			m.log.Error("cannot add static rule", "rule", r.Text, "err", err)
		}
	}
}

// staticSet is a configuration's static addresses, routes and rules, with their keys.
type staticSet struct {
	addrs  []*parser.VIP
	routes []*parser.Route
	rules  []*parser.Rule
	keys   map[string]bool
}

func staticOf(cfg *parser.Config) staticSet {
	s := staticSet{addrs: cfg.StaticAddresses, routes: cfg.StaticRoutes, rules: cfg.StaticRules, keys: map[string]bool{}}
	for _, a := range s.addrs {
		s.keys["addr "+a.Prefix.String()+" "+a.Dev] = true
	}
	for _, r := range s.routes {
		s.keys["route "+r.Text] = true
	}
	for _, r := range s.rules {
		s.keys["rule "+r.Text] = true
	}
	return s
}

func (s staticSet) has(key string) bool { return s.keys[key] }
