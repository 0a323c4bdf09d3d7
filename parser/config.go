// Package parser reads keepalived.conf files: a preprocessor (include, @conditionals,
// $parameters, ~SEQ/~LST), a positioned statement tree built with participle, and a
// typed model with keepalived's defaults built by one parse function per block. Every
// problem is reported as a Diagnostic with file:line:col.
package parser

// Config is the typed model of a whole keepalived.conf.
type Config struct {
	Global              GlobalDefs            `json:"global_defs"`
	Scripts             []*VRRPScript         `json:"vrrp_scripts,omitempty"`
	TrackFiles          []*TrackFile          `json:"track_files,omitempty"`
	TrackProcesses      []*TrackProcess       `json:"track_processes,omitempty"`
	TrackPings          []*TrackPing          `json:"track_pings,omitempty"`
	SyncGroups          []*SyncGroup          `json:"vrrp_sync_groups,omitempty"`
	Instances           []*VRRPInstance       `json:"vrrp_instances,omitempty"`
	StaticAddresses     []*VIP                `json:"static_ipaddress,omitempty"`
	StaticRoutes        []*Route              `json:"static_routes,omitempty"`
	StaticRules         []*Rule               `json:"static_rules,omitempty"`
	VirtualServerGroups []*VirtualServerGroup `json:"virtual_server_groups,omitempty"`
	VirtualServers      []*VirtualServer      `json:"virtual_servers,omitempty"`
	SSL                 *SSLConfig            `json:"ssl,omitempty"`
}

// topLevel is the table of top-level blocks.
var topLevel = withIgnored(keywords[Config]{
	"global_defs": func(c *ctx, s *Stmt, cfg *Config) { parseGlobalDefs(c, s, &cfg.Global) },
	"vrrp_script": func(c *ctx, s *Stmt, cfg *Config) {
		if v := parseVRRPScript(c, s); v != nil {
			cfg.Scripts = append(cfg.Scripts, v)
		}
	},
	"track_file": func(c *ctx, s *Stmt, cfg *Config) {
		if v := parseTrackFile(c, s); v != nil {
			cfg.TrackFiles = append(cfg.TrackFiles, v)
		}
	},
	"vrrp_track_process": func(c *ctx, s *Stmt, cfg *Config) {
		if v := parseTrackProcess(c, s); v != nil {
			cfg.TrackProcesses = append(cfg.TrackProcesses, v)
		}
	},
	"vrrp_track_ping": func(c *ctx, s *Stmt, cfg *Config) {
		if v := parseTrackPing(c, s); v != nil {
			cfg.TrackPings = append(cfg.TrackPings, v)
		}
	},
	"vrrp_sync_group": func(c *ctx, s *Stmt, cfg *Config) {
		if v := parseSyncGroup(c, s); v != nil {
			cfg.SyncGroups = append(cfg.SyncGroups, v)
		}
	},
	"vrrp_instance": func(c *ctx, s *Stmt, cfg *Config) {
		if v := parseVRRPInstance(c, s); v != nil {
			cfg.Instances = append(cfg.Instances, v)
		}
	},
	"static_ipaddress": func(c *ctx, s *Stmt, cfg *Config) {
		cfg.StaticAddresses = append(cfg.StaticAddresses, parseVIPBlock(c, s)...)
	},
	"static_routes": func(c *ctx, s *Stmt, cfg *Config) {
		cfg.StaticRoutes = append(cfg.StaticRoutes, parseRouteBlock(c, s)...)
	},
	"static_rules": func(c *ctx, s *Stmt, cfg *Config) {
		cfg.StaticRules = append(cfg.StaticRules, parseRuleBlock(c, s)...)
	},
	"virtual_server_group": func(c *ctx, s *Stmt, cfg *Config) {
		if v := parseVirtualServerGroup(c, s); v != nil {
			cfg.VirtualServerGroups = append(cfg.VirtualServerGroups, v)
		}
	},
	"virtual_server": func(c *ctx, s *Stmt, cfg *Config) {
		if v := parseVirtualServer(c, s); v != nil {
			cfg.VirtualServers = append(cfg.VirtualServers, v)
		}
	},
	"SSL": func(c *ctx, s *Stmt, cfg *Config) { cfg.SSL = parseSSL(c, s) },
}, "linkbeat_interfaces", "interface_up_down_delays", "track_group", "garp_group", "bfd_instance")

func init() {
	topLevel["vrrp_track_file"] = topLevel["track_file"]
}

// Load reads and parses the configuration file at path. The returned Config is never nil;
// Diagnostics.ExitCode tells whether it can run.
func Load(path string, opts Options) (*Config, Diagnostics) {
	var ds diagSet
	cfg := build(preprocessFile(path, opts, &ds), &ds)
	return cfg, ds.ordered()
}

// LoadBytes parses data as the configuration file name.
func LoadBytes(name string, data []byte, opts Options) (*Config, Diagnostics) {
	var ds diagSet
	cfg := build(preprocessBytes(name, data, opts, &ds), &ds)
	return cfg, ds.ordered()
}

func build(lines []Line, ds *diagSet) *Config {
	cfg := &Config{Global: defaultGlobalDefs()}
	c := &ctx{ds: ds, cfg: cfg}
	for _, s := range buildTree(lines, ds) {
		if h, ok := topLevel[s.Key]; ok {
			h(c, s, cfg)
			continue
		}
		c.unknown(s, "", keysOf(topLevel))
	}
	cfg.validate(c)
	return cfg
}

// validate runs the semantic checks that need the whole configuration.
func (cfg *Config) validate(c *ctx) {
	cfg.validateVRRP(c)
	cfg.validateLVS(c)
	cfg.validateLVSSyncDaemon(c)
	cfg.validateScripts(c)
}
