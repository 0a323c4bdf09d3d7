// Package guest holds tests that run only inside the test VM (package
// gokeepalived/tests/vm), which has a kernel with IPVS. The guest-only tests carry the
// build tag "vmguest", so a plain `go test ./...` does not compile them; the host-side
// TestVMSmoke in tests/vm builds them with the tag and runs them in the VM. A binary built
// with the tag refuses to run unless GKA_IN_VM=1 (set by the VM's /init).
//
// The IPVS probe is ipvs.Probe; package ipvs tests it on the host, and TestIPVSPresent
// here in the VM.
package guest
