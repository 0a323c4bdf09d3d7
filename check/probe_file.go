package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync/atomic"
	"time"

	"gokeepalived/parser"
)

const (
	// fileReadLen is how much of a track file keepalived reads.
	fileReadLen = 127
	// fileMaxWeight is the largest IPVS weight a dynamic FILE_CHECK sets.
	fileMaxWeight = 65535
)

// fileProbe is a FILE_CHECK: it reads the number in the track_file's file, as keepalived
// does (the first 127 bytes parsed like strtol(buf, NULL, 0); a missing, empty or
// unreadable file is 0; a number outside the 32-bit range is ignored and the previous
// value kept), and decides as keepalived's track_file code does for real servers:
//
//   - weight 0: a non-zero value fails (with reverse: a zero value fails);
//   - otherwise value × weight (negated with reverse) is the status: it fails at or
//     below -2147483648, else passes; with dynamic, Result.Weight is the real server's
//     weight plus the status, within 0..65535.
//
// keepalived reacts to inotify events; here each Check is one open and one short read,
// cheap enough to poll.
type fileProbe struct {
	path     string
	weight   int64
	reverse  bool
	dynamic  bool
	rsWeight int64
	last     atomic.Int64 // the last value read, kept when a read is out of range
}

// newFileProbe builds the probe of a FILE_CHECK c of real server rs: the parser resolved
// its track_file's path, weight and reverse.
func newFileProbe(c *parser.Checker, rs *parser.RealServer) (Probe, error) {
	if c.File == nil {
		return nil, fmt.Errorf("%s: not a FILE_CHECK", c.Type)
	}
	if c.File.Path == "" {
		return nil, fmt.Errorf("FILE_CHECK: track_file %q has no file", c.File.TrackFile)
	}
	p := &fileProbe{path: c.File.Path, weight: int64(c.File.Weight), reverse: c.File.Reverse, dynamic: c.File.Dynamic}
	if rs != nil {
		p.rsWeight = int64(rs.Weight)
	}
	return p, nil
}

// Check reads the file and applies the weight.
func (p *fileProbe) Check(ctx context.Context) Result {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return probeResult(start, fmt.Errorf("FILE_CHECK %s: %w", p.path, err))
	}
	v, ok := fileRead(p.path)
	if ok {
		p.last.Store(v)
	} else {
		v = p.last.Load()
	}
	if p.weight == 0 {
		if (v != 0) != p.reverse {
			return probeResult(start, fmt.Errorf("FILE_CHECK %s: value %d (weight 0%s)", p.path, v, fileReverseNote(p.reverse)))
		}
		return probeResult(start, nil)
	}
	status := v * p.weight
	if p.reverse {
		status = -status
	}
	if status <= math.MinInt32 {
		return probeResult(start, fmt.Errorf("FILE_CHECK %s: value %d × weight %d%s is %d: fault", p.path, v, p.weight, fileReverseNote(p.reverse), status))
	}
	r := probeResult(start, nil)
	if p.dynamic {
		w := int(min(max(p.rsWeight+status, 0), fileMaxWeight))
		r.Weight = &w
	}
	return r
}

func fileReverseNote(reverse bool) string {
	if reverse {
		return " reverse"
	}
	return ""
}

// fileRead reads the value of a track file: false when the number is out of the 32-bit
// range (keepalived then ignores the read). A file that cannot be read is 0.
func fileRead(path string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, true
	}
	defer f.Close()
	buf := make([]byte, fileReadLen)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, true
	}
	v, ok := fileParseValue(buf[:n])
	if !ok || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, false
	}
	return v, true
}

// fileParseValue parses b like C's strtol(b, NULL, 0): leading blanks, a sign, then
// decimal, 0x hexadecimal or 0 octal digits, anything after ignored, no digits = 0.
// false on overflow of int64.
func fileParseValue(b []byte) (int64, bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	base := uint64(10)
	switch {
	case i+2 < len(b) && b[i] == '0' && b[i+1]|0x20 == 'x' && fileDigit(b[i+2]) < 16:
		base, i = 16, i+2
	case i < len(b) && b[i] == '0':
		base = 8
	}
	var v uint64
	for ; i < len(b); i++ {
		d := fileDigit(b[i])
		if d >= base {
			break
		}
		if v > (math.MaxInt64-d)/base {
			return 0, false
		}
		v = v*base + d
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

// fileDigit is the value of a digit in bases up to 16, or 16 for anything else.
func fileDigit(c byte) uint64 {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0')
	case c|0x20 >= 'a' && c|0x20 <= 'f':
		return uint64(c|0x20-'a') + 10
	}
	return 16
}
