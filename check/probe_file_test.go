package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gokeepalived/parser"
)

func TestFileProbe(t *testing.T) {
	weight := func(w int) *int { return &w }
	tests := []struct {
		name       string
		content    *string // nil: no file
		weight     int
		reverse    bool
		dynamic    bool
		rsWeight   int
		wantOK     bool
		wantWeight *int
	}{
		{"missing file, weight 0", nil, 0, false, false, 1, true, nil},
		{"missing file, weight 0 reverse", nil, 0, true, false, 1, false, nil},
		{"0, weight 0", ptr("0\n"), 0, false, false, 1, true, nil},
		{"1, weight 0", ptr("1\n"), 0, false, false, 1, false, nil},
		{"-1, weight 0", ptr("-1"), 0, false, false, 1, false, nil},
		{"0, weight 0 reverse", ptr("0"), 0, true, false, 1, false, nil},
		{"5, weight 0 reverse", ptr("5"), 0, true, false, 1, true, nil},
		{"garbage reads as 0", ptr("up\n"), 0, false, false, 1, true, nil},
		{"empty file reads as 0", ptr(""), 0, false, false, 1, true, nil},
		{"hex", ptr("0x10"), 0, false, false, 1, false, nil},
		{"weighted value passes", ptr("-5"), 1, false, false, 1, true, nil},
		{"fault at -2^31", ptr("-2147483648"), 1, false, false, 1, false, nil},
		{"fault once multiplied", ptr("-1073741824"), 2, false, false, 1, false, nil},
		{"reverse fault", ptr("2147483647"), 2, true, false, 1, false, nil},
		{"just above the fault", ptr("-2147483647"), 1, false, false, 1, true, nil},
		{"dynamic weight", ptr("3"), 2, false, true, 5, true, weight(11)},
		{"dynamic weight reverse", ptr("3"), 1, true, true, 5, true, weight(2)},
		{"dynamic weight floor 0", ptr("-100"), 1, false, true, 5, true, weight(0)},
		{"dynamic weight ceiling", ptr("100000"), 1, false, true, 5, true, weight(65535)},
		{"not dynamic: no weight", ptr("3"), 2, false, false, 5, true, nil},
		{"octal and blanks", ptr("  010 trailing"), 1, false, true, 0, true, weight(8)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state")
			if tc.content != nil {
				if err := os.WriteFile(path, []byte(*tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c := &parser.Checker{Type: "FILE_CHECK", File: &parser.FileCheck{TrackFile: "tf", Weight: tc.weight, Reverse: tc.reverse, Dynamic: tc.dynamic}}
			p, err := newFileProbe(withPath(c, path), &parser.RealServer{Weight: tc.rsWeight})
			if err != nil {
				t.Fatal(err)
			}
			r := runProbe(t, p, testSlack)
			if r.OK != tc.wantOK {
				t.Fatalf("OK = %v (%v), want %v", r.OK, r.Err, tc.wantOK)
			}
			switch {
			case (r.Weight == nil) != (tc.wantWeight == nil):
				t.Errorf("weight %v, want %v", r.Weight, tc.wantWeight)
			case r.Weight != nil && *r.Weight != *tc.wantWeight:
				t.Errorf("weight %d, want %d", *r.Weight, *tc.wantWeight)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestFileProbeOutOfRange: a value outside the 32-bit range is ignored, as keepalived
// ignores it: the previous value stays.
func TestFileProbeOutOfRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	c := &parser.Checker{Type: "FILE_CHECK", File: &parser.FileCheck{TrackFile: "tf"}}
	p, err := newFileProbe(withPath(c, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		content string
		wantOK  bool
	}{{"1", false}, {"99999999999", false}, {"0", true}, {"-99999999999999999999999", true}, {"7", false}} {
		if err := os.WriteFile(path, []byte(step.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := p.Check(context.Background()); r.OK != step.wantOK {
			t.Errorf("step %d (%q): OK = %v (%v), want %v", i, step.content, r.OK, r.Err, step.wantOK)
		}
	}
}

func TestNewFileErrors(t *testing.T) {
	for name, c := range map[string]*parser.Checker{
		"not a FILE_CHECK": {Type: "TCP_CHECK"},
		"no file":          {Type: "FILE_CHECK", File: &parser.FileCheck{TrackFile: "tf"}},
	} {
		if _, err := newFileProbe(c, nil); err == nil || !strings.Contains(err.Error(), "FILE_CHECK") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// withPath returns a copy of the FILE_CHECK c reading path.
func withPath(c *parser.Checker, path string) *parser.Checker {
	cc := *c
	f := *c.File
	f.Path = path
	cc.File = &f
	return &cc
}
