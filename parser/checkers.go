package parser

import (
	"net/netip"
	"slices"
	"strings"
)

// Checker is one health checker of a real server. Type is the keepalived block name
// (TCP_CHECK, HTTP_GET, ...); the options of that type are in the matching field (HTTP
// for HTTP_GET and SSL_GET, UDP, DNS, SMTP, Misc, File); TCP_CHECK and PING_CHECK have
// none. Conn and Timing hold effective values once the configuration is read: what the
// checker sets, else what it inherits from its real and virtual server, else the
// checker type's default. Set lists the keywords written in the checker's block.
type Checker struct {
	Type           string       `json:"type"`
	Conn           *ConnOpts    `json:"conn,omitempty"`   // nil for MISC_CHECK and FILE_CHECK
	Timing         *CheckTiming `json:"timing,omitempty"` // nil for FILE_CHECK
	Alpha          bool         `json:"alpha,omitempty"`
	LogAllFailures bool         `json:"log_all_failures,omitempty"`

	HTTP *HTTPCheck `json:"http,omitempty"`
	UDP  *UDPCheck  `json:"udp,omitempty"`
	DNS  *DNSCheck  `json:"dns,omitempty"`
	SMTP *SMTPCheck `json:"smtp,omitempty"`
	Misc *MiscCheck `json:"misc,omitempty"`
	File *FileCheck `json:"file,omitempty"`

	Set Keys `json:"set,omitempty"`
	Pos Pos  `json:"-"`
}

// ConnOpts is where a checker connects: ConnectIP defaults to the real server's address
// and, for the checkers that use a port (all but PING_CHECK), ConnectPort to its port.
type ConnOpts struct {
	ConnectIP   netip.Addr `json:"connect_ip"`
	ConnectPort uint16     `json:"connect_port,omitempty"`
	BindTo      netip.Addr `json:"bindto,omitzero"`
	BindPort    uint16     `json:"bind_port,omitempty"`
	BindIf      string     `json:"bind_if,omitempty"`
	FWMark      uint32     `json:"fwmark,omitempty"` // mark set on the checker's packets
	// CloseFIN makes a TCP_CHECK close its connection normally (FIN) instead of resetting
	// it; from global_defs tcp_check_close fin.
	CloseFIN bool `json:"close_fin,omitempty"`
}

// CheckTiming is the effective scheduling of a checker.
type CheckTiming struct {
	DelayLoop        Duration `json:"delay_loop"`
	ConnectTimeout   Duration `json:"connect_timeout"`
	Retry            int      `json:"retry"`
	DelayBeforeRetry Duration `json:"delay_before_retry"`
	Warmup           Duration `json:"warmup"` // the first check starts at a random time in [0, Warmup)
}

// UDPCheck holds the UDP_CHECK options.
type UDPCheck struct {
	Payload        HexBytes `json:"payload,omitempty"` // nil: a random payload is sent
	RequireReply   bool     `json:"require_reply,omitempty"`
	Reply          HexBytes `json:"reply,omitempty"`      // expected start of the reply
	ReplyMask      HexBytes `json:"reply_mask,omitempty"` // bits of Reply that must match; nil: all
	MinReplyLength int      `json:"min_reply_length"`
	MaxReplyLength int      `json:"max_reply_length"`
}

// DNSCheck holds the DNS_CHECK options.
type DNSCheck struct {
	Type string `json:"type"` // A, NS, CNAME, SOA, MX, TXT or AAAA
	Name string `json:"name"`
}

// SMTPCheck holds the SMTP_CHECK options.
type SMTPCheck struct {
	HeloName string `json:"helo_name"`

	hosts []*smtpHost // legacy host blocks, each turned into a checker of its own
}

// MiscCheck holds the MISC_CHECK options. The script runs as Path.User/Path.Group when
// set (misc_path's own user or the user keyword).
type MiscCheck struct {
	Path    *Script  `json:"misc_path"`
	Timeout Duration `json:"misc_timeout"` // effective: misc_timeout, else delay_loop
	Dynamic bool     `json:"misc_dynamic,omitempty"`

	user, group string // the user keyword, applied to Path once the block is read
}

// FileCheck holds the FILE_CHECK options.
type FileCheck struct {
	TrackFile string `json:"track_file"`
	Path      string `json:"path"` // the track_file's file, resolved

	Dynamic bool `json:"dynamic,omitempty"`
	Weight  int  `json:"weight"` // effective: the checker's, else the track_file's
	Reverse bool `json:"reverse,omitempty"`

	at Pos // the track_file statement
}

// defaultHeloName is keepalived's SMTP_CHECK helo_name.
const defaultHeloName = "smtpchecker.keepalived.org"

// connKeys are the checker keywords that say where to connect.
var connKeys = []string{"connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark", "connect_timeout"}

func newChecker(s *Stmt, conn bool) *Checker {
	ck := &Checker{Type: s.Key, Timing: &CheckTiming{}, Pos: s.At()}
	if conn {
		ck.Conn = &ConnOpts{}
	}
	return ck
}

// checkerBody parses the block of a checker statement; false if it has none.
func checkerBody(c *ctx, s *Stmt, ck *Checker, table keywords[Checker]) bool {
	if len(s.Args) > 0 {
		c.warnf(s.Args[0].At(), "extra arguments to '%s' ignored", s.Key)
	}
	parseBlock(c, s, ck, table)
	return s.Open
}

// connKeywords is the table of the connection keywords; get returns the options and the
// set of written keywords of the block.
func connKeywords[T any](get func(*T) (*ConnOpts, *Keys)) keywords[T] {
	addr := func(field func(*ConnOpts) *netip.Addr) handler[T] {
		return func(c *ctx, s *Stmt, t *T) {
			co, set := get(t)
			if c.setAddr(s, field(co)) {
				set.add(s.Key)
			}
		}
	}
	port := func(field func(*ConnOpts) *uint16) handler[T] {
		return func(c *ctx, s *Stmt, t *T) {
			co, set := get(t)
			if n, ok := c.intKey(s, set, 1, 65535); ok {
				*field(co) = uint16(n)
			}
		}
	}
	return keywords[T]{
		"connect_ip":   addr(func(co *ConnOpts) *netip.Addr { return &co.ConnectIP }),
		"connect_port": port(func(co *ConnOpts) *uint16 { return &co.ConnectPort }),
		"bindto":       addr(func(co *ConnOpts) *netip.Addr { return &co.BindTo }),
		"bind_port":    port(func(co *ConnOpts) *uint16 { return &co.BindPort }),
		"bind_if": func(c *ctx, s *Stmt, t *T) {
			co, set := get(t)
			c.stringKey(s, set, &co.BindIf)
		},
		"fwmark": func(c *ctx, s *Stmt, t *T) {
			co, set := get(t)
			if n, ok := c.intKey(s, set, 0, 1<<32-1); ok {
				co.FWMark = uint32(n)
			}
		},
	}
}

func ckFlag(field func(*Checker) *bool) handler[Checker] {
	return func(c *ctx, s *Stmt, ck *Checker) { c.flagKey(s, &ck.Set, field(ck)) }
}

// checkerTimingKeywords are the options of every checker but FILE_CHECK and BFD_CHECK,
// and all that MISC_CHECK has (keepalived 2.2.7 gives it no connect_timeout either).
var checkerTimingKeywords = keywords[Checker]{
	"delay_loop": func(c *ctx, s *Stmt, ck *Checker) {
		if d, ok := c.timerKey(s, &ck.Set, true); ok {
			ck.Timing.DelayLoop = d
		}
	},
	"retry": func(c *ctx, s *Stmt, ck *Checker) {
		if n, ok := c.intKey(s, &ck.Set, 0, 1<<31-1); ok {
			ck.Timing.Retry = int(n)
		}
	},
	"delay_before_retry": func(c *ctx, s *Stmt, ck *Checker) {
		if d, ok := c.timerKey(s, &ck.Set, false); ok {
			ck.Timing.DelayBeforeRetry = d
		}
	},
	"warmup": func(c *ctx, s *Stmt, ck *Checker) {
		if d, ok := c.timerKey(s, &ck.Set, false); ok {
			ck.Timing.Warmup = d
		}
	},
	"alpha":            ckFlag(func(ck *Checker) *bool { return &ck.Alpha }),
	"log_all_failures": ckFlag(func(ck *Checker) *bool { return &ck.LogAllFailures }),
}

// checkerCommonKeywords are the options of the checkers that connect somewhere.
var checkerCommonKeywords = mergeKeywords(checkerTimingKeywords,
	connKeywords(func(ck *Checker) (*ConnOpts, *Keys) { return ck.Conn, &ck.Set }),
	keywords[Checker]{
		"connect_timeout": func(c *ctx, s *Stmt, ck *Checker) {
			if d, ok := c.timerKey(s, &ck.Set, true); ok {
				ck.Timing.ConnectTimeout = d
			}
		},
	})

// parseTCPCheck parses TCP_CHECK: the check passes when a TCP connection succeeds.
func parseTCPCheck(c *ctx, s *Stmt) []*Checker {
	ck := newChecker(s, true)
	if !checkerBody(c, s, ck, checkerCommonKeywords) {
		return nil
	}
	return []*Checker{ck}
}

// parsePingCheck parses PING_CHECK: an ICMP echo to connect_ip.
func parsePingCheck(c *ctx, s *Stmt) []*Checker {
	return parseTCPCheck(c, s)
}

var udpCheckKeywords = mergeKeywords(checkerCommonKeywords, keywords[Checker]{
	"payload": func(c *ctx, s *Stmt, ck *Checker) {
		if !c.want(s, 1, -1) {
			return
		}
		data, _, ok := parseHexStr(strings.Join(s.Values(), " "), false)
		if !ok {
			c.errorf(s.Args[0].At(), "'payload': %q is not a hex string", strings.Join(s.Values(), " "))
			return
		}
		ck.UDP.Payload = data
		ck.Set.add(s.Key)
	},
	"require_reply": func(c *ctx, s *Stmt, ck *Checker) {
		if len(s.Args) > 0 {
			data, mask, ok := parseHexStr(strings.Join(s.Values(), " "), true)
			if !ok {
				c.errorf(s.Args[0].At(), "'require_reply': %q is not a hex string (x matches any digit)", strings.Join(s.Values(), " "))
				return
			}
			ck.UDP.Reply, ck.UDP.ReplyMask = data, mask
		}
		ck.UDP.RequireReply = true
		ck.Set.add(s.Key)
	},
	"min_reply_length": func(c *ctx, s *Stmt, ck *Checker) {
		if n, ok := c.intKey(s, &ck.Set, 0, 65535); ok {
			ck.UDP.MinReplyLength = int(n)
		}
	},
	"max_reply_length": func(c *ctx, s *Stmt, ck *Checker) {
		if n, ok := c.intKey(s, &ck.Set, 0, 65535); ok {
			ck.UDP.MaxReplyLength = int(n)
		}
	},
})

// parseUDPCheck parses UDP_CHECK: a datagram is sent; the check fails on an ICMP error
// or, with require_reply, on a missing or mismatched reply.
func parseUDPCheck(c *ctx, s *Stmt) []*Checker {
	ck := newChecker(s, true)
	ck.UDP = &UDPCheck{MaxReplyLength: 255}
	if !checkerBody(c, s, ck, udpCheckKeywords) {
		return nil
	}
	if u := ck.UDP; u.MinReplyLength > u.MaxReplyLength {
		c.errorf(s.At(), "UDP_CHECK min_reply_length %d > max_reply_length %d: the check would always fail; checker ignored", u.MinReplyLength, u.MaxReplyLength)
		return nil
	}
	return []*Checker{ck}
}

var dnsCheckKeywords = mergeKeywords(checkerCommonKeywords, keywords[Checker]{
	"type": func(c *ctx, s *Stmt, ck *Checker) {
		if !c.want(s, 1, 1) {
			return
		}
		types := []string{"A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"}
		a := s.Args[0]
		for _, t := range types {
			if strings.EqualFold(a.Value(), t) {
				ck.DNS.Type = t
				ck.Set.add(s.Key)
				return
			}
		}
		c.oneOf(s, a, types...)
	},
	"name": func(c *ctx, s *Stmt, ck *Checker) { c.stringKey(s, &ck.Set, &ck.DNS.Name) },
})

// parseDNSCheck parses DNS_CHECK: a query over UDP that must be answered with rcode 0.
func parseDNSCheck(c *ctx, s *Stmt) []*Checker {
	ck := newChecker(s, true)
	ck.DNS = &DNSCheck{Type: "SOA", Name: "."}
	if !checkerBody(c, s, ck, dnsCheckKeywords) {
		return nil
	}
	return []*Checker{ck}
}

var miscCheckKeywords = mergeKeywords(checkerTimingKeywords, keywords[Checker]{
	"misc_path": func(c *ctx, s *Stmt, ck *Checker) {
		if sc := c.script(s); sc != nil {
			ck.Misc.Path = sc
			ck.Set.add(s.Key)
		}
	},
	"misc_timeout": func(c *ctx, s *Stmt, ck *Checker) {
		if d, ok := c.timerKey(s, &ck.Set, false); ok {
			ck.Misc.Timeout = d
		}
	},
	"misc_dynamic": ckFlag(func(ck *Checker) *bool { return &ck.Misc.Dynamic }),
	"user": func(c *ctx, s *Stmt, ck *Checker) {
		if !c.want(s, 1, 2) {
			return
		}
		ck.Misc.user, ck.Misc.group = s.Args[0].Value(), ""
		if len(s.Args) > 1 {
			ck.Misc.group = s.Args[1].Value()
		}
		ck.Set.add(s.Key)
	},
})

// parseMiscCheck parses MISC_CHECK: misc_path runs; exit 0 is success, 1 failure, and
// with misc_dynamic 2-255 success with weight status-2.
func parseMiscCheck(c *ctx, s *Stmt) []*Checker {
	ck := newChecker(s, false)
	ck.Misc = &MiscCheck{}
	if !checkerBody(c, s, ck, miscCheckKeywords) {
		return nil
	}
	if ck.Misc.Path == nil {
		c.errorf(s.At(), "MISC_CHECK has no misc_path; checker ignored")
		return nil
	}
	if ck.Set.Has("user") {
		ck.Misc.Path.User, ck.Misc.Path.Group = ck.Misc.user, ck.Misc.group
	}
	return []*Checker{ck}
}

var fileCheckKeywords = keywords[Checker]{
	"track_file": func(c *ctx, s *Stmt, ck *Checker) {
		c.stringKey(s, &ck.Set, &ck.File.TrackFile)
		ck.File.at = s.At()
	},
	"dynamic": ckFlag(func(ck *Checker) *bool { return &ck.File.Dynamic }),
	"weight": func(c *ctx, s *Stmt, ck *Checker) {
		if !c.want(s, 1, 2) {
			return
		}
		n, ok := c.intArg(s, 0, -(1<<31 - 1), 1<<31-1)
		if !ok {
			return
		}
		if len(s.Args) > 1 {
			if _, ok := c.oneOf(s, s.Args[1], "reverse", "noreverse"); !ok {
				return
			}
		}
		ck.File.Reverse = len(s.Args) > 1 && s.Args[1].Value() == "reverse"
		ck.File.Weight = int(n)
		ck.Set.add(s.Key)
	},
}

// parseFileCheck parses FILE_CHECK: the real server follows the value of a track_file.
func parseFileCheck(c *ctx, s *Stmt) []*Checker {
	ck := &Checker{Type: s.Key, File: &FileCheck{}, Pos: s.At()}
	if !checkerBody(c, s, ck, fileCheckKeywords) {
		return nil
	}
	if ck.File.TrackFile == "" {
		c.errorf(s.At(), "FILE_CHECK has no track_file; checker ignored")
		return nil
	}
	return []*Checker{ck}
}

var bfdCheckKeywords = keywords[Checker]{
	"name": func(c *ctx, s *Stmt, _ *Checker) { c.str(s) },
}

// parseBFDCheck reads a BFD_CHECK block so that its contents are checked, then reports
// that gokeepalived has no BFD.
func parseBFDCheck(c *ctx, s *Stmt) []*Checker {
	if checkerBody(c, s, &Checker{}, bfdCheckKeywords) {
		c.errorf(s.At(), "BFD_CHECK is not supported by gokeepalived; the real server gets no BFD checker")
	}
	return nil
}

// smtpHost is a legacy SMTP_CHECK host block: where to connect, and the connect_timeout.
type smtpHost struct {
	conn    ConnOpts
	timeout *Duration
	set     Keys
	pos     Pos
}

var smtpHostKeywords = mergeKeywords(
	connKeywords(func(h *smtpHost) (*ConnOpts, *Keys) { return &h.conn, &h.set }),
	keywords[smtpHost]{
		"connect_timeout": func(c *ctx, s *Stmt, h *smtpHost) {
			if d, ok := c.timerKey(s, &h.set, true); ok {
				h.timeout = &d
			}
		},
	})

var smtpCheckKeywords = mergeKeywords(checkerCommonKeywords, keywords[Checker]{
	"helo_name": func(c *ctx, s *Stmt, ck *Checker) { c.stringKey(s, &ck.Set, &ck.SMTP.HeloName) },
	"host": func(c *ctx, s *Stmt, ck *Checker) {
		c.warnf(s.At(), "SMTP_CHECK 'host' blocks are deprecated: this host becomes an SMTP_CHECK of its own")
		// A host starts from the connection options written so far, as in keepalived.
		h := &smtpHost{conn: *ck.Conn, pos: s.At()}
		for _, k := range connKeys {
			if ck.Set.Has(k) {
				h.set.add(k)
			}
		}
		if ck.Set.Has("connect_timeout") {
			t := ck.Timing.ConnectTimeout
			h.timeout = &t
		}
		if len(s.Args) > 0 {
			c.warnf(s.Args[0].At(), "extra arguments to '%s' ignored", s.Key)
		}
		parseBlock(c, s, h, smtpHostKeywords)
		if s.Open {
			ck.SMTP.hosts = append(ck.SMTP.hosts, h)
		}
	},
})

// parseSMTPCheck parses SMTP_CHECK: the server must greet with 220 and answer HELO with
// 250. Each legacy host block yields a checker of its own; the block's own connection
// options count as one more host only when some are written.
func parseSMTPCheck(c *ctx, s *Stmt) []*Checker {
	ck := newChecker(s, true)
	ck.SMTP = &SMTPCheck{HeloName: defaultHeloName}
	if !checkerBody(c, s, ck, smtpCheckKeywords) {
		return nil
	}
	hosts := ck.SMTP.hosts
	ck.SMTP.hosts = nil
	if len(hosts) == 0 {
		return []*Checker{ck}
	}
	var out []*Checker
	for _, k := range connKeys {
		if ck.Set.Has(k) {
			out = append(out, ck)
			break
		}
	}
	for _, h := range hosts {
		n := *ck
		conn, timing := h.conn, *ck.Timing
		n.Conn, n.Timing = &conn, &timing
		n.SMTP = &SMTPCheck{HeloName: ck.SMTP.HeloName}
		n.Set, n.Pos = nil, h.pos
		for _, k := range ck.Set {
			if !slices.Contains(connKeys, k) {
				n.Set.add(k)
			}
		}
		for _, k := range h.set {
			n.Set.add(k)
		}
		if h.timeout != nil {
			timing.ConnectTimeout = *h.timeout
		}
		out = append(out, &n)
	}
	return out
}
