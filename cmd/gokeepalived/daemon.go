package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var mgr *vrrp.Manager
	if !o.checkOnly && len(cfg.Instances) > 0 {
		am := vrrp.NewAddrManager(nil)
		defer am.Close()
		ann := vrrp.NewAnnouncer(cfg.Global.GARPInterval.D())
		mgr = vrrp.NewManager(vrrp.Kernel{
			Listen: vrrp.ListenAdvert, Addrs: am, Announcer: ann, PrimaryAddr: vrrp.PrimaryAddr,
			NewSensor: vrrp.LinuxSensor,
		}, log)
		mgr.KeepVIPsOnStop = o.dontReleaseVIP
		if err := mgr.Start(ctx, cfg); err != nil {
			log.Error("cannot start VRRP", "err", err)
			return exitDaemon
		}
	}
	log.Info("gokeepalived started", "version", version, "instances", len(cfg.Instances))
	<-ctx.Done()
	log.Info("stopping")
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
