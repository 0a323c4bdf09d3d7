//go:build linux

package vrrp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"gokeepalived/parser"
)

// PingTracker pings the addresses of a vrrp_track_ping (a gokeepalived extension)
// and reports how many answer.
//
// It speaks ICMP itself, without running ping: one socket per address family for
// the whole tracker, one goroutine reading each socket, and one loop that, every
// interval, sends one echo request to every address and matches the replies by
// sequence number (and, on raw sockets, identifier and payload). An address
// answers when its reply comes within the timeout; a timeout longer than the
// interval acts as the interval (the parser warns about it), so that each address
// has at most one request outstanding. Each address has its own rise/fall counter
// (as a vrrp_script: rise consecutive answers to come up, fall consecutive misses to
// go down, the first result deciding at start). Value is the number of addresses up.
// The tracker is in Init until every address has its first result.
//
// Sockets: NewPingTracker first tries an unprivileged ICMP "ping socket"
// (SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6; Linux allows it to the groups in
// net.ipv4.ping_group_range, which also governs IPv6), even as root: the kernel
// picks the echo identifier and gives each socket only the replies to its own
// requests. Otherwise it opens a raw ICMP socket (needs CAP_NET_RAW, so root), with
// an ICMP filter passing only echo replies; a raw socket sees the replies to every
// ping on the host, which the tracker tells apart by a random identifier and
// payload of its own. A new network namespace starts with ping_group_range "1 0"
// (nobody), so there the raw socket is used.
type PingTracker struct {
	cfg     *parser.TrackPing
	log     *slog.Logger
	socks   [2]*pingSocket // IPv4, IPv6: nil when no address of that family
	targets []pingTarget
	id      uint16 // echo identifier on raw sockets
	cookie  []byte // echo payload
}

// pingSocket is the tracker's ICMP socket of one family.
type pingSocket struct {
	conn net.PacketConn
	raw  bool
	v6   bool
}

// pingTarget is one address and its state.
type pingTarget struct {
	addr    netip.Addr // without zone, as reply sources come
	dst     net.Addr
	sock    *pingSocket
	cnt     trackCounter
	pending bool   // a request is outstanding
	seq     uint16 // its sequence number
	sendErr string // why the outstanding request could not be sent
	why     string // why the target went down (its failure then)
}

// pingReply is a matching echo reply as read from a socket.
type pingReply struct {
	sock *pingSocket
	src  netip.Addr
	seq  uint16
}

// pingMode says which sockets may be used.
type pingMode uint8

const (
	pingAuto  pingMode = iota // a ping socket if allowed, else a raw socket
	pingDgram                 // ping sockets only
	pingRaw                   // raw sockets only
)

// NewPingTracker opens the tracker's sockets in the network namespace of the calling
// thread. Run closes them.
func NewPingTracker(cfg *parser.TrackPing, log *slog.Logger) (*PingTracker, error) {
	return newPingTracker(cfg, log, pingAuto)
}

func newPingTracker(cfg *parser.TrackPing, log *slog.Logger, mode pingMode) (*PingTracker, error) {
	if len(cfg.Addresses) == 0 {
		return nil, fmt.Errorf("vrrp_track_ping %s: no address", cfg.Name)
	}
	var rnd [10]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("vrrp_track_ping %s: random identifier: %w", cfg.Name, err)
	}
	t := &PingTracker{
		cfg: cfg, log: trackLogger(log, TrackPing, cfg.Name),
		id: binary.BigEndian.Uint16(rnd[:2]), cookie: rnd[2:],
	}
	for _, a := range cfg.Addresses {
		plain := a.WithZone("").Unmap()
		fam := 0
		if plain.Is6() {
			fam = 1
		}
		if t.socks[fam] == nil {
			s, err := pingOpen(fam == 1, mode)
			if err != nil {
				t.closeSockets()
				return nil, fmt.Errorf("vrrp_track_ping %s: %w", cfg.Name, err)
			}
			t.socks[fam] = s
		}
		s := t.socks[fam]
		ip := net.IP(plain.AsSlice())
		var dst net.Addr = &net.UDPAddr{IP: ip, Zone: a.Zone()}
		if s.raw {
			dst = &net.IPAddr{IP: ip, Zone: a.Zone()}
		}
		t.targets = append(t.targets, pingTarget{addr: plain, dst: dst, sock: s, cnt: newTrackCounter(cfg.Rise, cfg.Fall, false)})
	}
	return t, nil
}

// pingOpen opens an ICMP socket of one family as mode allows.
func pingOpen(v6 bool, mode pingMode) (*pingSocket, error) {
	var dgramErr error
	if mode != pingRaw {
		c, err := pingListenDgram(v6)
		if err == nil {
			return &pingSocket{conn: c, v6: v6}, nil
		}
		if mode == pingDgram {
			return nil, err
		}
		dgramErr = err
	}
	network, laddr := "ip4:icmp", "0.0.0.0"
	if v6 {
		network, laddr = "ip6:ipv6-icmp", "::"
	}
	c, err := net.ListenPacket(network, laddr)
	if err != nil {
		if dgramErr != nil {
			return nil, fmt.Errorf("%w; raw socket: %w", dgramErr, err)
		}
		return nil, fmt.Errorf("raw ICMP socket: %w", err)
	}
	if v6 {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		err = ipv6.NewPacketConn(c).SetICMPFilter(&f)
	} else {
		var f ipv4.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv4.ICMPTypeEchoReply)
		err = ipv4.NewPacketConn(c).SetICMPFilter(&f)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("set ICMP filter: %w", err)
	}
	return &pingSocket{conn: c, raw: true, v6: v6}, nil
}

// pingListenDgram opens a ping socket. (icmp.ListenPacket does the same but opens
// the socket without close-on-exec, so a script started meanwhile could inherit it.)
func pingListenDgram(v6 bool) (net.PacketConn, error) {
	family, proto, sa := unix.AF_INET, unix.IPPROTO_ICMP, unix.Sockaddr(&unix.SockaddrInet4{})
	if v6 {
		family, proto, sa = unix.AF_INET6, unix.IPPROTO_ICMPV6, &unix.SockaddrInet6{}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("ping socket: %w", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind ping socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "ping socket")
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("ping socket: %w", err)
	}
	return c, nil
}

func (t *PingTracker) closeSockets() {
	for _, s := range t.socks {
		if s != nil {
			s.conn.Close()
		}
	}
}

// Run pings until ctx ends, then closes the sockets and waits for its readers.
func (t *PingTracker) Run(ctx context.Context, report func(TrackStatus)) {
	replies := make(chan pingReply, len(t.targets)+16)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range t.socks {
		if s != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.read(s, replies, stop)
			}()
		}
	}
	defer func() {
		t.closeSockets()
		close(stop)
		wg.Wait()
	}()

	interval, timeout := t.cfg.Interval.D(), t.cfg.Timeout.D()
	if interval <= 0 {
		interval = time.Second
	}
	if timeout <= 0 || timeout > interval {
		timeout = interval
	}
	last := t.status()
	report(last)

	bySeq := make(map[uint16]int, len(t.targets))
	var seq uint16
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	changed := false // a target changed state since the last report
	round := func() {
		for i := range t.targets {
			tg := &t.targets[i]
			if tg.pending {
				changed = t.result(tg, false, fmt.Sprintf("no reply within %v", interval)) || changed
				delete(bySeq, tg.seq)
			}
			seq++
			tg.seq, tg.pending, tg.sendErr = seq, true, ""
			bySeq[seq] = i
			b, err := (&icmp.Message{Type: t.echoType(tg.sock), Body: &icmp.Echo{ID: int(t.id), Seq: int(seq), Data: t.cookie}}).Marshal(nil)
			if err == nil {
				_, err = tg.sock.conn.WriteTo(b, tg.dst)
			}
			if err != nil {
				tg.sendErr = err.Error()
				t.log.Debug("cannot send echo request", "to", tg.addr, "err", err)
			}
		}
		deadline.Reset(timeout)
	}
	round()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			round()
		case <-deadline.C:
			for i := range t.targets {
				if tg := &t.targets[i]; tg.pending {
					why := tg.sendErr
					if why == "" {
						why = fmt.Sprintf("no reply within %v", timeout)
					}
					changed = t.result(tg, false, why) || changed
					delete(bySeq, tg.seq)
				}
			}
		case r := <-replies:
			i, ok := bySeq[r.seq]
			if !ok {
				continue
			}
			if tg := &t.targets[i]; tg.sock == r.sock && tg.addr == r.src {
				changed = t.result(tg, true, "") || changed
				delete(bySeq, r.seq)
			}
		}
		if !changed {
			continue
		}
		changed = false
		if st := t.status(); st != last {
			last = st
			report(st)
		}
	}
}

// result records one probe's outcome for a target and reports whether the target
// changed state.
func (t *PingTracker) result(tg *pingTarget, ok bool, why string) bool {
	tg.pending = false
	wasInit := tg.cnt.init
	if !tg.cnt.add(ok) {
		return false
	}
	if tg.cnt.ok() {
		if !wasInit {
			t.log.Info("ping target up", "addr", tg.addr)
		}
		return true
	}
	tg.why = why
	t.log.Info("ping target down", "addr", tg.addr, "reason", why)
	return true
}

func (t *PingTracker) echoType(s *pingSocket) icmp.Type {
	if s.v6 {
		return ipv6.ICMPTypeEchoRequest
	}
	return ipv4.ICMPTypeEcho
}

// status sums the targets up.
func (t *PingTracker) status() TrackStatus {
	st := TrackStatus{
		Kind: TrackPing, Name: t.cfg.Name, Weight: t.cfg.Weight, Reverse: t.cfg.Reverse,
		Total: len(t.targets), Quorum: t.cfg.Quorum,
	}
	var down []string
	for i := range t.targets {
		tg := &t.targets[i]
		switch {
		case tg.cnt.init:
			st.Init = true
		case tg.cnt.ok():
			st.Value++
		default:
			down = append(down, fmt.Sprintf("%s (%s)", tg.addr, tg.why))
		}
	}
	st.OK = st.Value >= max(t.cfg.Quorum, 1)
	st.Detail = fmt.Sprintf("%d of %d up", st.Value, st.Total)
	if len(down) > 0 {
		st.Detail += "; down: " + strings.Join(down, ", ")
	}
	return st
}

// read passes the matching echo replies arriving on s to out until s is closed.
func (t *PingTracker) read(s *pingSocket, out chan<- pingReply, stop <-chan struct{}) {
	proto := 1 // ICMP
	if s.v6 {
		proto = 58 // ICMPv6
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Debug("ICMP read", "err", err)
			pause := time.NewTimer(10 * time.Millisecond)
			select {
			case <-stop:
				pause.Stop()
				return
			case <-pause.C:
			}
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || !bytes.Equal(echo.Data, t.cookie) || (s.raw && echo.ID != int(t.id)) {
			continue
		}
		var ip net.IP
		switch a := from.(type) {
		case *net.UDPAddr:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		src, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		select {
		case out <- pingReply{sock: s, src: src.Unmap(), seq: uint16(echo.Seq)}:
		case <-stop:
			return
		}
	}
}
