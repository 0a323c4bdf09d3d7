package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// repoRoot returns the directory holding go.mod, searched upwards from the working
// directory (a package directory while `go test` runs).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("vm: no go.mod above the working directory")
		}
		dir = parent
	}
}

// CacheDir returns the directory setup.sh fills: $GKA_VM_CACHE if set, else .cache/vm in
// the repository root.
func CacheDir() (string, error) {
	if d := os.Getenv("GKA_VM_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "vm"), nil
}

// missing reports what [Run] needs and does not find, or nil.
func missing(cache string) error {
	var errs []error
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		errs = append(errs, err)
	}
	if err := requireStatic(busyboxPath); err != nil {
		errs = append(errs, err)
	}
	if _, err := findKernel(cache); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Setup makes sure qemu, a static busybox and the kernel are in place, running
// tests/vm/setup.sh (which needs root to install packages) when anything is missing.
// The error says what is still missing and what setup.sh printed.
func Setup(ctx context.Context) error {
	cache, err := CacheDir()
	if err != nil {
		return err
	}
	if missing(cache) == nil {
		return nil
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "tests", "vm", "setup.sh"))
	cmd.Env = append(os.Environ(), "GKA_VM_CACHE="+cache)
	out, runErr := cmd.CombinedOutput()
	if err := missing(cache); err != nil {
		return fmt.Errorf("vm: the VM is not set up after tests/vm/setup.sh (%v; output: %q): %w",
			runErr, strings.TrimSpace(string(out)), err)
	}
	return nil
}

// BuildTest compiles the tests of package pkg (an import path, or a directory relative to
// the repository root such as "./tests/vm/guest") with CGO_ENABLED=0 and the given build
// tags into a static binary in dir, and returns the binary's path.
func BuildTest(ctx context.Context, pkg, dir string, tags ...string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("vm: %w", err)
	}
	out := filepath.Join(dir, filepath.Base(pkg)+".test")
	args := []string{"test", "-c", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, gobin, append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("vm: go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, b)
	}
	if _, err := os.Stat(out); err != nil {
		return "", fmt.Errorf("vm: go test -c wrote no binary for %s (no test files?): %w", pkg, err)
	}
	return out, requireStatic(out)
}

// BinaryWithLibs returns the files that make the host executable src run in the guest as
// dst: src itself and, when it is dynamically linked, the shared libraries and the program
// interpreter that ldd lists, each at its host path. Libraries loaded with dlopen are not
// found this way; add them as extra [File]s.
func BinaryWithLibs(src, dst string) ([]File, error) {
	files := []File{{Src: src, Dst: dst}}
	dynamic, err := isDynamic(src)
	if err != nil || !dynamic {
		return files, err
	}
	out, err := exec.Command("ldd", src).Output()
	if err != nil {
		return nil, fmt.Errorf("vm: ldd %s: %w", src, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)",
		// "linux-vdso.so.1 (0x...)" or "libfoo.so.1 => not found".
		line := strings.TrimSpace(sc.Text())
		if strings.HasSuffix(line, "not found") {
			return nil, fmt.Errorf("vm: ldd %s: %s", src, line)
		}
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		lib, _, _ := strings.Cut(line, " ")
		if filepath.IsAbs(lib) {
			files = append(files, File{Src: lib, Dst: lib})
		}
	}
	return files, sc.Err()
}
