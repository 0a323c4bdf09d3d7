package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/moby/ipvs"
)

// DefaultCallTimeout is the deadline of each kernel call of [Moby] when none is given.
const DefaultCallTimeout = 2 * time.Second

// handle is the part of *ipvs.Handle that Moby uses; tests substitute a handle that
// blocks.
type handle interface {
	GetServices() ([]*ipvs.Service, error)
	GetDestinations(*ipvs.Service) ([]*ipvs.Destination, error)
	NewService(*ipvs.Service) error
	UpdateService(*ipvs.Service) error
	DelService(*ipvs.Service) error
	NewDestination(*ipvs.Service, *ipvs.Destination) error
	UpdateDestination(*ipvs.Service, *ipvs.Destination) error
	DelDestination(*ipvs.Service, *ipvs.Destination) error
	SetConfig(*ipvs.Config) error
	Flush() error
	Close()
}

// Moby is the [Kernel] over github.com/moby/ipvs (generic netlink, the current network
// namespace). A call to a kernel that does not answer would wait on its netlink socket,
// so every call has a deadline: a watchdog timer closes the netlink handle when the
// call overruns it, which makes the waiting send or receive return (the socket is in
// Go's network poller), and the handle is replaced by a fresh one; the call returns an
// error matching [ErrTimeout]. The call itself runs in the caller's goroutine: under
// the test VM's emulation a goroutine per call cost 0.7 ms, more than the netlink round
// trip. A netlink socket carries one request at a time, so Moby has a few handles
// (lanes): concurrent calls go out on different sockets, which is how a full pass
// writes several services at once (see [Concurrent]). Moby is safe for concurrent use.
type Moby struct {
	open    func() (handle, error)
	timeout time.Duration
	lanes   []*lane
	free    chan int // indexes of the lanes not in use

	mu       sync.Mutex
	replaced int
	// pe remembers the persistence engines set: moby/ipvs does not read them back.
	pe map[ServiceKey]string
}

// lane is one netlink handle; h is nil until first used or after a failed reopen (the
// next call retries).
type lane struct {
	mu sync.Mutex
	h  handle
}

// mobyLanes is how many handles NewMoby uses: the CPUs, at most 4. Under the test VM's
// emulation two handles write a table from empty in 2.1 s where one takes 4.5 s; more
// lanes than CPUs only add switching.
func mobyLanes() int { return min(runtime.GOMAXPROCS(0), 4) }

var _ Kernel = (*Moby)(nil)

// NewMoby returns a Moby whose calls each have timeout (0: [DefaultCallTimeout]). It
// refuses to start unless [Probe] finds IPVS in the kernel: without it, moby/ipvs
// reports success for every call.
func NewMoby(timeout time.Duration) (*Moby, error) {
	if err := Probe(); err != nil {
		return nil, fmt.Errorf("ipvs: %w", err)
	}
	return newMobyLanes(func() (handle, error) { return ipvs.New("") }, timeout, mobyLanes())
}

// newMoby returns a Moby over the handles open returns, with one lane, open.
func newMoby(open func() (handle, error), timeout time.Duration) (*Moby, error) {
	return newMobyLanes(open, timeout, 1)
}

// newMobyLanes returns a Moby with n lanes over the handles open returns; the first is
// opened now, so that a Moby that cannot talk to the kernel is refused at once, the
// others when first needed.
func newMobyLanes(open func() (handle, error), timeout time.Duration, n int) (*Moby, error) {
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	m := &Moby{open: open, timeout: timeout, pe: map[ServiceKey]string{}, free: make(chan int, n)}
	for i := range max(n, 1) {
		m.lanes = append(m.lanes, &lane{})
		m.free <- i
	}
	if err := m.reopen(m.lanes[0]); err != nil {
		return nil, err
	}
	return m, nil
}

// Concurrency is the number of calls Moby can have in flight at once.
func (m *Moby) Concurrency() int { return len(m.lanes) }

// Close closes the netlink handles, once the calls in flight are done.
func (m *Moby) Close() {
	for _, l := range m.lanes {
		l.mu.Lock()
		if l.h != nil {
			l.h.Close()
			l.h = nil
		}
		l.mu.Unlock()
	}
}

// Replaced returns how many times a call hit the deadline and the handle was replaced.
func (m *Moby) Replaced() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.replaced
}

// reopen opens a new handle for l, under the deadline; l.mu is held or l is not shared
// yet.
func (m *Moby) reopen(l *lane) error {
	var h handle
	err := within(m.timeout, func() (err error) {
		h, err = m.open()
		return err
	}, func() {
		if h != nil {
			h.Close() // opened after the deadline: nobody uses it
		}
	})
	if err != nil {
		return fmt.Errorf("ipvs: opening a netlink handle: %w", err)
	}
	l.h = h
	return nil
}

// within runs f and returns its error, or an ErrTimeout error if f has not returned after
// d; late then runs once f does return.
func within(d time.Duration, f func() error, late func()) error {
	done := make(chan error, 1)
	var mu sync.Mutex
	expired := false
	go func() {
		err := f()
		mu.Lock()
		defer mu.Unlock()
		if expired {
			late()
		}
		done <- err
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		mu.Lock()
		defer mu.Unlock()
		select {
		case err := <-done: // it made it after all
			return err
		default:
		}
		expired = true
		return fmt.Errorf("%w within %v", ErrTimeout, d)
	}
}

// call runs f on the handle under the deadline; what names the call in errors (the
// moby/ipvs method: the caller knows which service it is about), and dest tells whether
// ENOENT means a missing destination.
func (m *Moby) call(what string, dest bool, f func(h handle) error) error {
	i := <-m.free
	defer func() { m.free <- i }()
	l := m.lanes[i]
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h == nil {
		if err := m.reopen(l); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	h := l.h
	watchdog := time.AfterFunc(m.timeout, h.Close) // ends a call stuck on the socket
	err := f(h)
	if watchdog.Stop() {
		return mapErrno(what, dest, err)
	}
	// The watchdog fired: h is closed (or about to be). A call that got its answer in
	// time stands; one that did not ended because h was closed.
	l.h = nil
	m.mu.Lock()
	m.replaced++
	m.mu.Unlock()
	if rerr := m.reopen(l); rerr != nil {
		if err == nil {
			return nil
		}
		return fmt.Errorf("%s: %w within %v; handle closed, and reopening failed: %v", what, ErrTimeout, m.timeout, rerr)
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w within %v; netlink handle replaced", what, ErrTimeout, m.timeout)
}

// errnoError is a kernel error mapped to one of the sentinel errors.
type errnoError struct {
	what     string
	sentinel error
	errno    syscall.Errno
}

func (e *errnoError) Error() string {
	return fmt.Sprintf("%s: %v (%v)", e.what, e.sentinel, e.errno)
}

// Unwrap makes both the sentinel and the errno match errors.Is.
func (e *errnoError) Unwrap() []error { return []error{e.sentinel, e.errno} }

// mapErrno maps the kernel's answers: EEXIST to ErrExist, ESRCH to ErrNoService, and
// ENOENT to ErrNoDest on a destination call (on a service call ENOENT means an unknown
// scheduler or persistence engine).
func mapErrno(what string, dest bool, err error) error {
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch {
		case errno == syscall.EEXIST:
			return &errnoError{what, ErrExist, errno}
		case errno == syscall.ESRCH:
			return &errnoError{what, ErrNoService, errno}
		case errno == syscall.ENOENT && dest:
			return &errnoError{what, ErrNoDest, errno}
		case errno == syscall.ENOENT:
			return fmt.Errorf("%s: scheduler or persistence engine not in the kernel (ip_vs_* module not loaded?): %w", what, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Services returns every service in the table.
func (m *Moby) Services() ([]Service, error) {
	var ms []*ipvs.Service
	err := m.call("GetServices", false, func(h handle) (err error) {
		ms, err = h.GetServices()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(ms))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range ms {
		svc, err := fromMobyService(s)
		if err != nil {
			return nil, fmt.Errorf("GetServices: %w", err)
		}
		svc.PEName = m.pe[svc.Key()]
		out = append(out, svc)
	}
	return out, nil
}

// Destinations returns the destinations of s.
func (m *Moby) Destinations(s Service) ([]Destination, error) {
	var md []*ipvs.Destination
	ms := toMobyService(s)
	err := m.call("GetDestinations", false, func(h handle) (err error) {
		md, err = h.GetDestinations(ms)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Destination, 0, len(md))
	for _, d := range md {
		dst, err := fromMobyDest(d)
		if err != nil {
			return nil, fmt.Errorf("GetDestinations %s: %w", s.Key(), err)
		}
		out = append(out, dst)
	}
	return out, nil
}

// AddService creates s.
func (m *Moby) AddService(s Service) error {
	ms := toMobyService(s)
	err := m.call("NewService", false, func(h handle) error { return h.NewService(ms) })
	m.notePE(s, err)
	return err
}

// UpdateService sets the scheduler, flags and persistence of s.
func (m *Moby) UpdateService(s Service) error {
	ms := toMobyService(s)
	err := m.call("UpdateService", false, func(h handle) error { return h.UpdateService(ms) })
	m.notePE(s, err)
	return err
}

// notePE remembers the persistence engine of s once the kernel has taken it.
func (m *Moby) notePE(s Service, err error) {
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.PEName == "" {
		delete(m.pe, s.Key())
	} else {
		m.pe[s.Key()] = s.PEName
	}
}

// DelService deletes s and its destinations.
func (m *Moby) DelService(s Service) error {
	ms := toMobyService(s)
	err := m.call("DelService", false, func(h handle) error { return h.DelService(ms) })
	if err == nil || errors.Is(err, ErrNoService) {
		m.mu.Lock()
		delete(m.pe, s.Key())
		m.mu.Unlock()
	}
	return err
}

// AddDest adds d to s.
func (m *Moby) AddDest(s Service, d Destination) error {
	return m.destCall("NewDestination", s, d, handle.NewDestination)
}

// UpdateDest sets the weight, forwarding and thresholds of d in s.
func (m *Moby) UpdateDest(s Service, d Destination) error {
	return m.destCall("UpdateDestination", s, d, handle.UpdateDestination)
}

// DelDest removes d from s.
func (m *Moby) DelDest(s Service, d Destination) error {
	return m.destCall("DelDestination", s, d, handle.DelDestination)
}

// destCall runs a destination command; what is its moby/ipvs name.
func (m *Moby) destCall(what string, s Service, d Destination, f func(handle, *ipvs.Service, *ipvs.Destination) error) error {
	md, err := toMobyDest(s, d)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	ms := toMobyService(s)
	return m.call(what, true, func(h handle) error { return f(h, ms, md) })
}

// SetTimeouts sets the non-zero connection timeouts.
func (m *Moby) SetTimeouts(t Timeouts) error {
	c := &ipvs.Config{TimeoutTCP: t.TCP, TimeoutTCPFin: t.TCPFin, TimeoutUDP: t.UDP}
	return m.call("SetConfig", false, func(h handle) error { return h.SetConfig(c) })
}

// Flush deletes every service.
func (m *Moby) Flush() error {
	err := m.call("Flush", false, func(h handle) error { return h.Flush() })
	if err == nil {
		m.mu.Lock()
		clear(m.pe)
		m.mu.Unlock()
	}
	return err
}

// Kernel service flag bits that are not scheduler flags.
const kflagsNotSched = kflagPersistent | kflagHashed

func toMobyService(s Service) *ipvs.Service {
	ms := &ipvs.Service{
		AddressFamily: uint16(s.Family),
		SchedName:     s.Scheduler,
		Flags:         uint32(s.Flags) &^ kflagsNotSched,
		PEName:        s.PEName,
		Netmask:       encodeNetmask(s.Family, s.Granularity),
	}
	if s.FWMark != 0 {
		ms.FWMark = s.FWMark
	} else {
		ms.Protocol, ms.Address, ms.Port = uint16(s.Protocol), s.Addr.AsSlice(), s.Port
	}
	if s.Timeout != 0 {
		ms.Flags |= kflagPersistent
		ms.Timeout = s.Timeout
	}
	return ms
}

func fromMobyService(ms *ipvs.Service) (Service, error) {
	s := Service{
		Family:    Family(ms.AddressFamily),
		Scheduler: ms.SchedName,
		Flags:     SchedFlags(ms.Flags &^ kflagsNotSched),
		FWMark:    ms.FWMark,
	}
	if s.FWMark == 0 {
		a, ok := netip.AddrFromSlice(ms.Address)
		if !ok {
			return Service{}, fmt.Errorf("service with a bad address %v", ms.Address)
		}
		s.Protocol, s.Addr, s.Port = Protocol(ms.Protocol), a, ms.Port
	}
	if ms.Flags&kflagPersistent != 0 {
		s.Timeout = ms.Timeout
		s.Granularity = decodeNetmask(s.Family, ms.Netmask)
	}
	return s.normalized(), nil
}

// encodeNetmask returns the netmask attribute of a service. The kernel takes an IPv4
// mask in network byte order and an IPv6 prefix length as a number, and moby/ipvs sends
// the attribute in host byte order: an IPv4 mask is laid out big-endian and read back
// as a host-order number. Granularity 0 is the whole address.
func encodeNetmask(f Family, granularity int) uint32 {
	if granularity <= 0 || granularity > f.bits() {
		granularity = f.bits()
	}
	if f == IPv6 {
		return uint32(granularity)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], ^uint32(0)<<(32-granularity))
	return binary.NativeEndian.Uint32(b[:])
}

// decodeNetmask is the inverse of encodeNetmask; an IPv4 mask that is not contiguous
// counts its leading ones.
func decodeNetmask(f Family, v uint32) int {
	if f == IPv6 {
		return int(min(v, 128))
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return bits.LeadingZeros32(^binary.BigEndian.Uint32(b[:]))
}

// toMobyDest converts d. moby/ipvs sends neither the destination's address family nor
// its tunnel options, so a destination of the other family than its service, or a GUE
// or GRE tunnel, cannot be programmed through it.
func toMobyDest(s Service, d Destination) (*ipvs.Destination, error) {
	if f := familyOf(d.Addr); f != s.Family {
		return nil, fmt.Errorf("an %s destination in an %s service: %w by moby/ipvs (it does not send the destination's family)", f, s.Family, ErrUnsupported)
	}
	if d.Forwarding == TUN && d.Tunnel != (Tunnel{}) {
		return nil, fmt.Errorf("tunnel type GUE/GRE or tunnel checksums: %w by moby/ipvs (IPIP only)", ErrUnsupported)
	}
	return &ipvs.Destination{
		AddressFamily:   uint16(s.Family),
		Address:         d.Addr.AsSlice(),
		Port:            d.Port,
		Weight:          d.Weight,
		ConnectionFlags: uint32(d.Forwarding),
		UpperThreshold:  d.UpperThreshold,
		LowerThreshold:  d.LowerThreshold,
	}, nil
}

func fromMobyDest(md *ipvs.Destination) (Destination, error) {
	a, ok := netip.AddrFromSlice(md.Address)
	if !ok {
		return Destination{}, fmt.Errorf("destination with a bad address %v", md.Address)
	}
	return Destination{
		Addr:           a,
		Port:           md.Port,
		Weight:         md.Weight,
		Forwarding:     Forwarding(md.ConnectionFlags & ipvs.ConnFwdMask),
		UpperThreshold: md.UpperThreshold,
		LowerThreshold: md.LowerThreshold,
	}, nil
}
