// Package demoguest is the guest half of `make demo` on hosts without IPVS: the seed's
// scenario (etc/keepalived.conf unchanged: three directors with VRRP, a sync group, ping
// tracking and the LVS services over six real servers) played inside the tests/vm VM,
// with every director, real server, upstream router and the client in its own network
// namespace. Its test narrates each event on the console, one line each, prefixed with
// "DEMO " so that the host program (tests/demo/vmdemo) can pick the narration out of the
// kernel's messages. Its files carry the build tag "vmguest": a plain `go test ./...`
// does not compile them, and a binary built with the tag refuses to run unless
// GKA_IN_VM=1 (set by the VM's /init).
package demoguest
