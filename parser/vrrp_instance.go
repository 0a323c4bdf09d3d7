package parser

import (
	"net/netip"
)

// VRRPInstance is a vrrp_instance block. Its fields hold effective values: keepalived's
// defaults, the values inherited from global_defs and the adjustments keepalived makes
// (strict mode, state MASTER, version 3 for IPv6...) are resolved once the whole file is
// read, so engines need not know the rules. Explicit tells which keywords were written.
type VRRPInstance struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Interface may be empty only for a unicast instance with a unicast_src_ip.
	Interface string `json:"interface,omitempty"`
	VRID      int    `json:"virtual_router_id"`
	// Priority defaults to 255 with state MASTER (as keepalived does), else to 100.
	Priority  int      `json:"priority"`
	AdvertInt Duration `json:"advert_int"`
	Version   int      `json:"version"`
	// Family (4 or 6) comes from the first virtual_ipaddress (else native_ipv6, the
	// source address, the first unicast peer), IPv4 by default.
	Family       int      `json:"family"`
	NativeIPv6   bool     `json:"native_ipv6,omitempty"`
	Nopreempt    bool     `json:"nopreempt,omitempty"`
	PreemptDelay Duration `json:"preempt_delay"`
	Auth         *Auth    `json:"authentication,omitempty"`

	VIPs         []*VIP   `json:"virtual_ipaddress,omitempty"`
	ExcludedVIPs []*VIP   `json:"virtual_ipaddress_excluded,omitempty"`
	NoVIPs       bool     `json:"no_virtual_ipaddress,omitempty"`
	Routes       []*Route `json:"virtual_routes,omitempty"`
	Rules        []*Rule  `json:"virtual_rules,omitempty"`
	// VMAC is use_vmac (with vmac_xmit_base); nil without it.
	VMAC *VMAC `json:"use_vmac,omitempty"`
	// UseVMACAddr is use_vmac_addr: gratuitous ARPs for the addresses on other
	// interfaces would carry the virtual MAC too (parsed; not acted on yet).
	UseVMACAddr bool `json:"use_vmac_addr,omitempty"`

	TrackInterfaces  []*TrackRef `json:"track_interface,omitempty"`
	TrackScripts     []*TrackRef `json:"track_script,omitempty"`
	TrackFiles       []*TrackRef `json:"track_file,omitempty"`
	TrackProcesses   []*TrackRef `json:"track_process,omitempty"`
	TrackPings       []*TrackRef `json:"track_ping,omitempty"`
	DontTrackPrimary bool        `json:"dont_track_primary,omitempty"`

	// SrcIP is mcast_src_ip or unicast_src_ip (synonyms).
	SrcIP netip.Addr `json:"src_ip,omitzero"`
	// McastGroup is mcast_dst_ip, else the global vrrp_mcast_group4/6.
	McastGroup         netip.Addr     `json:"mcast_dst_ip"`
	TrackSrcIP         bool           `json:"track_src_ip,omitempty"`
	UnicastPeers       []*UnicastPeer `json:"unicast_peer,omitempty"`
	UnicastTTL         int            `json:"unicast_ttl"`
	CheckUnicastSrc    bool           `json:"check_unicast_src,omitempty"`
	UnicastFaultNoPeer bool           `json:"unicast_fault_no_peer,omitempty"`

	GARPMasterDelay         Duration     `json:"garp_master_delay"`
	GARPMasterRepeat        int          `json:"garp_master_repeat"`
	GARPMasterRefresh       Duration     `json:"garp_master_refresh"`
	GARPMasterRefreshRepeat int          `json:"garp_master_refresh_repeat"`
	GARPLowerPrioDelay      Duration     `json:"garp_lower_prio_delay"`
	GARPLowerPrioRepeat     int          `json:"garp_lower_prio_repeat"`
	GARPExtraIf             *GARPExtraIf `json:"garp_extra_if,omitempty"`
	DownTimerAdverts        int          `json:"down_timer_adverts"`
	LowerPrioNoAdvert       bool         `json:"lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert    bool         `json:"higher_prio_send_advert,omitempty"`
	// TimerExpiredBackup is the highest priority of the other routers (timer_expired_backup
	// [PRIO], default 254); 0 when not set.
	TimerExpiredBackup int  `json:"timer_expired_backup,omitempty"`
	OwnerIgnoreAdverts bool `json:"owner_ignore_adverts,omitempty"`
	// Accept defaults to true, or false in strict mode.
	Accept             bool `json:"accept"`
	PromoteSecondaries bool `json:"promote_secondaries,omitempty"`
	SkipCheckAdvAddr   bool `json:"skip_check_adv_addr,omitempty"`
	// Strict is strict_mode, else the global vrrp_strict.
	Strict          bool `json:"strict_mode,omitempty"`
	KernelRxBufSize int  `json:"kernel_rx_buf_size,omitempty"`
	V3ChecksumAsV2  bool `json:"v3_checksum_as_v2,omitempty"`
	// OldUnicastChecksum is auto (detect), always (old_unicast_checksum) or never.
	OldUnicastChecksum string `json:"old_unicast_checksum"`

	Notifies
	NotifyMasterRxLowerPri *Script `json:"notify_master_rx_lower_pri,omitempty"`
	NotifyPriorityChanges  bool    `json:"notify_priority_changes,omitempty"`
	SMTPAlert              bool    `json:"smtp_alert,omitempty"`
	Debug                  int     `json:"debug,omitempty"`
	// SyncGroup is the vrrp_sync_group the instance belongs to, if any.
	SyncGroup string `json:"sync_group,omitempty"`
	Pos       Pos    `json:"-"`

	at       map[string]Pos
	vridSeen bool
}

// Explicit reports whether keyword key was set (validly) in the instance's block, as
// opposed to defaulted or inherited from global_defs. no_accept counts as "accept",
// mcast_src_ip and unicast_src_ip as "src_ip".
func (v *VRRPInstance) Explicit(key string) bool {
	_, ok := v.at[key]
	return ok
}

// Auth is the authentication block (VRRPv2 only).
type Auth struct {
	Type string `json:"auth_type"`
	// Pass is at most 8 characters (keepalived truncates longer ones).
	Pass string `json:"auth_pass"`
	Pos  Pos    `json:"-"`
}

// UnicastPeer is one line of unicast_peer: "IP [min_ttl N] [max_ttl N]".
type UnicastPeer struct {
	Addr   netip.Addr `json:"addr"`
	MinTTL *int       `json:"min_ttl,omitempty"`
	MaxTTL *int       `json:"max_ttl,omitempty"`
	Pos    Pos        `json:"-"`
}

// GARPExtraIf is garp_extra_if [all] SECS: periodic gratuitous ARP/NA for VIPs on other
// interfaces (All: also on the instance's own interface).
type GARPExtraIf struct {
	All      bool     `json:"all,omitempty"`
	Interval Duration `json:"interval"`
}

// mark records that key was set at s.
func (v *VRRPInstance) mark(s *Stmt) { v.at[s.Key] = s.At() }

// posOf returns where key was set, else the instance's position.
func (v *VRRPInstance) posOf(key string) Pos {
	if p, ok := v.at[key]; ok {
		return p
	}
	return v.Pos
}

func instInt(field func(*VRRPInstance) *int, lo, hi int64) handler[VRRPInstance] {
	return func(c *ctx, s *Stmt, v *VRRPInstance) {
		if setInt(c, s, field(v), lo, hi) {
			v.mark(s)
		}
	}
}

func instTimer(field func(*VRRPInstance) *Duration, lo, hi float64) handler[VRRPInstance] {
	return func(c *ctx, s *Stmt, v *VRRPInstance) {
		if c.setTimer(s, field(v), lo, hi) {
			v.mark(s)
		}
	}
}

// instFlag handles a keyword without a value that sets *field to val.
func instFlag(field func(*VRRPInstance) *bool, val bool) handler[VRRPInstance] {
	return func(c *ctx, s *Stmt, v *VRRPInstance) {
		c.want(s, 0, 0)
		*field(v) = val
		v.mark(s)
	}
}

func instBool(field func(*VRRPInstance) *bool) handler[VRRPInstance] {
	return explicitBool(field, func(v *VRRPInstance) map[string]Pos { return v.at })
}

func instTrack(field func(*VRRPInstance) *[]*TrackRef, lo, hi int64, noreverse bool) handler[VRRPInstance] {
	return func(c *ctx, s *Stmt, v *VRRPInstance) {
		*field(v) = append(*field(v), parseTrackBlock(c, s, lo, hi, noreverse)...)
	}
}

// srcIP handles mcast_src_ip and unicast_src_ip.
func srcIP(c *ctx, s *Stmt, v *VRRPInstance) {
	if c.setAddr(s, &v.SrcIP) {
		v.at["src_ip"] = s.At()
	}
}

var authKeywords = withIgnored(keywords[Auth]{
	"auth_type": func(c *ctx, s *Stmt, a *Auth) {
		if _, ok := c.str(s); ok {
			if t, ok := c.oneOf(s, s.Args[0], "PASS", "AH"); ok {
				a.Type = t
			}
		}
	},
	"auth_pass": func(c *ctx, s *Stmt, a *Auth) {
		if v, ok := c.str(s); ok {
			if len(v) > 8 {
				c.warnf(s.Args[0].At(), "auth_pass is longer than 8 characters; only '%s' is used", v[:8])
				v = v[:8]
			}
			a.Pass = v
		}
	},
}, "auth_hmac")

func parseUnicastPeer(c *ctx, l *Stmt) *UnicastPeer {
	ip, err := netip.ParseAddr(l.Key)
	if err != nil {
		c.errorf(l.At(), "unicast_peer: %q is not an IP address; ignored", l.Key)
		return nil
	}
	p := &UnicastPeer{Addr: ip, Pos: l.At()}
	for i := 0; i < len(l.Args); i++ {
		opt := l.Args[i]
		if opt.Value() != "min_ttl" && opt.Value() != "max_ttl" {
			c.errorf(opt.At(), "unicast_peer %s: unknown option '%s' (expected min_ttl or max_ttl); ignored", l.Key, opt.Value())
			continue
		}
		if i+1 >= len(l.Args) {
			c.errorf(opt.At(), "unicast_peer %s: '%s' needs a value", l.Key, opt.Value())
			break
		}
		i++
		n, ok := c.intArg(&Stmt{pos: l.pos, Key: opt.Value(), Args: l.Args}, i, 0, 255)
		if !ok {
			continue
		}
		ttl := int(n)
		if opt.Value() == "min_ttl" {
			p.MinTTL = &ttl
		} else {
			p.MaxTTL = &ttl
		}
	}
	if p.MinTTL != nil && p.MaxTTL != nil && *p.MinTTL > *p.MaxTTL {
		c.errorf(l.At(), "unicast_peer %s: min_ttl %d is above max_ttl %d; TTL limits ignored", l.Key, *p.MinTTL, *p.MaxTTL)
		p.MinTTL, p.MaxTTL = nil, nil
	}
	return p
}

var instanceKeywords = withIgnored(notifyKeywords(keywords[VRRPInstance]{
	"state": func(c *ctx, s *Stmt, v *VRRPInstance) {
		if _, ok := c.str(s); !ok {
			return
		}
		st, ok := c.oneOf(s, s.Args[0], "MASTER", "BACKUP")
		if !ok {
			st = "BACKUP"
		}
		if st == "BACKUP" && v.State == "MASTER" {
			c.warnf(s.At(), "(%s) state was already set to MASTER; BACKUP ignored", v.Name)
			return
		}
		v.State = st
		v.mark(s)
	},
	"interface": func(c *ctx, s *Stmt, v *VRRPInstance) {
		if name, ok := c.str(s); ok {
			if name == "lo" {
				c.errorf(s.Args[0].At(), "(%s) cannot use the loopback interface for VRRP; ignored", v.Name)
				return
			}
			if len(name) > 15 {
				c.errorf(s.Args[0].At(), "(%s) interface name '%s' is longer than 15 characters; ignored", v.Name, name)
				return
			}
			v.Interface = name
			v.mark(s)
		}
	},
	"virtual_router_id": func(c *ctx, s *Stmt, v *VRRPInstance) {
		v.vridSeen = true
		if setInt(c, s, &v.VRID, 1, 255) {
			v.mark(s)
		}
	},
	"priority": func(c *ctx, s *Stmt, v *VRRPInstance) {
		if !setInt(c, s, &v.Priority, 1, 255) {
			if len(s.Args) == 0 {
				return
			}
			// keepalived falls back to 100 (not to the state's default).
			c.errorf(s.Args[0].At(), "(%s) using the default priority 100", v.Name)
			v.Priority = 100
		}
		v.mark(s)
	},
	"advert_int": instTimer(func(v *VRRPInstance) *Duration { return &v.AdvertInt }, 0.01, 255),
	"version":    instInt(func(v *VRRPInstance) *int { return &v.Version }, 2, 3),
	"native_ipv6": func(c *ctx, s *Stmt, v *VRRPInstance) {
		c.want(s, 0, 0)
		c.warnf(s.At(), "'native_ipv6' is deprecated: the addresses decide the family")
		v.NativeIPv6 = true
		v.mark(s)
	},
	"nopreempt":     instFlag(func(v *VRRPInstance) *bool { return &v.Nopreempt }, true),
	"preempt":       instFlag(func(v *VRRPInstance) *bool { return &v.Nopreempt }, false),
	"preempt_delay": instTimer(func(v *VRRPInstance) *Duration { return &v.PreemptDelay }, 0, 1000),
	"authentication": func(c *ctx, s *Stmt, v *VRRPInstance) {
		a := &Auth{Pos: s.At()}
		parseBlock(c, s, a, authKeywords)
		switch {
		case !s.Open:
		case a.Type == "":
			c.errorf(s.At(), "(%s) authentication without a valid auth_type; ignored", v.Name)
		case a.Pass == "":
			c.errorf(s.At(), "(%s) authentication %s without auth_pass; ignored", v.Name, a.Type)
		default:
			v.Auth = a
			v.mark(s)
		}
	},
	"virtual_ipaddress": func(c *ctx, s *Stmt, v *VRRPInstance) {
		v.VIPs = append(v.VIPs, parseVIPBlock(c, s)...)
	},
	"virtual_ipaddress_excluded": func(c *ctx, s *Stmt, v *VRRPInstance) {
		v.ExcludedVIPs = append(v.ExcludedVIPs, parseVIPBlock(c, s)...)
	},
	"no_virtual_ipaddress": instFlag(func(v *VRRPInstance) *bool { return &v.NoVIPs }, true),
	"virtual_routes": func(c *ctx, s *Stmt, v *VRRPInstance) {
		v.Routes = append(v.Routes, parseRouteBlock(c, s)...)
	},
	"virtual_rules": func(c *ctx, s *Stmt, v *VRRPInstance) {
		v.Rules = append(v.Rules, parseRuleBlock(c, s)...)
	},
	"track_interface":    instTrack(func(v *VRRPInstance) *[]*TrackRef { return &v.TrackInterfaces }, -253, 253, false),
	"track_script":       instTrack(func(v *VRRPInstance) *[]*TrackRef { return &v.TrackScripts }, -253, 253, true),
	"track_file":         instTrack(func(v *VRRPInstance) *[]*TrackRef { return &v.TrackFiles }, -254, 254, true),
	"track_process":      instTrack(func(v *VRRPInstance) *[]*TrackRef { return &v.TrackProcesses }, -254, 254, true),
	"track_ping":         instTrack(func(v *VRRPInstance) *[]*TrackRef { return &v.TrackPings }, -253, 253, true),
	"track_bfd":          trackBFD[VRRPInstance],
	"dont_track_primary": instFlag(func(v *VRRPInstance) *bool { return &v.DontTrackPrimary }, true),
	"mcast_src_ip":       srcIP,
	"unicast_src_ip":     srcIP,
	"mcast_dst_ip": func(c *ctx, s *Stmt, v *VRRPInstance) {
		var a netip.Addr
		if !c.setAddr(s, &a) {
			return
		}
		if (a.Is4() && !a.IsMulticast()) || (a.Is6() && !a.IsLinkLocalMulticast()) {
			c.errorf(s.Args[0].At(), "'mcast_dst_ip': %s is not an IPv4 multicast or IPv6 link-local multicast address; ignored", a)
			return
		}
		v.McastGroup = a
		v.mark(s)
	},
	"track_src_ip": instFlag(func(v *VRRPInstance) *bool { return &v.TrackSrcIP }, true),
	"unicast_peer": func(c *ctx, s *Stmt, v *VRRPInstance) {
		for _, l := range c.addressLines(s) {
			if p := parseUnicastPeer(c, l); p != nil {
				v.UnicastPeers = append(v.UnicastPeers, p)
			}
		}
		v.mark(s)
	},
	"unicast_ttl":           instInt(func(v *VRRPInstance) *int { return &v.UnicastTTL }, 0, 255),
	"check_unicast_src":     instFlag(func(v *VRRPInstance) *bool { return &v.CheckUnicastSrc }, true),
	"unicast_fault_no_peer": instFlag(func(v *VRRPInstance) *bool { return &v.UnicastFaultNoPeer }, true),

	"garp_master_delay":          instTimer(func(v *VRRPInstance) *Duration { return &v.GARPMasterDelay }, 0, 86400),
	"garp_master_repeat":         instInt(func(v *VRRPInstance) *int { return &v.GARPMasterRepeat }, 1, 1000),
	"garp_master_refresh":        instTimer(func(v *VRRPInstance) *Duration { return &v.GARPMasterRefresh }, 0, 86400),
	"garp_master_refresh_repeat": instInt(func(v *VRRPInstance) *int { return &v.GARPMasterRefreshRepeat }, 1, 1000),
	"garp_lower_prio_delay":      instTimer(func(v *VRRPInstance) *Duration { return &v.GARPLowerPrioDelay }, 0, 86400),
	"garp_lower_prio_repeat":     instInt(func(v *VRRPInstance) *int { return &v.GARPLowerPrioRepeat }, 0, 1000),
	"garp_extra_if":              garpExtraIf,
	"vmac_garp_intvl":            garpExtraIf,
	"down_timer_adverts":         instInt(func(v *VRRPInstance) *int { return &v.DownTimerAdverts }, 1, 100),
	"lower_prio_no_advert":       instBool(func(v *VRRPInstance) *bool { return &v.LowerPrioNoAdvert }),
	"higher_prio_send_advert":    instBool(func(v *VRRPInstance) *bool { return &v.HigherPrioSendAdvert }),
	"timer_expired_backup": func(c *ctx, s *Stmt, v *VRRPInstance) {
		c.want(s, 0, 1)
		v.TimerExpiredBackup = 254
		if len(s.Args) > 0 {
			n, ok := c.intArg(s, 0, 1, 254)
			if !ok {
				v.TimerExpiredBackup = 0
				return
			}
			v.TimerExpiredBackup = int(n)
		}
		v.mark(s)
	},
	"owner_ignore_adverts": instBool(func(v *VRRPInstance) *bool { return &v.OwnerIgnoreAdverts }),
	"accept":               instFlag(func(v *VRRPInstance) *bool { return &v.Accept }, true),
	"no_accept": func(c *ctx, s *Stmt, v *VRRPInstance) {
		c.want(s, 0, 0)
		v.Accept = false
		v.at["accept"] = s.At()
	},
	"promote_secondaries": instFlag(func(v *VRRPInstance) *bool { return &v.PromoteSecondaries }, true),
	"skip_check_adv_addr": instBool(func(v *VRRPInstance) *bool { return &v.SkipCheckAdvAddr }),
	"strict_mode":         instBool(func(v *VRRPInstance) *bool { return &v.Strict }),
	"kernel_rx_buf_size":  instInt(func(v *VRRPInstance) *int { return &v.KernelRxBufSize }, 0, 1<<31-1),
	"v3_checksum_as_v2":   instBool(func(v *VRRPInstance) *bool { return &v.V3ChecksumAsV2 }),
	"old_unicast_checksum": func(c *ctx, s *Stmt, v *VRRPInstance) {
		c.want(s, 0, 1)
		v.OldUnicastChecksum = "always"
		if len(s.Args) > 0 {
			if _, ok := c.oneOf(s, s.Args[0], "never"); !ok {
				v.OldUnicastChecksum = "auto"
				return
			}
			v.OldUnicastChecksum = "never"
		}
		v.mark(s)
	},
	"notify_master_rx_lower_pri": scriptKeyword(func(v *VRRPInstance) **Script { return &v.NotifyMasterRxLowerPri }),
	"notify_priority_changes":    instBool(func(v *VRRPInstance) *bool { return &v.NotifyPriorityChanges }),
	"smtp_alert":                 instBool(func(v *VRRPInstance) *bool { return &v.SMTPAlert }),
	"debug":                      instInt(func(v *VRRPInstance) *int { return &v.Debug }, 0, 4),
	"lvs_sync_daemon_interface":  parseInstanceSyncInterface,
	"use_vmac":                   useVMAC,
	"vmac_xmit_base": func(c *ctx, s *Stmt, v *VRRPInstance) {
		c.want(s, 0, 0)
		v.mark(s)
	},
	"use_vmac_addr": instFlag(func(v *VRRPInstance) *bool { return &v.UseVMACAddr }, true),
}, func(v *VRRPInstance) *Notifies { return &v.Notifies }),
	// IPVLAN/VRF and other keepalived features gokeepalived does not implement.
	"use_ipvlan", "vrf", "linkbeat_use_polling",
)

// parseVRRPInstance parses a vrrp_instance block. Defaults and inherited values are
// resolved later, by validateVRRP, once global_defs is known.
func parseVRRPInstance(c *ctx, s *Stmt) *VRRPInstance {
	name, ok := c.blockName(s)
	if !ok {
		return nil
	}
	v := &VRRPInstance{Name: name, UnicastTTL: 255, OldUnicastChecksum: "auto", Pos: s.At(), at: map[string]Pos{}}
	parseBlock(c, s, v, instanceKeywords)
	return v
}

// garpExtraIf handles garp_extra_if [all] SECS and its deprecated name vmac_garp_intvl
// (keepalived before 2.2.2).
func garpExtraIf(c *ctx, s *Stmt, v *VRRPInstance) {
	if s.Key == "vmac_garp_intvl" {
		c.warnf(s.At(), "'vmac_garp_intvl' is deprecated: use 'garp_extra_if'")
	}
	if !c.want(s, 1, 2) {
		return
	}
	g := &GARPExtraIf{}
	args := s.Args
	if args[0].Value() == "all" {
		g.All, args = true, args[1:]
	}
	if len(args) == 0 {
		c.errorf(s.At(), "'%s' needs an interval in seconds; ignored", s.Key)
		return
	}
	d, ok := c.timerArg(s, len(s.Args)-len(args), 0, 86400)
	if !ok {
		return
	}
	g.Interval = d
	if d == 0 {
		g = nil // 0 disables the feature
	}
	v.GARPExtraIf = g
	v.at["garp_extra_if"] = s.At()
}
