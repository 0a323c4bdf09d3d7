// Package vmlab holds the building blocks the guest tests of tests/vm share (e2eguest,
// demoguest, scaleguest): network namespaces and veth pairs, Go real servers answering
// HTTP and HTTPS, an HTTP client loop with its samples, daemons started as child
// processes, and polling with a deadline. Like the guest packages, its files carry the
// build tag "vmguest": they run only inside the test VM, as root, where the tests may
// create namespaces, interfaces and routes.
package vmlab
