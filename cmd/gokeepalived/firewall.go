package main

import (
	"log/slog"

	"gokeepalived/parser"
	"gokeepalived/vrrp"
)

// openFirewall creates the nftables firewall that enforces no_accept, in the table
// global_defs names (keepalived's "keepalived" by default), removing what a previous
// run left there. Without nf_tables the daemon runs on, and each no_accept instance
// logs that it is not enforced; nil is returned then.
func openFirewall(cfg *parser.Config, log *slog.Logger) *vrrp.NFTFirewall {
	fw, err := vrrp.NewNFTFirewall(vrrp.FirewallTable(&cfg.Global))
	if err == nil {
		return fw
	}
	for _, in := range cfg.Instances {
		if vrrp.NoAcceptReason(in) != "" {
			log.Error("no firewall: no_accept cannot be enforced", "err", err)
			return nil
		}
	}
	log.Debug("no firewall; no instance needs one", "err", err)
	return nil
}

// closeFirewall removes the firewall's tables at shutdown.
func closeFirewall(fw *vrrp.NFTFirewall, log *slog.Logger) {
	if err := fw.Close(); err != nil {
		log.Error("cannot remove the nftables tables", "err", err)
	}
}
