package parser

import (
	"net/netip"
	"strings"
)

// VirtualServer is a virtual_server block: an IPVS service given by address and port, by
// firewall mark or by a virtual_server_group, with its real servers. After parsing, the
// values its real servers and checkers inherit are resolved onto them.
type VirtualServer struct {
	Addr     netip.Addr `json:"addr,omitzero"`
	Port     uint16     `json:"port,omitempty"`
	FWMark   uint32     `json:"fwmark,omitempty"`
	Group    string     `json:"group,omitempty"`
	IPFamily string     `json:"ip_family,omitempty"` // inet or inet6; empty for a group mixing both
	Protocol string     `json:"protocol,omitempty"`  // TCP, UDP or SCTP; empty for a fwmark service

	Scheduler  string     `json:"lvs_sched"`
	SchedFlags []string   `json:"sched_flags,omitempty"` // flag-1..3, sh-port, sh-fallback, mh-port, mh-fallback, hashed
	OPS        bool       `json:"ops,omitempty"`
	Forwarding Forwarding `json:"lvs_method"`

	PersistenceTimeout     uint32 `json:"persistence_timeout,omitempty"`     // seconds; 0 = not persistent
	PersistenceGranularity int    `json:"persistence_granularity,omitempty"` // prefix length of the persistence mask
	PersistenceEngine      string `json:"persistence_engine,omitempty"`

	ServerTiming
	Weight     int     `json:"weight"` // default weight of the real servers
	Quorum     uint32  `json:"quorum"`
	Hysteresis uint32  `json:"hysteresis"`
	QuorumUp   *Script `json:"quorum_up,omitempty"`
	QuorumDown *Script `json:"quorum_down,omitempty"`

	SorryServer      *SorryServer `json:"sorry_server,omitempty"`
	Alpha            bool         `json:"alpha,omitempty"`
	Omega            bool         `json:"omega,omitempty"`
	InhibitOnFailure bool         `json:"inhibit_on_failure,omitempty"`
	HASuspend        bool         `json:"ha_suspend,omitempty"`
	Virtualhost      string       `json:"virtualhost,omitempty"`
	SMTPAlert        bool         `json:"smtp_alert"`
	SNMPName         string       `json:"snmp_name,omitempty"`

	RealServers []*RealServer `json:"real_servers"`
	Set         Keys          `json:"set,omitempty"`
	Pos         Pos           `json:"-"`

	at           map[string]Pos // where each keyword of the block was last written
	schedGiven   bool           // an lvs_sched was written, even if invalid
	sorryInhibit *Stmt          // sorry_server_inhibit and sorry_server_lvs_method, applied
	sorryMethod  *Stmt          // once the whole block is read
}

// ServerTiming is the check timing written on a virtual or real server: the defaults of
// the checkers below it. Retry, DelayBeforeRetry and Warmup stay nil when neither the
// server nor (for a real server) its virtual server sets them: each checker's own default
// applies then.
type ServerTiming struct {
	DelayLoop        Duration  `json:"delay_loop"`
	ConnectTimeout   Duration  `json:"connect_timeout"`
	Retry            *int      `json:"retry,omitempty"`
	DelayBeforeRetry *Duration `json:"delay_before_retry,omitempty"`
	Warmup           *Duration `json:"warmup,omitempty"`
}

// Forwarding is an LVS forwarding method (lvs_method): NAT, DR or TUN with its tunnel
// options.
type Forwarding struct {
	Method  string `json:"method"`             // NAT, DR or TUN
	TunType string `json:"tun_type,omitempty"` // TUN: ipip (default), gue or gre
	TunPort uint16 `json:"tun_port,omitempty"` // TUN type gue: the GUE port
	TunCsum string `json:"tun_csum,omitempty"` // TUN type gue or gre: nocsum, csum or remcsum
}

// SorryServer is the server that replaces all real servers while the quorum is lost.
type SorryServer struct {
	Addr       netip.Addr `json:"addr"`
	Port       uint16     `json:"port,omitempty"`
	Inhibit    bool       `json:"inhibit,omitempty"`
	Forwarding Forwarding `json:"lvs_method"`
	Pos        Pos        `json:"-"`

	methodSet bool // sorry_server_lvs_method given (else the virtual server's applies)
}

// schedulers are the IPVS schedulers lvs_sched accepts (lower-case only, as keepalived).
var schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "mh", "dh", "sed", "nq", "fo", "ovf", "twos"}

func newVirtualServer(s *Stmt) *VirtualServer {
	return &VirtualServer{
		Protocol:     "TCP",
		Forwarding:   Forwarding{Method: "NAT"},
		ServerTiming: ServerTiming{DelayLoop: Seconds(60), ConnectTimeout: Seconds(5)},
		Weight:       1,
		Quorum:       1,
		Pos:          s.At(),
	}
}

// parseVirtualServer parses "virtual_server IP [PORT] | fwmark N | group NAME { ... }".
func parseVirtualServer(c *ctx, s *Stmt) *VirtualServer {
	vs := newVirtualServer(s)
	if len(s.Args) == 0 {
		c.errorf(s.At(), "'virtual_server' needs 'IP [PORT]', 'fwmark N' or 'group NAME'; block skipped")
		return nil
	}
	switch s.Args[0].Value() {
	case "fwmark", "group":
		if len(s.Args) < 2 {
			c.errorf(s.At(), "'virtual_server %s' needs a value; block skipped", s.Args[0].Value())
			return nil
		}
		if s.Args[0].Value() == "group" {
			vs.Group = s.Args[1].Value()
		} else {
			m, ok := c.intArg(s, 1, 1, 1<<32-1)
			if !ok {
				return nil
			}
			vs.FWMark, vs.Protocol = uint32(m), ""
		}
		if len(s.Args) > 2 {
			c.warnf(s.Args[2].At(), "extra arguments to '%s' ignored", s.Key)
		}
	default:
		ip, ok := c.addrArg(s, 0)
		if !ok {
			return nil
		}
		vs.Addr, vs.IPFamily = ip, afName(ip.Is6())
		if len(s.Args) > 1 {
			if vs.Port, ok = c.lvsPort(s, 1, true); !ok {
				return nil
			}
		}
		if len(s.Args) > 2 {
			c.warnf(s.Args[2].At(), "extra arguments to '%s' ignored", s.Key)
		}
	}
	if !s.Open {
		c.errorf(s.At(), "'%s' needs a block: '%s ... { ... }'", s.Key, s.Key)
		return nil
	}
	parseBlock(c, s, vs, virtualServerKeywords)
	vs.at = map[string]Pos{}
	for _, st := range s.Block {
		vs.at[st.Key] = st.At()
	}
	c.finishVirtualServer(vs)
	return vs
}

// finishVirtualServer applies the rules that depend on several keywords of the block,
// whatever their order.
func (c *ctx) finishVirtualServer(vs *VirtualServer) {
	if vs.Scheduler == "" {
		if !vs.schedGiven {
			c.errorf(vs.Pos, "virtual_server %s has no scheduler (lvs_sched); using wlc", vsLabel(vs))
		}
		vs.Scheduler = "wlc"
	}
	kept := vs.SchedFlags[:0]
	for _, f := range vs.SchedFlags {
		if sched, _, ok := strings.Cut(f, "-"); ok && (sched == "sh" || sched == "mh") && vs.Scheduler != sched {
			c.warnf(vs.keyPos(f), "'%s' only applies to the %s scheduler (lvs_sched is %s); ignored", f, sched, vs.Scheduler)
			continue
		}
		kept = append(kept, f)
	}
	vs.SchedFlags = kept
	if len(vs.SchedFlags) == 0 {
		vs.SchedFlags = nil
	}
	if vs.FWMark != 0 && vs.Set.Has("protocol") {
		c.warnf(vs.keyPos("protocol"), "'protocol' has no effect on a fwmark virtual_server; ignored")
		vs.Protocol = ""
	}
	if st := vs.sorryInhibit; st != nil {
		if vs.SorryServer == nil {
			c.errorf(st.At(), "'sorry_server_inhibit' without a sorry_server; ignored")
		} else {
			c.flagKey(st, &vs.Set, &vs.SorryServer.Inhibit)
		}
	}
	if st := vs.sorryMethod; st != nil {
		if vs.SorryServer == nil {
			c.errorf(st.At(), "'sorry_server_lvs_method' without a sorry_server; ignored")
		} else if f, ok := c.forwarding(st); ok {
			vs.SorryServer.Forwarding, vs.SorryServer.methodSet = f, true
			vs.Set.add(st.Key)
		}
	}
}

// forwarding parses "NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]".
func (c *ctx) forwarding(s *Stmt) (Forwarding, bool) {
	if !c.want(s, 1, -1) {
		return Forwarding{}, false
	}
	m, ok := c.oneOf(s, s.Args[0], "NAT", "DR", "TUN")
	if !ok {
		return Forwarding{}, false
	}
	f := Forwarding{Method: m}
	i := 1
	if m == "TUN" {
		f.TunType = "ipip"
		if i < len(s.Args) {
			if s.Args[i].Value() != "type" || i+1 >= len(s.Args) {
				c.errorf(s.Args[i].At(), "'%s TUN': expected 'type ipip', 'type gue port N' or 'type gre'", s.Key)
				return Forwarding{}, false
			}
			if f.TunType, ok = c.oneOf(s, s.Args[i+1], "ipip", "gue", "gre"); !ok {
				return Forwarding{}, false
			}
			i += 2
		}
		if f.TunType == "gue" {
			if i+1 >= len(s.Args) || s.Args[i].Value() != "port" {
				c.errorf(s.At(), "'%s TUN type gue' needs 'port N'", s.Key)
				return Forwarding{}, false
			}
			if f.TunPort, ok = c.lvsPort(s, i+1, false); !ok {
				return Forwarding{}, false
			}
			i += 2
		}
		if i < len(s.Args) {
			switch f.TunType {
			case "ipip":
				c.errorf(s.Args[i].At(), "'%s TUN': checksum options need tunnel type gue or gre", s.Key)
				return Forwarding{}, false
			case "gre":
				f.TunCsum, ok = c.oneOf(s, s.Args[i], "nocsum", "csum")
			default:
				f.TunCsum, ok = c.oneOf(s, s.Args[i], "nocsum", "csum", "remcsum")
			}
			if !ok {
				return Forwarding{}, false
			}
			i++
		}
	}
	if i < len(s.Args) {
		c.warnf(s.Args[i].At(), "extra arguments to '%s' ignored", s.Key)
	}
	return f, true
}

// serverTimingKeywords is the table of the timing keywords shared by virtual_server and
// real_server; get returns the block's timing and its set of written keywords.
func serverTimingKeywords[T any](get func(*T) (*ServerTiming, *Keys)) keywords[T] {
	return keywords[T]{
		"delay_loop": func(c *ctx, s *Stmt, t *T) {
			st, set := get(t)
			if d, ok := c.timerKey(s, set, true); ok {
				st.DelayLoop = d
			}
		},
		"connect_timeout": func(c *ctx, s *Stmt, t *T) {
			st, set := get(t)
			if d, ok := c.timerKey(s, set, true); ok {
				st.ConnectTimeout = d
			}
		},
		"retry": func(c *ctx, s *Stmt, t *T) {
			st, set := get(t)
			if n, ok := c.intKey(s, set, 1, 1<<31-1); ok {
				v := int(n)
				st.Retry = &v
			}
		},
		"delay_before_retry": func(c *ctx, s *Stmt, t *T) {
			st, set := get(t)
			if d, ok := c.timerKey(s, set, false); ok {
				st.DelayBeforeRetry = &d
			}
		},
		"warmup": func(c *ctx, s *Stmt, t *T) {
			st, set := get(t)
			if d, ok := c.timerKey(s, set, false); ok {
				st.Warmup = &d
			}
		},
	}
}

// mergeKeywords returns a table holding the entries of all tables.
func mergeKeywords[T any](tables ...keywords[T]) keywords[T] {
	out := keywords[T]{}
	for _, t := range tables {
		for k, h := range t {
			out[k] = h
		}
	}
	return out
}

func vsFlag(field func(*VirtualServer) *bool) handler[VirtualServer] {
	return func(c *ctx, s *Stmt, vs *VirtualServer) { c.flagKey(s, &vs.Set, field(vs)) }
}

func vsSchedFlag(c *ctx, s *Stmt, vs *VirtualServer) {
	c.want(s, 0, 0)
	if s.Key == "ops" {
		vs.OPS = true
	} else if !vs.Set.Has(s.Key) {
		vs.SchedFlags = append(vs.SchedFlags, s.Key)
	}
	vs.Set.add(s.Key)
}

func vsScheduler(c *ctx, s *Stmt, vs *VirtualServer) {
	vs.schedGiven = true
	if !c.want(s, 1, 1) {
		return
	}
	if v, ok := c.oneOf(s, s.Args[0], schedulers...); ok {
		vs.Scheduler = v
		vs.Set.add("lvs_sched")
	}
}

func vsForwarding(c *ctx, s *Stmt, vs *VirtualServer) {
	if f, ok := c.forwarding(s); ok {
		vs.Forwarding = f
		vs.Set.add("lvs_method")
	}
}

var virtualServerKeywords = mergeKeywords(
	serverTimingKeywords(func(vs *VirtualServer) (*ServerTiming, *Keys) { return &vs.ServerTiming, &vs.Set }),
	keywords[VirtualServer]{
		"lvs_sched":   vsScheduler,
		"lb_algo":     vsScheduler,
		"ops":         vsSchedFlag,
		"hashed":      vsSchedFlag,
		"flag-1":      vsSchedFlag,
		"flag-2":      vsSchedFlag,
		"flag-3":      vsSchedFlag,
		"sh-port":     vsSchedFlag,
		"sh-fallback": vsSchedFlag,
		"mh-port":     vsSchedFlag,
		"mh-fallback": vsSchedFlag,
		"lvs_method":  vsForwarding,
		"lb_kind":     vsForwarding,
		"protocol": func(c *ctx, s *Stmt, vs *VirtualServer) {
			if !c.want(s, 1, 1) {
				return
			}
			a := s.Args[0]
			switch v := strings.ToUpper(a.Value()); v {
			case "TCP", "UDP", "SCTP":
				vs.Protocol = v
				vs.Set.add(s.Key)
			default:
				msg := "'protocol': unknown value '" + a.Value() + "' (expected TCP, UDP, SCTP)"
				if sg := suggest(a.Value(), []string{"TCP", "UDP", "SCTP"}); sg != "" {
					msg += "; did you mean '" + sg + "'?"
				}
				c.errorf(a.At(), "%s", msg)
			}
		},
		"persistence_timeout": func(c *ctx, s *Stmt, vs *VirtualServer) {
			c.want(s, 0, 1)
			if len(s.Args) == 0 {
				vs.PersistenceTimeout = 360
				vs.Set.add(s.Key)
				return
			}
			if n, ok := c.intArg(s, 0, 1, 2678400); ok {
				vs.PersistenceTimeout = uint32(n)
				vs.Set.add(s.Key)
			}
		},
		"persistence_granularity": func(c *ctx, s *Stmt, vs *VirtualServer) {
			if !c.want(s, 1, 1) {
				return
			}
			if bits, ok := c.granularity(s, vs); ok {
				vs.PersistenceGranularity = bits
				vs.Set.add(s.Key)
			}
		},
		"persistence_engine": func(c *ctx, s *Stmt, vs *VirtualServer) { c.stringKey(s, &vs.Set, &vs.PersistenceEngine) },
		"weight": func(c *ctx, s *Stmt, vs *VirtualServer) {
			if n, ok := c.intKey(s, &vs.Set, 0, 65535); ok {
				vs.Weight = int(n)
			}
		},
		"quorum": func(c *ctx, s *Stmt, vs *VirtualServer) {
			if n, ok := c.intKey(s, &vs.Set, 1, 1<<32-1); ok {
				vs.Quorum = uint32(n)
			}
		},
		"hysteresis": func(c *ctx, s *Stmt, vs *VirtualServer) {
			if n, ok := c.intKey(s, &vs.Set, 0, 1<<32-1); ok {
				vs.Hysteresis = uint32(n)
			}
		},
		"quorum_up":   func(c *ctx, s *Stmt, vs *VirtualServer) { c.onceScript(s, &vs.QuorumUp, &vs.Set) },
		"quorum_down": func(c *ctx, s *Stmt, vs *VirtualServer) { c.onceScript(s, &vs.QuorumDown, &vs.Set) },
		"sorry_server": func(c *ctx, s *Stmt, vs *VirtualServer) {
			if !c.want(s, 1, 2) {
				return
			}
			ip, ok := c.addrArg(s, 0)
			if !ok {
				return
			}
			ss := &SorryServer{Addr: ip, Pos: s.At()}
			if len(s.Args) > 1 {
				if ss.Port, ok = c.lvsPort(s, 1, true); !ok {
					return
				}
			}
			vs.SorryServer = ss
			vs.Set.add(s.Key)
		},
		"sorry_server_inhibit":    func(c *ctx, s *Stmt, vs *VirtualServer) { vs.sorryInhibit = s },
		"sorry_server_lvs_method": func(c *ctx, s *Stmt, vs *VirtualServer) { vs.sorryMethod = s },
		"alpha":                   vsFlag(func(vs *VirtualServer) *bool { return &vs.Alpha }),
		"omega":                   vsFlag(func(vs *VirtualServer) *bool { return &vs.Omega }),
		"inhibit_on_failure":      vsFlag(func(vs *VirtualServer) *bool { return &vs.InhibitOnFailure }),
		"ha_suspend":              vsFlag(func(vs *VirtualServer) *bool { return &vs.HASuspend }),
		"smtp_alert":              vsFlag(func(vs *VirtualServer) *bool { return &vs.SMTPAlert }),
		"virtualhost":             func(c *ctx, s *Stmt, vs *VirtualServer) { c.stringKey(s, &vs.Set, &vs.Virtualhost) },
		"snmp_name":               func(c *ctx, s *Stmt, vs *VirtualServer) { c.stringKey(s, &vs.Set, &vs.SNMPName) },
		"ip_family": func(c *ctx, s *Stmt, vs *VirtualServer) {
			if !c.want(s, 1, 1) {
				return
			}
			v, ok := c.oneOf(s, s.Args[0], "inet", "inet6")
			if !ok {
				return
			}
			if vs.Addr.IsValid() && v != vs.IPFamily {
				c.errorf(s.Args[0].At(), "'ip_family %s' conflicts with the virtual server address %s; ignored", v, vs.Addr)
				return
			}
			vs.IPFamily = v
			vs.Set.add(s.Key)
		},
		"real_server": func(c *ctx, s *Stmt, vs *VirtualServer) {
			if rs := parseRealServer(c, s); rs != nil {
				vs.RealServers = append(vs.RealServers, rs)
			}
		},
	})

// granularity reads persistence_granularity: a solid IPv4 netmask, or an IPv6 prefix
// length (1-128). It returns the prefix length.
func (c *ctx) granularity(s *Stmt, vs *VirtualServer) (int, bool) {
	a := s.Args[0]
	v6 := !strings.Contains(a.Value(), ".")
	if vs.IPFamily != "" {
		v6 = vs.IPFamily == "inet6"
	}
	if v6 {
		n, ok := c.intArg(s, 0, 1, 128)
		return int(n), ok
	}
	m, err := netip.ParseAddr(a.Value())
	if err == nil && m.Is4() {
		b := m.As4()
		mask := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		ones := 0
		for ones < 32 && mask&(1<<(31-ones)) != 0 {
			ones++
		}
		if ones > 0 && mask<<ones == 0 {
			return ones, true
		}
	}
	c.errorf(a.At(), "'%s': %q is not an IPv4 netmask such as 255.255.255.0", s.Key, a.Value())
	return 0, false
}

// keyPos returns where keyword k was last written in the block, else the block's position.
func (vs *VirtualServer) keyPos(k string) Pos {
	if p, ok := vs.at[k]; ok {
		return p
	}
	return vs.Pos
}

// written reports whether keyword k appears in the block, valid or not.
func (vs *VirtualServer) written(k string) bool {
	_, ok := vs.at[k]
	return ok
}

// onceScript parses a notify-style script keyword; as keepalived, a second one is ignored.
func (c *ctx) onceScript(s *Stmt, dst **Script, set *Keys) {
	if *dst != nil {
		c.warnf(s.At(), "'%s' already set; this one is ignored", s.Key)
		return
	}
	if sc := c.script(s); sc != nil {
		*dst = sc
		set.add(s.Key)
	}
}
