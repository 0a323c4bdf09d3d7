// Package lvsscale is the host side of the LVS scale benchmark: it boots the test VM
// (tests/vm) with two vCPUs and runs the guest measurements of tests/vm/scaleguest there,
// gokeepalived and then keepalived 2.2.7 on the same generated configuration, and prints
// the results as the Markdown tables of docs/benchmarks.md. Its entry points are
// benchmarks, so a plain `go test ./...` does not boot anything:
//
//	go test ./tests/bench/lvsscale -run '^$' -bench . -benchtime 1x -timeout 40m
//
// BenchmarkLVSScale1000 and BenchmarkLVSScale5000 (1,000 and 5,000 real servers, 20 per
// virtual server, TCP_CHECK, real servers that accept every connection),
// BenchmarkLVSScale5000Deferred (the same 5,000 behind a listener that defers accept, so
// that a check ended by a reset costs the real servers no accept) and
// BenchmarkLVSDetection (one virtual server, retry 0, ten listeners closed one at a time)
// each boot the VM once. The guest's test output goes to
// a file in the temporary directory, whose name is printed.
//
// Environment: GKA_BIN names a static gokeepalived to use instead of building
// ./cmd/gokeepalived; GKA_SCALE_DAEMONS, GKA_SCALE_SETTLE, GKA_SCALE_WINDOW and
// GKA_DETECT_RUNS are passed to the guest (see tests/vm/scaleguest). With
// GKA_SCALE_DAEMONS=engine the guest runs gokeepalived's LVS engine with a CPU profile,
// which is saved here and summarized with `go tool pprof -top`.
package lvsscale
