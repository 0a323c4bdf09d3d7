package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// moby/ipvs has no sync daemon calls, so these speak the IPVS generic netlink family
// directly, with the same attributes ipvsadm --start-daemon sends.

// IPVS generic netlink commands and attributes for the sync daemons
// (include/uapi/linux/ip_vs.h).
const (
	ipvsGenlVersion = 1

	ipvsCmdNewDaemon = 9
	ipvsCmdDelDaemon = 10
	ipvsCmdGetDaemon = 11

	ipvsCmdAttrDaemon = 3

	ipvsDaemonAttrState       = 1
	ipvsDaemonAttrMcastIfn    = 2
	ipvsDaemonAttrSyncID      = 3
	ipvsDaemonAttrSyncMaxLen  = 4
	ipvsDaemonAttrMcastGroup  = 5
	ipvsDaemonAttrMcastGroup6 = 6
	ipvsDaemonAttrMcastPort   = 7
	ipvsDaemonAttrMcastTTL    = 8
)

// SyncNetlink is the Linux [SyncKernel]: each call opens a generic netlink socket in
// the caller's network namespace and is bounded by its timeout.
type SyncNetlink struct {
	family  uint16
	timeout time.Duration
}

// NewSyncNetlink probes for IPVS (an error matching [ErrNoIPVS] without it) and resolves
// its generic netlink family.
func NewSyncNetlink(timeout time.Duration) (*SyncNetlink, error) {
	if err := Probe(); err != nil {
		return nil, err
	}
	var fam *netlink.GenlFamily
	err := within(timeout, func() (err error) {
		fam, err = netlink.GenlFamilyGet("IPVS")
		return err
	}, func() {})
	if err != nil {
		return nil, fmt.Errorf("generic netlink family IPVS: %w", err)
	}
	return &SyncNetlink{family: fam.ID, timeout: timeout}, nil
}

// SyncDaemons lists the running daemons (IPVS_CMD_GET_DAEMON).
func (s *SyncNetlink) SyncDaemons() ([]SyncDaemon, error) {
	msgs, err := s.exec(ipvsCmdGetDaemon, unix.NLM_F_DUMP, nil)
	if err != nil {
		return nil, fmt.Errorf("list sync daemons: %w", err)
	}
	return parseSyncDaemons(msgs)
}

// StartSyncDaemon starts d (IPVS_CMD_NEW_DAEMON).
func (s *SyncNetlink) StartSyncDaemon(d SyncDaemon) error {
	_, err := s.exec(ipvsCmdNewDaemon, unix.NLM_F_ACK, marshalSyncDaemon(d))
	if errors.Is(err, unix.EEXIST) {
		err = fmt.Errorf("%w (%v)", ErrExist, err)
	}
	return err
}

// StopSyncDaemon stops the daemon in state st (IPVS_CMD_DEL_DAEMON).
func (s *SyncNetlink) StopSyncDaemon(st SyncState) error {
	_, err := s.exec(ipvsCmdDelDaemon, unix.NLM_F_ACK, marshalSyncDaemon(SyncDaemon{State: st}))
	if errors.Is(err, unix.ESRCH) {
		err = fmt.Errorf("%w (%v)", ErrNoService, err)
	}
	return err
}

// marshalSyncDaemon encodes d as the nested IPVS_CMD_ATTR_DAEMON attribute; empty
// fields are left out (a stop sends the state only).
func marshalSyncDaemon(d SyncDaemon) []byte {
	a := nl.NewRtAttr(ipvsCmdAttrDaemon|unix.NLA_F_NESTED, nil)
	a.AddRtAttr(ipvsDaemonAttrState, nl.Uint32Attr(uint32(d.State)))
	if d.Interface != "" {
		a.AddRtAttr(ipvsDaemonAttrMcastIfn, nl.ZeroTerminated(d.Interface))
		a.AddRtAttr(ipvsDaemonAttrSyncID, nl.Uint32Attr(uint32(d.SyncID)))
	}
	if d.MaxLen != 0 {
		a.AddRtAttr(ipvsDaemonAttrSyncMaxLen, nl.Uint16Attr(d.MaxLen))
	}
	if d.Port != 0 {
		a.AddRtAttr(ipvsDaemonAttrMcastPort, nl.Uint16Attr(d.Port))
	}
	if d.TTL != 0 {
		a.AddRtAttr(ipvsDaemonAttrMcastTTL, nl.Uint8Attr(d.TTL))
	}
	switch {
	case d.Group.Is4():
		g := d.Group.As4()
		a.AddRtAttr(ipvsDaemonAttrMcastGroup, g[:])
	case d.Group.Is6():
		g := d.Group.As16()
		a.AddRtAttr(ipvsDaemonAttrMcastGroup6, g[:])
	}
	return a.Serialize()
}

// errSyncReply: a kernel reply that does not decode as a sync daemon.
var errSyncReply = errors.New("malformed sync daemon reply")

// parseSyncDaemons decodes IPVS_CMD_GET_DAEMON replies: each message's payload is the
// generic netlink header and an IPVS_CMD_ATTR_DAEMON attribute.
func parseSyncDaemons(msgs [][]byte) ([]SyncDaemon, error) {
	var out []SyncDaemon
	for _, m := range msgs {
		if len(m) < nl.SizeofGenlmsg {
			return nil, fmt.Errorf("%w: %d bytes", errSyncReply, len(m))
		}
		attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errSyncReply, err)
		}
		for _, top := range attrs {
			if top.Attr.Type&nl.NLA_TYPE_MASK != ipvsCmdAttrDaemon {
				continue
			}
			d, err := parseSyncDaemon(top.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// syncAttrLen is the least length of each fixed-size daemon attribute.
var syncAttrLen = map[uint16]int{ipvsDaemonAttrState: 4, ipvsDaemonAttrSyncID: 4, ipvsDaemonAttrSyncMaxLen: 2,
	ipvsDaemonAttrMcastPort: 2, ipvsDaemonAttrMcastTTL: 1, ipvsDaemonAttrMcastGroup: 4, ipvsDaemonAttrMcastGroup6: 16}

func parseSyncDaemon(b []byte) (SyncDaemon, error) {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return SyncDaemon{}, fmt.Errorf("%w: %v", errSyncReply, err)
	}
	var d SyncDaemon
	for _, a := range attrs {
		v := a.Value
		if want := syncAttrLen[a.Attr.Type]; len(v) < want {
			return SyncDaemon{}, fmt.Errorf("%w: attribute %d has %d bytes", errSyncReply, a.Attr.Type, len(v))
		}
		switch a.Attr.Type {
		case ipvsDaemonAttrState:
			d.State = SyncState(nl.NativeEndian().Uint32(v))
		case ipvsDaemonAttrMcastIfn:
			d.Interface = string(trimNUL(v))
		case ipvsDaemonAttrSyncID:
			d.SyncID = uint8(nl.NativeEndian().Uint32(v))
		case ipvsDaemonAttrSyncMaxLen:
			d.MaxLen = nl.NativeEndian().Uint16(v)
		case ipvsDaemonAttrMcastPort:
			d.Port = nl.NativeEndian().Uint16(v)
		case ipvsDaemonAttrMcastTTL:
			d.TTL = v[0]
		case ipvsDaemonAttrMcastGroup:
			if g := netip.AddrFrom4([4]byte(v[:4])); !g.IsUnspecified() {
				d.Group = g
			}
		case ipvsDaemonAttrMcastGroup6:
			if g := netip.AddrFrom16([16]byte(v[:16])); !g.IsUnspecified() {
				d.Group = g
			}
		}
	}
	if d.State != SyncMaster && d.State != SyncBackup {
		return SyncDaemon{}, fmt.Errorf("%w: state %d", errSyncReply, d.State)
	}
	return d, nil
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// exec sends one IPVS command with payload attr and returns the payloads of the replies
// (for a dump) once the kernel acknowledges or finishes; a kernel error comes back as
// its errno. It gives up after the timeout.
func (s *SyncNetlink) exec(cmd uint8, flags int, attr []byte) ([][]byte, error) {
	var out [][]byte
	err := within(s.timeout, func() error {
		sock, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_GENERIC)
		if err != nil {
			return err
		}
		defer sock.Close()
		tv := unix.NsecToTimeval(s.timeout.Nanoseconds())
		if err := sock.SetReceiveTimeout(&tv); err != nil {
			return err
		}
		req := nl.NewNetlinkRequest(int(s.family), flags)
		req.AddData(&nl.Genlmsg{Command: cmd, Version: ipvsGenlVersion})
		if attr != nil {
			req.AddRawData(attr)
		}
		if err := sock.Send(req); err != nil {
			return err
		}
		for {
			msgs, _, err := sock.Receive()
			if err != nil {
				return err
			}
			for _, m := range msgs {
				if m.Header.Seq != req.Seq {
					continue
				}
				switch m.Header.Type {
				case unix.NLMSG_DONE:
					return nil
				case unix.NLMSG_ERROR:
					if len(m.Data) < 4 {
						return errSyncReply
					}
					if e := int32(binary.NativeEndian.Uint32(m.Data[:4])); e != 0 {
						return syscall.Errno(-e)
					}
					return nil
				}
				out = append(out, m.Data)
				if m.Header.Flags&unix.NLM_F_MULTI == 0 {
					return nil
				}
			}
		}
	}, func() {})
	return out, err
}
