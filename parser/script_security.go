package parser

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// pathInfo is what the script security check needs to know about a path.
type pathInfo struct {
	mode     fs.FileMode
	uid, gid uint32
}

// statPath stats path, following symbolic links. Tests replace it with a fake.
var statPath = func(path string) (pathInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return pathInfo{}, err
	}
	pi := pathInfo{mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		pi.uid, pi.gid = st.Uid, st.Gid
	}
	return pi, nil
}

// scriptSearchPath is where a script given by a bare name is looked for (keepalived
// searches its PATH).
var scriptSearchPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// scriptRef is a configured script and the keyword that configured it.
type scriptRef struct {
	key string
	s   *Script
}

// scriptList collects the configured scripts.
type scriptList []scriptRef

func (l *scriptList) add(key string, scripts ...*Script) {
	for _, s := range scripts {
		if s != nil {
			*l = append(*l, scriptRef{key, s})
		}
	}
}

// scriptRefs returns every configured script: global and VRRP ones, then checker ones.
func (cfg *Config) scriptRefs() scriptList {
	var l scriptList
	g := &cfg.Global
	l.add("startup_script", g.StartupScript)
	l.add("shutdown_script", g.ShutdownScript)
	l.add("notify_fifo_script", g.NotifyFIFOScript)
	l.add("vrrp_notify_fifo_script", g.VRRPNotifyFIFOScript)
	l.add("lvs_notify_fifo_script", g.LVSNotifyFIFOScript)
	for _, v := range cfg.Scripts {
		l.add("vrrp_script "+v.Name, v.Script)
	}
	for _, v := range cfg.Instances {
		l.add("vrrp_instance "+v.Name, v.Notifies.scripts()...)
		l.add("vrrp_instance "+v.Name, v.NotifyMasterRxLowerPri)
	}
	for _, sg := range cfg.SyncGroups {
		l.add("vrrp_sync_group "+sg.Name, sg.Notifies.scripts()...)
	}
	cfg.addCheckerScripts(&l)
	return l
}

// addCheckerScripts adds the scripts of the LVS side: quorum_up/quorum_down of virtual
// servers, notify_up/notify_down of real servers and MISC_CHECK misc_path.
func (cfg *Config) addCheckerScripts(l *scriptList) {
	for _, vs := range cfg.VirtualServers {
		l.add("virtual_server", vs.QuorumUp, vs.QuorumDown)
		for _, rs := range vs.RealServers {
			l.add("real_server", rs.NotifyUp, rs.NotifyDown)
			for _, ck := range rs.Checkers {
				if ck.Misc != nil {
					l.add("MISC_CHECK", ck.Misc.Path)
				}
			}
		}
	}
}

// validateScripts applies keepalived's script security. Without enable_script_security,
// configuring any script is a security violation (keepalived -t exits 6). With it,
// each script must exist and, when it runs as root, neither it nor any directory above
// it may be writable or owned by another user.
func (cfg *Config) validateScripts(c *ctx) {
	refs := cfg.scriptRefs()
	if len(refs) == 0 {
		return
	}
	if !cfg.Global.EnableScriptSecurity {
		c.ds.add(refs[0].s.Pos, Security, "SECURITY VIOLATION - scripts are being executed but script_security not enabled")
		return
	}
	for _, r := range refs {
		checkScript(c, r, &cfg.Global)
	}
}

// isRoot tells whether a user or group name means root; an unset one is taken as root.
func isRoot(name string) bool { return name == "" || name == "root" || name == "0" }

// checkScript checks one script under enable_script_security.
func checkScript(c *ctx, r scriptRef, g *GlobalDefs) {
	path := r.s.Path()
	// "</path" only checks that a file can be opened: nothing is executed.
	if rest, ok := strings.CutPrefix(path, "<"); ok && (rest == "" || strings.HasPrefix(strings.TrimLeft(rest, " \t"), "/")) {
		return
	}
	if !strings.Contains(path, "/") {
		found := ""
		for _, dir := range scriptSearchPath {
			if pi, err := statPath(filepath.Join(dir, path)); err == nil && pi.mode.IsRegular() {
				found = filepath.Join(dir, path)
				break
			}
		}
		if found == "" {
			c.errorf(r.s.Pos, "%s: script '%s' is not found in %s", r.key, path, strings.Join(scriptSearchPath, ":"))
			return
		}
		path = found
	} else if !filepath.IsAbs(path) {
		c.errorf(r.s.Pos, "%s: script '%s' is a relative path; give an absolute path", r.key, path)
		return
	}
	file, err := statPath(path)
	if err != nil {
		c.errorf(r.s.Pos, "%s: script '%s' is not found", r.key, path)
		return
	}
	if !file.mode.IsRegular() {
		c.errorf(r.s.Pos, "%s: script '%s' is not a regular file", r.key, path)
		return
	}
	if file.mode&0o111 == 0 {
		c.errorf(r.s.Pos, "%s: script '%s' is not executable; it will not run", r.key, path)
		return
	}
	user, group := r.s.User, r.s.Group
	if user == "" {
		user, group = g.ScriptUser, g.ScriptGroup
	}
	setuidRoot := (file.uid == 0 && file.mode&fs.ModeSetuid != 0) || (file.gid == 0 && file.mode&fs.ModeSetgid != 0)
	if !isRoot(user) && !(group != "" && isRoot(group)) && !setuidRoot {
		return
	}
	if why := unsafePath(path); why != "" {
		c.ds.add(r.s.Pos, Security, "%s: unsafe permissions for script '%s' run as root: %s; keepalived disables it", r.key, path, why)
	}
}

// unsafePath checks path and each directory above it: each must be owned by root and
// not writable by a non-root group or by others (a directory with the sticky bit is
// allowed to be). It returns why the path is unsafe, or "".
func unsafePath(path string) string {
	p := filepath.Clean(path)
	var chain []string
	for {
		chain = append([]string{p}, chain...)
		if p == "/" {
			break
		}
		p = filepath.Dir(p)
	}
	for _, p := range chain {
		pi, err := statPath(p)
		if err != nil {
			return fmt.Sprintf("'%s' cannot be checked (%v)", p, err)
		}
		checkWrite := pi.mode.IsRegular() || (pi.mode.IsDir() && pi.mode&fs.ModeSticky == 0)
		switch {
		case pi.uid != 0:
			return fmt.Sprintf("'%s' is owned by uid %d", p, pi.uid)
		case checkWrite && pi.gid != 0 && pi.mode&0o020 != 0:
			return fmt.Sprintf("'%s' is writable by group %d", p, pi.gid)
		case checkWrite && pi.mode&0o002 != 0:
			return fmt.Sprintf("'%s' is writable by everyone", p)
		}
	}
	return ""
}
