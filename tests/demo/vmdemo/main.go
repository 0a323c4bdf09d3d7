// Command vmdemo plays `make demo`'s scenario inside the tests/vm VM, for hosts whose
// kernel has no IPVS: it builds gokeepalived (static) and the guest test of
// tests/vm/demoguest, boots the VM once with etc/keepalived.conf unchanged, and prints
// the guest's narrated transcript as it comes. It exits 0 only when every step held.
//
// Run it from the repository root: go run ./tests/demo/vmdemo
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gokeepalived/tests/vm"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "vmdemo: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	begin := time.Now()
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if err := vm.Setup(ctx); err != nil {
		return fmt.Errorf("%w\n(as root, run tests/vm/setup.sh)", err)
	}
	dir, err := os.MkdirTemp("", "gka-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Println("  building gokeepalived (static) and the guest scenario (tests/vm/demoguest) ...")
	daemon := filepath.Join(dir, "gokeepalived")
	build := exec.CommandContext(ctx, "go", "build", "-o", daemon, "./cmd/gokeepalived")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/gokeepalived: %v\n%s", err, out)
	}
	guest, err := vm.BuildTest(ctx, "./tests/vm/demoguest", dir, "vmguest")
	if err != nil {
		return err
	}
	files := []vm.File{
		{Src: daemon, Dst: "/usr/sbin/gokeepalived", Mode: 0o755},
		{Src: filepath.Join(root, "etc", "keepalived.conf"), Dst: "/etc/keepalived/keepalived.conf", Mode: 0o644},
	}
	ipvsadm, err := exec.LookPath("ipvsadm")
	if err != nil {
		return fmt.Errorf("%w (as root, run tests/vm/setup.sh)", err)
	}
	fs, err := vm.BinaryWithLibs(ipvsadm, "/usr/sbin/ipvsadm")
	if err != nil {
		return err
	}
	files = append(files, fs...)
	builds := time.Since(begin)

	fmt.Printf("  booting the VM (qemu, no network device; builds took %v) ...\n", builds.Round(100*time.Millisecond))
	live := &demoLines{}
	res, runErr := vm.Run(ctx, vm.Config{
		Binary:  guest,
		Args:    []string{"-test.v", "-test.timeout=5m", "-test.run=^TestDemo$"},
		Files:   files,
		Modules: []string{"bridge"},
		CPUs:    2,
		Timeout: 7 * time.Minute,
		Console: live,
	})
	live.flush()
	fmt.Printf("\n  timings: builds %v, VM boot %v, scenario %v, whole demo %v\n",
		builds.Round(100*time.Millisecond), res.Boot.Round(100*time.Millisecond),
		(res.Elapsed - res.Boot).Round(100*time.Millisecond), time.Since(begin).Round(100*time.Millisecond))
	ok := runErr == nil && res.ExitCode == 0 && strings.Contains(res.Output, "--- PASS: TestDemo ")
	if !ok {
		fmt.Println("\n  the VM's console (last 80 lines):")
		lines := strings.Split(strings.TrimRight(res.Output, "\n"), "\n")
		for _, l := range lines[max(0, len(lines)-80):] {
			fmt.Println("  | " + l)
		}
		if runErr != nil {
			return runErr
		}
		return fmt.Errorf("the scenario failed in the VM (exit code %d)", res.ExitCode)
	}
	return nil
}

// demoLines prints the narrated lines ("DEMO ...") of the console as they arrive.
type demoLines struct {
	partial string
}

func (d *demoLines) Write(p []byte) (int, error) {
	d.partial += string(p)
	for {
		i := strings.IndexByte(d.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		printDemo(d.partial[:i])
		d.partial = d.partial[i+1:]
	}
}

func (d *demoLines) flush() {
	printDemo(d.partial)
	d.partial = ""
}

// printDemo prints a narrated console line ("DEMO ...") without its prefix.
func printDemo(line string) bool {
	line = strings.TrimRight(strings.ReplaceAll(line, "\r", ""), "\n")
	i := strings.Index(line, "DEMO")
	if i < 0 || (line[i:] != "DEMO" && !strings.HasPrefix(line[i:], "DEMO ")) {
		return false
	}
	fmt.Println(strings.TrimPrefix(strings.TrimPrefix(line[i:], "DEMO"), " "))
	return true
}

// repoRoot returns the directory holding go.mod, searched upwards from the working
// directory.
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
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
