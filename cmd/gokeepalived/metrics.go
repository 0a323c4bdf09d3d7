package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gokeepalived/ipvs"
	"gokeepalived/vrrp"
)

// The VRRP series use keepalived-exporter's names and labels, so existing dashboards and
// alerts keep working; gokeepalived_* series add what the exporter cannot see.
var (
	commonLabels = []string{"iname", "intf", "vrid", "state"}
	descUp       = prometheus.NewDesc("keepalived_up", "Status", nil, nil)
	descState    = prometheus.NewDesc("keepalived_vrrp_state", "State of vrrp", []string{"iname", "intf", "vrid", "ip_address"}, nil)
	descGARP     = prometheus.NewDesc("keepalived_gratuitous_arp_delay_total", "Gratuitous ARP delay", commonLabels, nil)
	descCounters = []struct {
		desc  *prometheus.Desc
		value func(vrrp.StatsSnapshot) uint64
	}{
		{counterDesc("keepalived_advertisements_received_total", "Advertisements received"), func(s vrrp.StatsSnapshot) uint64 { return s.AdvertRcvd }},
		{counterDesc("keepalived_advertisements_sent_total", "Advertisements sent"), func(s vrrp.StatsSnapshot) uint64 { return s.AdvertSent }},
		{counterDesc("keepalived_become_master_total", "Became master"), func(s vrrp.StatsSnapshot) uint64 { return s.BecomeMaster }},
		{counterDesc("keepalived_release_master_total", "Released master"), func(s vrrp.StatsSnapshot) uint64 { return s.ReleaseMaster }},
		{counterDesc("keepalived_packet_length_errors_total", "Packet length errors"), func(s vrrp.StatsSnapshot) uint64 { return s.PacketLenErr }},
		{counterDesc("keepalived_advertisements_interval_errors_total", "Advertisement interval errors"), func(s vrrp.StatsSnapshot) uint64 { return s.AdvertIntervalErr }},
		{counterDesc("keepalived_ip_ttl_errors_total", "TTL errors"), func(s vrrp.StatsSnapshot) uint64 { return s.IPTTLErr }},
		{counterDesc("keepalived_invalid_type_received_total", "Invalid type errors"), func(s vrrp.StatsSnapshot) uint64 { return s.InvalidTypeRcvd }},
		{counterDesc("keepalived_address_list_errors_total", "Address list errors"), func(s vrrp.StatsSnapshot) uint64 { return s.AddrListErr }},
		{counterDesc("keepalived_authentication_invalid_total", "Authentication invalid"), func(s vrrp.StatsSnapshot) uint64 { return s.InvalidAuthType }},
		{counterDesc("keepalived_authentication_mismatch_total", "Authentication mismatch"), func(s vrrp.StatsSnapshot) uint64 { return s.AuthTypeMismatch }},
		{counterDesc("keepalived_authentication_failure_total", "Authentication failure"), func(s vrrp.StatsSnapshot) uint64 { return s.AuthFailure }},
		{counterDesc("keepalived_priority_zero_received_total", "Priority zero received"), func(s vrrp.StatsSnapshot) uint64 { return s.PriZeroRcvd }},
		{counterDesc("keepalived_priority_zero_sent_total", "Priority zero sent"), func(s vrrp.StatsSnapshot) uint64 { return s.PriZeroSent }},
		{counterDesc("gokeepalived_checksum_errors_total", "Adverts dropped for a bad checksum"), func(s vrrp.StatsSnapshot) uint64 { return s.ChecksumErr }},
		{counterDesc("gokeepalived_version_errors_total", "Adverts dropped for another VRRP version"), func(s vrrp.StatsSnapshot) uint64 { return s.VersionErr }},
		{counterDesc("gokeepalived_send_errors_total", "Adverts that could not be sent"), func(s vrrp.StatsSnapshot) uint64 { return s.SendErr }},
	}
	descPrio    = prometheus.NewDesc("gokeepalived_vrrp_effective_priority", "Effective priority (base plus trackers)", []string{"iname", "vrid"}, nil)
	descTracker = prometheus.NewDesc("gokeepalived_vrrp_tracker_delta", "Priority contribution of a tracker", []string{"iname", "kind", "name"}, nil)
	descRSUp    = prometheus.NewDesc("gokeepalived_real_server_up", "Real server health (1 up)", []string{"virtual_server", "real_server"}, nil)
	descRSW     = prometheus.NewDesc("gokeepalived_real_server_weight", "Real server weight as programmed", []string{"virtual_server", "real_server"}, nil)
	descRSLat   = prometheus.NewDesc("gokeepalived_real_server_check_latency_seconds", "Latency of the last finished check attempt", []string{"virtual_server", "real_server"}, nil)
	descFWErr   = prometheus.NewDesc("gokeepalived_vrrp_firewall_errors_total", "no_accept firewall changes that failed", []string{"iname", "vrid"}, nil)
	descSyncd   = prometheus.NewDesc("gokeepalived_lvs_sync_daemon_state", "IPVS sync daemon of lvs_sync_daemon: 1 master, 2 backup, 0 not running", []string{"interface", "instance", "syncid"}, nil)
	descSyncErr = prometheus.NewDesc("gokeepalived_lvs_sync_daemon_failing", "1 while the last change of the IPVS sync daemon failed (it is retried)", []string{"interface", "instance", "syncid"}, nil)
)

func counterDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, commonLabels, nil)
}

// collector renders the engines' snapshots at every scrape.
type collector struct {
	vrrp  *vrrp.Manager
	lvs   *ipvs.Manager
	syncd *syncDaemons
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descState, descGARP, descPrio, descTracker, descRSUp, descRSW, descRSLat, descFWErr, descSyncd, descSyncErr} {
		ch <- d
	}
	for _, d := range descCounters {
		ch <- d.desc
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	if c.vrrp != nil {
		for _, s := range c.vrrp.Status() {
			vrid := strconv.Itoa(s.Config.VRID)
			labels := []string{s.Name, s.Config.Interface, vrid, s.State.String()}
			for _, d := range descCounters {
				ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.value(s.Stats)), labels...)
			}
			ch <- prometheus.MustNewConstMetric(descGARP, prometheus.CounterValue, s.Config.GARPMasterDelay.D().Seconds(), labels...)
			for _, v := range s.Config.VIPs {
				ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, float64(s.State), s.Name, v.Dev, vrid, v.Prefix.Addr().String())
			}
			ch <- prometheus.MustNewConstMetric(descPrio, prometheus.GaugeValue, float64(s.Priority), s.Name, vrid)
			if s.NoAccept != "" {
				ch <- prometheus.MustNewConstMetric(descFWErr, prometheus.CounterValue, float64(s.FirewallErrors), s.Name, vrid)
			}
			for _, t := range s.Trackers {
				ch <- prometheus.MustNewConstMetric(descTracker, prometheus.GaugeValue, float64(t.Delta), s.Name, t.Kind.String(), t.Name)
			}
		}
	}
	if c.lvs != nil {
		for _, r := range c.lvs.RealServers() {
			vs, rs := lvsService(r.VS).String(), fmt.Sprintf("%s:%d", r.RS.Addr, r.RS.Port)
			up := 0.0
			if r.Up {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descRSUp, prometheus.GaugeValue, up, vs, rs)
			ch <- prometheus.MustNewConstMetric(descRSW, prometheus.GaugeValue, float64(r.Weight), vs, rs)
			ch <- prometheus.MustNewConstMetric(descRSLat, prometheus.GaugeValue, r.Latency.Seconds(), vs, rs)
		}
	}
	if d := c.syncd.status(); d != nil {
		labels := []string{d.Interface, d.Instance, strconv.Itoa(d.SyncID)}
		state, failing := 0.0, 0.0
		switch d.Role {
		case ipvs.SyncMaster.String():
			state = float64(ipvs.SyncMaster)
		case ipvs.SyncBackup.String():
			state = float64(ipvs.SyncBackup)
		}
		if d.Error != "" {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(descSyncd, prometheus.GaugeValue, state, labels...)
		ch <- prometheus.MustNewConstMetric(descSyncErr, prometheus.GaugeValue, failing, labels...)
	}
}

// metricsHandler serves the engines' metrics in the Prometheus text format.
func metricsHandler(v *vrrp.Manager, l *ipvs.Manager, syncd *syncDaemons) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{vrrp: v, lvs: l, syncd: syncd})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// serveMetrics serves /metrics on addr until ctx ends (--metrics-address; off when empty).
func serveMetrics(ctx context.Context, addr string, log *slog.Logger, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("metrics", "address", "http://"+strings.TrimPrefix(ln.Addr().String(), "[::]")+"/metrics")
	return nil
}
