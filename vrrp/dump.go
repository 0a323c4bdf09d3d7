package vrrp

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"gokeepalived/parser"
)

// The keepalived-compatible dumps: SIGUSR1 writes the data dump, SIGUSR2 the stats dump
// and the JSON signal the JSON dump (reference §4). They render Status(); tools that
// scrape keepalived's files keep working.

// WriteStats writes keepalived's /tmp/keepalived.stats layout.
func WriteStats(w io.Writer, st []InstanceStatus) error {
	var b strings.Builder
	for _, s := range st {
		c := s.Stats
		fmt.Fprintf(&b, "VRRP Instance: %s\n", s.Name)
		fmt.Fprintf(&b, "  Advertisements:\n    Received: %d\n    Sent: %d\n", c.AdvertRcvd, c.AdvertSent)
		fmt.Fprintf(&b, "  Became master: %d\n  Released master: %d\n", c.BecomeMaster, c.ReleaseMaster)
		fmt.Fprintf(&b, "  Packet Errors:\n    Length: %d\n    TTL: %d\n    Invalid Type: %d\n    Advertisement Interval: %d\n    Address List: %d\n",
			c.PacketLenErr, c.IPTTLErr, c.InvalidTypeRcvd, c.AdvertIntervalErr, c.AddrListErr)
		fmt.Fprintf(&b, "  Authentication Errors:\n    Invalid Type: %d\n    Type Mismatch: %d\n    Failure: %d\n",
			c.InvalidAuthType, c.AuthTypeMismatch, c.AuthFailure)
		fmt.Fprintf(&b, "  Priority Zero:\n    Received: %d\n    Sent: %d\n", c.PriZeroRcvd, c.PriZeroSent)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteData writes keepalived's /tmp/keepalived.data layout (the VRRP part), plus the
// per-tracker breakdown keepalived leaves out.
func WriteData(w io.Writer, g *parser.GlobalDefs, st []InstanceStatus) error {
	var b strings.Builder
	b.WriteString("------< Global definitions >------\n")
	fmt.Fprintf(&b, " Router ID = %s\n", g.RouterID)
	fmt.Fprintf(&b, " VRRP IPv4 mcast group = %s\n", g.MulticastGroup4)
	fmt.Fprintf(&b, " VRRP IPv6 mcast group = %s\n", g.MulticastGroup6)
	fmt.Fprintf(&b, " Gratuitous ARP delay = %d\n", int(g.GARPMasterDelay.D()/time.Second))
	fmt.Fprintf(&b, " Gratuitous ARP repeat = %d\n", g.GARPMasterRepeat)
	fmt.Fprintf(&b, " Num adverts before down = %d\n", g.DownTimerAdverts)
	b.WriteString("------< VRRP Topology >------\n")
	for _, s := range st {
		c := s.Config
		fmt.Fprintf(&b, " VRRP Instance = %s\n", s.Name)
		fmt.Fprintf(&b, "   VRRP Version = %d\n", c.Version)
		fmt.Fprintf(&b, "   State = %s\n", s.State)
		fmt.Fprintf(&b, "   Wantstate = %s\n", s.State)
		fmt.Fprintf(&b, "   Last transition = %d.%06d (%s)\n", s.LastTransition.Unix(), s.LastTransition.Nanosecond()/1000,
			s.LastTransition.Format("Mon Jan _2 15:04:05.000000 2006"))
		fmt.Fprintf(&b, "   Last transition reason = %s\n", s.Reason)
		fmt.Fprintf(&b, "   Master down timer = %d usecs\n", s.MasterDownInterval.Microseconds())
		fmt.Fprintf(&b, "   Interface = %s\n", c.Interface)
		if m := c.VMAC; m != nil {
			fmt.Fprintf(&b, "   Use VMAC, i/f name %s, MAC %s, xmit_base = %t\n", m.Name, m.MAC, m.XmitBase)
		}
		fmt.Fprintf(&b, "   Using src_ip = %s\n", s.SrcAddr)
		fmt.Fprintf(&b, "   Virtual Router ID = %d\n", c.VRID)
		fmt.Fprintf(&b, "   Priority = %d\n", s.BasePriority)
		fmt.Fprintf(&b, "   Effective priority = %d\n", s.Priority)
		fmt.Fprintf(&b, "   Advert interval = %s\n", advertText(c))
		fmt.Fprintf(&b, "   Accept = %s\n", enabled(c.Accept))
		fmt.Fprintf(&b, "   Preempt = %s\n", enabled(!c.Nopreempt))
		if c.PreemptDelay > 0 {
			fmt.Fprintf(&b, "   Preempt delay = %g secs\n", c.PreemptDelay.D().Seconds())
		}
		if s.MasterAddr.IsValid() {
			fmt.Fprintf(&b, "   Master router = %s\n   Master priority = %d\n", s.MasterAddr, s.MasterPriority)
		}
		fmt.Fprintf(&b, "   Virtual IP (%d):\n", len(c.VIPs))
		for _, v := range c.VIPs {
			fmt.Fprintf(&b, "     %s\n", vipText(v, s.State == StateMaster))
		}
		if len(c.ExcludedVIPs) > 0 {
			fmt.Fprintf(&b, "   Virtual IP Excluded (%d):\n", len(c.ExcludedVIPs))
			for _, v := range c.ExcludedVIPs {
				fmt.Fprintf(&b, "     %s\n", vipText(v, s.State == StateMaster))
			}
		}
		if len(s.Trackers) > 0 {
			b.WriteString("   Tracked (effective priority breakdown):\n")
			for _, t := range s.Trackers {
				fmt.Fprintf(&b, "     %s %s weight %d delta %+d%s %s\n", t.Kind, t.Name, t.Weight, t.Delta, faultMark(t), t.Why)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func advertText(c *parser.VRRPInstance) string {
	if c.Version == 3 {
		return fmt.Sprintf("%d milli-sec", c.AdvertInt.D().Milliseconds())
	}
	return fmt.Sprintf("%d sec", int(c.AdvertInt.D()/time.Second))
}

func enabled(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

func faultMark(c Contribution) string {
	switch {
	case c.Fault:
		return " FAULT"
	case c.Pending:
		return " pending"
	}
	return ""
}

// vipText renders a VIP as keepalived's dump and JSON do: "10.9.9.9 dev va scope global
// label va:1 set".
func vipText(v *parser.VIP, set bool) string {
	s := v.Prefix.Addr().String() + " dev " + v.Dev
	scope := v.Scope
	if scope == "" {
		scope = "global"
	}
	s += " scope " + scope
	if v.Label != "" {
		s += " label " + v.Label
	}
	if set {
		s += " set"
	}
	return s
}

// jsonInstance is one element of keepalived's JSON dump (json_version 1): data + stats.
type jsonInstance struct {
	Data  jsonData      `json:"data"`
	Stats StatsSnapshot `json:"stats"`
	// Trackers is gokeepalived's addition: the per-tracker breakdown (keepalived#2673).
	Trackers []jsonTracker `json:"trackers"`
}

type jsonData struct {
	Iname             string   `json:"iname"`
	DontTrackPrimary  bool     `json:"dont_track_primary"`
	SkipCheckAdvAddr  bool     `json:"skip_check_adv_addr"`
	StrictMode        bool     `json:"strict_mode"`
	VmacIfname        string   `json:"vmac_ifname"`
	IfpIfname         string   `json:"ifp_ifname"`
	MasterPriority    int      `json:"master_priority"`
	LastTransition    float64  `json:"last_transition"`
	GarpDelay         float64  `json:"garp_delay"`
	GarpRefresh       float64  `json:"garp_refresh"`
	GarpRep           int      `json:"garp_rep"`
	GarpRefreshRep    int      `json:"garp_refresh_rep"`
	GarpLowerPrioDel  float64  `json:"garp_lower_prio_delay"`
	GarpLowerPrioRep  int      `json:"garp_lower_prio_rep"`
	LowerPrioNoAdvert bool     `json:"lower_prio_no_advert"`
	HigherPrioSendAdv bool     `json:"higher_prio_send_advert"`
	VRID              int      `json:"vrid"`
	BasePriority      int      `json:"base_priority"`
	EffectivePriority int      `json:"effective_priority"`
	VIPSet            bool     `json:"vipset"`
	PromoteSecondarie bool     `json:"promote_secondaries"`
	AdverInt          float64  `json:"adver_int"`
	MasterAdverInt    float64  `json:"master_adver_int"`
	Accept            bool     `json:"accept"`
	Nopreempt         bool     `json:"nopreempt"`
	PreemptDelay      float64  `json:"preempt_delay"`
	State             int      `json:"state"`
	Wantstate         int      `json:"wantstate"`
	Version           int      `json:"version"`
	SMTPAlert         bool     `json:"smtp_alert"`
	NotifyDeleted     bool     `json:"notify_deleted"`
	VIPs              []string `json:"vips"`
	EVIPs             []string `json:"evips"`
	TrackScript       []string `json:"track_script"`
	AuthType          int      `json:"auth_type"`
}

type jsonTracker struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Weight  int    `json:"weight"`
	Delta   int    `json:"delta"`
	Fault   bool   `json:"fault"`
	Pending bool   `json:"pending"`
	Why     string `json:"why"`
}

// WriteJSON writes keepalived's /tmp/keepalived.json (json_version 1 layout: an array of
// {data, stats}), with the tracker status keepalived leaves out.
func WriteJSON(w io.Writer, st []InstanceStatus) error {
	out := make([]jsonInstance, 0, len(st))
	for _, s := range st {
		c := s.Config
		master := s.State == StateMaster
		d := jsonData{
			Iname: s.Name, DontTrackPrimary: c.DontTrackPrimary, SkipCheckAdvAddr: c.SkipCheckAdvAddr,
			StrictMode: c.Strict, IfpIfname: c.Interface, MasterPriority: int(s.MasterPriority),
			LastTransition: float64(s.LastTransition.UnixMicro()) / 1e6,
			GarpDelay:      c.GARPMasterDelay.D().Seconds(), GarpRefresh: c.GARPMasterRefresh.D().Seconds(),
			GarpRep: c.GARPMasterRepeat, GarpRefreshRep: c.GARPMasterRefreshRepeat,
			GarpLowerPrioDel: c.GARPLowerPrioDelay.D().Seconds(), GarpLowerPrioRep: c.GARPLowerPrioRepeat,
			LowerPrioNoAdvert: c.LowerPrioNoAdvert, HigherPrioSendAdv: c.HigherPrioSendAdvert,
			VRID: c.VRID, BasePriority: int(s.BasePriority), EffectivePriority: int(s.Priority),
			VIPSet: master, PromoteSecondarie: c.PromoteSecondaries,
			AdverInt: c.AdvertInt.D().Seconds(), MasterAdverInt: s.MasterAdverInt.Seconds(),
			Accept: c.Accept, Nopreempt: c.Nopreempt, PreemptDelay: c.PreemptDelay.D().Seconds(),
			State: int(s.State), Wantstate: int(s.State), Version: c.Version, SMTPAlert: c.SMTPAlert,
			NotifyDeleted: c.NotifyDeleted, VIPs: []string{}, EVIPs: []string{}, TrackScript: []string{},
		}
		if c.VMAC != nil {
			d.VmacIfname = c.VMAC.Name
		}
		for _, v := range c.VIPs {
			d.VIPs = append(d.VIPs, vipText(v, master))
		}
		for _, v := range c.ExcludedVIPs {
			d.EVIPs = append(d.EVIPs, vipText(v, master))
		}
		for _, r := range c.TrackScripts {
			d.TrackScript = append(d.TrackScript, r.Name)
		}
		if c.Auth != nil {
			switch c.Auth.Type {
			case "PASS":
				d.AuthType = 1
			case "AH":
				d.AuthType = 2
			}
		}
		ji := jsonInstance{Data: d, Stats: s.Stats, Trackers: []jsonTracker{}}
		for _, t := range s.Trackers {
			ji.Trackers = append(ji.Trackers, jsonTracker{Kind: t.Kind.String(), Name: t.Name, Weight: t.Weight,
				Delta: t.Delta, Fault: t.Fault, Pending: t.Pending, Why: t.Why})
		}
		out = append(out, ji)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
