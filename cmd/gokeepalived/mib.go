package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"gokeepalived/ipvs"
	"gokeepalived/parser"
	"gokeepalived/vrrp"
)

// The MIB walk (`gokeepalived status --mib`) renders the VRRP state as the objects of
// VRRP-MIB (RFC 2787) and KEEPALIVED-MIB would hold them, one per line as snmpwalk
// prints them, with the numeric OID first. There is no SNMP agent: this is for people
// and scripts that know those objects.
const (
	oidVRRPMIB       = ".1.3.6.1.2.1.68"         // VRRP-MIB
	oidKeepalivedMIB = ".1.3.6.1.4.1.9586.100.5" // KEEPALIVED-MIB
)

type mibWriter struct {
	w io.Writer
}

func (m mibWriter) obj(oid, name, typ, value string) {
	fmt.Fprintf(m.w, "%s %s = %s: %s\n", oid, name, typ, value)
}

// writeMIB writes the walk of the running instances and, when the LVS engine runs,
// KEEPALIVED-MIB's virtualServerTable (check 3) and realServerTable (check 4).
func writeMIB(w io.Writer, g *parser.GlobalDefs, st []vrrp.InstanceStatus, rs []ipvs.RealServerStatus, quorum map[ipvs.VirtualServerKey]bool, start time.Time) {
	m := mibWriter{w}
	// KEEPALIVED-MIB global
	m.obj(oidKeepalivedMIB+".1.1.0", "KEEPALIVED-MIB::version.0", "STRING", fmt.Sprintf("%q", "gokeepalived "+version))
	m.obj(oidKeepalivedMIB+".1.2.0", "KEEPALIVED-MIB::routerId.0", "STRING", fmt.Sprintf("%q", g.RouterID))
	// KEEPALIVED-MIB vrrpInstanceTable (vrrp 3), indexed 1..n in configuration order.
	kaState := func(s vrrp.State) string {
		return fmt.Sprintf("%s(%d)", strings.ToLower(s.String()), int(s))
	}
	for i, s := range st {
		idx := fmt.Sprintf(".%d", i+1)
		col := func(c int, name, typ, value string) {
			m.obj(fmt.Sprintf("%s.2.3.1.%d%s", oidKeepalivedMIB, c, idx), "KEEPALIVED-MIB::"+name+idx, typ, value)
		}
		vips := "allSet(1)"
		if s.State != vrrp.StateMaster {
			vips = "notAllSet(2)"
		}
		col(2, "vrrpInstanceName", "STRING", fmt.Sprintf("%q", s.Name))
		col(3, "vrrpInstanceVirtualRouterId", "Gauge32", fmt.Sprint(s.Config.VRID))
		col(4, "vrrpInstanceState", "INTEGER", kaState(s.State))
		initial := vrrp.StateBackup
		if s.Config.State == "MASTER" {
			initial = vrrp.StateMaster
		}
		col(5, "vrrpInstanceInitialState", "INTEGER", kaState(initial))
		col(6, "vrrpInstanceWantedState", "INTEGER", kaState(s.State))
		col(7, "vrrpInstanceBasePriority", "INTEGER", fmt.Sprint(s.BasePriority))
		col(8, "vrrpInstanceEffectivePriority", "INTEGER", fmt.Sprint(s.Priority))
		col(9, "vrrpInstanceVipsStatus", "INTEGER", vips)
		col(10, "vrrpInstancePrimaryInterface", "STRING", fmt.Sprintf("%q", s.Config.Interface))
	}
	writeCheckMIB(m, rs, quorum)
	// VRRP-MIB (RFC 2787): vrrpNodeVersion, vrrpOperTable and vrrpRouterStatsTable,
	// indexed by ifIndex and VRID. Its states are initialize(1), backup(2), master(3).
	m.obj(oidVRRPMIB+".1.1.0", "VRRP-MIB::vrrpNodeVersion.0", "INTEGER", "2")
	rfcState := map[vrrp.State]string{vrrp.StateInit: "initialize(1)", vrrp.StateBackup: "backup(2)",
		vrrp.StateMaster: "master(3)", vrrp.StateFault: "initialize(1)"}
	for _, s := range st {
		ifindex := 0
		if ifi, err := net.InterfaceByName(s.Config.Interface); err == nil {
			ifindex = ifi.Index
		}
		idx := fmt.Sprintf(".%d.%d", ifindex, s.Config.VRID)
		oper := func(c int, name, typ, value string) {
			m.obj(fmt.Sprintf("%s.1.3.1.%d%s", oidVRRPMIB, c, idx), "VRRP-MIB::"+name+idx, typ, value)
		}
		oper(2, "vrrpOperVirtualMacAddr", "STRING", fmt.Sprintf("0:0:5e:0:1:%x", s.Config.VRID))
		oper(3, "vrrpOperState", "INTEGER", rfcState[s.State])
		oper(4, "vrrpOperAdminState", "INTEGER", "up(1)")
		oper(5, "vrrpOperPriority", "INTEGER", fmt.Sprint(s.Priority))
		oper(6, "vrrpOperIpAddrCount", "INTEGER", fmt.Sprint(len(s.Config.VIPs)))
		master := "0.0.0.0"
		if s.MasterAddr.Is4() {
			master = s.MasterAddr.String()
		}
		oper(7, "vrrpOperMasterIpAddr", "IpAddress", master)
		src := "0.0.0.0"
		if s.SrcAddr.Is4() {
			src = s.SrcAddr.String()
		}
		oper(8, "vrrpOperPrimaryIpAddr", "IpAddress", src)
		auth := "noAuthentication(1)"
		if s.Config.Auth != nil && s.Config.Auth.Type == "PASS" {
			auth = "simpleTextPassword(2)"
		} else if s.Config.Auth != nil && s.Config.Auth.Type == "AH" {
			auth = "ipAuthenticationHeader(3)"
		}
		oper(9, "vrrpOperAuthType", "INTEGER", auth)
		oper(11, "vrrpOperAdvertisementInterval", "INTEGER", fmt.Sprint(max(1, int(s.Config.AdvertInt.D()/time.Second))))
		preempt := "true(1)"
		if s.Config.Nopreempt {
			preempt = "false(2)"
		}
		oper(12, "vrrpOperPreemptMode", "INTEGER", preempt)
		oper(13, "vrrpOperVirtualRouterUpTime", "Timeticks", fmt.Sprint(time.Since(start).Milliseconds()/10))
		oper(14, "vrrpOperProtocol", "INTEGER", "ip(1)")
		c := s.Stats
		stat := func(col int, name string, v uint64) {
			m.obj(fmt.Sprintf("%s.2.4.1.%d%s", oidVRRPMIB, col, idx), "VRRP-MIB::"+name+idx, "Counter32", fmt.Sprint(v))
		}
		stat(1, "vrrpStatsBecomeMaster", c.BecomeMaster)
		stat(2, "vrrpStatsAdvertiseRcvd", c.AdvertRcvd)
		stat(3, "vrrpStatsAdvertiseIntervalErrors", c.AdvertIntervalErr)
		stat(4, "vrrpStatsAuthFailures", c.AuthFailure)
		stat(5, "vrrpStatsIpTtlErrors", c.IPTTLErr)
		stat(6, "vrrpStatsPriorityZeroPktsRcvd", c.PriZeroRcvd)
		stat(7, "vrrpStatsPriorityZeroPktsSent", c.PriZeroSent)
		stat(8, "vrrpStatsInvalidTypePktsRcvd", c.InvalidTypeRcvd)
		stat(9, "vrrpStatsAddressListErrors", c.AddrListErr)
		stat(10, "vrrpStatsInvalidAuthType", c.InvalidAuthType)
		stat(11, "vrrpStatsAuthTypeMismatch", c.AuthTypeMismatch)
		stat(12, "vrrpStatsPacketLengthErrors", c.PacketLenErr)
	}
}

var mibSchedulers = map[string]int{"rr": 1, "wrr": 2, "lc": 3, "wlc": 4, "lblc": 5, "lblcr": 6, "dh": 7, "sh": 8,
	"sed": 9, "nq": 10, "fo": 11, "ovf": 12}

func mibForwarding(f parser.Forwarding) string {
	switch f.Method {
	case "DR":
		return "dr(2)"
	case "TUN":
		return "tun(3)"
	}
	return "nat(1)"
}

// writeCheckMIB writes virtualServerTable and realServerTable, indexed by the
// configuration order of virtual servers and of their real servers.
func writeCheckMIB(m mibWriter, rs []ipvs.RealServerStatus, quorum map[ipvs.VirtualServerKey]bool) {
	var vss []*parser.VirtualServer
	byVS := map[*parser.VirtualServer][]ipvs.RealServerStatus{}
	for _, r := range rs {
		if _, ok := byVS[r.VS]; !ok {
			vss = append(vss, r.VS)
		}
		byVS[r.VS] = append(byVS[r.VS], r)
	}
	for i, vs := range vss {
		vidx := fmt.Sprintf(".%d", i+1)
		col := func(c int, name, typ, value string) {
			m.obj(fmt.Sprintf("%s.3.3.1.%d%s", oidKeepalivedMIB, c, vidx), "KEEPALIVED-MIB::"+name+vidx, typ, value)
		}
		switch {
		case vs.Group != "":
			col(2, "virtualServerType", "INTEGER", "group(3)")
			col(3, "virtualServerNameOfGroup", "STRING", fmt.Sprintf("%q", vs.Group))
		case vs.FWMark != 0:
			col(2, "virtualServerType", "INTEGER", "fwmark(1)")
			col(4, "virtualServerFwMark", "Gauge32", fmt.Sprint(vs.FWMark))
		default:
			col(2, "virtualServerType", "INTEGER", "ip(2)")
			col(6, "virtualServerAddress", "STRING", fmt.Sprintf("%q", vs.Addr))
			col(7, "virtualServerPort", "Gauge32", fmt.Sprint(vs.Port))
		}
		proto := "tcp(1)"
		if strings.EqualFold(vs.Protocol, "UDP") {
			proto = "udp(2)"
		}
		col(8, "virtualServerProtocol", "INTEGER", proto)
		algo, ok := mibSchedulers[vs.Scheduler]
		if !ok {
			algo = 99
		}
		col(9, "virtualServerLoadBalancingAlgo", "INTEGER", fmt.Sprintf("%s(%d)", vs.Scheduler, algo))
		col(10, "virtualServerLoadBalancingKind", "INTEGER", mibForwarding(vs.Forwarding))
		col(16, "virtualServerDelayLoop", "Gauge32", fmt.Sprint(int(vs.DelayLoop.D()/time.Second)))
		up := 0
		for _, r := range byVS[vs] {
			if r.Up {
				up++
			}
		}
		col(20, "virtualServerRealServersTotal", "Gauge32", fmt.Sprint(len(byVS[vs])))
		col(21, "virtualServerRealServersUp", "Gauge32", fmt.Sprint(up))
		col(22, "virtualServerQuorum", "Gauge32", fmt.Sprint(vs.Quorum))
		met := "met(1)"
		if q, ok := quorum[ipvs.VSKey(vs)]; ok && !q {
			met = "notMet(2)"
		}
		col(23, "virtualServerQuorumStatus", "INTEGER", met)
		for j, r := range byVS[vs] {
			ridx := fmt.Sprintf("%s.%d", vidx, j+1)
			rcol := func(c int, name, typ, value string) {
				m.obj(fmt.Sprintf("%s.3.4.1.%d%s", oidKeepalivedMIB, c, ridx), "KEEPALIVED-MIB::"+name+ridx, typ, value)
			}
			status := "dead(2)"
			if r.Up {
				status = "alive(1)"
			}
			action := "remove(1)"
			if r.RS.InhibitOnFailure {
				action = "inhibit(2)"
			}
			failed := 0
			for _, c := range r.Checks {
				if !c.Up {
					failed++
				}
			}
			rcol(4, "realServerAddress", "STRING", fmt.Sprintf("%q", r.RS.Addr))
			rcol(5, "realServerPort", "Gauge32", fmt.Sprint(r.RS.Port))
			rcol(6, "realServerStatus", "INTEGER", status)
			rcol(7, "realServerWeight", "INTEGER", fmt.Sprint(r.Weight))
			rcol(10, "realServerActionWhenDown", "INTEGER", action)
			rcol(13, "realServerFailedChecks", "Gauge32", fmt.Sprint(failed))
			rcol(40, "realServerForwardingMethod", "INTEGER", mibForwarding(r.RS.Forwarding))
		}
	}
}
