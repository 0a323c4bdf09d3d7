package check

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"gokeepalived/parser"
)

// dnsReply builds the answer of a fake server to query q: the same ID (xor idXor), QR
// set (unless query), the given RCODE, and the question copied.
func dnsReply(q []byte, idXor uint16, query bool, rcode uint16) []byte {
	if len(q) < dnsHeaderLen {
		return nil
	}
	r := bytes.Clone(q)
	binary.BigEndian.PutUint16(r, binary.BigEndian.Uint16(q)^idXor)
	flags := binary.BigEndian.Uint16(q[2:]) | rcode
	if !query {
		flags |= dnsFlagQR
	}
	binary.BigEndian.PutUint16(r[2:], flags)
	return r
}

func TestDNSProbe(t *testing.T) {
	answer := func(idXor uint16, query bool, rcode uint16) func([]byte) []byte {
		return func(q []byte) []byte { return dnsReply(q, idXor, query, rcode) }
	}
	tests := []struct {
		name    string
		reply   func([]byte) []byte
		wantOK  bool
		wantErr string
	}{
		{"answer", answer(0, false, 0), true, ""},
		{"NXDOMAIN", answer(0, false, 3), false, "rcode 3 NXDOMAIN"},
		{"REFUSED", answer(0, false, 5), false, "rcode 5 REFUSED"},
		{"odd rcode", answer(0, false, 11), false, "rcode 11"},
		{"wrong ID only", answer(1, false, 0), false, "no response"},
		{"query echoed back", answer(0, true, 0), false, "no response"},
		{"short datagram", func([]byte) []byte { return []byte{1, 2, 3} }, false, "no response"},
		{"silent", func([]byte) []byte { return nil }, false, "no response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst, _ := udpServer(t, tc.reply)
			r := runProbe(t, mustNew(t, testChecker("DNS_CHECK", dst)), 300*time.Millisecond)
			if r.OK != tc.wantOK {
				t.Fatalf("OK = %v (%v), want %v", r.OK, r.Err, tc.wantOK)
			}
			if tc.wantErr != "" && !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", r.Err, tc.wantErr)
			}
		})
	}
	t.Run("closed port", func(t *testing.T) {
		r := runProbe(t, mustNew(t, testChecker("DNS_CHECK", closedPort(t, "udp4"))), 300*time.Millisecond)
		if r.OK || !strings.Contains(r.Err.Error(), "connection refused") {
			t.Fatalf("OK=%v err=%v", r.OK, r.Err)
		}
	})
}

// TestDNSProbeIgnoresNoise: datagrams that are not the answer do not end the check.
func TestDNSProbeIgnoresNoise(t *testing.T) {
	// A server that answers each query with several datagrams: short, wrong ID, not a
	// response, and finally the answer.
	srv, got := udpMultiServer(t, func(q []byte) [][]byte {
		return [][]byte{{0}, dnsReply(q, 0xffff, false, 0), dnsReply(q, 0, true, 0), dnsReply(q, 0, false, 0)}
	})
	r := runProbe(t, mustNew(t, testChecker("DNS_CHECK", srv)), time.Second)
	if !r.OK {
		t.Fatal(r.Err)
	}
	<-got
}

func TestDNSProbeQuery(t *testing.T) {
	tests := []struct {
		typ, name string
		want      []byte // question section
	}{
		{"", "", []byte{0, 0, 6, 0, 1}}, // keepalived's defaults: SOA of the root
		{"SOA", ".", []byte{0, 0, 6, 0, 1}},
		{"A", "example.org", []byte("\x07example\x03org\x00\x00\x01\x00\x01")},
		{"aaaa", "example.org.", []byte("\x07example\x03org\x00\x00\x1c\x00\x01")},
		{"MX", "a.b", []byte("\x01a\x01b\x00\x00\x0f\x00\x01")},
		{"TXT", "x", []byte("\x01x\x00\x00\x10\x00\x01")},
		{"NS", "x", []byte("\x01x\x00\x00\x02\x00\x01")},
		{"CNAME", "x", []byte("\x01x\x00\x00\x05\x00\x01")},
	}
	for _, tc := range tests {
		dst, got := udpServer(t, func(q []byte) []byte { return dnsReply(q, 0, false, 0) })
		c := testChecker("DNS_CHECK", dst)
		c.DNS = &parser.DNSCheck{Type: tc.typ, Name: tc.name}
		if r := runProbe(t, mustNew(t, c), time.Second); !r.OK {
			t.Fatalf("%s %s: %v", tc.typ, tc.name, r.Err)
		}
		q := <-got
		hdr := q[:dnsHeaderLen]
		if flags, qd := binary.BigEndian.Uint16(hdr[2:]), binary.BigEndian.Uint16(hdr[4:]); flags != dnsFlagRD || qd != 1 || !bytes.Equal(hdr[6:], make([]byte, 6)) {
			t.Errorf("%s %s: header %x", tc.typ, tc.name, hdr)
		}
		if !bytes.Equal(q[dnsHeaderLen:], tc.want) {
			t.Errorf("%s %s: question %q, want %q", tc.typ, tc.name, q[dnsHeaderLen:], tc.want)
		}
	}
	for _, bad := range []parser.DNSCheck{
		{Type: "PTR", Name: "x"},
		{Type: "A", Name: "a..b"},
		{Type: "A", Name: strings.Repeat("x", 64)},
		{Type: "A", Name: strings.Repeat("abcdefghi.", 26)},
	} {
		c := testChecker("DNS_CHECK", closedPort(t, "udp4"))
		c.DNS = &bad
		if _, err := New(c, nil, nil); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
