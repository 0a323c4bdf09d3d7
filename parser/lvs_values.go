package parser

import (
	"encoding/hex"
	"slices"
	"strings"
)

// Keys lists, in order of appearance, the keywords written explicitly in a block, so that
// configured values can be told apart from defaulted and inherited ones.
type Keys []string

// Has reports whether keyword k was written.
func (k Keys) Has(key string) bool { return slices.Contains(k, key) }

func (k *Keys) add(key string) {
	if !k.Has(key) {
		*k = append(*k, key)
	}
}

// maxCheckTimer bounds the check timing keywords (seconds; about 24.8 days).
const maxCheckTimer = 2147483.647

// timerKey parses the single <TIMER> argument of s; positive rejects 0. On success the
// keyword is recorded in set.
func (c *ctx) timerKey(s *Stmt, set *Keys, positive bool) (Duration, bool) {
	var d Duration
	if !c.setTimer(s, &d, 0, maxCheckTimer) {
		return 0, false
	}
	if positive && d == 0 {
		c.errorf(s.Args[0].At(), "'%s' must be greater than 0", s.Key)
		return 0, false
	}
	set.add(s.Key)
	return d, true
}

// headArgs checks the arguments of a block statement: fewer than min is an error that
// names what is missing, more than max a warning.
func (c *ctx) headArgs(s *Stmt, min, max int, what string) bool {
	if len(s.Args) < min {
		c.errorf(s.At(), "'%s' needs %s; block skipped", s.Key, what)
		return false
	}
	if len(s.Args) > max {
		c.warnf(s.Args[max].At(), "extra arguments to '%s' ignored", s.Key)
	}
	return true
}

// intKey parses the single integer argument of s within [lo, hi] and records the keyword.
func (c *ctx) intKey(s *Stmt, set *Keys, lo, hi int64) (int64, bool) {
	if !c.want(s, 1, 1) {
		return 0, false
	}
	n, ok := c.intArg(s, 0, lo, hi)
	if ok {
		set.add(s.Key)
	}
	return n, ok
}

// flagKey handles a flag keyword (no argument = true, else a <BOOL>) and records it.
func (c *ctx) flagKey(s *Stmt, set *Keys, dst *bool) {
	if len(s.Args) > 0 {
		if _, ok := parseBool(s.Args[0].Value()); !ok {
			c.setFlag(s, dst) // reports the bad value and leaves *dst alone
			return
		}
	}
	c.setFlag(s, dst)
	set.add(s.Key)
}

// stringKey stores the single argument of s and records the keyword.
func (c *ctx) stringKey(s *Stmt, set *Keys, dst *string) {
	if v, ok := c.str(s); ok {
		*dst = v
		set.add(s.Key)
	}
}

// lvsPort parses argument i of s as a port; zero is accepted only if allowZero.
func (c *ctx) lvsPort(s *Stmt, i int, allowZero bool) (uint16, bool) {
	lo := int64(1)
	if allowZero {
		lo = 0
	}
	n, ok := c.intArg(s, i, lo, 65535)
	return uint16(n), ok
}

// afName names an address family as keepalived's ip_family does.
func afName(isV6 bool) string {
	if isV6 {
		return "inet6"
	}
	return "inet"
}

// HexBytes is binary data written in the configuration as hex; it renders as hex in JSON.
type HexBytes []byte

// MarshalText renders the bytes as lower-case hex.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText reads hex.
func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	*h = v
	return err
}

// parseHexStr reads keepalived's free-format <HEX_STR>: blanks separate groups, each group
// is read two digits per byte, and an odd last digit is a byte of its own ("Ab12f 3" is
// AB 12 0F 03). With wildcards, an 'x' digit matches anything: mask holds the bits that
// must match (nil when every bit must).
func parseHexStr(v string, wildcards bool) (data, mask HexBytes, ok bool) {
	digit := func(c byte) (val, m byte, ok bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', 0xf, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, 0xf, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, 0xf, true
		case wildcards && (c == 'x' || c == 'X'):
			return 0, 0, true
		}
		return 0, 0, false
	}
	wild := false
	for _, group := range strings.Fields(v) {
		for i := 0; i < len(group); i += 2 {
			hi, hm, ok := digit(group[i])
			if !ok {
				return nil, nil, false
			}
			b, m := hi, hm
			if i+1 < len(group) {
				lo, lm, ok := digit(group[i+1])
				if !ok {
					return nil, nil, false
				}
				b, m = hi<<4|lo, hm<<4|lm
			} else {
				m |= 0xf0
			}
			wild = wild || m != 0xff
			data = append(data, b)
			mask = append(mask, m)
		}
	}
	if len(data) == 0 {
		return nil, nil, false
	}
	if !wild {
		mask = nil
	}
	return data, mask, true
}
