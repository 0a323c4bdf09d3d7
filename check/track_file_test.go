package check

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrackFileParse(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "42": 42, "42\n": 42, "-42": -42, "+7": 7, " \t\n12x": 12, "  \t-17 trailing": -17,
		"0x1F": 31, "0X1f": 31, "0X10\n": 16, "017": 15, "08": 0, "0x": 0, "0xg": 0, "abc": 0,
		"- 3": 0, "9223372036854775807": math.MaxInt64,
	} {
		if got, ok := trackFileParse([]byte(in)); !ok || got != want {
			t.Errorf("trackFileParse(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	// Beyond int64: saturated, and not ok.
	for in, want := range map[string]int64{
		"9223372036854775808":   math.MaxInt64,
		"99999999999999999999":  math.MaxInt64,
		"-99999999999999999999": -math.MaxInt64,
	} {
		if got, ok := trackFileParse([]byte(in)); ok || got != want {
			t.Errorf("trackFileParse(%q) = %d, %v; want %d, false", in, got, ok, want)
		}
	}
}

func TestReadTrackFile(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		content *string // nil: no file
		want    int64
		inRange bool
	}{
		"missing":        {nil, 0, true},
		"empty":          {ptr(""), 0, true},
		"number":         {ptr("-12\n"), -12, true},
		"int32 max":      {ptr("2147483647"), math.MaxInt32, true},
		"beyond int32":   {ptr("2147483648"), math.MaxInt32 + 1, false},
		"beyond int64":   {ptr("-99999999999999999999"), -math.MaxInt64, false},
		"127 bytes only": {ptr(strings.Repeat(" ", 126) + "78"), 7, true},
	} {
		path := filepath.Join(dir, name)
		if tc.content != nil {
			if err := os.WriteFile(path, []byte(*tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if v, ok := ReadTrackFile(path); v != tc.want || ok != tc.inRange {
			t.Errorf("%s: ReadTrackFile = %d, %v; want %d, %v", name, v, ok, tc.want, tc.inRange)
		}
	}
}
