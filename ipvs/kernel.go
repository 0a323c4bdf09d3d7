package ipvs

import (
	"errors"
	"math"
	"time"

	"gokeepalived/parser"
)

// Kernel is the engine's view of the kernel's IPVS table. [Moby] is the real one and
// [Fake] the in-memory one for tests. Errors that mean "already there" or "not there"
// match [ErrExist], [ErrNoService] and [ErrNoDest] with errors.Is, so that the
// reconciler can treat them as the idempotent outcomes they are.
type Kernel interface {
	// Services returns every service in the table, ours or not.
	Services() ([]Service, error)
	// Destinations returns the destinations of the service with s's key.
	Destinations(s Service) ([]Destination, error)

	// AddService creates s; ErrExist if a service with its key is there.
	AddService(s Service) error
	// UpdateService sets the scheduler, flags and persistence of the service with s's
	// key; ErrNoService if there is none.
	UpdateService(s Service) error
	// DelService deletes the service with s's key and its destinations; ErrNoService if
	// there is none.
	DelService(s Service) error

	// AddDest adds d to the service s; ErrExist if d's key is there, ErrNoService if s is
	// not.
	AddDest(s Service, d Destination) error
	// UpdateDest sets the weight, forwarding and thresholds of d; ErrNoDest if it is not
	// there.
	UpdateDest(s Service, d Destination) error
	// DelDest removes d from s; ErrNoDest if it is not there.
	DelDest(s Service, d Destination) error

	// SetTimeouts sets the connection timeouts (lvs_timeouts); zero fields are left as
	// they are.
	SetTimeouts(t Timeouts) error
	// Flush deletes every service, ours or not (lvs_flush, lvs_flush_on_stop).
	Flush() error
}

// Sentinel errors of [Kernel] calls, to be matched with errors.Is.
var (
	// ErrExist: the service or destination to add is already there (EEXIST).
	ErrExist = errors.New("already exists")
	// ErrNoService: the service is not there (ESRCH).
	ErrNoService = errors.New("no such service")
	// ErrNoDest: the destination is not there (ENOENT on a destination call).
	ErrNoDest = errors.New("no such destination")
	// ErrTimeout: the kernel did not answer within the deadline.
	ErrTimeout = errors.New("no answer from the kernel")
	// ErrUnsupported: the request cannot be expressed through this Kernel.
	ErrUnsupported = errors.New("not supported")
	// ErrNoIPVS: the running kernel has no IPVS.
	ErrNoIPVS = errors.New("IPVS is not available in this kernel: load ip_vs (modprobe ip_vs)")
)

// Concurrent is implemented by a [Kernel] that serves calls from several goroutines at
// once (each on a netlink socket of its own): [Reconcile] then converges up to
// Concurrency services at a time.
type Concurrent interface {
	Concurrency() int
}

// Timeouts are the IPVS connection timeouts of lvs_timeouts; zero leaves the kernel's
// value. The kernel keeps whole seconds.
type Timeouts struct {
	TCP    time.Duration
	TCPFin time.Duration
	UDP    time.Duration
}

// IsZero reports whether t changes nothing.
func (t Timeouts) IsZero() bool { return t == Timeouts{} }

// TimeoutsOf returns the timeouts of lvs_timeouts, rounded up to whole seconds so that a
// sub-second value does not become 0 (unchanged).
func TimeoutsOf(l parser.LVSTimeouts) Timeouts {
	up := func(d parser.Duration) time.Duration {
		return time.Duration(math.Ceil(d.D().Seconds())) * time.Second
	}
	return Timeouts{TCP: up(l.TCP), TCPFin: up(l.TCPFin), UDP: up(l.UDP)}
}
