package parser

// Placeholders replaced by the LVS-side block parsers.

type VirtualServerGroup struct{ Name string }
type VirtualServer struct{ Addr string }
type SSLConfig struct{ CA string }

func parseVirtualServerGroup(c *ctx, s *Stmt) *VirtualServerGroup { return nil }
func parseVirtualServer(c *ctx, s *Stmt) *VirtualServer           { return nil }
func parseSSL(c *ctx, s *Stmt) *SSLConfig                         { return nil }
func (cfg *Config) validateLVS(c *ctx)                            {}
