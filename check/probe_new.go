package check

import (
	"errors"
	"fmt"
	"net/netip"

	"gokeepalived/parser"
)

// New builds the probe of checker c of real server rs in virtual server vs. c holds
// effective values (as the parser resolves them): where to connect defaults to the
// real server's address and port. The probe is safe for concurrent use and keeps no
// connection between checks.
//
// BFD_CHECK is not supported.
func New(c *parser.Checker, rs *parser.RealServer, vs *parser.VirtualServer) (Probe, error) {
	if c == nil {
		return nil, errors.New("no checker")
	}
	var p Probe
	var err error
	switch c.Type {
	case "TCP_CHECK":
		p, err = newTCPProbe(c, rs)
	case "UDP_CHECK":
		p, err = newUDPProbe(c, rs)
	case "PING_CHECK":
		p, err = newPingProbe(c, rs)
	case "HTTP_GET", "SSL_GET":
		p, err = newHTTPProbe(c, rs)
	case "SMTP_CHECK":
		p, err = newSMTPProbe(c, rs)
	case "DNS_CHECK":
		p, err = newDNSProbe(c, rs)
	case "MISC_CHECK":
		p, err = newMiscProbe(c)
	case "FILE_CHECK":
		p, err = newFileProbe(c, rs)
	case "BFD_CHECK":
		return nil, errors.New("BFD_CHECK is not supported by gokeepalived")
	default:
		return nil, fmt.Errorf("unknown checker type %q", c.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", probeWhere(rs, vs), err)
	}
	return p, nil
}

// probeWhere names a real server of a virtual server for messages.
func probeWhere(rs *parser.RealServer, vs *parser.VirtualServer) string {
	where := "real server"
	if rs != nil {
		where = fmt.Sprintf("real server %s", rs.Addr)
		if rs.Port != 0 {
			where = "real server " + netip.AddrPortFrom(rs.Addr, rs.Port).String()
		}
	}
	if vs == nil {
		return where
	}
	switch {
	case vs.Group != "":
		return fmt.Sprintf("%s of virtual server group %s", where, vs.Group)
	case vs.FWMark != 0:
		return fmt.Sprintf("%s of virtual server fwmark %d", where, vs.FWMark)
	}
	return fmt.Sprintf("%s of virtual server %s", where, netip.AddrPortFrom(vs.Addr, vs.Port))
}
