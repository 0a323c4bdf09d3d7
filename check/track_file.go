package check

import (
	"errors"
	"io"
	"math"
	"os"
)

// trackFileReadLen is how much of a track file keepalived reads.
const trackFileReadLen = 127

// ReadTrackFile reads the number in a track file as keepalived does: its first 127
// bytes parsed like strtol(buf, NULL, 0) (leading blanks, a sign, then decimal, 0x
// hexadecimal or 0 octal digits, anything after ignored). A file that is missing,
// unreadable or empty, or holds no number, reads as 0; a number beyond int64 reads as
// ±(2⁶³-1). inRange is false when v is outside the 32-bit range, where keepalived
// ignores the read and keeps the previous value.
func ReadTrackFile(path string) (v int64, inRange bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, true
	}
	defer f.Close()
	buf := make([]byte, trackFileReadLen)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, true
	}
	v, ok := trackFileParse(buf[:n])
	return v, ok && v >= math.MinInt32 && v <= math.MaxInt32
}

// trackFileParse parses b like C's strtol(b, NULL, 0): leading blanks, a sign, then
// decimal, 0x hexadecimal or 0 octal digits, anything after ignored, no digits = 0.
// On overflow of int64 it returns ±(2⁶³-1) and false.
func trackFileParse(b []byte) (int64, bool) {
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
	case i+2 < len(b) && b[i] == '0' && b[i+1]|0x20 == 'x' && trackFileDigit(b[i+2]) < 16:
		base, i = 16, i+2
	case i < len(b) && b[i] == '0':
		base = 8
	}
	var v uint64
	ok := true
	for ; i < len(b); i++ {
		d := trackFileDigit(b[i])
		if d >= base {
			break
		}
		if v > (math.MaxInt64-d)/base {
			v, ok = math.MaxInt64, false
			break
		}
		v = v*base + d
	}
	if neg {
		return -int64(v), ok
	}
	return int64(v), ok
}

// trackFileDigit is the value of a digit in bases up to 16, or 16 for anything else.
func trackFileDigit(c byte) uint64 {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0')
	case c|0x20 >= 'a' && c|0x20 <= 'f':
		return uint64(c|0x20-'a') + 10
	}
	return 16
}
