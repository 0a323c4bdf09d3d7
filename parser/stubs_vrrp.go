package parser

// Placeholders replaced by the VRRP-side block parsers.

type VRRPScript struct{ Name string }
type TrackFile struct{ Name string }
type TrackProcess struct{ Name string }
type TrackPing struct{ Name string }
type SyncGroup struct{ Name string }
type VRRPInstance struct{ Name string }
type VIP struct{ Addr string }
type Route struct{ Text string }
type Rule struct{ Text string }

func parseVRRPScript(c *ctx, s *Stmt) *VRRPScript     { return nil }
func parseTrackFile(c *ctx, s *Stmt) *TrackFile       { return nil }
func parseTrackProcess(c *ctx, s *Stmt) *TrackProcess { return nil }
func parseTrackPing(c *ctx, s *Stmt) *TrackPing       { return nil }
func parseSyncGroup(c *ctx, s *Stmt) *SyncGroup       { return nil }
func parseVRRPInstance(c *ctx, s *Stmt) *VRRPInstance { return nil }
func parseVIPBlock(c *ctx, s *Stmt) []*VIP            { return nil }
func parseRouteBlock(c *ctx, s *Stmt) []*Route        { return nil }
func parseRuleBlock(c *ctx, s *Stmt) []*Rule          { return nil }
func (cfg *Config) validateVRRP(c *ctx)               {}
func (cfg *Config) validateScripts(c *ctx)            {}
