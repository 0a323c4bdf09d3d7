package check

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gokeepalived/parser"
)

// udpServer answers each datagram on 127.0.0.1 with reply(datagram) (nil: no answer)
// and records what it received.
func udpServer(t testing.TB, reply func([]byte) []byte) (netip.AddrPort, <-chan []byte) {
	t.Helper()
	return udpMultiServer(t, func(in []byte) [][]byte {
		if out := reply(in); out != nil {
			return [][]byte{out}
		}
		return nil
	})
}

// udpMultiServer is udpServer where each datagram may be answered by several.
func udpMultiServer(t testing.TB, reply func([]byte) [][]byte) (netip.AddrPort, <-chan []byte) {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			in := bytes.Clone(buf[:n])
			select {
			case got <- in:
			default:
			}
			for _, out := range reply(in) {
				_, _ = c.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return addrPort(c.LocalAddr()), got
}

func TestUDPProbe(t *testing.T) {
	echo, _ := udpServer(t, func(b []byte) []byte { return b })
	fixed := func(out []byte) netip.AddrPort {
		a, _ := udpServer(t, func([]byte) []byte { return out })
		return a
	}
	silent, _ := udpServer(t, func([]byte) []byte { return nil })
	closed := closedPort(t, "udp4")
	long := fixed(bytes.Repeat([]byte{0xab}, 300))

	tests := []struct {
		name    string
		dst     netip.AddrPort
		cfg     parser.UDPCheck
		wantOK  bool
		wantErr string
	}{
		{"no reply needed, silent server", silent, parser.UDPCheck{MaxReplyLength: 255}, true, ""},
		{"no reply needed, closed port", closed, parser.UDPCheck{MaxReplyLength: 255}, false, "connection refused"},
		{"reply needed, silent server", silent, parser.UDPCheck{RequireReply: true, MaxReplyLength: 255}, false, "no reply"},
		{"reply needed, closed port", closed, parser.UDPCheck{RequireReply: true, MaxReplyLength: 255}, false, "connection refused"},
		{"any reply", echo, parser.UDPCheck{RequireReply: true, MaxReplyLength: 255}, true, ""},
		{"reply matches", fixed([]byte{0x12, 0x34, 0x56}), parser.UDPCheck{
			Payload: []byte{1}, RequireReply: true, Reply: []byte{0x12, 0x34}, MaxReplyLength: 255}, true, ""},
		{"reply differs", fixed([]byte{0x12, 0x35}), parser.UDPCheck{
			Payload: []byte{1}, RequireReply: true, Reply: []byte{0x12, 0x34}, MaxReplyLength: 255}, false, "byte 1"},
		{"wildcards", fixed([]byte{0x12, 0x3f, 0x56}), parser.UDPCheck{
			// require_reply 12 3x x6
			Payload: []byte{1}, RequireReply: true, Reply: []byte{0x12, 0x30, 0x06}, ReplyMask: []byte{0xff, 0xf0, 0x0f}, MaxReplyLength: 255}, true, ""},
		{"wildcards differ", fixed([]byte{0x12, 0x4f, 0x56}), parser.UDPCheck{
			Payload: []byte{1}, RequireReply: true, Reply: []byte{0x12, 0x30, 0x06}, ReplyMask: []byte{0xff, 0xf0, 0x0f}, MaxReplyLength: 255}, false, "byte 1"},
		{"reply shorter than pattern matches its length", fixed([]byte{0x12}), parser.UDPCheck{
			Payload: []byte{1}, RequireReply: true, Reply: []byte{0x12, 0x34}, MaxReplyLength: 255}, true, ""},
		{"reply too short", fixed([]byte{0x12}), parser.UDPCheck{
			Payload: []byte{1}, RequireReply: true, MinReplyLength: 2, MaxReplyLength: 255}, false, "1 bytes"},
		{"reply too long", long, parser.UDPCheck{
			Payload: []byte{1}, RequireReply: true, MaxReplyLength: 255}, false, "256 bytes"},
		{"long reply allowed", long, parser.UDPCheck{
			Payload: []byte{1}, RequireReply: true, MaxReplyLength: 300}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testChecker("UDP_CHECK", tc.dst)
			cfg := tc.cfg
			c.UDP = &cfg
			r := runProbe(t, mustNew(t, c), 300*time.Millisecond)
			if r.OK != tc.wantOK {
				t.Fatalf("OK = %v (%v), want %v", r.OK, r.Err, tc.wantOK)
			}
			if tc.wantErr != "" && !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", r.Err, tc.wantErr)
			}
		})
	}
}

func TestUDPProbePayload(t *testing.T) {
	dst, got := udpServer(t, func(b []byte) []byte { return b })
	c := testChecker("UDP_CHECK", dst)
	c.UDP = &parser.UDPCheck{Payload: []byte("hello"), RequireReply: true, MaxReplyLength: 255}
	if r := runProbe(t, mustNew(t, c), time.Second); !r.OK {
		t.Fatal(r.Err)
	}
	if b := <-got; string(b) != "hello" {
		t.Errorf("server got %q, want the payload", b)
	}
	// Without a payload keepalived sends a buffer of random bytes.
	c.UDP = &parser.UDPCheck{RequireReply: true, MaxReplyLength: 255}
	p := mustNew(t, c)
	for range 2 {
		if r := runProbe(t, p, time.Second); !r.OK {
			t.Fatal(r.Err)
		}
	}
	a, b := <-got, <-got
	if len(a) != udpRandomPayload || len(b) != udpRandomPayload || bytes.Equal(a, b) {
		t.Errorf("default payloads %x and %x: want two different %d-byte payloads", a, b, udpRandomPayload)
	}
}
