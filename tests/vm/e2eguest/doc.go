// Package e2eguest holds the end-to-end test of the seed's scenario: the gokeepalived
// binary runs the LVS part of etc/keepalived.conf against the real kernel IPVS, with a
// client and six real servers (HTTP and HTTPS, written in Go) in network namespaces, and
// keepalived runs the same configuration for comparison. It runs only inside the test VM
// (package gokeepalived/tests/vm): its files carry the build tag "vmguest", so a plain
// `go test ./...` does not compile them; the host-side TestVMSeedScenario in tests/vm
// builds them with the tag and runs them in the VM. A binary built with the tag refuses
// to run unless GKA_IN_VM=1 (set by the VM's /init).
package e2eguest
