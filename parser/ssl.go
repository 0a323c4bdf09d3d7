package parser

// SSLConfig is the top-level SSL block: the TLS client context of the SSL_GET checkers.
// Without it (or with it empty) the context is generated: no client certificate and no
// verification of the server's.
type SSLConfig struct {
	Password    string `json:"password,omitempty"`
	CA          string `json:"ca,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	Key         string `json:"key,omitempty"`
}

var sslKeywords = keywords[SSLConfig]{
	"password":    func(c *ctx, s *Stmt, t *SSLConfig) { c.setString(s, &t.Password) },
	"ca":          func(c *ctx, s *Stmt, t *SSLConfig) { c.setString(s, &t.CA) },
	"certificate": func(c *ctx, s *Stmt, t *SSLConfig) { c.setString(s, &t.Certificate) },
	"key":         func(c *ctx, s *Stmt, t *SSLConfig) { c.setString(s, &t.Key) },
}

// parseSSL parses "SSL { password; ca; certificate; key }". As in keepalived, a second
// SSL block replaces the first.
func parseSSL(c *ctx, s *Stmt) *SSLConfig {
	if c.cfg.SSL != nil {
		c.warnf(s.At(), "SSL block already given; this one replaces it")
	}
	t := &SSLConfig{}
	if len(s.Args) > 0 {
		c.warnf(s.Args[0].At(), "extra arguments to '%s' ignored", s.Key)
	}
	parseBlock(c, s, t, sslKeywords)
	if !s.Open {
		return c.cfg.SSL
	}
	return t
}
