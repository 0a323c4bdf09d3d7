//go:build vmguest

package vmlab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is an unnamed network namespace, kept alive by its handle.
type NS struct {
	// Name names the namespace in errors.
	Name string
	h    netns.NsHandle
}

// NewNS creates a network namespace. The thread that creates it is discarded.
func NewNS(name string) (*NS, error) {
	type res struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// Never unlocked: the thread has left the root namespace and ends with the goroutine.
		runtime.LockOSThread()
		h, err := netns.New()
		ch <- res{h, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, fmt.Errorf("new namespace %s: %w", name, r.err)
	}
	return &NS{Name: name, h: r.h}, nil
}

// Do runs fn on a thread inside the namespace: sockets it opens, files it opens under
// /proc/sys/net and processes it starts belong to the namespace. The thread is discarded
// afterwards.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see NewNS
		if err := netns.Set(n.h); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Netlink returns a netlink handle inside the namespace; the caller closes it.
func (n *NS) Netlink() (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(n.h, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", n.Name, err)
	}
	return h, nil
}

// Dial opens a connection from inside the namespace.
func (n *NS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen opens a TCP listener inside the namespace.
func (n *NS) Listen(addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// Sysctl writes value to /proc/sys/<key> inside the namespace; key is dotted
// ("net.ipv4.ip_forward") or a path ("net/core/somaxconn").
func (n *NS) Sysctl(key, value string) error {
	return n.Do(func() error {
		return os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(value+"\n"), 0o644)
	})
}

// Run runs a command inside the namespace and returns its combined output.
func (n *NS) Run(timeout time.Duration, args ...string) (string, error) {
	var out []byte
	err := n.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var err error
		out, err = exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s in %s: %v: %s", strings.Join(args, " "), n.Name, err, out)
		}
		return nil
	})
	return string(out), err
}

// Addrs returns the IPv4 addresses (without prefix length) of interface dev.
func (n *NS) Addrs(dev string) ([]string, error) {
	h, err := netlink.NewHandleAt(n.h, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	l, err := h.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", dev, n.Name, err)
	}
	as, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range as {
		out = append(out, a.IP.String())
	}
	return out, nil
}

// Has reports whether interface dev holds the IPv4 address ip.
func (n *NS) Has(dev, ip string) bool {
	as, err := n.Addrs(dev)
	return err == nil && slices.Contains(as, ip)
}
