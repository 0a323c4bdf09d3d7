package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Family is an address family, with the kernel's values.
type Family uint16

// Address families.
const (
	IPv4 Family = 2  // AF_INET
	IPv6 Family = 10 // AF_INET6
)

// String names the family: "IPv4", "IPv6".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return "af(" + strconv.Itoa(int(f)) + ")"
}

// bits is the length of the family's addresses in bits.
func (f Family) bits() int {
	if f == IPv6 {
		return 128
	}
	return 32
}

// familyOf returns the family of a.
func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// Protocol is the transport protocol of an address service, with the IP protocol
// numbers. A firewall-mark service has none (0).
type Protocol uint16

// Protocols of address services.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String names the protocol as ipvsadm does: "TCP", "UDP", "SCTP".
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	case 0:
		return "none"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// SchedFlags are the scheduler flags of a service, with the kernel's bit values
// (IP_VS_SVC_F_*). Persistence is not a flag here: it is [Service.Timeout].
type SchedFlags uint32

// Scheduler flags. The kernel has three generic scheduler flags, which sh and mh name.
const (
	FlagOnePacket SchedFlags = 0x04 // ops: one-packet scheduling (UDP)
	FlagSched1    SchedFlags = 0x08 // flag-1, sh-fallback, mh-fallback
	FlagSched2    SchedFlags = 0x10 // flag-2, sh-port, mh-port
	FlagSched3    SchedFlags = 0x20 // flag-3
)

// Kernel service flags that the model keeps elsewhere or ignores.
const (
	kflagPersistent = 0x01 // IP_VS_SVC_F_PERSISTENT: Service.Timeout > 0
	kflagHashed     = 0x02 // IP_VS_SVC_F_HASHED: set by the kernel on every service
)

// String lists the flags: "ops,flag-1".
func (f SchedFlags) String() string {
	var out []string
	for _, n := range []struct {
		f    SchedFlags
		name string
	}{{FlagOnePacket, "ops"}, {FlagSched1, "flag-1"}, {FlagSched2, "flag-2"}, {FlagSched3, "flag-3"}} {
		if f&n.f != 0 {
			out = append(out, n.name)
			f &^= n.f
		}
	}
	if f != 0 {
		out = append(out, fmt.Sprintf("%#x", uint32(f)))
	}
	return strings.Join(out, ",")
}

// Forwarding is the forwarding method of a destination (lvs_method), with the kernel's
// values (IP_VS_CONN_F_MASQ, _TUNNEL, _DROUTE). The zero value is NAT, keepalived's
// default.
type Forwarding uint8

// Forwarding methods.
const (
	NAT Forwarding = 0 // masquerading
	TUN Forwarding = 2 // tunnelling
	DR  Forwarding = 3 // direct routing
)

// String names the method as keepalived.conf does: "NAT", "DR", "TUN".
func (f Forwarding) String() string {
	switch f {
	case NAT:
		return "NAT"
	case TUN:
		return "TUN"
	case DR:
		return "DR"
	}
	return "fwd(" + strconv.Itoa(int(f)) + ")"
}

// TunnelType is the encapsulation of a TUN destination, with the kernel's values.
type TunnelType uint8

// Tunnel types; IPIP is the zero value and keepalived's default.
const (
	TunnelIPIP TunnelType = 0
	TunnelGUE  TunnelType = 1
	TunnelGRE  TunnelType = 2
)

// TunnelCsum is the checksum mode of a GUE or GRE tunnel, with the kernel's values.
type TunnelCsum uint8

// Tunnel checksum modes; none (nocsum) is the zero value.
const (
	CsumNone   TunnelCsum = 0
	CsumOn     TunnelCsum = 1 // csum
	CsumRemote TunnelCsum = 2 // remcsum (GUE only)
)

// Tunnel holds the encapsulation of a TUN destination; the zero value is plain IPIP.
type Tunnel struct {
	Type TunnelType
	Port uint16 // GUE: the destination UDP port
	Csum TunnelCsum
}

// ServiceKey identifies a service in the kernel: family, protocol, address and port, or
// family and firewall mark.
type ServiceKey struct {
	Family   Family
	Protocol Protocol // 0 for a firewall-mark service
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32
}

// String renders the key as ipvsadm does: "TCP 10.0.0.1:80", "UDP [fd00::1]:53",
// "FWM 7 IPv4".
func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		return fmt.Sprintf("FWM %d %s", k.FWMark, k.Family)
	}
	return k.Protocol.String() + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// MarshalText renders the key as [ServiceKey.String] does, for the state file and JSON;
// [ServiceKey.UnmarshalText] reads it back. A key that the text cannot carry (an
// unknown protocol or family, an address of the other family) is an error.
func (k ServiceKey) MarshalText() ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads a key as [ServiceKey.MarshalText] writes it: "TCP 10.0.0.1:80",
// "SCTP [fd00::1]:3868", "FWM 7 IPv6".
func (k *ServiceKey) UnmarshalText(text []byte) error {
	key, err := parseServiceKey(string(text))
	if err == nil {
		err = key.check()
	}
	if err != nil {
		return fmt.Errorf("service %q: %w", text, err)
	}
	*k = key
	return nil
}

// parseServiceKey reads a key's text into its fields; [ServiceKey.check] validates the
// key.
func parseServiceKey(s string) (ServiceKey, error) {
	f := strings.Fields(s)
	switch {
	case len(f) == 3 && f[0] == "FWM":
		mark, err := strconv.ParseUint(f[1], 10, 32)
		if err == nil && mark == 0 {
			err = errors.New("0 is no mark")
		}
		if err != nil {
			return ServiceKey{}, fmt.Errorf("firewall mark: %w", err)
		}
		return ServiceKey{Family: familyNamed(f[2]), FWMark: uint32(mark)}, nil
	case len(f) == 2:
		proto := protocolNamed(f[0])
		if proto == 0 {
			return ServiceKey{}, fmt.Errorf("unknown protocol %q", f[0])
		}
		ap, err := netip.ParseAddrPort(f[1])
		if err != nil {
			return ServiceKey{}, err
		}
		return ServiceKey{Family: familyOf(ap.Addr()), Protocol: proto, Addr: ap.Addr(), Port: ap.Port()}, nil
	}
	return ServiceKey{}, errors.New(`want "PROTOCOL ADDRESS:PORT" or "FWM MARK FAMILY"`)
}

// check reports why the text form cannot carry k, if it cannot.
func (k ServiceKey) check() error {
	switch {
	case k.Family != IPv4 && k.Family != IPv6:
		return fmt.Errorf("unknown family %s", k.Family)
	case k.FWMark != 0 && (k.Protocol != 0 || k.Addr.IsValid() || k.Port != 0):
		return errors.New("a firewall-mark service has no protocol, address or port")
	case k.FWMark != 0:
		return nil
	case k.Protocol != TCP && k.Protocol != UDP && k.Protocol != SCTP:
		return fmt.Errorf("unknown protocol %s", k.Protocol)
	case !k.Addr.IsValid():
		return errors.New("no address")
	case familyOf(k.Addr) != k.Family:
		return fmt.Errorf("address %s is not of family %s", k.Addr, k.Family)
	}
	return nil
}

// familyNamed is the family that [Family.String] names s; 0 for none.
func familyNamed(s string) Family {
	for _, f := range []Family{IPv4, IPv6} {
		if f.String() == s {
			return f
		}
	}
	return 0
}

// protocolNamed is the protocol that [Protocol.String] names s; 0 for none.
func protocolNamed(s string) Protocol {
	for _, p := range []Protocol{TCP, UDP, SCTP} {
		if p.String() == s {
			return p
		}
	}
	return 0
}

// Service is an IPVS virtual service.
type Service struct {
	Family   Family
	Protocol Protocol   // TCP, UDP or SCTP; 0 for a firewall-mark service
	Addr     netip.Addr // zero for a firewall-mark service
	Port     uint16     // 0 for a firewall-mark service, or a persistent "port 0" service
	FWMark   uint32     // non-zero for a firewall-mark service

	Scheduler string // rr, wrr, lc, wlc, lblc, lblcr, sh, mh, dh, sed, nq, fo, ovf, twos
	Flags     SchedFlags
	// Timeout is the persistence timeout in seconds; 0 means not persistent.
	Timeout uint32
	// Granularity is the persistence netmask as a prefix length (persistence_granularity);
	// 0 means the whole address (/32 or /128). Only meaningful with a Timeout.
	Granularity int
	// PEName is the persistence engine (persistence_engine), such as "sip".
	PEName string
}

// Key returns the fields that identify the service in the kernel.
func (s Service) Key() ServiceKey {
	if s.FWMark != 0 {
		return ServiceKey{Family: s.Family, FWMark: s.FWMark}
	}
	return ServiceKey{Family: s.Family, Protocol: s.Protocol, Addr: s.Addr, Port: s.Port}
}

// normalized returns s in the canonical form used for comparisons: a firewall-mark
// service has no address, port or protocol, and a granularity of the whole address, or
// without persistence, is 0.
func (s Service) normalized() Service {
	if s.FWMark != 0 {
		s.Addr, s.Port, s.Protocol = netip.Addr{}, 0, 0
	}
	if s.Timeout == 0 || s.Granularity < 0 || s.Granularity >= s.Family.bits() {
		s.Granularity = 0
	}
	return s
}

// String renders the service as its key, scheduler, flags and persistence.
func (s Service) String() string {
	var b strings.Builder
	b.WriteString(s.Key().String())
	b.WriteString(" " + s.Scheduler)
	if s.Flags != 0 {
		b.WriteString(" " + s.Flags.String())
	}
	if s.Timeout != 0 {
		fmt.Fprintf(&b, " persistent %d", s.Timeout)
		if s.Granularity != 0 {
			fmt.Fprintf(&b, " /%d", s.Granularity)
		}
	}
	if s.PEName != "" {
		b.WriteString(" pe " + s.PEName)
	}
	return b.String()
}

// DestKey identifies a destination within its service.
type DestKey struct {
	Addr netip.Addr
	Port uint16
}

// String renders the key as address:port.
func (k DestKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

// Destination is a real server of an IPVS service.
type Destination struct {
	Addr       netip.Addr
	Port       uint16 // 0: the service's port (a firewall-mark service, or DR/TUN)
	Weight     int    // 0 keeps the destination but sends it no new connections
	Forwarding Forwarding
	Tunnel     Tunnel // TUN only
	// UpperThreshold and LowerThreshold are uthreshold and lthreshold; 0 is no limit.
	UpperThreshold uint32
	LowerThreshold uint32
}

// Key returns the fields that identify the destination within its service.
func (d Destination) Key() DestKey { return DestKey{Addr: d.Addr, Port: d.Port} }

// normalized returns d in the canonical form used for comparisons: only TUN has tunnel
// options.
func (d Destination) normalized() Destination {
	if d.Forwarding != TUN {
		d.Tunnel = Tunnel{}
	}
	return d
}

// String renders the destination: "10.0.0.2:80 NAT weight 1".
func (d Destination) String() string {
	s := fmt.Sprintf("%s %s weight %d", d.Key(), d.Forwarding, d.Weight)
	if d.UpperThreshold != 0 || d.LowerThreshold != 0 {
		s += fmt.Sprintf(" thresholds %d-%d", d.LowerThreshold, d.UpperThreshold)
	}
	return s
}
