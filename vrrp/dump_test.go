package vrrp

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestDumps renders the three keepalived dumps of a running master and checks their
// layout against keepalived's (reference §4).
func TestDumps(t *testing.T) {
	link := NewFakeLink()
	d := startDirector(t, link, "d", 2, 120, "")
	eventually(t, 3*time.Second, "master", func() bool { return d.state() == StateMaster })
	st := d.mgr.Status()
	cfg := fakeConfig(t, 120, "")

	var stats bytes.Buffer
	if err := WriteStats(&stats, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"VRRP Instance: VI_1\n", "  Advertisements:\n    Received: 0\n    Sent: ",
		"  Became master: 1\n  Released master: 0\n", "  Packet Errors:\n    Length: 0\n    TTL: 0\n",
		"  Authentication Errors:\n    Invalid Type: 0\n", "  Priority Zero:\n    Received: 0\n    Sent: 0\n"} {
		if !strings.Contains(stats.String(), want) {
			t.Errorf("stats dump lacks %q:\n%s", want, stats.String())
		}
	}

	var data bytes.Buffer
	if err := WriteData(&data, &cfg.Global, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"------< Global definitions >------\n", "------< VRRP Topology >------\n",
		" VRRP Instance = VI_1\n", "   State = MASTER\n", "   Virtual Router ID = 51\n", "   Priority = 120\n",
		"   Effective priority = 120\n", "   Advert interval = 50 milli-sec\n",
		"   Virtual IP (1):\n     192.168.71.205 dev eth0 scope global set\n"} {
		if !strings.Contains(data.String(), want) {
			t.Errorf("data dump lacks %q:\n%s", want, data.String())
		}
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, st); err != nil {
		t.Fatal(err)
	}
	var arr []struct {
		Data     map[string]any `json:"data"`
		Stats    map[string]any `json:"stats"`
		Trackers []any          `json:"trackers"`
	}
	if err := json.Unmarshal(js.Bytes(), &arr); err != nil {
		t.Fatalf("JSON dump: %v\n%s", err, js.String())
	}
	if len(arr) != 1 {
		t.Fatalf("%d instances", len(arr))
	}
	for _, k := range []string{"iname", "vrid", "base_priority", "effective_priority", "state", "wantstate",
		"vips", "evips", "track_script", "adver_int", "master_adver_int", "last_transition", "vipset", "auth_type"} {
		if _, ok := arr[0].Data[k]; !ok {
			t.Errorf("JSON data lacks %q", k)
		}
	}
	for _, k := range []string{"advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err",
		"advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype",
		"authtype_mismatch", "auth_failure", "pri_zero_rcvd", "pri_zero_sent"} {
		if _, ok := arr[0].Stats[k]; !ok {
			t.Errorf("JSON stats lacks %q", k)
		}
	}
	if s := arr[0].Data["state"]; s != float64(2) {
		t.Errorf("state %v, want 2 (MASTER)", s)
	}
}
