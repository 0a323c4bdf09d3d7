package parser

import "net/netip"

// RealServer is a real_server block of a virtual server. Values it does not set itself
// (forwarding, weight, timing, alpha, inhibit_on_failure, virtualhost, smtp_alert) are
// inherited from the virtual server once the configuration is read; Set lists the
// keywords written in the block.
type RealServer struct {
	Addr       netip.Addr `json:"addr"`
	Port       uint16     `json:"port"`
	Weight     int        `json:"weight"`
	Forwarding Forwarding `json:"lvs_method"`
	NotifyUp   *Script    `json:"notify_up,omitempty"`
	NotifyDown *Script    `json:"notify_down,omitempty"`
	UThreshold uint32     `json:"uthreshold,omitempty"` // 0 = no limit
	LThreshold uint32     `json:"lthreshold,omitempty"`

	ServerTiming
	Alpha            bool   `json:"alpha,omitempty"`
	InhibitOnFailure bool   `json:"inhibit_on_failure,omitempty"`
	SMTPAlert        bool   `json:"smtp_alert"`
	Virtualhost      string `json:"virtualhost,omitempty"`
	SNMPName         string `json:"snmp_name,omitempty"`

	// Checkers are the health checks; the real server is up when all of them are.
	Checkers []*Checker `json:"checkers,omitempty"`
	Set      Keys       `json:"set,omitempty"`
	Pos      Pos        `json:"-"`
}

// parseRealServer parses "real_server IP [PORT] { ... }".
func parseRealServer(c *ctx, s *Stmt) *RealServer {
	if !c.headArgs(s, 1, 2, "an address and an optional port") {
		return nil
	}
	ip, ok := c.addrArg(s, 0)
	if !ok {
		return nil
	}
	rs := &RealServer{Addr: ip, Weight: 1, Pos: s.At()}
	if len(s.Args) > 1 {
		if rs.Port, ok = c.lvsPort(s, 1, true); !ok {
			return nil
		}
	}
	if !s.Open {
		c.errorf(s.At(), "'%s' needs a block: '%s ... { ... }'", s.Key, s.Key)
		return nil
	}
	parseBlock(c, s, rs, realServerKeywords)
	return rs
}

func rsFlag(field func(*RealServer) *bool) handler[RealServer] {
	return func(c *ctx, s *Stmt, rs *RealServer) { c.flagKey(s, &rs.Set, field(rs)) }
}

// rsChecker is the handler of a checker block: parse adds the checkers it yields.
func rsChecker(parse func(*ctx, *Stmt) []*Checker) handler[RealServer] {
	return func(c *ctx, s *Stmt, rs *RealServer) {
		rs.Checkers = append(rs.Checkers, parse(c, s)...)
	}
}

var realServerKeywords = mergeKeywords(
	serverTimingKeywords(func(rs *RealServer) (*ServerTiming, *Keys) { return &rs.ServerTiming, &rs.Set }),
	keywords[RealServer]{
		"weight": func(c *ctx, s *Stmt, rs *RealServer) {
			if n, ok := c.intKey(s, &rs.Set, 0, 65535); ok {
				rs.Weight = int(n)
			}
		},
		"lvs_method": func(c *ctx, s *Stmt, rs *RealServer) {
			if f, ok := c.forwarding(s); ok {
				rs.Forwarding = f
				rs.Set.add(s.Key)
			}
		},
		"notify_up":   func(c *ctx, s *Stmt, rs *RealServer) { c.onceScript(s, &rs.NotifyUp, &rs.Set) },
		"notify_down": func(c *ctx, s *Stmt, rs *RealServer) { c.onceScript(s, &rs.NotifyDown, &rs.Set) },
		"uthreshold": func(c *ctx, s *Stmt, rs *RealServer) {
			if n, ok := c.intKey(s, &rs.Set, 0, 1<<32-1); ok {
				rs.UThreshold = uint32(n)
			}
		},
		"lthreshold": func(c *ctx, s *Stmt, rs *RealServer) {
			if n, ok := c.intKey(s, &rs.Set, 0, 1<<32-1); ok {
				rs.LThreshold = uint32(n)
			}
		},
		"alpha":              rsFlag(func(rs *RealServer) *bool { return &rs.Alpha }),
		"inhibit_on_failure": rsFlag(func(rs *RealServer) *bool { return &rs.InhibitOnFailure }),
		"smtp_alert":         rsFlag(func(rs *RealServer) *bool { return &rs.SMTPAlert }),
		"virtualhost":        func(c *ctx, s *Stmt, rs *RealServer) { c.stringKey(s, &rs.Set, &rs.Virtualhost) },
		"snmp_name":          func(c *ctx, s *Stmt, rs *RealServer) { c.stringKey(s, &rs.Set, &rs.SNMPName) },
		"TCP_CHECK":          rsChecker(parseTCPCheck),
		"UDP_CHECK":          rsChecker(parseUDPCheck),
		"PING_CHECK":         rsChecker(parsePingCheck),
		"HTTP_GET":           rsChecker(parseHTTPCheck),
		"SSL_GET":            rsChecker(parseHTTPCheck),
		"SMTP_CHECK":         rsChecker(parseSMTPCheck),
		"DNS_CHECK":          rsChecker(parseDNSCheck),
		"MISC_CHECK":         rsChecker(parseMiscCheck),
		"FILE_CHECK":         rsChecker(parseFileCheck),
		"BFD_CHECK":          rsChecker(parseBFDCheck),
	})
