//go:build linux

package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ifaceResubscribeDelay is the pause before subscribing again to link changes after
// the subscription died (typically ENOBUFS: the kernel dropped messages).
const ifaceResubscribeDelay = time.Second

// InterfaceTracker watches a network interface (track_interface, and the instance's
// own interface unless dont_track_primary) and reports whether it is up.
//
// Up means IFF_UP and IFF_RUNNING both set, as keepalived's IF_FLAGS_UP: the
// interface is administratively up and the kernel considers it operational
// (RFC 2863 operstate up, or unknown with a carrier, as for loopback and dummy
// interfaces). A veth whose peer is down has no carrier and is down. A missing
// interface is down; the tracker follows the name, so an interface created (or
// renamed) to that name later is picked up, and one renamed away is down.
//
// The initial state comes from a link lookup, changes from an rtnetlink
// subscription (RTNLGRP_LINK). If the subscription dies it is made again, after a
// second, and the state looked up again. Reports are sent when the state changes.
type InterfaceTracker struct {
	name string
	log  *slog.Logger
	ns   vnetns.NsHandle // the namespace the tracker watches
	h    *netlink.Handle
}

// NewInterfaceTracker prepares a tracker of the interface called ifname in the
// network namespace of the calling thread. Run releases what it opens.
func NewInterfaceTracker(ifname string, log *slog.Logger) (*InterfaceTracker, error) {
	ns, err := vnetns.Get()
	if err != nil {
		return nil, fmt.Errorf("track_interface %s: current network namespace: %w", ifname, err)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("track_interface %s: open rtnetlink handle: %w", ifname, err)
	}
	if err := h.SetSocketTimeout(5 * time.Second); err != nil {
		h.Close()
		_ = ns.Close()
		return nil, fmt.Errorf("track_interface %s: set rtnetlink socket timeout: %w", ifname, err)
	}
	return &InterfaceTracker{name: ifname, log: trackLogger(log, TrackInterface, ifname), ns: ns, h: h}, nil
}

// ifaceState is what the tracker knows of its interface.
type ifaceState struct {
	index  int // 0 when missing
	up     bool
	detail string
}

// Run watches the interface until ctx ends.
func (t *InterfaceTracker) Run(ctx context.Context, report func(TrackStatus)) {
	defer func() {
		t.h.Close()
		_ = t.ns.Close()
	}()
	var last *ifaceState
	emit := func(s ifaceState) {
		if last != nil && last.up == s.up && last.detail == s.detail {
			last.index = s.index
			return
		}
		last = &s
		report(TrackStatus{Kind: TrackInterface, Name: t.name, OK: s.up, Detail: s.detail})
	}
	for {
		updates := make(chan netlink.LinkUpdate, 64)
		done := make(chan struct{})
		err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
			Namespace: &t.ns,
			ErrorCallback: func(err error) {
				if ctx.Err() == nil {
					t.log.Warn("link subscription", "err", err)
				}
			},
		})
		if err != nil {
			close(done)
			t.log.Error("cannot subscribe to link changes", "err", err)
		}
		// Look the interface up once subscribed, so that no change is missed.
		emit(t.lookup())
		if err == nil {
			t.follow(ctx, updates, last, emit)
			// The subscription's goroutine ends once done is closed, unless blocked on
			// a send: drain.
			close(done)
			for range updates {
			}
		}
		if ctx.Err() != nil {
			return
		}
		retry := time.NewTimer(ifaceResubscribeDelay)
		select {
		case <-ctx.Done():
			retry.Stop()
			return
		case <-retry.C:
		}
	}
}

// follow applies link updates until ctx ends or the subscription dies.
func (t *InterfaceTracker) follow(ctx context.Context, updates <-chan netlink.LinkUpdate, cur *ifaceState, emit func(ifaceState)) {
	index := cur.index
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				if ctx.Err() == nil {
					t.log.Warn("link subscription ended; subscribing again")
				}
				return
			}
			a := u.Link.Attrs()
			var s ifaceState
			switch {
			case a.Name == t.name && u.Header.Type == unix.RTM_DELLINK:
				s = ifaceState{detail: "deleted"}
			case a.Name == t.name:
				s = ifaceStateOf(a.Index, u.IfInfomsg.Flags, a.OperState)
			case index != 0 && a.Index == index:
				s = ifaceState{detail: "renamed to " + a.Name}
			default:
				continue
			}
			index = s.index
			emit(s)
		}
	}
}

// lookup reads the interface's current state.
func (t *InterfaceTracker) lookup() ifaceState {
	l, err := t.h.LinkByName(t.name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		return ifaceState{detail: "does not exist"}
	case err != nil:
		t.log.Warn("cannot look the interface up", "err", err)
		return ifaceState{detail: "lookup failed: " + err.Error()}
	}
	a := l.Attrs()
	return ifaceStateOf(a.Index, a.RawFlags, a.OperState)
}

// ifaceStateOf judges an interface by its flags.
func ifaceStateOf(index int, flags uint32, oper netlink.LinkOperState) ifaceState {
	s := ifaceState{index: index, up: flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING != 0}
	switch {
	case s.up:
		s.detail = "up, operstate " + oper.String()
	case flags&unix.IFF_UP == 0:
		s.detail = "administratively down"
	default:
		s.detail = "not running, operstate " + oper.String()
	}
	return s
}
