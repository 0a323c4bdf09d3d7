package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"time"

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

// writeMIB writes the walk of the running instances.
func writeMIB(w io.Writer, g *parser.GlobalDefs, st []vrrp.InstanceStatus, start time.Time) {
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
