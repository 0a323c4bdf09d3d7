package main

import (
	"io"
	"testing"
)

// TestIPVSStateFlag: --ipvs-state names the IPVS state file, "none" or empty turns it
// off, and without it the file follows the pid file as the control socket does.
func TestIPVSStateFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, defaultIPVSState},
		{[]string{"-p", defaultPidFile}, defaultIPVSState},
		{[]string{"--pid", "/run/gokeepalived.pid"}, defaultIPVSState}, // etc/gokeepalived.service
		{[]string{"-p", "/tmp/lab/d1.pid"}, "/tmp/lab/d1.ipvs-owned.json"},
		{[]string{"--ipvs-state", "/var/lib/gka/owned.json"}, "/var/lib/gka/owned.json"},
		{[]string{"-p", "/tmp/lab/d1.pid", "--ipvs-state=/x/owned.json"}, "/x/owned.json"},
		{[]string{"--ipvs-state", "none"}, ""},
		{[]string{"--ipvs-state="}, ""},
		{[]string{"-I", "--ipvs-state", defaultIPVSState, "-p", "/tmp/d2.pid"}, defaultIPVSState},
	} {
		o, err := parseFlags(tc.args, io.Discard)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if o.ipvsState != tc.want {
			t.Errorf("%q: IPVS state file %q, want %q", tc.args, o.ipvsState, tc.want)
		}
	}
	if _, err := parseFlags([]string{"--ipvs-state"}, io.Discard); err == nil {
		t.Error("--ipvs-state without a value is accepted")
	}
}
