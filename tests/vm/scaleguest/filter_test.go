package scaleguest

import (
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// This file has no build tag: the filter's test runs on the host with the unit tests.

// sampleFilter keeps the TCP SYNs (without ACK) to 10.100.0.0/24, the sampled farm
// servers, out of the packets of an AF_PACKET SOCK_DGRAM socket (from the IP header).
var sampleFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 16, Size: 4}, // destination address
	bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xffffff00},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0a640000, SkipFalse: 7},
	bpf.LoadAbsolute{Off: 9, Size: 1}, // protocol
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_TCP, SkipFalse: 5},
	bpf.LoadMemShift{Off: 0},           // X = IP header length
	bpf.LoadIndirect{Off: 13, Size: 1}, // TCP flags
	bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x12},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x02, SkipFalse: 1}, // SYN, not ACK
	bpf.RetConstant{Val: 128},
	bpf.RetConstant{Val: 0},
}

// TestSampleFilter runs sampleFilter over IPv4 headers: only a SYN to 10.100.0.0/24
// passes.
func TestSampleFilter(t *testing.T) {
	vm, err := bpf.NewVM(sampleFilter)
	if err != nil {
		t.Fatal(err)
	}
	packet := func(dst [4]byte, proto, flags byte) []byte {
		b := make([]byte, 40) // IPv4 header of 20 bytes, then TCP
		b[0], b[9], b[33] = 0x45, proto, flags
		copy(b[16:], dst[:])
		return b
	}
	for _, c := range []struct {
		name string
		p    []byte
		pass bool
	}{
		{"SYN to a sampled server", packet([4]byte{10, 100, 0, 5}, unix.IPPROTO_TCP, 0x02), true},
		{"SYN-ACK", packet([4]byte{10, 100, 0, 5}, unix.IPPROTO_TCP, 0x12), false},
		{"ACK", packet([4]byte{10, 100, 0, 5}, unix.IPPROTO_TCP, 0x10), false},
		{"SYN to a server not sampled", packet([4]byte{10, 100, 1, 5}, unix.IPPROTO_TCP, 0x02), false},
		{"SYN to a victim", packet([4]byte{10, 101, 0, 5}, unix.IPPROTO_TCP, 0x02), false},
		{"UDP", packet([4]byte{10, 100, 0, 5}, unix.IPPROTO_UDP, 0x02), false},
	} {
		n, err := vm.Run(c.p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (n > 0) != c.pass {
			t.Errorf("%s: filter kept %d bytes, want pass=%v", c.name, n, c.pass)
		}
	}
}
