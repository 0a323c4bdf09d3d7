// Package failover benchmarks VRRP failover in a namespace lab: how long after the
// master dies (SIGKILL) or stops (SIGTERM) the backup sends its first advertisement and
// its first gratuitous ARP, as seen by a client on the same bridge, for gokeepalived and
// for keepalived 2.2.7 side by side; and, with VRRPv3 at advert_int 0.05, whether a busy
// machine causes false failovers.
//
// The measurements come from an AF_PACKET socket opened inside the client namespace with
// kernel receive timestamps (SO_TIMESTAMPNS). Everything runs inside namespaces the
// benchmark creates; nothing touches the host's interfaces. The entry points are Go
// benchmarks (see failover_test.go), so a plain "go test ./..." does not run them:
//
//	go test ./tests/bench/failover -run '^$' -bench . -benchtime 1x -timeout 40m
package failover

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Kind says what a captured frame is.
type Kind uint8

// Frame kinds the capture records.
const (
	// Advert is an IPv4 VRRP advertisement (IP protocol 112).
	Advert Kind = iota + 1
	// GARP is a gratuitous ARP: sender protocol address equals target protocol address.
	GARP
)

// Event is one captured frame of interest.
type Event struct {
	At       time.Time        // kernel receive timestamp at the client (CLOCK_REALTIME)
	Kind     Kind             // Advert or GARP
	SrcMAC   net.HardwareAddr // Ethernet source (GARP: the ARP sender hardware address)
	Src      netip.Addr       // Advert: IPv4 source; GARP: sender (= target) protocol address
	Version  uint8            // Advert: VRRP version
	VRID     uint8            // Advert
	Priority uint8            // Advert
}

// String renders an event for logs.
func (e Event) String() string {
	t := e.At.Format("15:04:05.000000")
	if e.Kind == GARP {
		return fmt.Sprintf("%s GARP %s from %s", t, e.Src, e.SrcMAC)
	}
	return fmt.Sprintf("%s VRRPv%d vrid %d prio %d from %s", t, e.Version, e.VRID, e.Priority, e.Src)
}

// Capture records VRRP adverts and gratuitous ARPs received on one interface.
type Capture struct {
	fd int

	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced whenever an event is appended
	noStamp int           // frames without a kernel timestamp (time.Now used instead)
	err     error

	stop chan struct{}
	done chan struct{}
}

// OpenCapture opens an AF_PACKET socket bound to ifname with kernel timestamps and starts
// reading. Call it inside the namespace (netns.NS.Do); the socket stays there.
func OpenCapture(ifname string) (*Capture, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	fail := func(what string, err error) (*Capture, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail("SO_TIMESTAMPNS", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20); err != nil {
		return fail("SO_RCVBUF", err)
	}
	// A receive timeout lets the reader notice Close.
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	// Multicast frames reach a packet socket without this, but be independent of the
	// interface's filter: the client namespace's interface only, never the host's.
	mr := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
		return fail("PACKET_MR_PROMISC", err)
	}
	c := &Capture{fd: fd, changed: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) read() {
	defer close(c.done)
	buf := make([]byte, 2048)
	oob := make([]byte, 256)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		ev, ok := parseFrame(buf[:n])
		if !ok {
			continue
		}
		at, stamped := timestamp(oob[:oobn])
		c.mu.Lock()
		if !stamped {
			at = time.Now()
			c.noStamp++
		}
		ev.At = at
		c.events = append(c.events, ev)
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
}

// timestamp extracts SCM_TIMESTAMPNS from the control messages.
func timestamp(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return time.Unix(sec, nsec), true
		}
	}
	return time.Time{}, false
}

// parseFrame recognises an IPv4 VRRP advert or a gratuitous ARP in an Ethernet frame.
func parseFrame(b []byte) (Event, bool) {
	if len(b) < 14 {
		return Event{}, false
	}
	src := net.HardwareAddr(append([]byte(nil), b[6:12]...))
	switch binary.BigEndian.Uint16(b[12:14]) {
	case 0x0800:
		ip := b[14:]
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 112 {
			return Event{}, false
		}
		ihl := int(ip[0]&0x0f) * 4
		if len(ip) < ihl+8 {
			return Event{}, false
		}
		v := ip[ihl:]
		return Event{Kind: Advert, SrcMAC: src, Src: netip.AddrFrom4([4]byte(ip[12:16])),
			Version: v[0] >> 4, VRID: v[1], Priority: v[2]}, true
	case 0x0806:
		a := b[14:]
		if len(a) < 28 || binary.BigEndian.Uint16(a[2:4]) != 0x0800 || a[4] != 6 || a[5] != 4 {
			return Event{}, false
		}
		spa, tpa := netip.AddrFrom4([4]byte(a[14:18])), netip.AddrFrom4([4]byte(a[24:28]))
		if spa != tpa {
			return Event{}, false
		}
		return Event{Kind: GARP, SrcMAC: net.HardwareAddr(append([]byte(nil), a[8:14]...)), Src: spa}, true
	}
	return Event{}, false
}

// Len returns the number of events recorded so far.
func (c *Capture) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// Events returns a copy of the events recorded from index from on.
func (c *Capture) Events(from int) []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	if from > len(c.events) {
		from = len(c.events)
	}
	return append([]Event(nil), c.events[from:]...)
}

// Unstamped returns how many frames had no kernel timestamp.
func (c *Capture) Unstamped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.noStamp
}

// Wait returns the first event at index from or later for which match is true, and its
// index; it blocks until one arrives or the deadline passes (ok false).
func (c *Capture) Wait(from int, deadline time.Time, match func(Event) bool) (Event, int, bool) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		c.mu.Lock()
		for ; from < len(c.events); from++ {
			if match(c.events[from]) {
				ev := c.events[from]
				c.mu.Unlock()
				return ev, from, true
			}
		}
		ch, err := c.changed, c.err
		c.mu.Unlock()
		if err != nil {
			return Event{}, from, false
		}
		select {
		case <-ch:
		case <-timer.C:
			return Event{}, from, false
		}
	}
}

// Close stops reading and closes the socket.
func (c *Capture) Close() error {
	close(c.stop)
	<-c.done
	return unix.Close(c.fd)
}
