package parser

import "net/netip"

// LVSSyncDaemon is global_defs lvs_sync_daemon: the kernel's IPVS connection
// synchronisation daemon, which keepalived runs as master while Instance is MASTER and
// as backup otherwise, so that a director taking over knows its peer's connections.
type LVSSyncDaemon struct {
	// Interface is the interface the daemon sends or receives its multicast on.
	Interface string `json:"interface"`
	// Instance is the vrrp_instance whose state decides the daemon's role.
	Instance string `json:"instance"`
	// SyncID is the id the daemon stamps on and accepts in its messages; the
	// instance's virtual_router_id unless "id" is given.
	SyncID int `json:"id"`
	// MaxLen, Port and TTL are the message size, UDP port and multicast TTL; 0 leaves
	// the kernel's default (from the MTU, 8848, 1).
	MaxLen int `json:"maxlen,omitempty"`
	Port   int `json:"port,omitempty"`
	TTL    int `json:"ttl,omitempty"`
	// Group is the multicast group; zero leaves the kernel's 224.0.0.81.
	Group netip.Addr `json:"group,omitzero"`
	Pos   Pos        `json:"-"`

	idSet bool
}

// ipvsIfNameMax is the kernel's limit on the sync daemon's interface name, NUL
// included (IP_VS_IFNAME_MAXLEN).
const ipvsIfNameMax = 16

// parseLVSSyncDaemon parses lvs_sync_daemon IF INSTANCE [id N] [maxlen N] [port N]
// [ttl N] [group ADDR]. A bare number after the instance is the id (keepalived's older
// syntax, warned).
func parseLVSSyncDaemon(c *ctx, s *Stmt, g *GlobalDefs) {
	if g.LVSSyncDaemon != nil {
		c.errorf(s.At(), "lvs_sync_daemon already given as %s %s (at %s); ignored", g.LVSSyncDaemon.Interface, g.LVSSyncDaemon.Instance, g.LVSSyncDaemon.Pos)
		return
	}
	if !c.want(s, 2, -1) {
		return
	}
	for i, what := range []string{"interface", "vrrp instance"} {
		if len(s.Args[i].Value()) >= ipvsIfNameMax {
			c.errorf(s.Args[i].At(), "lvs_sync_daemon %s name '%s' is longer than %d characters; ignored", what, s.Args[i].Value(), ipvsIfNameMax-1)
			return
		}
	}
	d := &LVSSyncDaemon{Interface: s.Args[0].Value(), Instance: s.Args[1].Value(), Pos: s.At()}
	i := 2
	if i < len(s.Args) && s.Args[i].Value() != "" && s.Args[i].Value()[0] >= '0' && s.Args[i].Value()[0] <= '9' {
		c.warnf(s.Args[i].At(), "lvs_sync_daemon: write \"id %s\" for the sync id", s.Args[i].Value())
		if n, ok := c.intArg(s, i, 0, 255); ok {
			d.SyncID, d.idSet = int(n), true
		}
		i++
	}
	for ; i < len(s.Args); i++ {
		opt := s.Args[i]
		if i+1 == len(s.Args) {
			c.errorf(opt.At(), "lvs_sync_daemon: '%s' has no value; ignored", opt.Value())
			break
		}
		var dst *int
		var hi int64
		switch opt.Value() {
		case "id":
			dst, hi = &d.SyncID, 255
			d.idSet = true
		case "maxlen":
			dst, hi = &d.MaxLen, 65535-20-8
		case "port":
			dst, hi = &d.Port, 65535
		case "ttl":
			dst, hi = &d.TTL, 255
		case "group":
			i++
			a, ok := c.addrArg(s, i)
			if ok && !a.IsMulticast() {
				c.errorf(s.Args[i].At(), "lvs_sync_daemon group %s is not a multicast address; ignored", a)
			} else if ok {
				d.Group = a
			}
			continue
		default:
			c.errorf(opt.At(), "lvs_sync_daemon: unknown option '%s' (expected id, maxlen, port, ttl, group)", opt.Value())
			continue
		}
		i++
		if n, ok := c.intArg(s, i, 0, hi); ok {
			*dst = int(n)
		} else if opt.Value() == "id" {
			d.idSet = false
		}
	}
	g.LVSSyncDaemon = d
}

// parseInstanceSyncInterface handles the deprecated vrrp_instance keyword
// lvs_sync_daemon_interface IF: the global lvs_sync_daemon on IF for this instance.
func parseInstanceSyncInterface(c *ctx, s *Stmt, v *VRRPInstance) {
	if !c.want(s, 1, 1) {
		return
	}
	c.warnf(s.At(), "(%s) lvs_sync_daemon_interface is deprecated; use global_defs lvs_sync_daemon %s %s", v.Name, s.Args[0].Value(), v.Name)
	g := &c.cfg.Global
	if g.LVSSyncDaemon != nil {
		c.errorf(s.At(), "(%s) lvs_sync_daemon already given as %s %s (at %s); ignored", v.Name, g.LVSSyncDaemon.Interface, g.LVSSyncDaemon.Instance, g.LVSSyncDaemon.Pos)
		return
	}
	if len(s.Args[0].Value()) >= ipvsIfNameMax {
		c.errorf(s.Args[0].At(), "lvs_sync_daemon_interface name '%s' is longer than %d characters; ignored", s.Args[0].Value(), ipvsIfNameMax-1)
		return
	}
	g.LVSSyncDaemon = &LVSSyncDaemon{Interface: s.Args[0].Value(), Instance: v.Name, Pos: s.At()}
}

// validateLVSSyncDaemon resolves lvs_sync_daemon's instance (it must exist) and its
// default id, the instance's virtual_router_id.
func (cfg *Config) validateLVSSyncDaemon(c *ctx) {
	d := cfg.Global.LVSSyncDaemon
	if d == nil {
		return
	}
	var names []string
	for _, v := range cfg.Instances {
		if v.Name == d.Instance {
			if !d.idSet {
				d.SyncID = v.VRID
			}
			return
		}
		names = append(names, v.Name)
	}
	hint := ""
	if sg := suggest(d.Instance, names); sg != "" {
		hint = " (did you mean '" + sg + "'?)"
	}
	c.errorf(d.Pos, "lvs_sync_daemon: no vrrp_instance %s%s; sync daemon not run", d.Instance, hint)
	cfg.Global.LVSSyncDaemon = nil
}
