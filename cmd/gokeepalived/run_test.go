package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gokeepalived/parser"

	"gokeepalived/tests/netns"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// TestConfigTestExitCodes checks -t against keepalived's real exit codes.
func TestConfigTestExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{args: []string{"-t", "-f", "/nonexistent/keepalived.conf"}, code: 4, msg: "cannot read configuration file"},
		{args: []string{"--config-test", "--use-file=../../parser/testdata/errors/syntax.conf"}, code: 5, msg: "did you mean 'priority'"},
		{args: []string{"-t", "-f", "../../parser/testdata/errors/vrrp_script_security_off.conf"}, code: 6, msg: "SECURITY VIOLATION"},
		{args: []string{"-t", "-f", "../../parser/testdata/golden/vrrp_basic.conf"}, code: 0},
	}
	for _, tc := range tests {
		code, _, stderr := runArgs(tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.code, stderr)
		}
		if tc.msg != "" && !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: stderr lacks %q:\n%s", tc.args, tc.msg, stderr)
		}
	}
}

// TestSamplesAreClean: every sample in etc/ passes -t for every director id it knows.
func TestSamplesAreClean(t *testing.T) {
	files, _ := filepath.Glob("../../etc/*.conf")
	if len(files) < 3 {
		t.Fatalf("expected the sample configs in etc/, found %v", files)
	}
	for _, f := range files {
		for _, id := range []string{"", "director1", "director2", "director3"} {
			args := []string{"-t", "-f", f}
			if id != "" {
				args = append(args, "-i", id)
			}
			if code, _, stderr := runArgs(args...); code != 0 {
				t.Errorf("%s -i %q: exit %d\n%s", f, id, code, stderr)
			}
		}
	}
}

func TestDumpConfig(t *testing.T) {
	code, out, stderr := runArgs("--dump-config", "-i", "director2", "-f", "../../etc/keepalived.conf")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var cfg struct {
		Global struct {
			RouterID string `json:"router_id"`
		} `json:"global_defs"`
		Instances []struct {
			Priority int `json:"priority"`
		} `json:"vrrp_instances"`
		VirtualServers []struct {
			RealServers []json.RawMessage `json:"real_servers"`
		} `json:"virtual_servers"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("dump is not JSON: %v", err)
	}
	if cfg.Global.RouterID != "director2" || len(cfg.Instances) != 2 || cfg.Instances[0].Priority != 100 {
		t.Errorf("unexpected dump: %+v", cfg)
	}
	if len(cfg.VirtualServers) != 2 || len(cfg.VirtualServers[0].RealServers) != 6 {
		t.Errorf("want 2 virtual servers of 6 real servers, got %+v", cfg.VirtualServers)
	}
}

func TestUsageAndVersion(t *testing.T) {
	if code, out, _ := runArgs("--version"); code != 0 || !strings.HasPrefix(out, "gokeepalived ") {
		t.Errorf("--version: %d %q", code, out)
	}
	if code, _, _ := runArgs("--no-such-flag"); code != exitUsage {
		t.Errorf("bad flag: exit %d", code)
	}
}

func TestGenhashCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	}))
	defer srv.Close()
	code, out, stderr := runArgs("genhash", "-u", srv.URL+"/index.html")
	// md5("hello\n")
	if code != 0 || out != "MD5SUM = b1946ac92492d2347c6235b4d2611184\n" {
		t.Fatalf("exit %d, %q, %s", code, out, stderr)
	}
	if code, _, _ := runArgs("genhash"); code != exitUsage {
		t.Errorf("genhash without -u: exit %d", code)
	}
}

// TestApplyScheduling: vrrp_rt_priority puts every thread under SCHED_RR (needs root, as
// the daemon does).
func TestApplyScheduling(t *testing.T) {
	netns.RequireRoot(t)
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		nice := 0
		if err := applyScheduling(&parser.GlobalDefs{VRRPRTPriority: 10, VRRPPriority: &nice}); err != nil {
			done <- err
			return
		}
		a, err := unix.SchedGetAttr(0, 0)
		if err == nil && (a.Policy != unix.SCHED_RR || a.Priority != 10) {
			err = fmt.Errorf("policy %d priority %d, want SCHED_RR 10", a.Policy, a.Priority)
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Put the whole test process back to normal scheduling.
	if err := applyScheduling(&parser.GlobalDefs{VRRPPriority: new(int)}); err != nil {
		t.Fatal(err)
	}
}

func TestControlSocketFor(t *testing.T) {
	for pid, want := range map[string]string{
		"": defaultControlSocket, defaultPidFile: defaultControlSocket,
		"/tmp/lab/d1.pid": "/tmp/lab/d1.sock", "/run/x": "/run/x.sock",
	} {
		if got := controlSocketFor(pid); got != want {
			t.Errorf("controlSocketFor(%q) = %q, want %q", pid, got, want)
		}
	}
}

func TestSdNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	ln.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := ln.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
}
