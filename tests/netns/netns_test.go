package netns

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestLab checks the lab itself: two namespaces on a bridge reach each other, an
// in-namespace socket stays there, and everything is gone afterwards.
func TestLab(t *testing.T) {
	sw, a, b := New(t, "sw"), New(t, "a"), New(t, "b")
	Bridge(t, sw, "br0", "eth0", a, b)
	a.Addr("eth0", "10.99.0.1/24")
	b.Addr("eth0", "10.99.0.2/24")
	Eventually(t, 5*time.Second, "a pings b", func() bool {
		_, err := a.Try("ping", "-c1", "-W1", "10.99.0.2")
		return err == nil
	})
	var ln net.Listener
	if err := b.Do(func() (err error) {
		ln, err = net.Listen("tcp", "10.99.0.2:7777")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	var got []byte
	if err := a.Do(func() error {
		c, err := net.DialTimeout("tcp", "10.99.0.2:7777", 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		got = make([]byte, 2)
		_, err = io.ReadFull(c, got)
		return err
	}); err != nil || string(got) != "hi" {
		t.Fatalf("connect from a to b: %v %q", err, got)
	}
}
