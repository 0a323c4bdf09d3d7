//go:build vmguest

package scaleguest

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"gokeepalived/tests/vm/vmlab"
)

// The lab. The director is the VM's root namespace. The real servers are addresses, not
// hosts: the namespace "farm" takes every address of farmNet as its own (a local route,
// "AnyIP") and answers port 80 on all of them with one listener bound to 0.0.0.0:80; the
// namespace "victims" does the same for victimNet, but with one listener per address,
// so that the test can close the listener of one real server. The director routes both
// prefixes over a veth to its namespace.
var (
	farmNet   = netip.MustParsePrefix("10.100.0.0/16")
	victimNet = netip.MustParsePrefix("10.101.0.0/24")
)

const (
	farmRoot    = "192.168.80.1/24" // the director's side of the veth to the farm
	farmPeer    = "192.168.80.2/24"
	victimsRoot = "192.168.81.1/24"
	victimsPeer = "192.168.81.2/24"
	backlog     = 65535 // listen backlog (somaxconn is raised to it in the namespaces)
)

// farmAddr is the address of the farm's real server number n (0 ≤ n < 40,000):
// 10.100.(n/200).(n%200+1).
func farmAddr(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 100, byte(n / 200), byte(n%200 + 1)})
}

// victimAddr is the address of victim k (0 ≤ k < 250): 10.101.0.(k+1).
func victimAddr(k int) netip.Addr { return netip.AddrFrom4([4]byte{10, 101, 0, byte(k + 1)}) }

// listener is a TCP listening socket used with blocking system calls: its accepting
// goroutines cost three calls per connection (accept4, getsockname, close) and no trip
// through Go's network poller, so that the real servers take as little of the VM's CPU
// as possible away from the daemons under test.
type listener struct {
	fd   int
	addr netip.AddrPort
	wg   sync.WaitGroup
}

// listen opens a listener on addr inside namespace n with a large backlog, so that a
// burst of checks is never dropped for want of room in the accept queue. With
// deferred set it is a TCP_DEFER_ACCEPT listener (nginx's "listen ... deferred"): a
// connection is queued for accept only once data or a FIN arrives, so a handshake that
// the client resets costs the server its kernel's work and nothing more.
func listen(n *vmlab.NS, addr netip.AddrPort, deferred bool) (*listener, error) {
	l := &listener{fd: -1, addr: addr}
	err := n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		l.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}); err != nil {
			return fmt.Errorf("bind %s: %w", addr, err)
		}
		if deferred {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 30); err != nil {
				return fmt.Errorf("TCP_DEFER_ACCEPT: %w", err)
			}
		}
		return unix.Listen(fd, backlog)
	})
	if err != nil {
		if l.fd >= 0 {
			unix.Close(l.fd)
		}
		return nil, fmt.Errorf("listen %s in %s: %w", addr, n.Name, err)
	}
	return l, nil
}

// serve starts n goroutines that accept connections and close them at once (a
// TCP_CHECK only connects), calling count with the address each was made to.
func (l *listener) serve(n int, count func(netip.Addr)) {
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				nfd, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC)
				switch {
				case err == unix.EINTR || err == unix.ECONNABORTED:
					continue
				case err == unix.EINVAL || err == unix.EBADF:
					return // shut down
				case err != nil:
					time.Sleep(time.Millisecond) // EMFILE and friends: do not spin
					continue
				}
				if sa, err := unix.Getsockname(nfd); err == nil {
					if sa4, ok := sa.(*unix.SockaddrInet4); ok {
						count(netip.AddrFrom4(sa4.Addr))
					}
				}
				unix.Close(nfd)
			}
		}()
	}
}

// close shuts the listener down, which refuses new connections from then on (the
// kernel answers a SYN with a reset), and returns the time the shutdown returned; it
// then waits for the accepting goroutines and closes the socket.
func (l *listener) close() (time.Time, error) {
	err := unix.Shutdown(l.fd, unix.SHUT_RDWR)
	at := time.Now()
	l.wg.Wait()
	return at, errors.Join(err, unix.Close(l.fd))
}

// plug connects the root namespace (interface rootName, address rootCIDR) to n
// (interface eth0, address peerCIDR, default route back to the root side, lo up), makes
// n own every address of anyIP, and routes anyIP from the root namespace to n.
func plug(rootName string, n *vmlab.NS, rootCIDR, peerCIDR string, anyIP netip.Prefix) error {
	ra, err := netlink.ParseAddr(rootCIDR)
	if err != nil {
		return err
	}
	pa, err := netlink.ParseAddr(peerCIDR)
	if err != nil {
		return err
	}
	link, err := vmlab.Veth(rootName, n, "eth0", []string{peerCIDR}, ra.IP.String())
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, ra); err != nil {
		return fmt.Errorf("address %s on %s: %w", rootCIDR, rootName, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return err
	}
	h, err := n.Netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	// "ip route add local <anyIP> dev lo" (table local): every address of the prefix is
	// this namespace's own, without one interface address per real server.
	local := &netlink.Route{
		LinkIndex: lo.Attrs().Index, Dst: ipNet(anyIP), Type: unix.RTN_LOCAL,
		Table: unix.RT_TABLE_LOCAL, Scope: unix.RT_SCOPE_HOST, Protocol: unix.RTPROT_STATIC,
	}
	if err := h.RouteAdd(local); err != nil {
		return fmt.Errorf("local route %s in %s: %w", anyIP, n.Name, err)
	}
	if err := netlink.RouteAdd(&netlink.Route{Dst: ipNet(anyIP), Gw: pa.IP}); err != nil {
		return fmt.Errorf("route %s via %s: %w", anyIP, pa.IP, err)
	}
	return n.Sysctl("net.core.somaxconn", fmt.Sprint(backlog))
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}

// farm is the namespace of the real servers with their one listener.
//
// With GKA_SCALE_FARM=defer its listener defers accept: a check that resets
// its connection never reaches the accepting goroutines, so the real servers' side of
// a check is the kernel's work alone, as on a real server with its own CPUs; a check
// that ends with a FIN (keepalived's) is accepted and closed as before. Checks are then
// counted by the kernel (TcpExt TCPDeferAcceptDrop: the handshakes' last ACKs, one per
// check whichever way it ends) and the interval between the checks of one server is
// measured on a sample, the SYNs to the first farmSample servers captured at the
// farm's interface. With GKA_SCALE_FARM=accept (the default) every connection is
// accepted, counted and timed by the accepting goroutines (getsockname), which takes
// about half a vCPU at 1,500 checks a second.
type farm struct {
	ns       *vmlab.NS
	ln       *listener
	deferred bool
	capt     *capture     // deferred: the sampled SYNs
	total    atomic.Int64 // accept: connections accepted
	tal      *tally       // indexed by the last two bytes of the address
}

// farmSample is how many servers (farmAddr 0..farmSample-1, 10.100.0.0/24) a deferred
// farm times.
const farmSample = 200

// acceptors is the number of goroutines accepting on one listener.
const acceptors = 2

func newFarm() (*farm, error) {
	mode := cmp.Or(os.Getenv("GKA_SCALE_FARM"), "accept")
	if mode != "defer" && mode != "accept" {
		return nil, fmt.Errorf("GKA_SCALE_FARM=%s: want defer or accept", mode)
	}
	n, err := vmlab.NewNS("farm")
	if err != nil {
		return nil, err
	}
	if err := plug("farm0", n, farmRoot, farmPeer, farmNet); err != nil {
		return nil, err
	}
	f := &farm{ns: n, deferred: mode == "defer", tal: newTally(1 << 16)}
	f.ln, err = listen(n, netip.AddrPortFrom(netip.IPv4Unspecified(), 80), f.deferred)
	if err != nil {
		return nil, err
	}
	if !f.deferred {
		f.ln.serve(acceptors, func(local netip.Addr) {
			f.tal.add(farmIndex(local), time.Now().UnixNano())
			f.total.Add(1)
		})
		return f, nil
	}
	f.ln.serve(acceptors, func(netip.Addr) {})
	f.capt, err = openCapture(n, "eth0", sampleFilter, func(e synEvent) { f.tal.add(farmIndex(e.dst), e.at.UnixNano()) })
	if err != nil {
		return nil, err
	}
	return f, nil
}

// checks is the number of checks the farm has seen so far.
func (f *farm) checks() int64 {
	if f.deferred {
		return deferDrops(f.ns)
	}
	return f.total.Load()
}

// mode is how the listener serves: "defer" or "accept" (GKA_SCALE_FARM).
func (f *farm) mode() string {
	if f.deferred {
		return "defer"
	}
	return "accept"
}

// timed reports whether the farm measures the interval of its server number n.
func (f *farm) timed(n int) bool { return !f.deferred || n < farmSample }

// farmIndex is the tally index of a farm address: its last two bytes.
func farmIndex(a netip.Addr) int {
	b := a.As4()
	return int(b[2])<<8 | int(b[3])
}

// victims is the namespace of the real servers whose listeners the test closes.
type victims struct {
	ns   *vmlab.NS
	capt *capture
	mu   sync.Mutex
	lns  map[int]*listener
	tal  *tally // indexed by victim number
	// total counts the connections accepted by every victim.
	total atomic.Int64
}

func newVictims() (*victims, error) {
	n, err := vmlab.NewNS("victims")
	if err != nil {
		return nil, err
	}
	if err := plug("vict0", n, victimsRoot, victimsPeer, victimNet); err != nil {
		return nil, err
	}
	v := &victims{ns: n, lns: map[int]*listener{}, tal: newTally(256)}
	v.capt, err = openCapture(n, "eth0", nil, nil)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// open starts victim k's listener (if it is not open).
func (v *victims) open(k int) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.lns[k] != nil {
		return nil
	}
	ln, err := listen(v.ns, netip.AddrPortFrom(victimAddr(k), 80), false)
	if err != nil {
		return err
	}
	v.lns[k] = ln
	ln.serve(1, func(netip.Addr) {
		v.tal.add(k, time.Now().UnixNano())
		v.total.Add(1)
	})
	return nil
}

// close closes victim k's listener: from then on its port refuses connections. It
// returns the time the close returned.
func (v *victims) close(k int) (time.Time, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	ln := v.lns[k]
	if ln == nil {
		return time.Time{}, fmt.Errorf("victim %d is not open", k)
	}
	delete(v.lns, k)
	return ln.close()
}

// capture records, with the kernel's receive timestamps, the TCP SYNs that reach an
// interface: each is the start of a check of the address it goes to.
type capture struct {
	fd    int
	onSYN func(synEvent) // when set, gets each SYN instead of the list

	stop atomic.Bool
	done chan struct{}
	mu   sync.Mutex
	syns []synEvent
}

type synEvent struct {
	at  time.Time
	dst netip.Addr
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openCapture captures on interface ifname of n; filter, when set, is attached to the
// socket, and onSYN, when set, receives each SYN instead of the capture's list.
func openCapture(n *vmlab.NS, ifname string, filter []bpf.Instruction, onSYN func(synEvent)) (*capture, error) {
	c := &capture{fd: -1, done: make(chan struct{}), onSYN: onSYN}
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		if err != nil {
			return err
		}
		c.fd = fd
		if filter != nil {
			raw, err := bpf.Assemble(filter)
			if err != nil {
				return err
			}
			prog := make([]unix.SockFilter, len(raw))
			for i, r := range raw {
				prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
			}
			if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
				return fmt.Errorf("SO_ATTACH_FILTER: %w", err)
			}
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index}); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return err
		}
		// A receive timeout lets the reader see stop.
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})
	})
	if err != nil {
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		return nil, fmt.Errorf("capture on %s in %s: %w", ifname, n.Name, err)
	}
	go c.read()
	return c, nil
}

func (c *capture) read() {
	defer close(c.done)
	buf := make([]byte, 128)
	oob := make([]byte, 128)
	for !c.stop.Load() {
		n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_TRUNC)
		if err != nil {
			continue // EAGAIN on the timeout, EINTR
		}
		n = min(n, len(buf))
		if n < 20 || buf[0]>>4 != 4 || buf[9] != unix.IPPROTO_TCP {
			continue
		}
		ihl := int(buf[0]&0xf) * 4
		if n < ihl+14 {
			continue
		}
		if flags := buf[ihl+13]; flags&0x02 == 0 || flags&0x10 != 0 { // SYN without ACK
			continue
		}
		at := time.Now()
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
					at = time.Unix(int64(binary.NativeEndian.Uint64(m.Data)), int64(binary.NativeEndian.Uint64(m.Data[8:])))
				}
			}
		}
		dst := netip.AddrFrom4([4]byte(buf[16:20]))
		if c.onSYN != nil {
			c.onSYN(synEvent{at: at, dst: dst})
			continue
		}
		c.mu.Lock()
		c.syns = append(c.syns, synEvent{at: at, dst: dst})
		c.mu.Unlock()
	}
}

// firstSYN returns the first SYN to dst at or after from.
func (c *capture) firstSYN(dst netip.Addr, from time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.syns {
		if e.dst == dst && !e.at.Before(from) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// trim forgets the SYNs before t.
func (c *capture) trim(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := 0
	for i < len(c.syns) && c.syns[i].at.Before(t) {
		i++
	}
	c.syns = append(c.syns[:0], c.syns[i:]...)
}

func (c *capture) close() {
	c.stop.Store(true)
	<-c.done
	unix.Close(c.fd)
}

// deferDrops reads TcpExt TCPDeferAcceptDrop of namespace n.
func deferDrops(n *vmlab.NS) int64 {
	var v int64
	_ = n.Do(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/netstat")
		if err != nil {
			return err
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			if !strings.HasPrefix(lines[i], "TcpExt:") {
				continue
			}
			k, val := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			for j := range k {
				if k[j] == "TCPDeferAcceptDrop" {
					v, _ = strconv.ParseInt(val[j], 10, 64)
				}
			}
		}
		return nil
	})
	return v
}
