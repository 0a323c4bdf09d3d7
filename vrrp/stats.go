package vrrp

import "sync/atomic"

// Stats are an instance's counters, named as keepalived's stats dump and JSON
// (advert_rcvd, packet_len_err, ...), plus the checks keepalived has no counter for.
type Stats struct {
	AdvertRcvd        atomic.Uint64 // advert_rcvd
	AdvertSent        atomic.Uint64 // advert_sent
	BecomeMaster      atomic.Uint64 // become_master
	ReleaseMaster     atomic.Uint64 // release_master
	PacketLenErr      atomic.Uint64 // packet_len_err
	AdvertIntervalErr atomic.Uint64 // advert_interval_err
	IPTTLErr          atomic.Uint64 // ip_ttl_err
	InvalidTypeRcvd   atomic.Uint64 // invalid_type_rcvd
	AddrListErr       atomic.Uint64 // addr_list_err
	InvalidAuthType   atomic.Uint64 // invalid_authtype
	AuthTypeMismatch  atomic.Uint64 // authtype_mismatch
	AuthFailure       atomic.Uint64 // auth_failure
	PriZeroRcvd       atomic.Uint64 // pri_zero_rcvd
	PriZeroSent       atomic.Uint64 // pri_zero_sent

	VersionErr    atomic.Uint64 // version differs from ours (keepalived logs only)
	ChecksumErr   atomic.Uint64 // bad checksum (keepalived logs only)
	UnicastSrcErr atomic.Uint64 // unicast source not a configured peer (check_unicast_src)
	SendErr       atomic.Uint64 // advertisement could not be sent
	VIPReadded    atomic.Uint64 // a virtual address removed by someone else was put back
}

// counter returns the counter for a name used by the state machine's ActCount.
func (s *Stats) counter(name string) *atomic.Uint64 {
	switch name {
	case "advert_interval_err":
		return &s.AdvertIntervalErr
	}
	return nil
}

// StatsSnapshot is a plain copy of Stats, for status output.
type StatsSnapshot struct {
	AdvertRcvd        uint64 `json:"advert_rcvd"`
	AdvertSent        uint64 `json:"advert_sent"`
	BecomeMaster      uint64 `json:"become_master"`
	ReleaseMaster     uint64 `json:"release_master"`
	PacketLenErr      uint64 `json:"packet_len_err"`
	AdvertIntervalErr uint64 `json:"advert_interval_err"`
	IPTTLErr          uint64 `json:"ip_ttl_err"`
	InvalidTypeRcvd   uint64 `json:"invalid_type_rcvd"`
	AddrListErr       uint64 `json:"addr_list_err"`
	InvalidAuthType   uint64 `json:"invalid_authtype"`
	AuthTypeMismatch  uint64 `json:"authtype_mismatch"`
	AuthFailure       uint64 `json:"auth_failure"`
	PriZeroRcvd       uint64 `json:"pri_zero_rcvd"`
	PriZeroSent       uint64 `json:"pri_zero_sent"`
	VersionErr        uint64 `json:"version_err"`
	ChecksumErr       uint64 `json:"checksum_err"`
	UnicastSrcErr     uint64 `json:"unicast_src_err"`
	SendErr           uint64 `json:"send_err"`
	VIPReadded        uint64 `json:"vip_readded"`
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		AdvertRcvd: s.AdvertRcvd.Load(), AdvertSent: s.AdvertSent.Load(),
		BecomeMaster: s.BecomeMaster.Load(), ReleaseMaster: s.ReleaseMaster.Load(),
		PacketLenErr: s.PacketLenErr.Load(), AdvertIntervalErr: s.AdvertIntervalErr.Load(),
		IPTTLErr: s.IPTTLErr.Load(), InvalidTypeRcvd: s.InvalidTypeRcvd.Load(),
		AddrListErr: s.AddrListErr.Load(), InvalidAuthType: s.InvalidAuthType.Load(),
		AuthTypeMismatch: s.AuthTypeMismatch.Load(), AuthFailure: s.AuthFailure.Load(),
		PriZeroRcvd: s.PriZeroRcvd.Load(), PriZeroSent: s.PriZeroSent.Load(),
		VersionErr: s.VersionErr.Load(), ChecksumErr: s.ChecksumErr.Load(),
		UnicastSrcErr: s.UnicastSrcErr.Load(), SendErr: s.SendErr.Load(), VIPReadded: s.VIPReadded.Load(),
	}
}
