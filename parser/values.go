package parser

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Duration is a time span that renders as a Go duration string ("1.5s") in JSON.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText renders the duration as "1.5s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Seconds builds a Duration from (fractional) seconds.
func Seconds(s float64) Duration { return Duration(s * float64(time.Second)) }

// want checks the argument count of a scalar keyword: fewer than min is an error (false),
// more than max a warning (the extras are ignored, as keepalived does). A block after a
// scalar keyword is an error too.
func (c *ctx) want(s *Stmt, min, max int) bool {
	if s.Open {
		c.errorf(s.At(), "'%s' does not take a block; block ignored", s.Key)
	}
	if len(s.Args) < min {
		if min == 1 {
			c.errorf(s.At(), "'%s' needs a value", s.Key)
		} else {
			c.errorf(s.At(), "'%s' needs %d values", s.Key, min)
		}
		return false
	}
	if max >= 0 && len(s.Args) > max {
		c.warnf(s.Args[max].At(), "extra arguments to '%s' ignored", s.Key)
	}
	return true
}

// str returns the single argument of s.
func (c *ctx) str(s *Stmt) (string, bool) {
	if !c.want(s, 1, 1) {
		return "", false
	}
	return s.Args[0].Value(), true
}

// intArg parses argument i of s as an integer in [lo, hi]. On error it reports (naming
// the default kept) and returns ok=false.
func (c *ctx) intArg(s *Stmt, i int, lo, hi int64) (int64, bool) {
	a := s.Args[i]
	n, err := strconv.ParseInt(a.Value(), 10, 64)
	if err != nil {
		c.errorf(a.At(), "'%s': %q is not an integer", s.Key, a.Value())
		return 0, false
	}
	if n < lo || n > hi {
		c.errorf(a.At(), "'%s': %d is outside [%d, %d]", s.Key, n, lo, hi)
		return 0, false
	}
	return n, true
}

// setInt parses the single integer argument of s into *dst if it is within [lo, hi].
func setInt[N ~int | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~int32](c *ctx, s *Stmt, dst *N, lo, hi int64) bool {
	if !c.want(s, 1, 1) {
		return false
	}
	n, ok := c.intArg(s, 0, lo, hi)
	if ok {
		*dst = N(n)
	}
	return ok
}

// timerArg parses argument i as keepalived's <TIMER>: decimal seconds, microsecond resolution.
func (c *ctx) timerArg(s *Stmt, i int, lo, hi float64) (Duration, bool) {
	a := s.Args[i]
	f, err := strconv.ParseFloat(a.Value(), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		c.errorf(a.At(), "'%s': %q is not a number of seconds", s.Key, a.Value())
		return 0, false
	}
	if f < lo || f > hi {
		c.errorf(a.At(), "'%s': %v is outside [%v, %v] seconds", s.Key, f, lo, hi)
		return 0, false
	}
	return Duration(math.Round(f*1e6) * float64(time.Microsecond)), true
}

// setTimer parses the single <TIMER> argument of s into *dst.
func (c *ctx) setTimer(s *Stmt, dst *Duration, lo, hi float64) bool {
	if !c.want(s, 1, 1) {
		return false
	}
	d, ok := c.timerArg(s, 0, lo, hi)
	if ok {
		*dst = d
	}
	return ok
}

// parseBool reads keepalived's <BOOL>.
func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	return false, false
}

// setFlag handles a flag keyword: no argument means true, else a <BOOL>.
func (c *ctx) setFlag(s *Stmt, dst *bool) {
	c.want(s, 0, 1)
	if len(s.Args) == 0 {
		*dst = true
		return
	}
	b, ok := parseBool(s.Args[0].Value())
	if !ok {
		c.errorf(s.Args[0].At(), "'%s': %q is not a boolean (on/off/true/false/yes/no)", s.Key, s.Args[0].Value())
		return
	}
	*dst = b
}

// addrArg parses argument i as an IP address.
func (c *ctx) addrArg(s *Stmt, i int) (netip.Addr, bool) {
	a := s.Args[i]
	ip, err := netip.ParseAddr(a.Value())
	if err != nil {
		c.errorf(a.At(), "'%s': %q is not an IP address", s.Key, a.Value())
		return netip.Addr{}, false
	}
	return ip, true
}

// setAddr parses the single address argument of s into *dst.
func (c *ctx) setAddr(s *Stmt, dst *netip.Addr) bool {
	if !c.want(s, 1, 1) {
		return false
	}
	ip, ok := c.addrArg(s, 0)
	if ok {
		*dst = ip
	}
	return ok
}

// parsePrefix reads "ADDR[/LEN]"; a bare address gets the full-length prefix.
func parsePrefix(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		return netip.ParsePrefix(v)
	}
	ip, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// setString stores the single argument of s.
func (c *ctx) setString(s *Stmt, dst *string) {
	if v, ok := c.str(s); ok {
		*dst = v
	}
}

// oneOf checks v against the allowed values (case-sensitive, as keepalived).
func (c *ctx) oneOf(s *Stmt, a Arg, allowed ...string) (string, bool) {
	for _, v := range allowed {
		if a.Value() == v {
			return v, true
		}
	}
	msg := "'" + s.Key + "': unknown value '" + a.Value() + "' (expected " + strings.Join(allowed, ", ") + ")"
	if sg := suggest(a.Value(), allowed); sg != "" {
		msg += "; did you mean '" + sg + "'?"
	}
	c.errorf(a.At(), "%s", msg)
	return "", false
}
