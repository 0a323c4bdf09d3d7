package check

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"gokeepalived/parser"
)

// fileMaxWeight is the largest IPVS weight a dynamic FILE_CHECK sets.
const fileMaxWeight = 65535

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
	v, ok := ReadTrackFile(p.path)
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
