// Package ipvsguest holds the real-kernel tests of package ipvs (reconciler, Moby
// adapter, probe): they run only inside the test VM (package gokeepalived/tests/vm),
// whose kernel has IPVS. They carry the build tag "vmguest", so a plain `go test ./...`
// does not compile them; the host-side TestVMIPVSReconcile in tests/vm builds them with
// the tag and runs them in the VM. A binary built with the tag refuses to run unless
// GKA_IN_VM=1 (set by the VM's /init).
package ipvsguest
