package check

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"gokeepalived/parser"
)

// dnsTypes are the query types DNS_CHECK knows, with their codes.
var dnsTypes = map[string]uint16{"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}

const (
	dnsHeaderLen = 12
	dnsFlagQR    = 0x8000 // a response
	dnsFlagRD    = 0x0100 // recursion desired, as keepalived asks
	dnsClassIN   = 1
)

// dnsRcodes names the usual response codes for messages.
var dnsRcodes = map[int]string{1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

// dnsProbe is a DNS_CHECK: one query (name, type, class IN, recursion desired) over UDP
// to the target; the check passes when a response with the query's ID arrives with
// RCODE 0. Datagrams that are too short, carry another ID or are not responses are
// ignored, as in keepalived; an ICMP error fails the check at once.
type dnsProbe struct {
	target probeTarget
	query  []byte // the question section: name, type and class
	what   string // "TYPE name", for messages
}

func newDNSProbe(c *parser.Checker, rs *parser.RealServer) (*dnsProbe, error) {
	t, err := newProbeTarget(c, rs, true)
	if err != nil {
		return nil, err
	}
	typ, name := "SOA", "."
	if c.DNS != nil {
		if c.DNS.Type != "" {
			typ = strings.ToUpper(c.DNS.Type)
		}
		if c.DNS.Name != "" {
			name = c.DNS.Name
		}
	}
	code, ok := dnsTypes[typ]
	if !ok {
		return nil, fmt.Errorf("DNS_CHECK: unknown type %q", typ)
	}
	q, err := dnsEncodeName(name)
	if err != nil {
		return nil, fmt.Errorf("DNS_CHECK: name %q: %w", name, err)
	}
	q = binary.BigEndian.AppendUint16(q, code)
	q = binary.BigEndian.AppendUint16(q, dnsClassIN)
	return &dnsProbe{target: t, query: q, what: typ + " " + name}, nil
}

// dnsEncodeName encodes a domain name as DNS labels ("." and "" are the root).
func dnsEncodeName(name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ".")
	var b []byte
	if name != "" {
		for _, l := range strings.Split(name, ".") {
			if l == "" || len(l) > 63 {
				return nil, fmt.Errorf("label %q: want 1 to 63 bytes", l)
			}
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	b = append(b, 0)
	if len(b) > 255 {
		return nil, fmt.Errorf("%d bytes encoded, more than 255", len(b))
	}
	return b, nil
}

// Check sends the query and waits for its response.
func (p *dnsProbe) Check(ctx context.Context) Result {
	start := time.Now()
	ctx, cancel := probeContext(ctx, p.target.timeout)
	defer cancel()
	fail := func(err error) Result {
		return probeResult(start, fmt.Errorf("DNS_CHECK %s %s: %w", p.target.dst, p.what, err))
	}
	conn, err := p.target.dial(ctx, "udp")
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	stop := probeBind(ctx, conn)
	defer stop()

	msg := make([]byte, dnsHeaderLen, dnsHeaderLen+len(p.query))
	_, _ = rand.Read(msg[:2]) // the ID; crypto/rand.Read never fails on Linux
	id := binary.BigEndian.Uint16(msg)
	binary.BigEndian.PutUint16(msg[2:], dnsFlagRD)
	binary.BigEndian.PutUint16(msg[4:], 1) // one question
	msg = append(msg, p.query...)
	if _, err := conn.Write(msg); err != nil {
		return fail(fmt.Errorf("send query: %w", err))
	}
	buf := make([]byte, 512) // only the header matters; a longer datagram is cut
	for {
		n, err := conn.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fail(fmt.Errorf("no response: %w", err))
		}
		if err != nil {
			return fail(fmt.Errorf("receive: %w", err))
		}
		if n < dnsHeaderLen || binary.BigEndian.Uint16(buf) != id {
			continue
		}
		flags := binary.BigEndian.Uint16(buf[2:])
		if flags&dnsFlagQR == 0 {
			continue
		}
		if rcode := int(flags & 0xf); rcode != 0 {
			return fail(fmt.Errorf("response with rcode %d %s", rcode, dnsRcodes[rcode]))
		}
		return probeResult(start, nil)
	}
}
