package parser

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// HTTPCheck holds the options of HTTP_GET and SSL_GET (Checker.Type tells which). Every
// URL must pass for the check to pass. Virtualhost is effective: the checker's, else
// the real server's, else the virtual server's.
type HTTPCheck struct {
	URLs         []*URL `json:"urls"`
	Protocol     string `json:"http_protocol"` // 1.0, 1.0C (1.0 with "Connection: close") or 1.1
	FastRecovery bool   `json:"fast_recovery,omitempty"`
	Virtualhost  string `json:"virtualhost,omitempty"`
	EnableSNI    bool   `json:"enable_sni,omitempty"`
	SNIName      string `json:"sni_name,omitempty"`
	TLSCompliant bool   `json:"tls_compliant,omitempty"`
}

// URL is one url block of an HTTP_GET or SSL_GET. Virtualhost is effective (the url's,
// else the checker's); Compiled is Regex with RegexOptions applied.
type URL struct {
	Path           string         `json:"path"`
	Digest         string         `json:"digest,omitempty"` // MD5 of the body, lower-case hex
	StatusCodes    []StatusRange  `json:"status_code"`
	Virtualhost    string         `json:"virtualhost,omitempty"`
	Regex          string         `json:"regex,omitempty"`
	RegexNoMatch   bool           `json:"regex_no_match,omitempty"`
	RegexOptions   []string       `json:"regex_options,omitempty"`
	RegexMinOffset int            `json:"regex_min_offset,omitempty"`
	RegexMaxOffset int            `json:"regex_max_offset,omitempty"` // 0 = end of the body
	Compiled       *regexp.Regexp `json:"-"`
	Set            Keys           `json:"set,omitempty"`
	Pos            Pos            `json:"-"`
}

// StatusRange is an inclusive range of accepted HTTP status codes.
type StatusRange struct {
	Lo int `json:"lo"`
	Hi int `json:"hi"`
}

// regexFlags maps the PCRE2 options of regex_options that Go's regexp can honour to its
// inline flags; the other PCRE2 options keepalived knows are accepted and ignored.
var regexFlags = map[string]string{"caseless": "i", "multiline": "m", "dotall": "s", "ungreedy": "U"}

var pcreOptions = []string{
	"allow_empty_class", "alt_bsux", "auto_callout", "caseless", "dollar_endonly", "dotall",
	"dupnames", "extended", "firstline", "match_unset_backref", "multiline", "never_ucp",
	"never_utf", "no_auto_capture", "no_auto_possess", "no_dotstar_anchor", "no_start_optimize",
	"ucp", "ungreedy", "utf", "never_backslash_c", "alt_circumflex", "alt_verbnames", "use_offset_limit",
}

func urlString(field func(*URL) *string) handler[URL] {
	return func(c *ctx, s *Stmt, u *URL) { c.stringKey(s, &u.Set, field(u)) }
}

func urlOffset(field func(*URL) *int) handler[URL] {
	return func(c *ctx, s *Stmt, u *URL) {
		if n, ok := c.intKey(s, &u.Set, 0, 1<<31-1); ok {
			*field(u) = int(n)
		}
	}
}

var urlKeywords = keywords[URL]{
	"path":        urlString(func(u *URL) *string { return &u.Path }),
	"virtualhost": urlString(func(u *URL) *string { return &u.Virtualhost }),
	"regex":       urlString(func(u *URL) *string { return &u.Regex }),
	"digest": func(c *ctx, s *Stmt, u *URL) {
		v, ok := c.str(s)
		if !ok {
			return
		}
		if u.Set.Has("digest") {
			c.errorf(s.At(), "'digest' already set for this url; ignored")
			return
		}
		if len(v) != 32 || strings.Trim(strings.ToLower(v), "0123456789abcdef") != "" {
			c.errorf(s.Args[0].At(), "'digest': %q is not an MD5 sum (32 hex digits)", v)
			return
		}
		u.Digest = strings.ToLower(v)
		u.Set.add(s.Key)
	},
	"status_code": func(c *ctx, s *Stmt, u *URL) {
		if !c.want(s, 1, -1) {
			return
		}
		for _, a := range s.Args {
			lo, hi, ok := parseStatusRange(a.Value())
			if !ok {
				c.errorf(a.At(), "'status_code': %q is not a status code or range within 100-599", a.Value())
				continue
			}
			u.StatusCodes = append(u.StatusCodes, StatusRange{Lo: lo, Hi: hi})
			u.Set.add(s.Key)
		}
	},
	"regex_no_match": func(c *ctx, s *Stmt, u *URL) { c.flagKey(s, &u.Set, &u.RegexNoMatch) },
	"regex_options": func(c *ctx, s *Stmt, u *URL) {
		if !c.want(s, 1, -1) {
			return
		}
		for _, a := range s.Args {
			if !slices.Contains(pcreOptions, a.Value()) {
				hint := ""
				if sg := suggest(a.Value(), pcreOptions); sg != "" {
					hint = "; did you mean '" + sg + "'?"
				}
				c.errorf(a.At(), "'regex_options': unknown PCRE2 option '%s'%s", a.Value(), hint)
				continue
			}
			if regexFlags[a.Value()] == "" {
				c.warnf(a.At(), "regex option '%s' has no equivalent in gokeepalived's (Go RE2) regular expressions; ignored", a.Value())
			}
			u.RegexOptions = append(u.RegexOptions, a.Value())
			u.Set.add(s.Key)
		}
	},
	"regex_min_offset": urlOffset(func(u *URL) *int { return &u.RegexMinOffset }),
	"regex_max_offset": urlOffset(func(u *URL) *int { return &u.RegexMaxOffset }),
	"regex_stack": func(c *ctx, s *Stmt, u *URL) {
		if !c.want(s, 2, 2) {
			return
		}
		start, ok1 := c.intArg(s, 0, 0, 1<<31-1)
		maxSize, ok2 := c.intArg(s, 1, 0, 1<<31-1)
		if ok1 && ok2 && start > maxSize {
			c.errorf(s.Args[0].At(), "'regex_stack': start %d exceeds max %d", start, maxSize)
			return
		}
		c.warnf(s.At(), "'regex_stack' sizes PCRE's JIT stack, which gokeepalived's regular expressions do not use; ignored")
	},
}

// parseStatusRange reads "200" or "200-299" (codes within 100-599).
func parseStatusRange(v string) (lo, hi int, ok bool) {
	a, b, isRange := strings.Cut(v, "-")
	lo, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, false
	}
	hi = lo
	if isRange {
		if hi, err = strconv.Atoi(b); err != nil {
			return 0, 0, false
		}
	}
	return lo, hi, lo >= 100 && hi <= 599 && lo <= hi
}

// parseURL parses a url block; nil (reported) if it has no path.
func parseURL(c *ctx, s *Stmt) *URL {
	u := &URL{Pos: s.At()}
	if len(s.Args) > 0 {
		c.warnf(s.Args[0].At(), "extra arguments to '%s' ignored", s.Key)
	}
	parseBlock(c, s, u, urlKeywords)
	if !s.Open {
		return nil
	}
	if u.Path == "" {
		c.errorf(s.At(), "url has no path; url ignored")
		return nil
	}
	if len(u.StatusCodes) == 0 {
		u.StatusCodes = []StatusRange{{Lo: 200, Hi: 299}}
	}
	if u.Regex == "" {
		if u.RegexNoMatch || len(u.RegexOptions) > 0 || u.RegexMinOffset != 0 || u.RegexMaxOffset != 0 {
			c.warnf(s.At(), "regex options without a 'regex'; ignored")
			u.RegexNoMatch, u.RegexOptions, u.RegexMinOffset, u.RegexMaxOffset = false, nil, 0, 0
		}
		return u
	}
	if u.RegexMaxOffset != 0 && u.RegexMinOffset >= u.RegexMaxOffset {
		c.warnf(s.At(), "regex_min_offset %d is not below regex_max_offset %d; both ignored", u.RegexMinOffset, u.RegexMaxOffset)
		u.RegexMinOffset, u.RegexMaxOffset = 0, 0
	}
	flags := ""
	for _, o := range u.RegexOptions {
		if f := regexFlags[o]; f != "" && !strings.Contains(flags, f) {
			flags += f
		}
	}
	expr := u.Regex
	if flags != "" {
		expr = "(?" + flags + ")" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		c.errorf(s.At(), "'regex' %q is not a regular expression gokeepalived can use (Go RE2 syntax): %v; regex ignored", u.Regex, err)
		u.Regex, u.RegexNoMatch, u.RegexOptions, u.RegexMinOffset, u.RegexMaxOffset = "", false, nil, 0, 0
		return u
	}
	u.Compiled = re
	return u
}

func httpFlag(field func(*HTTPCheck) *bool) handler[Checker] {
	return func(c *ctx, s *Stmt, ck *Checker) { c.flagKey(s, &ck.Set, field(ck.HTTP)) }
}

var httpCheckKeywords = mergeKeywords(checkerCommonKeywords, keywords[Checker]{
	"url": func(c *ctx, s *Stmt, ck *Checker) {
		if u := parseURL(c, s); u != nil {
			ck.HTTP.URLs = append(ck.HTTP.URLs, u)
		}
	},
	"http_protocol": func(c *ctx, s *Stmt, ck *Checker) {
		if !c.want(s, 1, 1) {
			return
		}
		a := s.Args[0]
		if a.Value() == "1.0c" {
			ck.HTTP.Protocol = "1.0C"
		} else if v, ok := c.oneOf(s, a, "1.0", "1.0C", "1.1"); ok {
			ck.HTTP.Protocol = v
		} else {
			return
		}
		ck.Set.add(s.Key)
	},
	"fast_recovery": httpFlag(func(h *HTTPCheck) *bool { return &h.FastRecovery }),
	"virtualhost":   func(c *ctx, s *Stmt, ck *Checker) { c.stringKey(s, &ck.Set, &ck.HTTP.Virtualhost) },
	"enable_sni":    httpFlag(func(h *HTTPCheck) *bool { return &h.EnableSNI }),
	"sni_name":      func(c *ctx, s *Stmt, ck *Checker) { c.stringKey(s, &ck.Set, &ck.HTTP.SNIName) },
	"tls_compliant": httpFlag(func(h *HTTPCheck) *bool { return &h.TLSCompliant }),
	"nb_get_retry": func(c *ctx, s *Stmt, ck *Checker) {
		c.warnf(s.At(), "'nb_get_retry' is deprecated; use 'retry'")
		if !c.want(s, 1, 1) {
			return
		}
		if n, ok := c.intArg(s, 0, 0, 1<<31-1); ok {
			ck.Timing.Retry = int(n)
			ck.Set.add("retry")
		}
	},
})

// parseHTTPCheck parses HTTP_GET and SSL_GET: each url is fetched and its status code,
// digest and regex checked. A checker without a url is reported and dropped.
func parseHTTPCheck(c *ctx, s *Stmt) []*Checker {
	ck := newChecker(s, true)
	ck.HTTP = &HTTPCheck{Protocol: "1.0"}
	if !checkerBody(c, s, ck, httpCheckKeywords) {
		return nil
	}
	if len(ck.HTTP.URLs) == 0 {
		c.errorf(s.At(), "%s has no url; checker ignored", s.Key)
		return nil
	}
	return []*Checker{ck}
}
