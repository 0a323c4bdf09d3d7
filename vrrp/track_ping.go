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
	"strings"
	"sync"
	"time"

	"gokeepalived/check"
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
// Sockets: NewPingTracker opens a check.PingConn per family in check.PingAuto mode: an
// unprivileged ICMP "ping socket" when net.ipv4.ping_group_range allows it, even as
// root, else a raw ICMP socket (root), whose replies the tracker tells apart by a
// random identifier and payload of its own. A new network namespace allows no ping
// sockets, so there the raw socket is used.
type PingTracker struct {
	cfg     *parser.TrackPing
	log     *slog.Logger
	socks   [2]*check.PingConn // IPv4, IPv6: nil when no address of that family
	targets []pingTarget
	cookie  []byte // echo payload
}

// pingTarget is one address and its state.
type pingTarget struct {
	addr    netip.Addr // without zone, as reply sources come
	dst     netip.Addr // addr with the configured zone
	sock    *check.PingConn
	cnt     trackCounter
	pending bool   // a request is outstanding
	seq     uint16 // its sequence number
	sendErr string // why the outstanding request could not be sent
	why     string // why the target went down (its failure then)
}

// pingReply is a matching echo reply as read from a socket.
type pingReply struct {
	sock *check.PingConn
	src  netip.Addr
	seq  uint16
}

// NewPingTracker opens the tracker's sockets in the network namespace of the calling
// thread. Run closes them.
func NewPingTracker(cfg *parser.TrackPing, log *slog.Logger) (*PingTracker, error) {
	return newPingTracker(cfg, log, check.PingAuto)
}

func newPingTracker(cfg *parser.TrackPing, log *slog.Logger, mode check.PingMode) (*PingTracker, error) {
	if len(cfg.Addresses) == 0 {
		return nil, fmt.Errorf("vrrp_track_ping %s: no address", cfg.Name)
	}
	var rnd [10]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("vrrp_track_ping %s: random identifier: %w", cfg.Name, err)
	}
	t := &PingTracker{cfg: cfg, log: trackLogger(log, TrackPing, cfg.Name), cookie: rnd[2:]}
	id := binary.BigEndian.Uint16(rnd[:2])
	for _, a := range cfg.Addresses {
		plain := a.WithZone("").Unmap()
		fam := 0
		if plain.Is6() {
			fam = 1
		}
		if t.socks[fam] == nil {
			s, err := check.OpenPing(context.Background(), check.PingConfig{V6: fam == 1, Mode: mode, ID: id})
			if err != nil {
				t.closeSockets()
				return nil, fmt.Errorf("vrrp_track_ping %s: %w", cfg.Name, err)
			}
			t.socks[fam] = s
		}
		t.targets = append(t.targets, pingTarget{
			addr: plain, dst: plain.WithZone(a.Zone()), sock: t.socks[fam],
			cnt: newTrackCounter(cfg.Rise, cfg.Fall, false),
		})
	}
	return t, nil
}

func (t *PingTracker) closeSockets() {
	for _, s := range t.socks {
		if s != nil {
			s.Close()
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
			if err := tg.sock.WriteEcho(tg.dst, seq, t.cookie); err != nil {
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

// read passes the echo replies with the tracker's payload arriving on s to out until s
// is closed.
func (t *PingTracker) read(s *check.PingConn, out chan<- pingReply, stop <-chan struct{}) {
	buf := make([]byte, 1500)
	for {
		r, err := s.ReadEcho(buf)
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
		if !bytes.Equal(r.Data, t.cookie) {
			continue
		}
		select {
		case out <- pingReply{sock: s, src: r.Src, seq: r.Seq}:
		case <-stop:
			return
		}
	}
}
