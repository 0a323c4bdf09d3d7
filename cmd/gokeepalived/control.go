package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// defaultControlSocket is where the daemon listens for `gokeepalived status`.
const defaultControlSocket = "/run/gokeepalived.sock"

// controlSocketFor returns the control socket of a daemon started with pid file pid:
// the default one for the default pid file, else the pid file's name with ".sock", so
// that several daemons on one host (tests, namespaces) do not collide.
func controlSocketFor(pid string) string {
	if pid == "" || pid == defaultPidFile {
		return defaultControlSocket
	}
	return strings.TrimSuffix(pid, ".pid") + ".sock"
}

// controlHandlers are what the control socket can do.
type controlHandlers struct {
	status func() statusDoc
	reload func() string            // apply the configuration file again; returns the outcome
	dryRun func(path string) string // what reloading path would change
	mib    func() string            // the SNMP-like walk
}

// serveControl answers requests on a unix socket that only root may use, until ctx ends;
// it removes the socket then.
func serveControl(ctx context.Context, path string, log *slog.Logger, h controlHandlers) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path) // left by a crashed daemon
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
		_ = os.Remove(path)
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handleControl(c.(*net.UnixConn), log, h)
		}
	}()
	return nil
}

// handleControl serves one request: a single line naming the command.
func handleControl(c *net.UnixConn, log *slog.Logger, h controlHandlers) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if uid, err := peerUID(c); err != nil || uid != 0 {
		log.Warn("control socket: refused a non-root client", "uid", uid, "err", err)
		return
	}
	line, err := bufio.NewReader(io.LimitReader(c, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return
	}
	cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch {
	case cmd == "status":
		_ = encodeStatus(c, h.status())
	case cmd == "reload" && h.reload != nil:
		io.WriteString(c, h.reload())
	case cmd == "dry-run" && h.dryRun != nil:
		io.WriteString(c, h.dryRun(arg))
	case cmd == "mib" && h.mib != nil:
		io.WriteString(c, h.mib())
	default:
		fmt.Fprintf(c, "{\"error\": %q}\n", "unknown command "+cmd)
	}
}

// peerUID returns the user id of the process on the other end of a unix socket.
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid := -1
	var cerr error
	err = raw.Control(func(fd uintptr) {
		var cred *unix.Ucred
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if cerr == nil {
			uid = int(cred.Uid)
		}
	})
	if err == nil {
		err = cerr
	}
	return uid, err
}

// runStatus is `gokeepalived status [--json] [-S SOCKET]`.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("status", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	asMIB := fs.Bool("mib", false, "print the state as an SNMP walk of VRRP-MIB (RFC 2787) and KEEPALIVED-MIB objects")
	sock := fs.StringP("control-socket", "S", defaultControlSocket, "the daemon's control socket")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	c, err := net.DialTimeout("unix", *sock, 2*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "gokeepalived status: %v (is the daemon running?)\n", err)
		return exitDaemon
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if *asMIB {
		if _, err := io.WriteString(c, "mib\n"); err != nil {
			fmt.Fprintf(stderr, "gokeepalived status: %v\n", err)
			return exitDaemon
		}
		if _, err := io.Copy(stdout, c); err != nil {
			return exitDaemon
		}
		return exitOK
	}
	if _, err := io.WriteString(c, "status\n"); err != nil {
		fmt.Fprintf(stderr, "gokeepalived status: %v\n", err)
		return exitDaemon
	}
	var doc statusDoc
	if err := json.NewDecoder(c).Decode(&doc); err != nil {
		fmt.Fprintf(stderr, "gokeepalived status: bad answer: %v\n", err)
		return exitDaemon
	}
	if *asJSON {
		if err := encodeStatus(stdout, doc); err != nil {
			return exitDaemon
		}
		return exitOK
	}
	writeStatusText(stdout, doc)
	return exitOK
}

// runReload is `gokeepalived reload [--dry-run] [-f FILE] [-S SOCKET]`: ask the running
// daemon to reload, or to tell what reloading FILE would change.
func runReload(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("reload", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dry := fs.Bool("dry-run", false, "print what a reload would change, change nothing")
	file := fs.StringP("use-file", "f", defaultConfigFile, "configuration file to compare (with --dry-run)")
	sock := fs.StringP("control-socket", "S", defaultControlSocket, "the daemon's control socket")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	req := "reload\n"
	if *dry {
		abs, err := filepath.Abs(*file)
		if err != nil {
			fmt.Fprintf(stderr, "gokeepalived reload: %v\n", err)
			return exitUsage
		}
		req = "dry-run " + abs + "\n"
	}
	c, err := net.DialTimeout("unix", *sock, 2*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "gokeepalived reload: %v (is the daemon running?)\n", err)
		return exitDaemon
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		fmt.Fprintf(stderr, "gokeepalived reload: %v\n", err)
		return exitDaemon
	}
	out, err := io.ReadAll(c)
	if err != nil {
		fmt.Fprintf(stderr, "gokeepalived reload: %v\n", err)
		return exitDaemon
	}
	stdout.Write(out)
	if strings.HasPrefix(string(out), "rejected") {
		return parser.ExitErrors
	}
	return exitOK
}
