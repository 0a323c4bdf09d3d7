// Package scaleguest measures the LVS engine at scale inside the test VM, side by side
// with keepalived 2.2.7: thousands of real servers with TCP_CHECK, all of them addresses
// of one network namespace answered by one TCP listener, and a few "victims" in a second
// namespace whose own listeners the test closes to time their removal from IPVS. It
// prints one "LVSSCALE {json}" line per measurement, which the host-side benchmark in
// tests/bench/lvsscale turns into the tables of docs/benchmarks.md.
//
// Its files carry the build tag "vmguest" (all but filter_test.go, whose test of the
// capture's filter runs on the host), so a plain `go test ./...` does not compile them; built with the tag, the binary refuses to run unless GKA_IN_VM=1 (set by the
// VM's /init).
package scaleguest
