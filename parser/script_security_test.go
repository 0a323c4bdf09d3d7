package parser

import (
	"io/fs"
	"strings"
	"testing"
)

// fakeFS replaces statPath with a table of paths for the duration of a test.
func fakeFS(t *testing.T, files map[string]pathInfo) {
	t.Helper()
	old := statPath
	statPath = func(p string) (pathInfo, error) {
		if pi, ok := files[p]; ok {
			return pi, nil
		}
		return pathInfo{}, fs.ErrNotExist
	}
	t.Cleanup(func() { statPath = old })
}

func dir(mode fs.FileMode, uid, gid uint32) pathInfo {
	return pathInfo{mode: fs.ModeDir | mode, uid: uid, gid: gid}
}

func file(mode fs.FileMode, uid, gid uint32) pathInfo {
	return pathInfo{mode: mode, uid: uid, gid: gid}
}

func TestScriptSecurity(t *testing.T) {
	base := map[string]pathInfo{
		"/":            dir(0o755, 0, 0),
		"/etc":         dir(0o755, 0, 0),
		"/etc/ka":      dir(0o755, 0, 0),
		"/etc/ka/ok":   file(0o755, 0, 0),
		"/etc/ka/gw":   file(0o775, 0, 100),  // group-writable, group not root
		"/etc/ka/rgw":  file(0o775, 0, 0),    // group-writable by root's group: fine
		"/etc/ka/ow":   file(0o757, 0, 0),    // writable by everyone
		"/etc/ka/usr":  file(0o755, 1000, 0), // owned by a user
		"/etc/ka/suid": file(fs.ModeSetuid|0o755, 0, 0),
		"/home":        dir(0o755, 0, 0),
		"/home/u":      dir(0o755, 1000, 1000),
		"/home/u/s":    file(0o755, 0, 0),
		"/tmp":         dir(fs.ModeSticky|0o777, 0, 0), // sticky: allowed
		"/tmp/s":       file(0o755, 0, 0),
		"/opt":         dir(0o777, 0, 0), // world-writable without sticky bit
		"/opt/s":       file(0o755, 0, 0),
		"/usr":         dir(0o755, 0, 0),
		"/usr/bin":     dir(0o755, 0, 0),
		"/usr/bin/chk": file(0o755, 0, 0),
	}
	for _, tc := range []struct {
		script, user, want string
	}{
		{"/etc/ka/ok", "", ""},
		{"/etc/ka/rgw", "", ""},
		{"/tmp/s", "", ""},
		{"chk --fast", "", ""}, // bare name found in the search path
		{"/etc/ka/gw", "", "security: vrrp_script s: unsafe permissions for script '/etc/ka/gw' run as root: '/etc/ka/gw' is writable by group 100"},
		{"/etc/ka/ow", "", "'/etc/ka/ow' is writable by everyone"},
		{"/etc/ka/usr", "", "'/etc/ka/usr' is owned by uid 1000"},
		{"/home/u/s", "", "'/home/u' is owned by uid 1000"},
		{"/opt/s", "", "'/opt' is writable by everyone"},
		{"/opt/s", "root", "'/opt' is writable by everyone"},
		{"/opt/s", "nobody", ""},              // not run as root: keepalived does not check
		{"/opt/s", "nobody root", "writable"}, // group root
		{"/etc/ka/suid", "nobody", ""},        // setuid root, but the file itself is safe
		{"/etc/ka/missing", "", "error: vrrp_script s: script '/etc/ka/missing' is not found"},
		{"ka/ok", "", "error: vrrp_script s: script 'ka/ok' is a relative path"},
		{"nochk", "", "error: vrrp_script s: script 'nochk' is not found in"},
		{"/etc/ka", "", "is not a regular file"},
		{"</etc/ka/missing", "", ""}, // a file check, nothing executed
	} {
		fakeFS(t, base)
		text := "global_defs {\n enable_script_security\n}\nvrrp_script s {\n script \"" + tc.script + "\"\n"
		if tc.user != "" {
			text += " user " + tc.user + "\n"
		}
		text += "}\n" + instance("VI", "track_script {\n s\n}")
		_, diags := loadVRRP(t, text)
		if tc.want == "" && diags != "" || !strings.Contains(diags, tc.want) {
			t.Errorf("%s (user %q): diagnostics\n%s\nwant %q", tc.script, tc.user, diags, tc.want)
		}
	}
}

func TestScriptSecurityDisabled(t *testing.T) {
	fakeFS(t, map[string]pathInfo{})
	// Without enable_script_security, one violation at the first script, whatever
	// the files are.
	cfg, ds := LoadBytes("t.conf", []byte(`global_defs {
  notify_fifo_script /nowhere/fifo.sh
}
`+instance("VI", "notify_master /nowhere/master.sh\n notify_backup /nowhere/backup.sh")), Options{ConfigID: "main"})
	if len(cfg.Instances) != 1 || len(ds) != 1 || ds.ExitCode() != ExitSecurity {
		t.Fatalf("diagnostics %v (exit %d)", ds, ds.ExitCode())
	}
	want := "t.conf:2:3: security: SECURITY VIOLATION - scripts are being executed but script_security not enabled"
	if ds[0].String() != want {
		t.Errorf("got %q, want %q", ds[0], want)
	}
	// No script at all: nothing to say.
	_, ds = LoadBytes("t.conf", []byte(instance("VI", "")), Options{ConfigID: "main"})
	if len(ds) != 0 {
		t.Errorf("no scripts: %v", ds)
	}
}

func TestScriptSecurityCoversAllScripts(t *testing.T) {
	fakeFS(t, map[string]pathInfo{"/": dir(0o755, 0, 0)})
	text := `global_defs {
  enable_script_security
  startup_script /s/startup
  shutdown_script /s/shutdown
  notify_fifo_script /s/fifo
  vrrp_notify_fifo_script /s/vfifo
  lvs_notify_fifo_script /s/lfifo
}
vrrp_script chk {
  script /s/chk
}
vrrp_sync_group G {
  group {
    VI
    VJ
  }
  notify_master /s/gm
  notify_backup /s/gb
  notify_fault /s/gf
  notify_stop /s/gs
  notify /s/gn
  notify_deleted /s/gd
}
` + instance("VI", `track_script {
 chk
}
notify_master /s/m
notify_backup /s/b
notify_fault /s/f
notify_stop /s/st
notify /s/n
notify_deleted /s/d
notify_master_rx_lower_pri /s/rx`) + strings.Replace(instance("VJ", ""), "virtual_router_id 1", "virtual_router_id 2", 1)
	_, diags := loadVRRP(t, text)
	for _, p := range []string{"startup", "shutdown", "fifo", "vfifo", "lfifo", "chk", "gm", "gb", "gf", "gs", "gn", "gd", "m", "b", "f", "st", "n", "d", "rx"} {
		if !strings.Contains(diags, "script '/s/"+p+"' is not found") {
			t.Errorf("script /s/%s not checked:\n%s", p, diags)
		}
	}
}
