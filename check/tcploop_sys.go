package check

import (
	"fmt"
	"net/netip"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's per-connection system calls (socket, bind, connect, getsockopt, epoll_ctl,
// close) never block: the socket is non-blocking and closed with SO_LINGER 0, an
// immediate FIN or a disconnect. They are made with RawSyscall, which keeps the goroutine's P: under
// the TCG VM a connect takes about 0.4 ms, long enough for the Go scheduler to hand the
// P of a thread "in a system call" to another thread, and to hand it back after, two
// context switches per call for nothing. epoll_wait, which does block, stays a normal
// system call.

// sysAddr is a socket address in the kernel's layout.
type sysAddr struct {
	v4  unix.RawSockaddrInet4
	v6  unix.RawSockaddrInet6
	is6 bool
}

// newSysAddr is the address of a and port; a zone must be an interface index (see
// probeZoneIndex).
func newSysAddr(a netip.Addr, port uint16) (*sysAddr, error) {
	s := &sysAddr{is6: a.Is6()}
	be := [2]byte{byte(port >> 8), byte(port)} // network byte order
	if !s.is6 {
		s.v4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		s.v4.Port = *(*uint16)(unsafe.Pointer(&be))
		return s, nil
	}
	s.v6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
	s.v6.Port = *(*uint16)(unsafe.Pointer(&be))
	if z := a.Zone(); z != "" {
		idx, err := strconv.ParseUint(z, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("zone of %s: not an interface index", a)
		}
		s.v6.Scope_id = uint32(idx)
	}
	return s, nil
}

// family is AF_INET or AF_INET6.
func (s *sysAddr) family() int {
	if s.is6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// raw returns the pointer and length to pass to the kernel.
func (s *sysAddr) raw() (uintptr, uintptr) {
	if s.is6 {
		return uintptr(unsafe.Pointer(&s.v6)), unsafe.Sizeof(s.v6)
	}
	return uintptr(unsafe.Pointer(&s.v4)), unsafe.Sizeof(s.v4)
}

// sysErr turns a raw call's errno into an error (nil for 0).
func sysErr(e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// sysSocket opens a non-blocking, close-on-exec TCP socket.
func sysSocket(family int) (int, error) {
	fd, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	return int(fd), sysErr(e)
}

// sysBind binds fd to a.
func sysBind(fd int, a *sysAddr) error {
	p, n := a.raw()
	_, _, e := unix.RawSyscall(unix.SYS_BIND, uintptr(fd), p, n)
	return sysErr(e)
}

// sysConnect starts connecting fd to a (EINPROGRESS when it goes on in the background).
func sysConnect(fd int, a *sysAddr) error {
	p, n := a.raw()
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), p, n)
	return sysErr(e)
}

// sysSoError reads and clears the socket's pending error (SO_ERROR).
func sysSoError(fd int) (int, error) {
	var v int32
	n := uint32(unsafe.Sizeof(v))
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_ERROR,
		uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
	return int(v), sysErr(e)
}

// sysLingerZero sets SO_LINGER to {on, 0 s}: close resets the connection.
func sysLingerZero(fd int) error {
	l := unix.Linger{Onoff: 1, Linger: 0}
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_LINGER,
		uintptr(unsafe.Pointer(&l)), unsafe.Sizeof(l), 0)
	return sysErr(e)
}

// sysEpollAdd adds fd to the epoll set epfd for events, with fd as the event's data.
func sysEpollAdd(epfd, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), unix.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	return sysErr(e)
}

// sysDisconnect dissolves fd's connection (connect to AF_UNSPEC): an established one
// is reset, and the socket can connect again.
func sysDisconnect(fd int) error {
	sa := unix.RawSockaddrInet4{Family: unix.AF_UNSPEC}
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	return sysErr(e)
}

// sysNetnsCookie identifies the network namespace of fd's socket (SO_NETNS_COOKIE,
// Linux 5.14); 0 when the kernel cannot tell.
func sysNetnsCookie(fd int) uint64 {
	var v uint64
	n := uint32(unsafe.Sizeof(v))
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_NETNS_COOKIE,
		uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return 0
	}
	return v
}

// sysClose closes fd, which also takes it out of every epoll set.
func sysClose(fd int) {
	_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}
