package vm

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DefaultModules are the kernel modules every guest loads, in this order, with busybox
// insmod (busybox modprobe trips on libcrc32c's soft dependency, hence crc32c_generic
// first). Dependencies found in a module's metadata are loaded before it; modules built
// into the kernel are skipped.
var DefaultModules = []string{
	"crc32c_generic", "libcrc32c",
	"nf_defrag_ipv4", "nf_defrag_ipv6", "nf_conntrack", "nf_nat",
	"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr",
	"ip_vs_sh", "ip_vs_mh", "ip_vs_dh", "ip_vs_sed", "ip_vs_nq", "ip_vs_fo", "ip_vs_ovf",
	"veth",
}

// busyboxPath is the static busybox of Debian's busybox-static package.
const busyboxPath = "/bin/busybox"

// kernel is an unpacked Debian kernel package in the cache directory.
type kernel struct {
	version string
	vmlinuz string
	modules string // lib/modules/<version>
}

func findKernel(cache string) (kernel, error) {
	b, err := os.ReadFile(filepath.Join(cache, "kernel-version"))
	if err != nil {
		return kernel{}, fmt.Errorf("vm: no kernel in %s (run tests/vm/setup.sh): %w", cache, err)
	}
	v := strings.TrimSpace(string(b))
	k := kernel{
		version: v,
		vmlinuz: filepath.Join(cache, "root", "boot", "vmlinuz-"+v),
		modules: filepath.Join(cache, "root", "lib", "modules", v),
	}
	for _, p := range []string{k.vmlinuz, k.modules} {
		if _, err := os.Stat(p); err != nil {
			return kernel{}, fmt.Errorf("vm: incomplete kernel in %s (run tests/vm/setup.sh): %w", cache, err)
		}
	}
	return k, nil
}

// resolveModules returns the paths, relative to modDir, of the named modules and of their
// dependencies, each after its dependencies.
func resolveModules(modDir string, names []string) ([]string, error) {
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(modDir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[moduleName(l)] = true
		}
	}
	index := map[string]string{}
	err := filepath.WalkDir(filepath.Join(modDir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".ko") {
			return err
		}
		rel, err := filepath.Rel(modDir, p)
		index[moduleName(p)] = rel
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vm: index modules: %w", err)
	}
	var order []string
	seen := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		name = strings.ReplaceAll(name, "-", "_")
		if seen[name] || builtin[name] {
			return nil
		}
		seen[name] = true
		rel, ok := index[name]
		if !ok {
			return fmt.Errorf("vm: kernel module %s not found in %s", name, modDir)
		}
		deps, err := moduleDepends(filepath.Join(modDir, rel))
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		order = append(order, rel)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// moduleName turns a module file path into the kernel's module name.
func moduleName(p string) string {
	return strings.ReplaceAll(strings.TrimSuffix(path.Base(p), ".ko"), "-", "_")
}

// moduleDepends reads the "depends=" entry of a module's .modinfo section.
func moduleDepends(file string) ([]string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, fmt.Errorf("vm: module %s: %w", file, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("vm: module %s has no .modinfo", file)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("vm: module %s: %w", file, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if deps, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			return strings.FieldsFunc(string(deps), func(r rune) bool { return r == ',' }), nil
		}
	}
	return nil, nil
}

// requireStatic fails unless file is an ELF executable without a program interpreter.
func requireStatic(file string) error {
	dynamic, err := isDynamic(file)
	if err != nil {
		return err
	}
	if dynamic {
		return fmt.Errorf("vm: %s is dynamically linked (build it with CGO_ENABLED=0, or add it with BinaryWithLibs)", file)
	}
	return nil
}

func isDynamic(file string) (bool, error) {
	f, err := elf.Open(file)
	if err != nil {
		return false, fmt.Errorf("vm: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}

// initScript is the guest's /init. Placeholders: the module list, the exit/start nonce,
// the command line. After the exit marker it waits for the host to stop qemu, powering
// off by itself only if the host has not done so within a minute.
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
hostname gka-vm
ip link set lo up || echo "gka-vm: cannot bring lo up"
for m in %s; do
	insmod "/lib/modules/%s/$m" || echo "gka-vm: insmod $m failed"
done
echo "GKA-VM-START %s"
cd /
%s </dev/null
echo "GKA-VM-EXIT %s $?"
sleep 60
poweroff -f
`

// shellQuote quotes s for the guest's sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// buildInitramfs writes the guest's initramfs (a newc cpio archive) to out.
func buildInitramfs(out string, k kernel, cfg Config, nonce string) error {
	if err := requireStatic(busyboxPath); err != nil {
		return fmt.Errorf("%w (install busybox-static: run tests/vm/setup.sh)", err)
	}
	mods, err := resolveModules(k.modules, append(append([]string{}, DefaultModules...), cfg.Modules...))
	if err != nil {
		return err
	}
	cmdline := []string{"env", GuestEnv + "=1"}
	for _, e := range cfg.Env {
		if !strings.Contains(e, "=") || strings.HasPrefix(e, "=") {
			return fmt.Errorf("vm: Config.Env entry %q is not KEY=VALUE", e)
		}
		cmdline = append(cmdline, shellQuote(e))
	}
	bin := path.Join(guestDir, filepath.Base(cfg.Binary))
	cmdline = append(cmdline, shellQuote(bin))
	for _, a := range cfg.Args {
		cmdline = append(cmdline, shellQuote(a))
	}
	quoted := make([]string, len(mods))
	for i, m := range mods {
		quoted[i] = shellQuote(m)
	}
	script := fmt.Sprintf(initScript, strings.Join(quoted, " "), k.version, nonce, strings.Join(cmdline, " "), nonce)

	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := newCPIO(f)
	for _, d := range []string{"/proc", "/sys", "/dev", "/tmp", "/run", "/root", "/etc", "/sbin", "/usr/bin", "/usr/sbin"} {
		w.dir(d)
	}
	w.charDev("/dev/console", 0o600, 5, 1)
	w.bytes("/init", 0o755, []byte(script))
	w.hostFile(File{Src: busyboxPath, Dst: "/bin/busybox", Mode: 0o755})
	w.hostFile(File{Src: cfg.Binary, Dst: bin, Mode: 0o755})
	for _, m := range mods {
		w.hostFile(File{Src: filepath.Join(k.modules, m), Dst: path.Join("/lib/modules", k.version, filepath.ToSlash(m)), Mode: 0o644})
	}
	for _, fl := range cfg.Files {
		w.hostFile(fl)
	}
	return errors.Join(w.close(), f.Close())
}

// cpioWriter writes a newc ("070701") cpio archive as the kernel's initramfs unpacker reads
// it. The first error sticks and is returned by close.
type cpioWriter struct {
	w     *bufio.Writer
	err   error
	ino   uint32
	dirs  map[string]bool
	files map[string]string // guest path -> host source ("" for generated content)
}

func newCPIO(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), dirs: map[string]bool{"/": true}, files: map[string]string{}}
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFCHR = 0o020000
)

func (c *cpioWriter) header(name string, mode uint32, size int64, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	if size > 0xFFFFFFFF {
		c.err = fmt.Errorf("vm: %s is too large for cpio", name)
		return
	}
	c.ino++
	name = strings.TrimPrefix(name, "/")
	fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.w.WriteString(name)
	c.w.WriteByte(0)
	c.pad(110 + len(name) + 1)
}

// pad writes the zero bytes that align n written bytes to 4.
func (c *cpioWriter) pad(n int) {
	c.w.Write(make([]byte, (4-n%4)%4))
}

// dir adds the directory p and its missing parents.
func (c *cpioWriter) dir(p string) {
	if c.dirs[p] {
		return
	}
	c.dir(path.Dir(p))
	c.dirs[p] = true
	c.header(p, sIFDIR|0o755, 0, 0, 0)
}

// claim registers a new entry at the guest path p; adding the same host file twice at the
// same place is a no-op, anything else there is an error.
func (c *cpioWriter) claim(p, src string) bool {
	if c.err != nil {
		return false
	}
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		c.err = fmt.Errorf("vm: guest path %q is not a clean absolute file path", p)
		return false
	}
	if prev, ok := c.files[p]; ok || c.dirs[p] {
		if ok && prev == src && src != "" {
			return false
		}
		c.err = fmt.Errorf("vm: guest path %s added twice", p)
		return false
	}
	c.files[p] = src
	c.dir(path.Dir(p))
	return true
}

func (c *cpioWriter) charDev(p string, perm uint32, major, minor uint32) {
	if c.claim(p, "") {
		c.header(p, sIFCHR|perm, 0, major, minor)
	}
}

func (c *cpioWriter) bytes(p string, perm uint32, data []byte) {
	if c.claim(p, "") {
		c.header(p, sIFREG|perm, int64(len(data)), 0, 0)
		c.w.Write(data)
		c.pad(len(data))
	}
}

func (c *cpioWriter) hostFile(fl File) {
	src, err := filepath.Abs(fl.Src)
	if err != nil {
		c.err = errors.Join(c.err, err)
		return
	}
	if !c.claim(fl.Dst, src) {
		return
	}
	f, err := os.Open(src)
	if err != nil {
		c.err = fmt.Errorf("vm: %w", err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		c.err = fmt.Errorf("vm: %s is not a regular file (%v)", src, err)
		return
	}
	mode := fl.Mode.Perm()
	if mode == 0 {
		mode = st.Mode().Perm()
	}
	c.header(fl.Dst, sIFREG|uint32(mode), st.Size(), 0, 0)
	if c.err != nil {
		return
	}
	if _, err := io.CopyN(c.w, f, st.Size()); err != nil {
		c.err = fmt.Errorf("vm: copy %s: %w", src, err)
		return
	}
	c.pad(int(st.Size() % 4))
}

// close writes the trailer and flushes.
func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}
