package vm_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gokeepalived/tests/vm"
)

// TestVMSeedScenario is the entry point of the end-to-end test in tests/vm/e2eguest: the
// seed's scenario (etc/keepalived.conf's LVS part: http and https on the VIP, 6 NAT real
// servers, rr, HTTP_GET/SSL_GET) run by the real gokeepalived binary against the real
// kernel IPVS, with a client and the real servers in network namespaces of one VM. It
// builds gokeepalived (static) and the guest test, copies them into the VM with ipvsadm,
// nft and keepalived (for the comparison), boots once and runs every scenario there.
// Like TestVMSmoke it never skips: tests/setup.sh installs keepalived and nft, and
// tests/vm/setup.sh the VM.
func TestVMSeedScenario(t *testing.T) {
	ctx := t.Context()
	begin := time.Now()
	if err := vm.Setup(ctx); err != nil {
		t.Fatalf("%v\n(as root, run tests/vm/setup.sh)", err)
	}
	setup := time.Since(begin)

	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	daemon := filepath.Join(dir, "gokeepalived")
	if err := buildStatic(ctx, root, daemon, "./cmd/gokeepalived"); err != nil {
		t.Fatal(err)
	}
	bin, err := vm.BuildTest(ctx, "./tests/vm/e2eguest", dir, "vmguest")
	if err != nil {
		t.Fatal(err)
	}
	build := time.Since(begin) - setup

	seed, err := os.ReadFile(filepath.Join(root, "etc", "keepalived.conf"))
	if err != nil {
		t.Fatal(err)
	}
	lvs, err := seedLVS(string(seed))
	if err != nil {
		t.Fatalf("etc/keepalived.conf: %v", err)
	}
	lvsFile := filepath.Join(dir, "seed-lvs.conf")
	if err := os.WriteFile(lvsFile, []byte(lvs), 0o644); err != nil {
		t.Fatal(err)
	}

	files := []vm.File{
		{Src: daemon, Dst: "/usr/sbin/gokeepalived", Mode: 0o755},
		{Src: lvsFile, Dst: "/etc/gka/seed-lvs.conf", Mode: 0o644},
	}
	for _, p := range []struct{ name, pkg string }{{"ipvsadm", "tests/vm/setup.sh"}, {"nft", "tests/setup.sh"}, {"keepalived", "tests/setup.sh"}} {
		src, err := exec.LookPath(p.name)
		if err != nil {
			t.Fatalf("%v (as root, run %s)", err, p.pkg)
		}
		fs, err := vm.BinaryWithLibs(src, "/usr/sbin/"+p.name)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fs...)
	}

	args := []string{"-test.v", "-test.timeout=6m"}
	if run := os.Getenv("GKA_VM_RUN"); run != "" {
		args = append(args, "-test.run="+run)
	}
	res, err := vm.Run(ctx, vm.Config{
		Binary: bin, Args: args, Files: files,
		Modules: []string{"bridge", "nf_tables"},
		CPUs:    2, Timeout: 9 * time.Minute,
	})
	t.Logf("guest console:\n%s", res.Output)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("timings: setup check %v, builds %v, boot to test start %v, until guest exit %v, whole test %v",
		setup.Round(time.Millisecond), build.Round(time.Millisecond), res.Boot.Round(time.Millisecond),
		res.Elapsed.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	if res.ExitCode != 0 {
		t.Fatalf("guest test failed with exit code %d (console above)", res.ExitCode)
	}
	for _, name := range []string{"TestSeedScenario", "TestSyncFailover"} {
		if !strings.Contains(res.Output, "--- PASS: "+name+" ") {
			t.Errorf("the guest's %s did not pass (console above)", name)
		}
	}
}

// buildStatic builds the main package pkg of the repository at root into out, without
// cgo, so that it runs in the VM without libraries.
func buildStatic(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// seedTimings shortens the seed's check timings so that a failure is seen within
// seconds: delay_loop 1, connect_timeout 1, retry 1, delay_before_retry 1.
var seedTimings = []*regexp.Regexp{
	regexp.MustCompile(`\bdelay_loop\s+\d+`),
	regexp.MustCompile(`\bconnect_timeout\s+\d+`),
	regexp.MustCompile(`\bretry\s+\d+`),
	regexp.MustCompile(`\bdelay_before_retry\s+\d+`),
}

// seedLVS returns the LVS part of the seed configuration: its top-level $NAME=
// definitions (with their continuation lines) and its virtual_server blocks, with the
// check timings shortened. global_defs, @id lines and the VRRP blocks are left out.
func seedLVS(conf string) (string, error) {
	var b strings.Builder
	depth, keep, inDef, vs := 0, false, false, 0
	for _, line := range strings.Split(conf, "\n") {
		code, _, _ := strings.Cut(line, "!")
		code, _, _ = strings.Cut(code, "#")
		trim := strings.TrimSpace(code)
		if inDef || (depth == 0 && strings.HasPrefix(trim, "$")) {
			// A definition, continued by a trailing backslash: its braces count where
			// it is used, not here.
			b.WriteString(line + "\n")
			inDef = strings.HasSuffix(trim, `\`)
			continue
		}
		if depth == 0 {
			keep = strings.HasPrefix(trim, "virtual_server ")
			if keep {
				vs++
			}
		}
		depth += strings.Count(trim, "{") - strings.Count(trim, "}")
		if keep {
			b.WriteString(line + "\n")
		}
	}
	if depth != 0 {
		return "", fmt.Errorf("unbalanced braces (%d)", depth)
	}
	if vs == 0 {
		return "", fmt.Errorf("no virtual_server block")
	}
	out := b.String()
	for _, re := range seedTimings {
		if !re.MatchString(out) {
			return "", fmt.Errorf("no %q in the LVS part: the seed changed, adapt seedTimings", re)
		}
		key := strings.Fields(re.FindString(out))[0]
		out = re.ReplaceAllString(out, key+" 1")
	}
	return out, nil
}

// TestSeedLVS checks the extraction of the seed's LVS part (no VM needed).
func TestSeedLVS(t *testing.T) {
	seed, err := os.ReadFile(filepath.Join("..", "..", "etc", "keepalived.conf"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := seedLVS(string(seed))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"vrrp_", "global_defs", "@director", "delay_loop 5", "connect_timeout 3", "retry 2"} {
		if strings.Contains(got, bad) {
			t.Errorf("the LVS part holds %q:\n%s", bad, got)
		}
	}
	for _, want := range []string{"$RS_HTTP=", "$RS_HTTPS=", "virtual_server 192.168.71.205 80 {", "virtual_server 192.168.71.205 443 {", "delay_loop 1", "connect_timeout 1", "retry 1"} {
		if !strings.Contains(got, want) {
			t.Errorf("the LVS part lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "{") != strings.Count(got, "}") {
		t.Errorf("unbalanced braces:\n%s", got)
	}
}
