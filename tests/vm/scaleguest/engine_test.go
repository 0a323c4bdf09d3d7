//go:build vmguest

package scaleguest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"gokeepalived/check"
	"gokeepalived/ipvs"
	"gokeepalived/parser"
)

// engineHelperEnv, set to a configuration file, makes the test binary run gokeepalived's
// LVS engine on it instead of the tests: the same calls as the daemon's startLVS
// (moby/ipvs kernel with its call deadline, the manager with keepalived's 1 s start
// delay), without VRRP, notify scripts or the control socket. SIGUSR1 starts a CPU
// profile into engineProfile, SIGUSR2 stops it, SIGTERM stops the engine and removes its
// services. It exists to see where the daemon's CPU goes (GKA_SCALE_PROFILE=1).
const (
	engineHelperEnv = "GKA_ENGINE_HELPER"
	engineProfile   = "/tmp/engine.pprof"
)

func engineHelper(conf string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, ds := parser.Load(conf, parser.Options{})
	if code := ds.ExitCode(); code != 0 {
		fmt.Fprintf(os.Stderr, "%s: exit code %d: %v\n", conf, code, ds)
		return code
	}
	k, err := ipvs.NewMoby(ipvs.DefaultCallTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer k.Close()
	m := ipvs.NewManager(k, log)
	m.CheckStartDelay = time.Second
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM)
	if err := m.Start(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	log.Info("engine started", "virtual_servers", len(cfg.VirtualServers))
	var prof *os.File
	var before check.Stats
	for sig := range sigs {
		switch sig {
		case syscall.SIGUSR1:
			before = m.Status().Checker.Stats
			if prof, err = os.Create(engineProfile); err == nil {
				err = pprof.StartCPUProfile(prof)
			}
			if err != nil {
				log.Error("cpu profile", "err", err)
			}
		case syscall.SIGUSR2:
			pprof.StopCPUProfile()
			if prof != nil {
				prof.Close()
			}
			st := m.Status().Checker.Stats
			slip := st.Slip.Sub(before.Slip)
			fmt.Fprintf(os.Stderr, "ENGINE-STATS due %d, started %d, returned in time %d, failed %d, abandoned past deadline+grace %d, skipped %d; now in flight %d, probes running %d; slip (start - planned start) p50 %v, p90 %v, p99 %v\n",
				st.Due-before.Due, st.Started-before.Started, st.Completed-before.Completed, st.Failed-before.Failed,
				st.Abandoned-before.Abandoned, st.Skipped-before.Skipped, st.InFlight, st.Running,
				slip.Quantile(0.5).Round(time.Microsecond), slip.Quantile(0.9).Round(time.Microsecond), slip.Quantile(0.99).Round(time.Microsecond))
		case syscall.SIGTERM:
			if err := m.Stop(false); err != nil {
				log.Error("stop", "err", err)
				return 1
			}
			return 0
		}
	}
	return 0
}
