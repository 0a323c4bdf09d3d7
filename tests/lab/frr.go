package lab

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"gokeepalived/tests/netns"
)

// FRR's daemons and shell as Debian installs them (package frr).
const (
	frrZebra = "/usr/lib/frr/zebra"
	frrVRRPd = "/usr/lib/frr/vrrpd"
	frrVtysh = "vtysh"
)

// FRRMissing returns what of FRR's zebra, vrrpd and vtysh is not installed ("" when all
// are).
func FRRMissing() string {
	var missing []string
	for _, p := range []string{frrZebra, frrVRRPd} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if _, err := exec.LookPath(frrVtysh); err != nil {
		missing = append(missing, frrVtysh)
	}
	return strings.Join(missing, ", ")
}

// FRR is FRRouting's zebra and vrrpd running in one director's namespace. Everything
// they read or write lives in a directory of the test's own: configuration, pid files,
// zebra's API socket and the vty sockets that vtysh talks to. Nothing touches the host's
// /etc/frr or /var/run/frr, and no service is started.
type FRR struct {
	l     *Lab
	i     int
	name  string
	dir   string
	n     int
	Zebra *Daemon
	VRRPd *Daemon
}

// StartFRR starts zebra and then vrrpd with vrrpdConf in director i's namespace.
func (l *Lab) StartFRR(i int, name, vrrpdConf string) *FRR {
	l.t.Helper()
	// A short directory of our own: unix socket paths are limited to 108 bytes and a
	// subtest's TempDir can be long.
	dir, err := os.MkdirTemp("", "gkfrr")
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { os.RemoveAll(dir) })
	for _, sub := range []string{"run", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			l.t.Fatal(err)
		}
	}
	f := &FRR{l: l, i: i, name: name, dir: dir}
	zconf := filepath.Join(dir, "zebra.conf")
	if err := os.WriteFile(zconf, []byte("hostname "+name+"\n"), 0o644); err != nil {
		l.t.Fatal(err)
	}
	f.Zebra = f.start(name+"-zebra", frrZebra, zconf)
	zsock := filepath.Join(dir, "run", "zserv.api")
	netns.Eventually(l.t, 10*time.Second, "zebra opens its API socket", func() bool {
		_, err := os.Stat(zsock)
		return err == nil
	})
	f.StartVRRPd(vrrpdConf)
	return f
}

// StartVRRPd (re)starts vrrpd with vrrpdConf; zebra must be running.
func (f *FRR) StartVRRPd(vrrpdConf string) *Daemon {
	f.l.t.Helper()
	f.n++
	conf := filepath.Join(f.dir, fmt.Sprintf("vrrpd-%d.conf", f.n))
	if err := os.WriteFile(conf, []byte(vrrpdConf), 0o644); err != nil {
		f.l.t.Fatal(err)
	}
	name := f.name + "-vrrpd"
	if f.n > 1 {
		name = fmt.Sprintf("%s-%d", name, f.n)
	}
	f.VRRPd = f.start(name, frrVRRPd, conf)
	return f.VRRPd
}

// start runs one FRR daemon in the foreground, logging to standard output.
//
// The daemon runs as root with group frrvty: FRR insists that its user belongs to the
// vty group it was built with (frrvty in Debian), and -g frrvty satisfies that without
// giving the frr user access to the test's files.
//
// FRR 8.4 also writes a crash-log directory per daemon under /var/tmp/frr, a path built
// in. "ip netns exec" runs each command in a mount namespace of its own (a slave of the
// host's), so a bind mount of the test's directory over /var/tmp there keeps those
// directories in the test's directory and out of the host's /var/tmp.
func (f *FRR) start(name, bin, conf string) *Daemon {
	l := f.l
	l.t.Helper()
	run := filepath.Join(f.dir, "run")
	base := filepath.Base(bin)
	args := []string{
		"sh", "-c", `mount --bind "$0" /var/tmp && exec "$@"`, filepath.Join(f.dir, "tmp"),
		bin, "-u", "root", "-g", "frrvty",
		"-f", conf,
		"-i", filepath.Join(run, base+".pid"),
		"-z", filepath.Join(run, "zserv.api"),
		"--vty_socket", run,
		"-P", "0", // no vty TCP port: vtysh uses the unix socket
		"--log", "stdout", "--log-level", "debug",
	}
	cmd := l.Directors[f.i].Command(args...)
	d := &Daemon{Name: name, cmd: cmd, log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	cmd.Stdout = lockedBuffer{d.mu, d.log}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	l.t.Cleanup(func() {
		d.Signal(syscall.SIGKILL)
		<-d.done
		if l.t.Failed() {
			l.t.Logf("---- log of %s ----\n%s", name, d.Log())
		}
	})
	return d
}

// FRRVRRP is the IPv4 side of one virtual router as vrrpd's "show vrrp json" reports it.
type FRRVRRP struct {
	Status    string // Initialize, Backup or Master
	Priority  int    // effective priority
	AdverTx   int
	AdverRx   int
	Interface string // the macvlan vrrpd found for the virtual router
}

// VRRP4 asks vrrpd (through vtysh and the test's vty socket) for the IPv4 state of vrid.
func (f *FRR) VRRP4(vrid int) (FRRVRRP, error) {
	out, err := f.l.Directors[f.i].Try(frrVtysh, "--vty_socket", filepath.Join(f.dir, "run"), "-d", "vrrpd",
		"-c", fmt.Sprintf("show vrrp %d json", vrid))
	if err != nil {
		return FRRVRRP{}, fmt.Errorf("vtysh: %v: %s", err, strings.TrimSpace(out))
	}
	var routers []struct {
		VRID int `json:"vrid"`
		V4   struct {
			Interface string `json:"interface"`
			Status    string `json:"status"`
			Priority  int    `json:"effectivePriority"`
			Stats     struct {
				AdverTx int `json:"adverTx"`
				AdverRx int `json:"adverRx"`
			} `json:"stats"`
		} `json:"v4"`
	}
	if err := json.Unmarshal([]byte(out), &routers); err != nil {
		return FRRVRRP{}, fmt.Errorf("show vrrp json: %v: %s", err, strings.TrimSpace(out))
	}
	for _, r := range routers {
		if r.VRID == vrid {
			return FRRVRRP{Status: r.V4.Status, Priority: r.V4.Priority, AdverTx: r.V4.Stats.AdverTx,
				AdverRx: r.V4.Stats.AdverRx, Interface: r.V4.Interface}, nil
		}
	}
	return FRRVRRP{}, fmt.Errorf("vrrpd has no virtual router %d: %s", vrid, strings.TrimSpace(out))
}

// Protodown reports whether zebra holds ifname in protodown: vrrpd's Backup state.
func (f *FRR) Protodown(ifname string) bool {
	out, _ := f.l.Directors[f.i].Try("ip", "-d", "link", "show", "dev", ifname)
	return strings.Contains(out, "protodown on")
}

// FRRMacvlan4 creates the macvlan that FRR's vrrpd needs for an IPv4 virtual router on
// director i's eth0, as FRR's documentation describes: bridge mode (so that eth0 still
// receives the peers' adverts while the macvlan is protodown), the virtual MAC
// 00:00:5e:00:01:VRID, the virtual address on the macvlan (never on eth0), and up.
// vrrpd finds it by its MAC and toggles its protodown; the address stays on it.
func (l *Lab) FRRMacvlan4(i int, ifname string, vrid int, cidr string) {
	l.t.Helper()
	d := l.Directors[i]
	d.Run("ip", "link", "add", ifname, "link", "eth0", "type", "macvlan", "mode", "bridge")
	d.Run("ip", "link", "set", "dev", ifname, "address", fmt.Sprintf("00:00:5e:00:01:%02x", vrid))
	d.Addr(ifname, cidr)
	d.Run("ip", "link", "set", "dev", ifname, "up")
}

// CaptureVRRP captures one VRRP packet from src on ns's eth0 with tcpdump and returns it
// from its IP header on.
func CaptureVRRP(ns *netns.NS, src string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name,
		"tcpdump", "-l", "-nn", "-x", "-c", "1", "-i", "eth0", "ip proto 112 and src host "+src).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("tcpdump: %v: %s", err, out)
	}
	var pkt []byte
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "0x") {
			continue
		}
		_, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		b, err := hex.DecodeString(strings.Join(strings.Fields(rest), ""))
		if err != nil {
			return nil, fmt.Errorf("tcpdump hex %q: %v", line, err)
		}
		pkt = append(pkt, b...)
	}
	if len(pkt) < 20 {
		return nil, fmt.Errorf("no packet in tcpdump's output: %s", out)
	}
	return pkt, nil
}

// V3ChecksumCoversPseudoHeader tells how the VRRPv3 advert in the IPv4 packet pkt was
// summed: true for RFC 5798 (with the IPv4 pseudo-header), false for the message alone
// (keepalived's v3_checksum_as_v2); an error if neither matches.
func V3ChecksumCoversPseudoHeader(pkt []byte) (bool, error) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != 112 {
		return false, errors.New("not an IPv4 VRRP packet")
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(pkt[2])<<8 | int(pkt[3])
	if total > len(pkt) || ihl+8 > total {
		return false, fmt.Errorf("truncated packet (%d of %d bytes)", len(pkt), total)
	}
	msg := pkt[ihl:total]
	if msg[0]>>4 != 3 {
		return false, fmt.Errorf("VRRP version %d, want 3", msg[0]>>4)
	}
	if n := 8 + 4*int(msg[3]); n <= len(msg) {
		msg = msg[:n]
	}
	pseudo := make([]byte, 0, 12)
	pseudo = append(pseudo, pkt[12:20]...) // source and destination
	pseudo = append(pseudo, 0, 112, byte(len(msg)>>8), byte(len(msg)))
	switch {
	case onesSum(append(pseudo, msg...)) == 0xffff:
		return true, nil
	case onesSum(msg) == 0xffff:
		return false, nil
	}
	return false, fmt.Errorf("checksum 0x%04x matches neither form", int(msg[6])<<8|int(msg[7]))
}

func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
