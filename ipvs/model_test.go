package ipvs

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestServiceKeyText: every kind of key the desired state makes reads back from its
// text as itself, alone and in JSON, and the text is the key's String.
func TestServiceKeyText(t *testing.T) {
	addr := netip.MustParseAddr
	for _, tc := range []struct {
		key  ServiceKey
		text string
	}{
		{ServiceKey{Family: IPv4, Protocol: TCP, Addr: addr("10.0.0.1"), Port: 80}, "TCP 10.0.0.1:80"},
		{ServiceKey{Family: IPv4, Protocol: UDP, Addr: addr("10.0.0.1"), Port: 53}, "UDP 10.0.0.1:53"},
		{ServiceKey{Family: IPv4, Protocol: SCTP, Addr: addr("192.0.2.7"), Port: 3868}, "SCTP 192.0.2.7:3868"},
		{ServiceKey{Family: IPv4, Protocol: TCP, Addr: addr("10.0.0.1")}, "TCP 10.0.0.1:0"}, // persistent port 0
		{ServiceKey{Family: IPv6, Protocol: TCP, Addr: addr("2001:db8::1"), Port: 443}, "TCP [2001:db8::1]:443"},
		{ServiceKey{Family: IPv6, Protocol: UDP, Addr: addr("fd00::1"), Port: 53}, "UDP [fd00::1]:53"},
		{ServiceKey{Family: IPv6, Protocol: SCTP, Addr: addr("fe80::1%eth0"), Port: 3868}, "SCTP [fe80::1%eth0]:3868"},
		{ServiceKey{Family: IPv6, Protocol: TCP, Addr: addr("::ffff:10.0.0.1"), Port: 80}, "TCP [::ffff:10.0.0.1]:80"},
		{ServiceKey{Family: IPv4, FWMark: 7}, "FWM 7 IPv4"},
		{ServiceKey{Family: IPv6, FWMark: 4294967295}, "FWM 4294967295 IPv6"},
		{Service{Family: IPv6, Protocol: TCP, Addr: addr("fd00::1"), Port: 80, FWMark: 9}.normalized().Key(), "FWM 9 IPv6"},
	} {
		text, err := tc.key.MarshalText()
		if err != nil || string(text) != tc.text || tc.key.String() != tc.text {
			t.Errorf("%#v: MarshalText %q, %v; String %q; want %q", tc.key, text, err, tc.key.String(), tc.text)
			continue
		}
		var back ServiceKey
		if err := back.UnmarshalText(text); err != nil || back != tc.key {
			t.Errorf("%q: read back as %#v, %v; want %#v", text, back, err, tc.key)
		}
		data, err := json.Marshal([]ServiceKey{tc.key})
		if err != nil {
			t.Errorf("%q: JSON: %v", tc.text, err)
			continue
		}
		var keys []ServiceKey
		if err := json.Unmarshal(data, &keys); err != nil || !slices.Equal(keys, []ServiceKey{tc.key}) {
			t.Errorf("%s: read back as %v, %v", data, keys, err)
		}
	}
}

// TestServiceKeyTextRejects: text that is no key is an error naming what is wrong, and
// the key is left alone; so is a key the text cannot carry.
func TestServiceKeyTextRejects(t *testing.T) {
	for text, why := range map[string]string{
		"":                    "want",
		"TCP":                 "want",
		"TCP 10.0.0.1":        "10.0.0.1",
		"TCP 10.0.0.1:80 rr":  "want",
		"ICMP 10.0.0.1:80":    "unknown protocol",
		"tcp 10.0.0.1:80":     "unknown protocol",
		"TCP 10.0.0.1:65536":  "65536",
		"TCP [::1]:80x":       "80x",
		"FWM 0 IPv4":          "0 is no mark",
		"FWM -1 IPv4":         "firewall mark",
		"FWM 4294967296 IPv4": "out of range",
		"FWM 7 IPv5":          "unknown family",
		"FWM 7":               "unknown protocol",
	} {
		k := ServiceKey{Family: IPv4, FWMark: 1}
		err := k.UnmarshalText([]byte(text))
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: error %v, want one saying %q", text, err, why)
		}
		if k != (ServiceKey{Family: IPv4, FWMark: 1}) {
			t.Errorf("%q: the key changed to %v", text, k)
		}
	}
	for _, k := range []ServiceKey{
		{Family: IPv4, Protocol: 1, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80},
		{Family: IPv6, Protocol: TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80},
		{Family: IPv4, Protocol: TCP, Port: 80},
		{FWMark: 7},
		{Family: IPv4, Protocol: TCP, FWMark: 7},
	} {
		if text, err := k.MarshalText(); err == nil {
			t.Errorf("%#v: written as %q", k, text)
		}
	}
}
