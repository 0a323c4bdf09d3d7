// Command gokeepalived is a keepalived-compatible high-availability daemon: VRRP for the
// virtual IPs, health checks and IPVS for the real servers. It reads keepalived.conf.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
