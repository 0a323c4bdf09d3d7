package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// rxPolicy is what an instance checks on every advertisement delivered to it
// (keepalived's vrrp_check_packet), before the state machine sees it.
type rxPolicy struct {
	version         uint8
	family          Family
	ckMode          ChecksumMode
	authType        AuthType
	authData        [8]byte
	vips            []netip.Addr // the addresses we advertise, sorted
	skipAddrCheck   bool
	unicast         bool
	checkUnicastSrc bool
	peers           []peerTTL
}

// peerTTL is a unicast peer with its accepted TTL range (0 = no bound).
type peerTTL struct {
	addr     netip.Addr
	min, max int
}

// check validates a received advertisement. It counts every problem in st (keepalived's
// counter names) and returns why an advertisement must be dropped ("" when it is
// accepted); a dropped advertisement never reaches the state machine.
func (p *rxPolicy) check(adv *Advert, payload []byte, rx RxInfo, st *Stats) (RxAdvert, string) {
	st.AdvertRcvd.Add(1)
	if err := adv.Parse(payload, p.family); err != nil {
		switch {
		case errors.Is(err, ErrVersion):
			st.VersionErr.Add(1)
		case errors.Is(err, ErrType):
			st.InvalidTypeRcvd.Add(1)
		case errors.Is(err, ErrAdvertInt):
			st.AdvertIntervalErr.Add(1)
		default:
			st.PacketLenErr.Add(1)
		}
		return RxAdvert{}, err.Error()
	}
	if adv.Version != p.version {
		st.VersionErr.Add(1)
		return RxAdvert{}, fmt.Sprintf("version %d, ours is %d", adv.Version, p.version)
	}
	if !p.ttlOK(rx) {
		st.IPTTLErr.Add(1)
		return RxAdvert{}, fmt.Sprintf("TTL %d", rx.TTL)
	}
	// The kernel verifies IPv6 checksums (IPV6_CHECKSUM) and drops bad ones.
	if p.family == FamilyIPv4 {
		if err := VerifyChecksum(payload, p.family, p.ckMode, rx.Src, rx.Dst); err != nil {
			st.ChecksumErr.Add(1)
			return RxAdvert{}, err.Error() + " (check v3_checksum_as_v2 on both sides)"
		}
	}
	if p.version == 2 {
		switch {
		case adv.AuthType > AuthAH:
			st.InvalidAuthType.Add(1)
			return RxAdvert{}, fmt.Sprintf("unknown authentication type %d", adv.AuthType)
		case adv.AuthType != p.authType:
			st.AuthTypeMismatch.Add(1)
			return RxAdvert{}, fmt.Sprintf("authentication %s, ours is %s", adv.AuthType, p.authType)
		case adv.CheckAuth(p.authType, p.authData) != nil:
			st.AuthFailure.Add(1)
			return RxAdvert{}, "wrong authentication password"
		}
	}
	if p.unicast && p.checkUnicastSrc && !slices.ContainsFunc(p.peers, func(q peerTTL) bool { return q.addr == rx.Src }) {
		st.UnicastSrcErr.Add(1)
		return RxAdvert{}, "source is not a unicast_peer"
	}
	if !p.skipAddrCheck && adv.Priority != 0 && !sameAddrs(adv.Addrs, p.vips) {
		// keepalived 2.2.7 drops such adverts; since 2.3.3 (RFC 9568) it only logs and
		// counts them. We count and accept: the priority still decides who is master.
		st.AddrListErr.Add(1)
	}
	if adv.Priority == 0 {
		st.PriZeroRcvd.Add(1)
	}
	return RxAdvert{Src: rx.Src, Priority: adv.Priority, Interval: adv.Interval()}, ""
}

// ttlOK: multicast adverts must arrive with TTL/hop limit 255 (RFC 5798 7.1); unicast ones
// only within a peer's min_ttl/max_ttl when configured (keepalived).
func (p *rxPolicy) ttlOK(rx RxInfo) bool {
	if rx.Dst.IsMulticast() {
		return rx.TTL == 255 || rx.TTL < 0
	}
	for _, q := range p.peers {
		if q.addr == rx.Src {
			return (q.min == 0 || rx.TTL >= q.min) && (q.max == 0 || rx.TTL <= q.max)
		}
	}
	return true
}

// sameAddrs compares an advert's address list with ours (sorted), ignoring order.
func sameAddrs(got, sortedWant []netip.Addr) bool {
	if len(got) != len(sortedWant) {
		return false
	}
	g := slices.Clone(got)
	slices.SortFunc(g, netip.Addr.Compare)
	return slices.Equal(g, sortedWant)
}
