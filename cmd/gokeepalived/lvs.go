package main

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"gokeepalived/ipvs"
	"gokeepalived/parser"
	"gokeepalived/vrrp"
)

// lvsNotifyTimeout bounds one notify_up/notify_down/quorum script.
const lvsNotifyTimeout = 10 * time.Second

// startLVS starts the health checks and the IPVS reconciler, which keeps the services
// it owns in stateFile (none when empty). It fails when the kernel has no IPVS:
// gokeepalived never reports an IPVS change that did not happen.
func startLVS(ctx context.Context, cfg *parser.Config, stateFile string, log *slog.Logger, alerts *alerter) (*ipvs.Manager, func(), error) {
	k, err := ipvs.NewMoby(ipvs.DefaultCallTimeout)
	if err != nil {
		return nil, nil, err
	}
	m := ipvs.NewManager(k, log)
	m.CheckStartDelay = time.Second // keepalived's BOOTSTRAP_DELAY
	if stateFile != "" {
		if err := os.MkdirAll(filepath.Dir(stateFile), 0o700); err != nil {
			log.Warn("cannot create the IPVS state file's directory", "err", err)
		}
		m.StateFile = stateFile
	}
	if err := m.SetHeld(localAddrs()); err != nil {
		return nil, nil, err
	}
	runner := vrrp.NewNotifyRunner(&cfg.Global, log)
	var fifos []*vrrp.FIFO
	for _, f := range []struct {
		fifo   *parser.FIFO
		script *parser.Script
	}{{cfg.Global.NotifyFIFO, cfg.Global.NotifyFIFOScript}, {cfg.Global.LVSNotifyFIFO, cfg.Global.LVSNotifyFIFOScript}} {
		if f.fifo == nil {
			continue
		}
		fifo, err := vrrp.OpenFIFO(f.fifo, f.script, runner)
		if err != nil {
			log.Error("cannot open notify FIFO", "path", f.fifo.Path, "err", err)
			continue
		}
		fifos = append(fifos, fifo)
	}
	write := func(line string) {
		for _, f := range fifos {
			_ = f.WriteLine(line)
		}
	}
	run := func(s *parser.Script) {
		if s == nil {
			return
		}
		go func() {
			sctx, cancel := context.WithTimeout(context.Background(), lvsNotifyTimeout)
			defer cancel()
			if err := runner.Run(sctx, s); err != nil {
				log.Warn("notify script failed", "script", s.Path(), "err", err)
			}
		}()
	}
	m.OnRealServer = func(e ipvs.RealServerEvent) {
		alerts.realServer(e)
		write(vrrp.FormatRSLine(netip.AddrPortFrom(e.RS.Addr, e.RS.Port), lvsService(e.VS), e.Up))
		if e.Up {
			run(e.RS.NotifyUp)
		} else {
			run(e.RS.NotifyDown)
		}
	}
	m.OnQuorum = func(e ipvs.QuorumEvent) {
		alerts.quorum(e)
		write(vrrp.FormatVSLine(lvsService(e.VS), e.Up))
		if e.Up {
			run(e.VS.QuorumUp)
		} else {
			run(e.VS.QuorumDown)
		}
	}
	if err := m.Start(ctx, cfg); err != nil {
		return nil, nil, err
	}
	stopFIFOs := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, f := range fifos {
			if err := f.Stop(sctx); err != nil {
				log.Warn("notify FIFO", "err", err)
			}
		}
		k.Close()
	}
	return m, stopFIFOs, nil
}

// lvsService names a virtual server as keepalived's LVS FIFO lines do.
func lvsService(vs *parser.VirtualServer) vrrp.LVSService {
	return vrrp.LVSService{Group: vs.Group, FWMark: vs.FWMark, Addr: netip.AddrPortFrom(vs.Addr, vs.Port), Protocol: vs.Protocol}
}

// runOmega runs, at shutdown, the notify_down and quorum_down scripts of the virtual
// servers with omega (keepalived), one after the other, each bounded.
func runOmega(lvs *ipvs.Manager, g *parser.GlobalDefs, log *slog.Logger) {
	notes := lvs.OmegaNotifies()
	if len(notes) == 0 {
		return
	}
	runner := vrrp.NewNotifyRunner(g, log)
	for _, n := range notes {
		ctx, cancel := context.WithTimeout(context.Background(), lvsNotifyTimeout)
		if err := runner.Run(ctx, n.Script); err != nil {
			log.Warn("omega script failed", "script", n.Script.Path(), "err", err)
		}
		cancel()
	}
}
