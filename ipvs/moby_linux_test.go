package ipvs

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/ipvs"
)

// fakeHandle is a netlink handle over a Fake that speaks moby/ipvs's types and answers
// with the kernel's errnos. It reports the hashed flag on every service and no
// persistence engine, as the kernel and moby/ipvs do. A call for which wedge returns
// true never answers until the handle is closed, like moby/ipvs on a stuck socket.
type fakeHandle struct {
	f      *Fake
	wedge  func(op string, key ServiceKey) bool
	closed chan struct{}
	once   sync.Once
}

func newFakeHandle(f *Fake, wedge func(string, ServiceKey) bool) *fakeHandle {
	return &fakeHandle{f: f, wedge: wedge, closed: make(chan struct{})}
}

func (h *fakeHandle) Close() { h.once.Do(func() { close(h.closed) }) }

// do answers a call, or blocks until Close for a wedged one.
func (h *fakeHandle) do(op string, ms *ipvs.Service, fn func(Service) error) error {
	var s Service
	if ms != nil {
		var err error
		if s, err = fromMobyService(ms); err != nil {
			return err
		}
		s.PEName = ms.PEName
	}
	if h.wedge != nil && h.wedge(op, s.Key()) {
		<-h.closed
		return errors.New("Socket got closed on receive")
	}
	err := fn(s)
	switch {
	case errors.Is(err, ErrExist):
		return syscall.EEXIST
	case errors.Is(err, ErrNoService):
		return syscall.ESRCH
	case errors.Is(err, ErrNoDest):
		return syscall.ENOENT
	}
	return err
}

func (h *fakeHandle) GetServices() (out []*ipvs.Service, err error) {
	err = h.do("GetServices", nil, func(Service) error {
		svcs, err := h.f.Services()
		for _, s := range svcs {
			ms := toMobyService(s)
			ms.Flags |= kflagHashed
			ms.PEName = ""
			out = append(out, ms)
		}
		return err
	})
	return out, err
}

func (h *fakeHandle) GetDestinations(ms *ipvs.Service) (out []*ipvs.Destination, err error) {
	err = h.do("GetDestinations", ms, func(s Service) error {
		ds, err := h.f.Destinations(s)
		for _, d := range ds {
			md, err := toMobyDest(s, d)
			if err != nil {
				return err
			}
			out = append(out, md)
		}
		return err
	})
	return out, err
}

func (h *fakeHandle) NewService(ms *ipvs.Service) error {
	return h.do("NewService", ms, h.f.AddService)
}

func (h *fakeHandle) UpdateService(ms *ipvs.Service) error {
	return h.do("UpdateService", ms, h.f.UpdateService)
}

func (h *fakeHandle) DelService(ms *ipvs.Service) error {
	return h.do("DelService", ms, h.f.DelService)
}

func (h *fakeHandle) destCall(op string, ms *ipvs.Service, md *ipvs.Destination, fn func(Service, Destination) error) error {
	return h.do(op, ms, func(s Service) error {
		d, err := fromMobyDest(md)
		if err != nil {
			return err
		}
		return fn(s, d)
	})
}

func (h *fakeHandle) NewDestination(ms *ipvs.Service, md *ipvs.Destination) error {
	return h.destCall("NewDestination", ms, md, h.f.AddDest)
}

func (h *fakeHandle) UpdateDestination(ms *ipvs.Service, md *ipvs.Destination) error {
	return h.destCall("UpdateDestination", ms, md, h.f.UpdateDest)
}

func (h *fakeHandle) DelDestination(ms *ipvs.Service, md *ipvs.Destination) error {
	return h.destCall("DelDestination", ms, md, h.f.DelDest)
}

func (h *fakeHandle) SetConfig(c *ipvs.Config) error {
	return h.do("SetConfig", nil, func(Service) error {
		return h.f.SetTimeouts(Timeouts{TCP: c.TimeoutTCP, TCPFin: c.TimeoutTCPFin, UDP: c.TimeoutUDP})
	})
}

func (h *fakeHandle) Flush() error {
	return h.do("Flush", nil, func(Service) error { return h.f.Flush() })
}

// fakeMoby returns a Moby over handles on f; wedge is given to each handle, and opens
// counts the handles opened.
func fakeMoby(t *testing.T, f *Fake, timeout time.Duration, wedge func(string, ServiceKey) bool) (*Moby, *atomic.Int32) {
	t.Helper()
	var opens atomic.Int32
	m, err := newMoby(func() (handle, error) {
		opens.Add(1)
		return newFakeHandle(f, wedge), nil
	}, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, &opens
}

// TestMobyRoundTrip programs a varied configuration through Moby and moby/ipvs's types
// and checks that a second pass reads it all back equal: zero writes.
func TestMobyRoundTrip(t *testing.T) {
	cfg := load(t, `
virtual_server 10.0.0.1 80 {
	lb_algo sh
	sh-port
	sh-fallback
	protocol TCP
	persistence_timeout 600
	persistence_granularity 255.255.255.0
	real_server 10.0.1.1 8080 {
		weight 3
		uthreshold 100
		lthreshold 5
	}
}
virtual_server 10.0.0.2 5060 {
	lb_algo rr
	protocol UDP
	ops
	persistence_timeout 30
	persistence_engine sip
	real_server 10.0.1.2 5060 {
	}
}
virtual_server fwmark 3 {
	lb_algo wlc
	lb_kind DR
	real_server 10.0.1.3 {
	}
	real_server 10.0.1.4 {
		lvs_method TUN
	}
}
virtual_server fd00::1 443 {
	lb_algo mh
	protocol SCTP
	persistence_timeout 60
	persistence_granularity 64
	real_server fd00::2 443 {
	}
}
`)
	f := &Fake{}
	m, _ := fakeMoby(t, f, time.Second, nil)
	specs := Desired(cfg, HealthView{})
	ch := mustReconcile(t, m, specs, nil)
	if n := ch.Count(OpAddService) + ch.Count(OpAddDest); n != 4+5 {
		t.Fatalf("from empty: %s", ch.String())
	}
	if got, want := f.Dump(), specLines(specs[:2]); !strings.HasPrefix(got, want) {
		t.Errorf("table:\n%s\nwant it to start with:\n%s", got, want)
	}
	f.ResetCalls()
	ch = mustReconcile(t, m, specs, ch.Owned)
	if n := f.Writes(); n != 0 || ch.Unchanged != 4 {
		t.Errorf("second pass through Moby: %d writes:\n%s", n, ch.String())
	}
	if err := m.SetTimeouts(Timeouts{TCP: 5 * time.Second}); err != nil || f.Timeouts().TCP != 5*time.Second {
		t.Errorf("SetTimeouts: %v, %+v", err, f.Timeouts())
	}
	if err := m.Flush(); err != nil || f.Dump() != "" {
		t.Errorf("Flush: %v, table:\n%s", err, f.Dump())
	}
}

// TestMobyErrno checks the mapping of the kernel's errnos to the sentinel errors.
func TestMobyErrno(t *testing.T) {
	m, _ := fakeMoby(t, &Fake{}, time.Second, nil)
	svc := Service{Family: IPv4, Protocol: TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Scheduler: "rr"}
	dst := Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Weight: 1}
	if err := m.AddService(svc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		err      error
		sentinel error
		errno    syscall.Errno
	}{
		{"AddService twice", m.AddService(svc), ErrExist, syscall.EEXIST},
		{"DelDest missing", m.DelDest(svc, dst), ErrNoDest, syscall.ENOENT},
		{"UpdateDest missing", m.UpdateDest(svc, dst), ErrNoDest, syscall.ENOENT},
		{"AddDest to a missing service", m.AddDest(Service{Family: IPv4, FWMark: 9}, dst), ErrNoService, syscall.ESRCH},
		{"DelService missing", m.DelService(Service{Family: IPv4, FWMark: 9}), ErrNoService, syscall.ESRCH},
	} {
		if !errors.Is(tc.err, tc.sentinel) || !errors.Is(tc.err, tc.errno) {
			t.Errorf("%s: %v; want %v and %v", tc.name, tc.err, tc.sentinel, tc.errno)
		}
	}
	// ENOENT on a service call is an unknown scheduler, not a missing destination.
	err := mapErrno("NewService", false, syscall.ENOENT)
	if errors.Is(err, ErrNoDest) || !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), "scheduler") {
		t.Errorf("ENOENT on a service call: %v", err)
	}
}

// TestMobyUnsupported checks what moby/ipvs cannot send: a destination of the other
// family (TUN), and GUE/GRE tunnels.
func TestMobyUnsupported(t *testing.T) {
	f := &Fake{}
	m, _ := fakeMoby(t, f, time.Second, nil)
	svc := Service{Family: IPv4, Protocol: TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Scheduler: "rr"}
	if err := m.AddService(svc); err != nil {
		t.Fatal(err)
	}
	for _, d := range []Destination{
		{Addr: netip.MustParseAddr("fd00::2"), Port: 80, Forwarding: TUN},
		{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Forwarding: TUN, Tunnel: Tunnel{Type: TunnelGUE, Port: 6080}},
	} {
		if err := m.AddDest(svc, d); !errors.Is(err, ErrUnsupported) {
			t.Errorf("AddDest %s: %v, want ErrUnsupported", d, err)
		}
	}
	if n := f.Writes(); n != 1 {
		t.Errorf("%d writes reached the kernel, want 1 (the service)", n)
	}
}

// TestMobyWedged simulates a kernel that never answers one call: the call returns an
// ErrTimeout error at the deadline, the handle is closed (ending the stuck call) and
// replaced, and the next calls work on the new handle.
func TestMobyWedged(t *testing.T) {
	f := &Fake{}
	var handles []*fakeHandle
	var mu sync.Mutex
	first := true
	m, err := newMoby(func() (handle, error) {
		mu.Lock()
		defer mu.Unlock()
		wedged := first
		first = false
		h := newFakeHandle(f, func(op string, _ ServiceKey) bool { return wedged && op == "NewService" })
		handles = append(handles, h)
		return h, nil
	}, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	svc := Service{Family: IPv4, Protocol: TCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Scheduler: "rr"}
	start := time.Now()
	err = m.AddService(svc)
	if d := time.Since(start); !errors.Is(err, ErrTimeout) || d < 100*time.Millisecond || d > 2*time.Second {
		t.Fatalf("wedged AddService: %v after %v", err, d)
	}
	if !strings.Contains(err.Error(), "NewService") || !strings.Contains(err.Error(), "replaced") {
		t.Errorf("error does not say what and what was done: %v", err)
	}
	mu.Lock()
	n := len(handles)
	mu.Unlock()
	if n != 2 || m.Replaced() != 1 {
		t.Fatalf("%d handles opened, %d replaced; want 2 and 1", n, m.Replaced())
	}
	select {
	case <-handles[0].closed:
	default:
		t.Error("the wedged handle was not closed")
	}
	if err := m.AddService(svc); err != nil {
		t.Errorf("AddService on the new handle: %v", err)
	}
}

// TestReconcileWedged runs a pass through Moby over a kernel that never answers for one
// service: that service fails with ErrTimeout, every other one is programmed.
func TestReconcileWedged(t *testing.T) {
	f := &Fake{}
	specs := bigSpecs(10, 3)
	stuck := specs[4].Service.Key()
	m, opens := fakeMoby(t, f, 50*time.Millisecond, func(op string, k ServiceKey) bool {
		return op == "NewDestination" && k == stuck
	})
	ch, err := Reconcile(m, specs, nil)
	if !errors.Is(err, ErrTimeout) || len(ch.Errors) != 3 {
		t.Fatalf("Reconcile: %v (%d errors)", err, len(ch.Errors))
	}
	if !strings.Contains(ch.Errors[0].Error(), stuck.String()) {
		t.Errorf("the error does not name the service: %v", ch.Errors[0])
	}
	if ch.Count(OpAddService) != 10 || ch.Count(OpAddDest) != 27 || m.Replaced() != 3 || opens.Load() != 4 {
		t.Errorf("%s; %d handles replaced, %d opened", ch.Summary(), m.Replaced(), opens.Load())
	}
}

// TestMobyOpenFails checks a failing handle open: at start it is an error, after a
// timeout the next call opens again.
func TestMobyOpenFails(t *testing.T) {
	if _, err := newMoby(func() (handle, error) { return nil, errors.New("no netlink") }, time.Second); err == nil || !strings.Contains(err.Error(), "no netlink") {
		t.Errorf("newMoby with a failing open: %v", err)
	}
	f := &Fake{}
	var opens atomic.Int32
	m, err := newMoby(func() (handle, error) {
		switch opens.Add(1) {
		case 1:
			return newFakeHandle(f, func(string, ServiceKey) bool { return true }), nil
		case 2:
			return nil, errors.New("no netlink")
		}
		return newFakeHandle(f, nil), nil
	}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Flush(); !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "reopening failed") {
		t.Errorf("Flush on a wedged handle whose replacement fails: %v", err)
	}
	if _, err := m.Services(); err != nil || opens.Load() != 3 {
		t.Errorf("Services after a failed reopen: %v, %d opens", err, opens.Load())
	}
}

// TestNetmask checks the persistence netmask encoding: an IPv4 mask travels in network
// byte order inside a host-order attribute, an IPv6 one as a prefix length.
func TestNetmask(t *testing.T) {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], encodeNetmask(IPv4, 24))
	if b != [4]byte{255, 255, 255, 0} {
		t.Errorf("IPv4 /24 on the wire: %v", b)
	}
	if encodeNetmask(IPv4, 0) != 0xFFFFFFFF || encodeNetmask(IPv6, 0) != 128 || encodeNetmask(IPv6, 48) != 48 {
		t.Error("default or IPv6 netmasks")
	}
	for bits := 1; bits <= 32; bits++ {
		if got := decodeNetmask(IPv4, encodeNetmask(IPv4, bits)); got != bits {
			t.Errorf("IPv4 /%d decodes to /%d", bits, got)
		}
	}
	if decodeNetmask(IPv6, 64) != 64 || decodeNetmask(IPv6, 4000) != 128 {
		t.Error("IPv6 netmask decoding")
	}
}

// TestMobyLanes: with two lanes, a call stuck on one (until its deadline) does not hold
// up the calls of another goroutine, which go out on the other lane; a pass through a
// multi-lane Moby writes the table a single lane writes; Close closes every handle.
func TestMobyLanes(t *testing.T) {
	f := &Fake{}
	var mu sync.Mutex
	var handles []*fakeHandle
	stuck := Service{Family: IPv4, Protocol: TCP, Addr: netip.MustParseAddr("10.9.9.9"), Port: 80, Scheduler: "rr"}
	m, err := newMobyLanes(func() (handle, error) {
		mu.Lock()
		defer mu.Unlock()
		h := newFakeHandle(f, func(op string, k ServiceKey) bool { return op == "NewService" && k == stuck.Key() })
		handles = append(handles, h)
		return h, nil
	}, time.Second, 2)
	if err != nil {
		t.Fatal(err)
	}
	if m.Concurrency() != 2 {
		t.Fatalf("Concurrency() = %d", m.Concurrency())
	}
	wedged := make(chan error)
	go func() { wedged <- m.AddService(stuck) }()
	// While the stuck call holds a lane, a whole pass goes through the other one.
	specs := bigSpecs(5, 2)
	start := time.Now()
	mustReconcile(t, m, specs, nil)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the pass waited %v behind the stuck call", d)
	}
	if err := <-wedged; !errors.Is(err, ErrTimeout) {
		t.Errorf("stuck AddService: %v", err)
	}
	ref := &Fake{}
	mustReconcile(t, ref, specs, nil)
	if f.Dump() != ref.Dump() {
		t.Errorf("table through two lanes:\n%s\nwant\n%s", f.Dump(), ref.Dump())
	}
	m.Close()
	mu.Lock()
	defer mu.Unlock()
	for i, h := range handles {
		select {
		case <-h.closed:
		default:
			t.Errorf("handle %d not closed", i)
		}
	}
}
