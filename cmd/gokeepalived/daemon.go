package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gokeepalived/ipvs"
	"gokeepalived/parser"
	"gokeepalived/vrrp"
)

// exitDaemon is the exit code when the daemon cannot start.
const exitDaemon = 1

// lifecycleScript runs global_defs startup_script (before the engines start) or
// shutdown_script (after they stop), as keepalived's parent process does, bounded by
// its timeout; a failure is logged and the daemon goes on.
func lifecycleScript(g *parser.GlobalDefs, which string, s *parser.Script, timeout time.Duration, log *slog.Logger) {
	if s == nil {
		return
	}
	r := vrrp.NewNotifyRunner(g, log)
	r.Timeout = timeout
	start := time.Now()
	if err := r.Run(context.Background(), s); err != nil {
		log.Warn(which+" failed", "script", s.Path(), "err", err)
		return
	}
	log.Info(which+" done", "script", s.Path(), "took", time.Since(start).Round(time.Millisecond))
}

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
	alerts := newAlerter(cfg, log)
	defer func() { // after the engines have stopped: what they said on the way out is sent
		sctx, cancel := context.WithTimeout(context.Background(), alertStopWait)
		defer cancel()
		alerts.stop(sctx)
	}()
	lifecycleScript(&cfg.Global, "startup_script", cfg.Global.StartupScript, cfg.Global.StartupScriptTimeout.D(), log)

	// ha_suspend: the LVS engine learns which addresses this director holds, at start
	// and after every VRRP transition.
	var lvsRef atomic.Pointer[ipvs.Manager]
	var mgr *vrrp.Manager
	syncd := &syncDaemons{}
	defer func() { syncd.stop() }() // after the VRRP engine: the role it left stays until then
	if !o.checkOnly && len(cfg.Instances) > 0 {
		syncd = newSyncDaemons(cfg, netlinkSyncKernel, log)
		am := vrrp.NewAddrManager(nil)
		defer am.Close()
		vm := vrrp.NewVMACManager() // use_vmac's macvlans; closed after mgr.Stop
		defer vm.Close()
		ann := vrrp.NewFamilyAnnouncer(cfg.Global.GARPInterval.D(), cfg.Global.GNAInterval.D())
		k := vrrp.Kernel{
			Listen: vrrp.ListenAdvert, Addrs: am, Routes: vrrp.NetlinkRoutes{}, PromoteSecondaries: vrrp.PromoteSecondaries,
			Announcer: ann, PrimaryAddr: vrrp.PrimaryAddr,
			NewSensor: vrrp.LinuxSensor, VMACs: vm,
		}
		if fw := openFirewall(cfg, log); fw != nil {
			k.Firewall = fw
			defer closeFirewall(fw, log) // after mgr.Stop: the instances unblock first
		}
		mgr = vrrp.NewManager(k, log)
		mgr.KeepVIPsOnStop = o.dontReleaseVIP
		syncd.stateOf = func(name string) vrrp.State {
			for _, st := range mgr.Status() {
				if st.Name == name {
					return st.State
				}
			}
			return vrrp.StateInit
		}
		mgr.OnTransition = func(t vrrp.Transition) {
			alerts.vrrpTransition(t)
			syncd.transition(t)
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
		m, stopLVS, err := startLVS(ctx, cfg, o.ipvsState, log, alerts)
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
	run := &running{cfg: cfg, alerts: alerts, syncd: syncd}
	started := time.Now()
	sock := o.controlSocket
	if sock == "" {
		sock = controlSocketFor(o.pidFile)
	}
	if err := serveControl(ctx, sock, log, controlHandlers{
		status: func() statusDoc {
			doc := buildStatus(mgr, lvs)
			doc.SyncDaemon = syncd.status()
			return doc
		},
		reload: func() string { return run.reload(ctx, o, log, mgr, lvs) },
		dryRun: func(path string) string { return run.dryRun(path, o, mgr, lvs) },
		mib: func() string {
			var b strings.Builder
			var st []vrrp.InstanceStatus
			if mgr != nil {
				st = mgr.Status()
			}
			var rs []ipvs.RealServerStatus
			var quorum map[ipvs.VirtualServerKey]bool
			if lvs != nil {
				rs, quorum = lvs.RealServers(), lvs.Status().Quorum
			}
			writeMIB(&b, &run.current().Global, st, rs, quorum, started)
			return b.String()
		},
	}); err != nil {
		log.Warn("no control socket", "err", err)
	}
	if o.metricsAddress != "" {
		if err := serveMetrics(ctx, o.metricsAddress, log, metricsHandler(mgr, lvs, syncd)); err != nil {
			log.Error("cannot serve metrics", "err", err)
		}
	}
	if err := sdNotify("READY=1"); err != nil {
		log.Warn("cannot notify systemd", "err", err)
	}
	log.Info("gokeepalived started", "version", version, "instances", len(cfg.Instances), "virtual_servers", len(cfg.VirtualServers))
	serveSignals(ctx, o, log, run, mgr, lvs)
	log.Info("stopping")
	_ = sdNotify("STOPPING=1")
	if lvs != nil {
		runOmega(lvs, &run.current().Global, log)
		if err := lvs.Stop(o.dontReleaseLVS); err != nil {
			log.Error("IPVS cleanup at stop", "err", err)
		}
	}
	if mgr != nil {
		mgr.Stop()
	}
	g := &run.current().Global
	lifecycleScript(g, "shutdown_script", g.ShutdownScript, g.ShutdownScriptTimout.D(), log)
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
func serveSignals(ctx context.Context, o *options, log *slog.Logger, run *running, mgr *vrrp.Manager, lvs *ipvs.Manager) {
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
			g := &run.current().Global
			switch s {
			case syscall.SIGUSR1:
				writeDump(log, g.StateDumpFile, func(w io.Writer) error { return vrrp.WriteData(w, g, status) })
			case syscall.SIGUSR2:
				writeDump(log, g.StatsDumpFile, func(w io.Writer) error { return vrrp.WriteStats(w, status) })
			case sigJSON:
				writeDump(log, g.JSONDumpFile, func(w io.Writer) error { return vrrp.WriteJSON(w, status) })
			case syscall.SIGHUP:
				run.reload(ctx, o, log, mgr, lvs)
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

// running holds the configuration in force; reloads (SIGHUP or the control socket) are
// serialized through it.
type running struct {
	mu     sync.Mutex
	cfg    *parser.Config
	alerts *alerter     // takes the new configuration's SMTP settings
	syncd  *syncDaemons // takes the new lvs_sync_daemon
}

func (r *running) current() *parser.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}

// reload parses and validates the configuration file again and applies it as a diff. A
// file with errors is rejected with every diagnostic logged, and the running
// configuration keeps serving. It returns the outcome for the control socket.
func (r *running) reload(ctx context.Context, o *options, log *slog.Logger, mgr *vrrp.Manager, lvs *ipvs.Manager) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	log.Info("reloading", "file", o.configFile)
	cfg, ds := load(o)
	for _, d := range ds {
		log.Warn("config: " + d.String())
	}
	if code := ds.ExitCode(); code == parser.ExitFatal || code == parser.ExitErrors {
		log.Error("reload rejected: the configuration has errors; the running configuration stays", "errors", ds.Count(parser.Error)+ds.Count(parser.Fatal))
		return "rejected: the configuration has errors; the running configuration stays\n" + diagText(ds)
	}
	_ = sdNotify("RELOADING=1")
	defer sdNotify("READY=1")
	if r.alerts != nil {
		r.alerts.setConfig(cfg) // before the engines: the instances a reload adds mail their start
	}
	if old, next := vrrp.FirewallTable(&r.cfg.Global), vrrp.FirewallTable(&cfg.Global); old != next && mgr != nil {
		log.Warn("the nftables table name changes on restart only", "table", old, "configured", next)
	}
	var problems []string
	switch {
	case mgr != nil:
		if err := mgr.Reload(ctx, cfg); err != nil {
			log.Error("VRRP reload failed", "err", err)
			problems = append(problems, "VRRP: "+err.Error())
		}
		r.syncd.apply(cfg.Global.LVSSyncDaemon)
	case len(cfg.Instances) > 0 && !o.checkOnly:
		log.Warn("the new configuration has VRRP instances; restart gokeepalived to start the VRRP engine")
		problems = append(problems, "VRRP instances need a restart to start the VRRP engine")
	}
	switch {
	case lvs != nil:
		if err := lvs.Reload(cfg); err != nil {
			log.Error("LVS reload failed", "err", err)
			problems = append(problems, "LVS: "+err.Error())
		}
	case len(cfg.VirtualServers) > 0 && !o.vrrpOnly:
		log.Warn("the new configuration has virtual servers; restart gokeepalived to start the LVS engine")
		problems = append(problems, "virtual servers need a restart to start the LVS engine")
	}
	r.cfg = cfg
	log.Info("reload done")
	if len(problems) > 0 {
		return "reloaded with problems:\n" + strings.Join(problems, "\n") + "\n"
	}
	return "reloaded\n"
}

// dryRun tells what reloading the file at path would change, changing nothing.
func (r *running) dryRun(path string, o *options, mgr *vrrp.Manager, lvs *ipvs.Manager) string {
	next, ds := parser.Load(path, parser.Options{ConfigID: o.configID})
	if code := ds.ExitCode(); code == parser.ExitFatal || code == parser.ExitErrors {
		return "rejected: the configuration has errors; a reload would change nothing\n" + diagText(ds)
	}
	var b strings.Builder
	b.WriteString(diagText(ds))
	if mgr != nil {
		b.WriteString("VRRP:\n" + vrrp.PlanReload(r.current(), next).String())
		if c := syncDaemonChange(r.current().Global.LVSSyncDaemon, next.Global.LVSSyncDaemon); c != "" {
			b.WriteString(c + "\n")
		}
	}
	if lvs != nil {
		ch, err := lvs.PlanReload(next)
		if err != nil {
			fmt.Fprintf(&b, "IPVS: cannot read the kernel's table: %v\n", err)
		} else {
			b.WriteString("IPVS:\n" + ch.String())
		}
	}
	return b.String()
}

func diagText(ds parser.Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	return b.String()
}
