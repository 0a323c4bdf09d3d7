package lab

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gokeepalived/tests/netns"
)

// The FRR side of TestInteropFRR: VRID 51 on director 2's eth0, its macvlan and virtual
// MAC as FRR's vrrpd expects them.
const (
	frrVRID    = 51
	frrMacvlan = "vrrp4-2-51"
	frrDir     = 1 // director 2
	frrGKDir   = 0 // director 1 runs gokeepalived
)

// frrVRRPdConf is vrrpd's configuration: VRRPv3, FRR's default. FRR 8.4 takes the
// advertisement interval in milliseconds (multiples of 10): 1000 ms is 100 centiseconds
// on the wire, gokeepalived's advert_int 1.
func frrVRRPdConf(prio int) string {
	return fmt.Sprintf(`hostname frr-d2
debug vrrp protocol
!
interface eth0
 vrrp %d version 3
 vrrp %d priority %d
 vrrp %d advertisement-interval 1000
 vrrp %d ip %s
!
`, frrVRID, frrVRID, prio, frrVRID, frrVRID, VIP)
}

// frrGKConf is gokeepalived's matching instance. extra is "v3_checksum_as_v2" for an FRR
// whose IPv4 checksum leaves the pseudo-header out, "" otherwise.
func frrGKConf(prio int, extra string) string {
	return fmt.Sprintf(`
vrrp_instance VI_FRR {
    state BACKUP
    interface eth0
    virtual_router_id %d
    version 3
    priority %d
    advert_int 1
    %s
    virtual_ipaddress {
        %s/24
    }
}
`, frrVRID, prio, extra, VIP)
}

// frrLab builds a two-director lab with the macvlan in director 2, starts FRR there
// with priority prio, waits until it is Master on its own and checks the checksum form
// of its adverts. It returns the gokeepalived option that matches that form.
func frrLab(t *testing.T, prio int) (*Lab, *FRR, string) {
	t.Helper()
	if missing := FRRMissing(); missing != "" {
		netns.SkipUnlessCI(t, "FRR is not installed ("+missing+" missing): tests/setup.sh installs package frr")
	}
	l := New(t, 2)
	l.FRRMacvlan4(frrDir, frrMacvlan, frrVRID, VIP+"/24")
	f := l.StartFRR(frrDir, "frr", frrVRRPdConf(prio))
	waitFRR(t, l, f, "Master", 10*time.Second)

	// Debian 12's FRR 8.4.4 sums its IPv4 VRRPv3 adverts WITH the pseudo-header, as
	// RFC 5798 says and as gokeepalived does by default, so v3_checksum_as_v2 must NOT be
	// set (with it gokeepalived would drop every FRR advert as a checksum error). Seen on
	// the wire: 31 33 64 01 00 64 79 b7 c0 a8 47 cd from 192.168.71.2 to 224.0.0.18:
	// 0x79b7 is the sum with the pseudo-header, the message alone would give 0x61f1.
	// A peer that leaves the pseudo-header out needs v3_checksum_as_v2 instead: the
	// capture tells, and the test follows what it sees (and logs it).
	pkt, err := CaptureVRRP(l.Directors[frrGKDir], "192.168.71.2", 10*time.Second)
	if err != nil {
		t.Fatalf("capture FRR's advert: %v", err)
	}
	pseudo, err := V3ChecksumCoversPseudoHeader(pkt)
	if err != nil {
		t.Fatalf("FRR's advert % x: %v", pkt, err)
	}
	if !pseudo {
		t.Logf("FRR sums its IPv4 VRRPv3 adverts without the pseudo-header: gokeepalived uses v3_checksum_as_v2")
		return l, f, "v3_checksum_as_v2"
	}
	t.Logf("FRR sums its IPv4 VRRPv3 adverts with the pseudo-header (RFC 5798)")
	return l, f, ""
}

// frrState is what the test observes of both routers at one moment.
type frrState struct {
	gk      bool // gokeepalived holds the VIP on director 1's eth0
	frr     FRRVRRP
	down    bool // FRR's macvlan is protodown
	frrErr  error
	holders []int
}

func observe(l *Lab, f *FRR) frrState {
	s := frrState{holders: l.HoldersAll(VIP)}
	l.mu.Lock()
	live := l.live[frrGKDir] > 0
	l.mu.Unlock()
	s.gk = live && slices.Contains(s.holders, frrGKDir)
	s.frr, s.frrErr = f.VRRP4(frrVRID)
	s.down = f.Protodown(frrMacvlan)
	return s
}

func (s frrState) String() string {
	if s.frrErr != nil {
		return fmt.Sprintf("gokeepalived holds VIP: %v; FRR: %v", s.gk, s.frrErr)
	}
	return fmt.Sprintf("gokeepalived holds VIP: %v (eth0 holders %v); FRR %s prio %d, adverts rx %d tx %d, %s protodown %v",
		s.gk, s.holders, s.frr.Status, s.frr.Priority, s.frr.AdverRx, s.frr.AdverTx, frrMacvlan, s.down)
}

// frrMaster: FRR is Master with its macvlan up and gokeepalived holds nothing.
func (s frrState) frrMaster() bool {
	return s.frrErr == nil && s.frr.Status == "Master" && !s.down && !slices.Contains(s.holders, frrGKDir)
}

// gkMaster: gokeepalived holds the VIP and FRR is Backup with its macvlan protodown.
func (s frrState) gkMaster() bool {
	return s.frrErr == nil && s.gk && s.frr.Status == "Backup" && s.down
}

// waitFRR waits until FRR's vrrpd alone reports status (before gokeepalived runs).
func waitFRR(t *testing.T, l *Lab, f *FRR, status string, timeout time.Duration) {
	t.Helper()
	var last frrState
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %v", last)
		}
	}()
	netns.Eventually(t, timeout, "FRR's vrrpd becomes "+status, func() bool {
		last = observe(l, f)
		return last.frrErr == nil && last.frr.Status == status && last.down == (status != "Master")
	})
}

// waitMixed waits until cond holds for the mixed cluster and returns how long it took.
func waitMixed(t *testing.T, l *Lab, f *FRR, what string, timeout time.Duration, cond func(frrState) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last frrState
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %v", last)
		}
	}()
	netns.Eventually(t, timeout, what, func() bool {
		last = observe(l, f)
		return cond(last)
	})
	took := time.Since(start)
	t.Logf("%s after %v: %v", what, took.Round(time.Millisecond), last)
	return took
}

// TestInteropFRR: a mixed VRRPv3 cluster of gokeepalived and FRRouting's vrrpd (Debian
// 12: FRR 8.4.4) on one IPv4 virtual router elects by priority and fails over in both
// directions. FRR runs zebra and vrrpd inside director 2's namespace only, with every
// file of theirs in the test's own directories.
func TestInteropFRR(t *testing.T) {
	t.Run("gokeepalived-higher", func(t *testing.T) {
		l, f, extra := frrLab(t, 100)
		// gokeepalived (150) starts as Backup, ignores FRR's lower-priority adverts,
		// takes over when its Master_Down_Interval expires, and FRR yields to its adverts.
		gk := l.Start(frrGKDir, "gk", frrGKConf(150, extra), binary)
		waitMixed(t, l, f, "gokeepalived master, FRR backup", 10*time.Second, frrState.gkMaster)
		before := observe(l, f).frr.AdverRx
		waitMixed(t, l, f, "FRR keeps receiving gokeepalived's adverts", 3*time.Second, func(s frrState) bool {
			return s.gkMaster() && s.frr.AdverRx > before
		})

		// SIGTERM: gokeepalived sends priority 0 and FRR takes over after its skew time.
		gk.Signal(syscall.SIGTERM)
		took := waitMixed(t, l, f, "FRR master after gokeepalived's SIGTERM", 5*time.Second, frrState.frrMaster)
		if took > 3*time.Second {
			t.Errorf("FRR took %v to take over: gokeepalived's priority-0 advert was not honoured", took)
		}
		if !gk.Wait(5 * time.Second) {
			t.Fatal("gokeepalived did not exit on SIGTERM")
		}

		// gokeepalived returns with the higher priority and preempts.
		l.Start(frrGKDir, "gk-again", frrGKConf(150, extra), binary)
		waitMixed(t, l, f, "gokeepalived preempts FRR", 10*time.Second, frrState.gkMaster)
	})

	t.Run("frr-higher", func(t *testing.T) {
		l, f, extra := frrLab(t, 200)
		gk := l.Start(frrGKDir, "gk", frrGKConf(150, extra), binary)
		netns.Eventually(t, 5*time.Second, "gokeepalived enters BACKUP", func() bool {
			return strings.Contains(gk.Log(), "Entering BACKUP STATE")
		})
		// gokeepalived must stay Backup on FRR's priority-200 adverts: watch it for well
		// over its Master_Down_Interval (3 s + (256-150)/256 s), after which it would
		// have taken the VIP had it dropped them.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if s := observe(l, f); !s.frrMaster() {
				t.Fatalf("FRR (200) should stay master over gokeepalived (150): %v", s)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if strings.Contains(gk.Log(), "Entering MASTER STATE") {
			t.Fatalf("gokeepalived became master under FRR's higher priority:\n%s", gk.Log())
		}

		// FRR's vrrpd stops (SIGTERM: it sends priority 0): gokeepalived takes over after
		// its skew time.
		f.VRRPd.Signal(syscall.SIGTERM)
		start := time.Now()
		netns.Eventually(t, 5*time.Second, "gokeepalived master after FRR's SIGTERM", func() bool {
			return slices.Equal(l.Holders(VIP), []int{frrGKDir})
		})
		took := time.Since(start)
		t.Logf("gokeepalived took over %v after FRR's SIGTERM", took.Round(time.Millisecond))
		if took > 3*time.Second {
			t.Errorf("gokeepalived took %v to take over: FRR's priority-0 advert was not honoured", took)
		}
		if !f.VRRPd.Wait(5 * time.Second) {
			t.Fatal("vrrpd did not exit on SIGTERM")
		}
		if !f.Protodown(frrMacvlan) {
			t.Errorf("vrrpd left %s up when it stopped", frrMacvlan)
		}

		// vrrpd returns with priority 200 and preempts gokeepalived, which must yield
		// (and remove the VIP) on the higher-priority advert.
		f.StartVRRPd(frrVRRPdConf(200))
		waitMixed(t, l, f, "FRR preempts gokeepalived", 10*time.Second, frrState.frrMaster)
		if n := strings.Count(gk.Log(), "Entering BACKUP STATE"); n < 2 {
			t.Errorf("gokeepalived's log shows %d BACKUP transitions, want its start and its return", n)
		}
	})
}
