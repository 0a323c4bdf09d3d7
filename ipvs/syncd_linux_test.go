package ipvs

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink/nl"
)

// replyOf builds an IPVS_CMD_GET_DAEMON reply payload for d: the generic netlink
// header, then the daemon attribute as the kernel nests it.
func replyOf(d SyncDaemon) []byte {
	return append((&nl.Genlmsg{Command: ipvsCmdNewDaemon, Version: ipvsGenlVersion}).Serialize(), marshalSyncDaemon(d)...)
}

func TestSyncDaemonCodec(t *testing.T) {
	tests := []SyncDaemon{
		{State: SyncMaster, Interface: "eth1", SyncID: 51},
		{State: SyncBackup, Interface: "bond0.100", SyncID: 0, MaxLen: 1400, Port: 8849, TTL: 4, Group: netip.MustParseAddr("239.1.1.1")},
		{State: SyncBackup, Interface: "eth2", SyncID: 255, Group: netip.MustParseAddr("ff05::81")},
	}
	var msgs [][]byte
	for _, d := range tests {
		msgs = append(msgs, replyOf(d))
	}
	got, err := parseSyncDaemons(msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(tests) {
		t.Fatalf("got %d daemons, want %d", len(got), len(tests))
	}
	for i := range tests {
		if got[i] != tests[i] {
			t.Errorf("round trip %d: got %+v, want %+v", i, got[i], tests[i])
		}
	}
}

// TestSyncDaemonStopEncoding: a stop carries the state alone, as the kernel requires.
func TestSyncDaemonStopEncoding(t *testing.T) {
	attrs, err := nl.ParseRouteAttr(marshalSyncDaemon(SyncDaemon{State: SyncBackup}))
	if err != nil || len(attrs) != 1 || attrs[0].Attr.Type != ipvsCmdAttrDaemon|nl.NLA_F_NESTED {
		t.Fatalf("attrs %v, err %v", attrs, err)
	}
	inner, err := nl.ParseRouteAttr(attrs[0].Value)
	if err != nil || len(inner) != 1 || inner[0].Attr.Type != ipvsDaemonAttrState || nl.NativeEndian().Uint32(inner[0].Value) != 2 {
		t.Fatalf("inner %v, err %v", inner, err)
	}
}

func TestSyncDaemonMalformed(t *testing.T) {
	short := append((&nl.Genlmsg{}).Serialize(), nl.NewRtAttr(ipvsCmdAttrDaemon, nl.NewRtAttr(ipvsDaemonAttrState, []byte{1}).Serialize()).Serialize()...)
	noState := replyOf(SyncDaemon{Interface: "eth0"})
	for name, m := range map[string][]byte{"truncated header": {1, 2}, "short state": short, "state 0": noState} {
		if _, err := parseSyncDaemons([][]byte{m}); !errors.Is(err, errSyncReply) {
			t.Errorf("%s: err %v, want errSyncReply", name, err)
		}
	}
}
