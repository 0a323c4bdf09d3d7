package parser

import (
	"net/netip"
	"strings"
)

// GlobalDefs is the global_defs block, with keepalived's defaults.
type GlobalDefs struct {
	RouterID             string   `json:"router_id,omitempty"`
	NotificationEmail    []string `json:"notification_email,omitempty"`
	NotificationFrom     string   `json:"notification_email_from,omitempty"`
	SMTPServer           string   `json:"smtp_server,omitempty"`
	SMTPPort             int      `json:"smtp_port,omitempty"`
	SMTPHeloName         string   `json:"smtp_helo_name,omitempty"`
	SMTPConnectTimeout   Duration `json:"smtp_connect_timeout"`
	SMTPAlert            *bool    `json:"smtp_alert,omitempty"`
	SMTPAlertVRRP        *bool    `json:"smtp_alert_vrrp,omitempty"`
	SMTPAlertChecker     *bool    `json:"smtp_alert_checker,omitempty"`
	NoEmailFaults        bool     `json:"no_email_faults,omitempty"`
	ScriptUser           string   `json:"script_user,omitempty"`
	ScriptGroup          string   `json:"script_group,omitempty"`
	EnableScriptSecurity bool     `json:"enable_script_security,omitempty"`
	StartupScript        *Script  `json:"startup_script,omitempty"`
	StartupScriptTimeout Duration `json:"startup_script_timeout"`
	ShutdownScript       *Script  `json:"shutdown_script,omitempty"`
	ShutdownScriptTimout Duration `json:"shutdown_script_timeout"`

	NotifyFIFO              *FIFO   `json:"notify_fifo,omitempty"`
	NotifyFIFOScript        *Script `json:"notify_fifo_script,omitempty"`
	VRRPNotifyFIFO          *FIFO   `json:"vrrp_notify_fifo,omitempty"`
	VRRPNotifyFIFOScript    *Script `json:"vrrp_notify_fifo_script,omitempty"`
	LVSNotifyFIFO           *FIFO   `json:"lvs_notify_fifo,omitempty"`
	LVSNotifyFIFOScript     *Script `json:"lvs_notify_fifo_script,omitempty"`
	NotifyPriorityChanges   bool    `json:"vrrp_notify_priority_changes,omitempty"`
	FIFOWriteStatesOnReload bool    `json:"fifo_write_vrrp_states_on_reload,omitempty"`

	MulticastGroup4         netip.Addr `json:"vrrp_mcast_group4"`
	MulticastGroup6         netip.Addr `json:"vrrp_mcast_group6"`
	VRRPVersion             int        `json:"vrrp_version"`
	GARPMasterDelay         Duration   `json:"vrrp_garp_master_delay"`
	GARPMasterRepeat        int        `json:"vrrp_garp_master_repeat"`
	GARPMasterRefresh       Duration   `json:"vrrp_garp_master_refresh"`
	GARPMasterRefreshRepeat int        `json:"vrrp_garp_master_refresh_repeat"`
	GARPLowerPrioDelay      *Duration  `json:"vrrp_garp_lower_prio_delay,omitempty"`
	GARPLowerPrioRepeat     *int       `json:"vrrp_garp_lower_prio_repeat,omitempty"`
	GARPInterval            Duration   `json:"vrrp_garp_interval"`
	GNAInterval             Duration   `json:"vrrp_gna_interval"`
	MinGARP                 bool       `json:"vrrp_min_garp,omitempty"`
	LowerPrioNoAdvert       bool       `json:"vrrp_lower_prio_no_advert,omitempty"`
	// OwnerIgnoreAdverts is vrrp_owner_ignore_adverts: the default of the instances'
	// owner_ignore_adverts.
	OwnerIgnoreAdverts    bool        `json:"vrrp_owner_ignore_adverts,omitempty"`
	HigherPrioSendAdvert  bool        `json:"vrrp_higher_prio_send_advert,omitempty"`
	DownTimerAdverts      int         `json:"vrrp_down_timer_adverts"`
	Strict                bool        `json:"vrrp_strict,omitempty"`
	SkipCheckAdvAddr      bool        `json:"vrrp_skip_check_adv_addr,omitempty"`
	CheckUnicastSrc       bool        `json:"vrrp_check_unicast_src,omitempty"`
	LogUnknownVRIDs       bool        `json:"log_unknown_vrids,omitempty"`
	DefaultInterface      string      `json:"default_interface"`
	DynamicInterfaces     bool        `json:"dynamic_interfaces,omitempty"`
	StartupDelay          Duration    `json:"vrrp_startup_delay"`
	CheckerLogAllFailures bool        `json:"checker_log_all_failures,omitempty"`
	LVSTimeouts           LVSTimeouts `json:"lvs_timeouts"`
	LVSFlush              bool        `json:"lvs_flush,omitempty"`
	LVSFlushOnStop        string      `json:"lvs_flush_on_stop,omitempty"`
	// LVSSyncDaemon is lvs_sync_daemon (or an instance's lvs_sync_daemon_interface);
	// nil without one.
	LVSSyncDaemon *LVSSyncDaemon `json:"lvs_sync_daemon,omitempty"`
	// TCPCheckClose is how TCP_CHECK closes an established connection (gokeepalived
	// extension): "rst" (default) resets it, "fin" closes it normally as keepalived does.
	TCPCheckClose            string `json:"tcp_check_close"`
	StateDumpFile            string `json:"state_dump_file"`
	StatsDumpFile            string `json:"stats_dump_file"`
	JSONDumpFile             string `json:"json_dump_file"`
	JSONVersion              int    `json:"json_version"`
	DataUseInstance          bool   `json:"data_use_instance,omitempty"`
	RandomSeed               int64  `json:"random_seed,omitempty"`
	ReloadCheckConfig        bool   `json:"reload_check_config,omitempty"`
	ReloadCheckConfigLogFile string `json:"reload_check_config_log_file,omitempty"`
	// VRRPRTPriority is vrrp_rt_priority: real-time (SCHED_RR) priority 1..99 for the
	// daemon, so that adverts go out on time on a busy machine; 0 = normal scheduling.
	VRRPRTPriority int `json:"vrrp_rt_priority,omitempty"`
	// VRRPPriority is vrrp_priority: the nice value (-20..19) of the daemon.
	VRRPPriority *int `json:"vrrp_priority,omitempty"`
	// NFTables is nftables [TABLE]: the name of the nftables tables (ip and ip6) in
	// which no_accept instances drop traffic to their virtual addresses. Empty when
	// the keyword is absent (the VRRP engine then uses keepalived's default name).
	NFTables string `json:"nftables,omitempty"`

	// VMACPrefix names the macvlans of use_vmac without a name: VMACPrefix "." VRID.
	VMACPrefix string `json:"vmac_prefix"`
	// VMACAddrPrefix is vmac_addr_prefix, the prefix of the macvlans keepalived makes
	// for addresses with their own use_vmac (parsed; not acted on yet).
	VMACAddrPrefix string `json:"vmac_addr_prefix"`
}

// nftTableMaxName is the kernel's limit on an nftables table name, NUL included
// (NFT_TABLE_MAXNAMELEN).
const nftTableMaxName = 256

// LVSTimeouts is lvs_timeouts (0 = leave the kernel's value).
type LVSTimeouts struct {
	TCP    Duration `json:"tcp"`
	TCPFin Duration `json:"tcpfin"`
	UDP    Duration `json:"udp"`
}

// FIFO is a notify FIFO path with the optional owner of the FIFO.
type FIFO struct {
	Path  string `json:"path"`
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
}

func defaultGlobalDefs() GlobalDefs {
	return GlobalDefs{
		SMTPConnectTimeout:      Seconds(30),
		StartupScriptTimeout:    Seconds(10),
		ShutdownScriptTimout:    Seconds(10),
		MulticastGroup4:         netip.MustParseAddr("224.0.0.18"),
		MulticastGroup6:         netip.MustParseAddr("ff02::12"),
		VRRPVersion:             2,
		GARPMasterDelay:         Seconds(5),
		GARPMasterRepeat:        5,
		GARPMasterRefreshRepeat: 1,
		DownTimerAdverts:        3,
		DefaultInterface:        "eth0",
		VMACPrefix:              "vrrp",
		VMACAddrPrefix:          "vmac",
		StateDumpFile:           "/tmp/keepalived.data",
		StatsDumpFile:           "/tmp/keepalived.stats",
		JSONDumpFile:            "/tmp/keepalived.json",
		JSONVersion:             1,
		TCPCheckClose:           "rst",
	}
}

func setBool(field func(*GlobalDefs) *bool) handler[GlobalDefs] {
	return func(c *ctx, s *Stmt, g *GlobalDefs) { c.setFlag(s, field(g)) }
}

func setBoolPtr(field func(*GlobalDefs) **bool) handler[GlobalDefs] {
	return func(c *ctx, s *Stmt, g *GlobalDefs) {
		var b bool
		c.setFlag(s, &b)
		*field(g) = &b
	}
}

func setGlobalTimer(field func(*GlobalDefs) *Duration, lo, hi float64) handler[GlobalDefs] {
	return func(c *ctx, s *Stmt, g *GlobalDefs) { c.setTimer(s, field(g), lo, hi) }
}

func setGlobalInt(field func(*GlobalDefs) *int, lo, hi int64) handler[GlobalDefs] {
	return func(c *ctx, s *Stmt, g *GlobalDefs) { setInt(c, s, field(g), lo, hi) }
}

func setGlobalString(field func(*GlobalDefs) *string) handler[GlobalDefs] {
	return func(c *ctx, s *Stmt, g *GlobalDefs) { c.setString(s, field(g)) }
}

func setGlobalScript(field func(*GlobalDefs) **Script) handler[GlobalDefs] {
	return func(c *ctx, s *Stmt, g *GlobalDefs) { *field(g) = c.script(s) }
}

func setGlobalFIFO(field func(*GlobalDefs) **FIFO) handler[GlobalDefs] {
	return func(c *ctx, s *Stmt, g *GlobalDefs) {
		if !c.want(s, 1, 3) {
			return
		}
		f := &FIFO{Path: s.Args[0].Value()}
		if len(s.Args) > 1 {
			f.User = s.Args[1].Value()
		}
		if len(s.Args) > 2 {
			f.Group = s.Args[2].Value()
		}
		*field(g) = f
	}
}

var globalKeywords = withIgnored(keywords[GlobalDefs]{
	"router_id": setGlobalString(func(g *GlobalDefs) *string { return &g.RouterID }),
	"notification_email": func(c *ctx, s *Stmt, g *GlobalDefs) {
		g.NotificationEmail = append(g.NotificationEmail, s.Values()...)
		if s.Open {
			for _, e := range s.Block {
				g.NotificationEmail = append(g.NotificationEmail, e.Key)
				g.NotificationEmail = append(g.NotificationEmail, e.Values()...)
			}
		}
	},
	"notification_email_from": setGlobalString(func(g *GlobalDefs) *string { return &g.NotificationFrom }),
	"smtp_server": func(c *ctx, s *Stmt, g *GlobalDefs) {
		if !c.want(s, 1, 2) {
			return
		}
		g.SMTPServer, g.SMTPPort = s.Args[0].Value(), 25
		if len(s.Args) > 1 {
			if p, ok := c.intArg(s, 1, 1, 65535); ok {
				g.SMTPPort = int(p)
			}
		}
	},
	"smtp_helo_name":       setGlobalString(func(g *GlobalDefs) *string { return &g.SMTPHeloName }),
	"smtp_connect_timeout": setGlobalTimer(func(g *GlobalDefs) *Duration { return &g.SMTPConnectTimeout }, 0, 86400),
	"smtp_alert":           setBoolPtr(func(g *GlobalDefs) **bool { return &g.SMTPAlert }),
	"smtp_alert_vrrp":      setBoolPtr(func(g *GlobalDefs) **bool { return &g.SMTPAlertVRRP }),
	"smtp_alert_checker":   setBoolPtr(func(g *GlobalDefs) **bool { return &g.SMTPAlertChecker }),
	"no_email_faults":      setBool(func(g *GlobalDefs) *bool { return &g.NoEmailFaults }),
	"script_user": func(c *ctx, s *Stmt, g *GlobalDefs) {
		if !c.want(s, 1, 2) {
			return
		}
		g.ScriptUser, g.ScriptGroup = s.Args[0].Value(), ""
		if u, grp, ok := strings.Cut(g.ScriptUser, ":"); ok {
			g.ScriptUser, g.ScriptGroup = u, grp
		}
		if len(s.Args) > 1 {
			g.ScriptGroup = strings.TrimPrefix(s.Args[1].Value(), ":")
		}
	},
	"enable_script_security":           setBool(func(g *GlobalDefs) *bool { return &g.EnableScriptSecurity }),
	"startup_script":                   setGlobalScript(func(g *GlobalDefs) **Script { return &g.StartupScript }),
	"startup_script_timeout":           setGlobalTimer(func(g *GlobalDefs) *Duration { return &g.StartupScriptTimeout }, 1, 1000),
	"shutdown_script":                  setGlobalScript(func(g *GlobalDefs) **Script { return &g.ShutdownScript }),
	"shutdown_script_timeout":          setGlobalTimer(func(g *GlobalDefs) *Duration { return &g.ShutdownScriptTimout }, 1, 1000),
	"notify_fifo":                      setGlobalFIFO(func(g *GlobalDefs) **FIFO { return &g.NotifyFIFO }),
	"notify_fifo_script":               setGlobalScript(func(g *GlobalDefs) **Script { return &g.NotifyFIFOScript }),
	"vrrp_notify_fifo":                 setGlobalFIFO(func(g *GlobalDefs) **FIFO { return &g.VRRPNotifyFIFO }),
	"vrrp_notify_fifo_script":          setGlobalScript(func(g *GlobalDefs) **Script { return &g.VRRPNotifyFIFOScript }),
	"lvs_notify_fifo":                  setGlobalFIFO(func(g *GlobalDefs) **FIFO { return &g.LVSNotifyFIFO }),
	"lvs_notify_fifo_script":           setGlobalScript(func(g *GlobalDefs) **Script { return &g.LVSNotifyFIFOScript }),
	"vrrp_notify_priority_changes":     setBool(func(g *GlobalDefs) *bool { return &g.NotifyPriorityChanges }),
	"fifo_write_vrrp_states_on_reload": setBool(func(g *GlobalDefs) *bool { return &g.FIFOWriteStatesOnReload }),
	"vrrp_mcast_group4": func(c *ctx, s *Stmt, g *GlobalDefs) {
		var a netip.Addr
		if c.setAddr(s, &a) {
			if !a.Is4() || !a.IsMulticast() {
				c.errorf(s.Args[0].At(), "'%s': %s is not an IPv4 multicast address", s.Key, a)
				return
			}
			g.MulticastGroup4 = a
		}
	},
	"vrrp_mcast_group6": func(c *ctx, s *Stmt, g *GlobalDefs) {
		var a netip.Addr
		if c.setAddr(s, &a) {
			if !a.Is6() || !a.IsMulticast() {
				c.errorf(s.Args[0].At(), "'%s': %s is not an IPv6 multicast address", s.Key, a)
				return
			}
			g.MulticastGroup6 = a
		}
	},
	"vrrp_version":                    setGlobalInt(func(g *GlobalDefs) *int { return &g.VRRPVersion }, 2, 3),
	"vrrp_garp_master_delay":          setGlobalTimer(func(g *GlobalDefs) *Duration { return &g.GARPMasterDelay }, 0, 86400),
	"vrrp_garp_master_repeat":         setGlobalInt(func(g *GlobalDefs) *int { return &g.GARPMasterRepeat }, 0, 1000),
	"vrrp_garp_master_refresh":        setGlobalTimer(func(g *GlobalDefs) *Duration { return &g.GARPMasterRefresh }, 0, 86400),
	"vrrp_garp_master_refresh_repeat": setGlobalInt(func(g *GlobalDefs) *int { return &g.GARPMasterRefreshRepeat }, 0, 1000),
	"vrrp_garp_lower_prio_delay": func(c *ctx, s *Stmt, g *GlobalDefs) {
		var d Duration
		if c.setTimer(s, &d, 0, 86400) {
			g.GARPLowerPrioDelay = &d
		}
	},
	"vrrp_garp_lower_prio_repeat": func(c *ctx, s *Stmt, g *GlobalDefs) {
		var n int
		if setInt(c, s, &n, 0, 1000) {
			g.GARPLowerPrioRepeat = &n
		}
	},
	"vrrp_garp_interval":           setGlobalTimer(func(g *GlobalDefs) *Duration { return &g.GARPInterval }, 0, 1),
	"vrrp_gna_interval":            setGlobalTimer(func(g *GlobalDefs) *Duration { return &g.GNAInterval }, 0, 1),
	"vrrp_min_garp":                setBool(func(g *GlobalDefs) *bool { return &g.MinGARP }),
	"vrrp_lower_prio_no_advert":    setBool(func(g *GlobalDefs) *bool { return &g.LowerPrioNoAdvert }),
	"vrrp_owner_ignore_adverts":    setBool(func(g *GlobalDefs) *bool { return &g.OwnerIgnoreAdverts }),
	"vrrp_higher_prio_send_advert": setBool(func(g *GlobalDefs) *bool { return &g.HigherPrioSendAdvert }),
	"vrrp_down_timer_adverts":      setGlobalInt(func(g *GlobalDefs) *int { return &g.DownTimerAdverts }, 1, 100),
	"vrrp_strict":                  setBool(func(g *GlobalDefs) *bool { return &g.Strict }),
	"vrrp_skip_check_adv_addr":     setBool(func(g *GlobalDefs) *bool { return &g.SkipCheckAdvAddr }),
	"vrrp_check_unicast_src":       setBool(func(g *GlobalDefs) *bool { return &g.CheckUnicastSrc }),
	"log_unknown_vrids":            setBool(func(g *GlobalDefs) *bool { return &g.LogUnknownVRIDs }),
	"default_interface":            setGlobalString(func(g *GlobalDefs) *string { return &g.DefaultInterface }),
	"vmac_prefix":                  vmacPrefix(func(g *GlobalDefs) *string { return &g.VMACPrefix }),
	"vmac_addr_prefix":             vmacPrefix(func(g *GlobalDefs) *string { return &g.VMACAddrPrefix }),
	"dynamic_interfaces": func(c *ctx, s *Stmt, g *GlobalDefs) {
		c.want(s, 0, 1)
		g.DynamicInterfaces = true
	},
	"vrrp_startup_delay":       setGlobalTimer(func(g *GlobalDefs) *Duration { return &g.StartupDelay }, 0, 3600),
	"checker_log_all_failures": setBool(func(g *GlobalDefs) *bool { return &g.CheckerLogAllFailures }),
	"lvs_timeouts": func(c *ctx, s *Stmt, g *GlobalDefs) {
		if !c.want(s, 2, -1) {
			return
		}
		for i := 0; i+1 < len(s.Args); i += 2 {
			d, ok := c.timerArg(s, i+1, 0, 86400*31)
			if !ok {
				continue
			}
			switch s.Args[i].Value() {
			case "tcp":
				g.LVSTimeouts.TCP = d
			case "tcpfin":
				g.LVSTimeouts.TCPFin = d
			case "udp":
				g.LVSTimeouts.UDP = d
			default:
				c.errorf(s.Args[i].At(), "'lvs_timeouts': unknown protocol '%s' (expected tcp, tcpfin, udp)", s.Args[i].Value())
			}
		}
		if len(s.Args)%2 != 0 {
			c.errorf(s.Args[len(s.Args)-1].At(), "'lvs_timeouts': '%s' has no value", s.Args[len(s.Args)-1].Value())
		}
	},
	"lvs_flush": setBool(func(g *GlobalDefs) *bool { return &g.LVSFlush }),
	"lvs_flush_on_stop": func(c *ctx, s *Stmt, g *GlobalDefs) {
		c.want(s, 0, 1)
		g.LVSFlushOnStop = "all"
		if len(s.Args) > 0 {
			if v, ok := c.oneOf(s, s.Args[0], "VS", "all"); ok {
				g.LVSFlushOnStop = v
			}
		}
	},
	"tcp_check_close": func(c *ctx, s *Stmt, g *GlobalDefs) {
		if c.want(s, 1, 1) {
			if v, ok := c.oneOf(s, s.Args[0], "rst", "fin"); ok {
				g.TCPCheckClose = v
			}
		}
	},
	"state_dump_file":   setGlobalString(func(g *GlobalDefs) *string { return &g.StateDumpFile }),
	"stats_dump_file":   setGlobalString(func(g *GlobalDefs) *string { return &g.StatsDumpFile }),
	"json_dump_file":    setGlobalString(func(g *GlobalDefs) *string { return &g.JSONDumpFile }),
	"json_version":      setGlobalInt(func(g *GlobalDefs) *int { return &g.JSONVersion }, 1, 2),
	"data_use_instance": setBool(func(g *GlobalDefs) *bool { return &g.DataUseInstance }),
	"vrrp_rt_priority":  setGlobalInt(func(g *GlobalDefs) *int { return &g.VRRPRTPriority }, 1, 99),
	"vrrp_priority": func(c *ctx, s *Stmt, g *GlobalDefs) {
		var n int
		if setInt(c, s, &n, -20, 19) {
			g.VRRPPriority = &n
		}
	},
	"random_seed": func(c *ctx, s *Stmt, g *GlobalDefs) {
		setInt(c, s, &g.RandomSeed, 0, 1<<62)
	},
	"reload_check_config": func(c *ctx, s *Stmt, g *GlobalDefs) {
		c.want(s, 0, 1)
		g.ReloadCheckConfig = true
		if len(s.Args) > 0 {
			g.ReloadCheckConfigLogFile = s.Args[0].Value()
		}
	},
	"lvs_sync_daemon": parseLVSSyncDaemon,
	"nftables": func(c *ctx, s *Stmt, g *GlobalDefs) {
		c.want(s, 0, 1)
		name := "keepalived" // the keyword alone: keepalived's default table
		if len(s.Args) > 0 {
			name = s.Args[0].Value()
		}
		if name == "" || len(name) >= nftTableMaxName {
			c.errorf(s.At(), "nftables table name must have 1 to %d characters; ignored", nftTableMaxName-1)
			return
		}
		g.NFTables = name
	},
	// include_check is applied by the preprocessor; accept it here.
	"include_check": func(*ctx, *Stmt, *GlobalDefs) {},
},
	// Recognised keepalived keywords with no effect in gokeepalived (process tuning,
	// SNMP, DBus, firewall integration, VMAC, network namespaces...).
	"tmp_config_directory", "config_save_dir", "process_names", "process_name",
	"vrrp_process_name", "checker_process_name", "bfd_process_name",
	"checker_priority", "bfd_priority", "vrrp_no_swap", "checker_no_swap", "bfd_no_swap",
	"checker_rt_priority", "bfd_rt_priority",
	"vrrp_rlimit_rttime", "checker_rlimit_rttime", "bfd_rlimit_rttime",
	"vrrp_cpu_affinity", "checker_cpu_affinity", "bfd_cpu_affinity",
	"max_auto_priority", "min_auto_priority_delay",
	"enable_snmp_vrrp", "enable_snmp_checker", "enable_snmp_rfc", "enable_snmp_rfcv2", "enable_snmp_rfcv3",
	"enable_snmp_keepalived", "enable_traps", "snmp_socket", "enable_dbus", "dbus_service_name",
	"enable_dbus_create_instance",
	"vrrp_iptables", "vrrp_ipsets", "nftables_priority", "nftables_counters", "nftables_ifindex",
	"nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark", "disable_local_igmp",
	"vrrp_garp_extra_if", "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier",
	"vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs",
	"vrrp_netlink_monitor_rcv_bufs_force", "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force",
	"lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs",
	"process_monitor_rcv_bufs_force", "lvs_sync_daemon_interface",
	"net_namespace", "net_namespace_ipvs", "namespace_with_ipsets", "instance", "use_pid_dir", "umask",
	"child_wait_time", "rs_init_notifies", "no_checker_emails", "vrrp_delay_after_boot",
	"reload_time_file", "reload_repeat", "reload_file", "linkbeat_use_polling",
)

// parseGlobalDefs parses a global_defs block into g (several blocks accumulate).
func parseGlobalDefs(c *ctx, s *Stmt, g *GlobalDefs) {
	parseBlock(c, s, g, globalKeywords)
}
