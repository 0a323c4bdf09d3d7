package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"

	"gokeepalived/ipvs"
	"gokeepalived/parser"
	"gokeepalived/vrrp"
)

// exitDaemon is the exit code when the daemon cannot start.
const exitDaemon = 1

// runDaemon loads the configuration and runs the engines until SIGTERM or SIGINT.
func runDaemon(o *options, stderr io.Writer) int {
	log := newLogger(o, stderr)
	cfg, ds := load(o)
	for _, d := range ds {
		log.Warn("config: " + d.String())
	}
	if ds.ExitCode() == parser.ExitFatal {
		log.Error("configuration cannot run", "file", o.configFile)
		return parser.ExitFatal
	}
	if o.pidFile != "" {
		if err := os.WriteFile(o.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Warn("cannot write pid file", "file", o.pidFile, "err", err)
		} else {
			defer os.Remove(o.pidFile)
		}
	}
	if err := applyScheduling(&cfg.Global); err != nil {
		log.Warn("cannot apply vrrp_priority / vrrp_rt_priority", "err", err)
	} else if cfg.Global.VRRPRTPriority > 0 {
		log.Info("real-time scheduling", "policy", "SCHED_RR", "priority", cfg.Global.VRRPRTPriority)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// ha_suspend: the LVS engine learns which addresses this director holds, at start
	// and after every VRRP transition.
	var lvsRef atomic.Pointer[ipvs.Manager]
	var mgr *vrrp.Manager
	if !o.checkOnly && len(cfg.Instances) > 0 {
		am := vrrp.NewAddrManager(nil)
		defer am.Close()
		ann := vrrp.NewFamilyAnnouncer(cfg.Global.GARPInterval.D(), cfg.Global.GNAInterval.D())
		mgr = vrrp.NewManager(vrrp.Kernel{
			Listen: vrrp.ListenAdvert, Addrs: am, Announcer: ann, PrimaryAddr: vrrp.PrimaryAddr,
			NewSensor: vrrp.LinuxSensor,
		}, log)
		mgr.KeepVIPsOnStop = o.dontReleaseVIP
		mgr.OnTransition = func(vrrp.Transition) {
			if l := lvsRef.Load(); l != nil {
				if err := l.SetHeld(localAddrs()); err != nil {
					log.Warn("ha_suspend update", "err", err)
				}
			}
		}
		if err := mgr.Start(ctx, cfg); err != nil {
			log.Error("cannot start VRRP", "err", err)
			return exitDaemon
		}
	}
	var lvs *ipvs.Manager
	if !o.vrrpOnly && len(cfg.VirtualServers) > 0 {
		m, stopLVS, err := startLVS(ctx, cfg, log)
		if err != nil {
			log.Error("cannot start the LVS engine", "err", err)
			if mgr != nil {
				mgr.Stop()
			}
			return exitDaemon
		}
		lvs = m
		lvsRef.Store(m)
		defer stopLVS()
	}
	sock := o.controlSocket
	if sock == "" {
		sock = controlSocketFor(o.pidFile)
	}
	if err := serveControl(ctx, sock, log, func() statusDoc { return buildStatus(mgr, lvs) }); err != nil {
		log.Warn("no status socket", "err", err)
	}
	if o.metricsAddress != "" {
		if err := serveMetrics(ctx, o.metricsAddress, log, metricsHandler(mgr, lvs)); err != nil {
			log.Error("cannot serve metrics", "err", err)
		}
	}
	if err := sdNotify("READY=1"); err != nil {
		log.Warn("cannot notify systemd", "err", err)
	}
	log.Info("gokeepalived started", "version", version, "instances", len(cfg.Instances), "virtual_servers", len(cfg.VirtualServers))
	serveSignals(ctx, o, log, cfg, mgr, lvs)
	log.Info("stopping")
	_ = sdNotify("STOPPING=1")
	if lvs != nil {
		if err := lvs.Stop(o.dontReleaseLVS); err != nil {
			log.Error("IPVS cleanup at stop", "err", err)
		}
	}
	if mgr != nil {
		mgr.Stop()
	}
	log.Info("stopped")
	return exitOK
}

// newLogger logs keepalived-style lines to standard error.
func newLogger(o *options, stderr io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if o.logDetail {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}

// Signal numbers as keepalived uses them (keepalived --signum=NAME prints them).
var signums = map[string]syscall.Signal{
	"RELOAD": syscall.SIGHUP, "STOP": syscall.SIGTERM, "DATA": syscall.SIGUSR1,
	"STATS": syscall.SIGUSR2, "JSON": sigJSON, "STATS_CLEAR": sigStatsClear,
}

const (
	sigJSON       = syscall.Signal(36) // SIGRTMIN+2
	sigStatsClear = syscall.Signal(63) // SIGRTMAX-1
)

// serveSignals reloads on SIGHUP and writes the dumps on SIGUSR1 (data), SIGUSR2
// (stats) and the JSON signal until ctx ends.
func serveSignals(ctx context.Context, o *options, log *slog.Logger, cfg *parser.Config, mgr *vrrp.Manager, lvs *ipvs.Manager) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, sigJSON, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sigs:
			var status []vrrp.InstanceStatus
			if mgr != nil {
				status = mgr.Status()
			}
			g := &cfg.Global
			switch s {
			case syscall.SIGUSR1:
				writeDump(log, g.StateDumpFile, func(w io.Writer) error { return vrrp.WriteData(w, g, status) })
			case syscall.SIGUSR2:
				writeDump(log, g.StatsDumpFile, func(w io.Writer) error { return vrrp.WriteStats(w, status) })
			case sigJSON:
				writeDump(log, g.JSONDumpFile, func(w io.Writer) error { return vrrp.WriteJSON(w, status) })
			case syscall.SIGHUP:
				if next := reload(ctx, o, log, mgr, lvs); next != nil {
					cfg = next
				}
			}
		}
	}
}

// writeDump writes a dump file whole: to a temporary file renamed into place, so a
// reader never sees half a dump.
func writeDump(log *slog.Logger, path string, render func(io.Writer) error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err == nil {
		err = render(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		log.Error("cannot write dump", "file", path, "err", err)
		_ = os.Remove(tmp)
		return
	}
	log.Info("dump written", "file", path)
}

// localAddrs lists the addresses on this host's interfaces (ha_suspend's "is the VIP
// here").
func localAddrs() []netip.Addr {
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range ifas {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

// reload parses and validates the configuration file again and applies it as a diff. A
// file with errors is rejected with every diagnostic logged, and the running
// configuration keeps serving. It returns the new configuration, nil when rejected.
func reload(ctx context.Context, o *options, log *slog.Logger, mgr *vrrp.Manager, lvs *ipvs.Manager) *parser.Config {
	log.Info("SIGHUP: reloading", "file", o.configFile)
	cfg, ds := load(o)
	for _, d := range ds {
		log.Warn("config: " + d.String())
	}
	if code := ds.ExitCode(); code == parser.ExitFatal || code == parser.ExitErrors {
		log.Error("reload rejected: the configuration has errors; the running configuration stays", "errors", ds.Count(parser.Error)+ds.Count(parser.Fatal))
		return nil
	}
	_ = sdNotify("RELOADING=1")
	defer sdNotify("READY=1")
	switch {
	case mgr != nil:
		if err := mgr.Reload(ctx, cfg); err != nil {
			log.Error("VRRP reload failed", "err", err)
		}
	case len(cfg.Instances) > 0 && !o.checkOnly:
		log.Warn("the new configuration has VRRP instances; restart gokeepalived to start the VRRP engine")
	}
	switch {
	case lvs != nil:
		if err := lvs.Reload(cfg); err != nil {
			log.Error("LVS reload failed", "err", err)
		}
	case len(cfg.VirtualServers) > 0 && !o.vrrpOnly:
		log.Warn("the new configuration has virtual servers; restart gokeepalived to start the LVS engine")
	}
	log.Info("reload done")
	return cfg
}
