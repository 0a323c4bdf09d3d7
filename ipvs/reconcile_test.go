package ipvs

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"gokeepalived/parser"
)

// bigSpecs returns n services (TCP 10.x.y.1:80, rr) with d NAT destinations each.
func bigSpecs(n, d int) []ServiceSpec {
	specs := make([]ServiceSpec, n)
	for i := range specs {
		svc := Service{Family: IPv4, Protocol: TCP, Addr: netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), Port: 80, Scheduler: "rr"}
		dests := make([]Destination, d)
		for j := range dests {
			dests[j] = Destination{Addr: netip.AddrFrom4([4]byte{172, 16, byte(j >> 8), byte(j + 1)}), Port: 8080, Weight: 1}
		}
		specs[i] = ServiceSpec{Service: svc, Destinations: dests}
	}
	return specs
}

// changeOnePercent changes 1% of the destinations of specs (in place, on copies of the
// destination slices): a third get a new weight, a third are replaced by new ones, a
// third are removed; plus 1% of the services change scheduler. It returns the number of
// kernel writes this needs.
func changeOnePercent(specs []ServiceSpec) int {
	total := 0
	for _, s := range specs {
		total += len(s.Destinations)
	}
	changes, writes := total/100, 0
	for i := 0; i < changes; i++ {
		s := &specs[(i*37)%len(specs)]
		s.Destinations = slices.Clone(s.Destinations)
		j := i % len(s.Destinations)
		switch i % 3 {
		case 0:
			s.Destinations[j].Weight += 10
			writes++
		case 1:
			s.Destinations[j].Addr = netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)})
			writes += 2 // add the new one, delete the old one
		case 2:
			s.Destinations = slices.Delete(s.Destinations, j, j+1)
			writes++
		}
	}
	for i := 0; i < len(specs)/100; i++ {
		specs[i*53%len(specs)].Service.Scheduler = "wlc"
		writes++
	}
	return writes
}

func cloneSpecs(specs []ServiceSpec) []ServiceSpec {
	out := slices.Clone(specs)
	for i := range out {
		out[i].Destinations = slices.Clone(out[i].Destinations)
	}
	return out
}

// mustReconcile runs a pass that must not fail.
func mustReconcile(t testing.TB, k Kernel, specs []ServiceSpec, owned OwnedSet) Changes {
	t.Helper()
	ch, err := Reconcile(k, specs, owned)
	if err != nil {
		t.Fatalf("Reconcile: %v\n%s", err, ch.String())
	}
	return ch
}

const webConf = `
virtual_server 10.0.0.1 80 {
	lb_algo rr
	protocol TCP
	real_server 10.0.1.1 8080 {
	}
	real_server 10.0.1.2 8080 {
		weight 2
	}
}
virtual_server fwmark 5 {
	lb_algo wrr
	lb_kind DR
	real_server 10.0.1.3 {
	}
}
`

// TestReconcileFromEmpty programs a configuration into an empty table, then checks that
// a second pass is idempotent: zero writes.
func TestReconcileFromEmpty(t *testing.T) {
	k := &Fake{}
	specs := Desired(load(t, webConf), HealthView{})
	ch := mustReconcile(t, k, specs, nil)
	want := `TCP 10.0.0.1:80 rr
  -> 10.0.1.1:8080 NAT weight 1
  -> 10.0.1.2:8080 NAT weight 2
FWM 5 IPv4 wrr
  -> 10.0.1.3:0 DR weight 1
`
	if got := k.Dump(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	if s := ch.Summary(); s != "services +2 ~0 -0, destinations +3 ~0 -0, 0 unchanged, 0 errors" {
		t.Errorf("Summary() = %q", s)
	}
	if !ch.Owned.Has(specs[0].Service.Key()) || !ch.Owned.Has(specs[1].Service.Key()) || len(ch.Owned) != 2 {
		t.Errorf("Owned = %v", ch.Owned)
	}
	if !strings.Contains(ch.String(), "add destination 10.0.1.3:0 DR weight 1 of FWM 5 IPv4\n") {
		t.Errorf("Changes.String():\n%s", ch.String())
	}

	k.ResetCalls()
	ch = mustReconcile(t, k, specs, ch.Owned)
	if n := k.Writes(); n != 0 || len(ch.Ops) != 0 || ch.Unchanged != 2 {
		t.Errorf("second pass: %d writes, changes %s", n, ch.String())
	}
	// Reads: the service list, and the destinations of each of our services.
	if calls := k.Calls(); len(calls) != 3 {
		t.Errorf("second pass made %d calls, want 3: %v", len(calls), calls)
	}
}

// TestReconcileMinimal changes 1% of 1000 services x 10 destinations and checks that the
// pass makes exactly the changes needed and ends where a pass from empty would.
func TestReconcileMinimal(t *testing.T) {
	k := &Fake{}
	specs := bigSpecs(1000, 10)
	ch := mustReconcile(t, k, specs, nil)
	if n := k.Writes(); n != 1000+10000 {
		t.Fatalf("from empty: %d writes, want 11000", n)
	}
	changed := cloneSpecs(specs)
	want := changeOnePercent(changed)
	k.ResetCalls()
	ch = mustReconcile(t, k, changed, ch.Owned)
	if n := k.Writes(); n != want {
		t.Errorf("1%% change: %d writes, want %d (%s)", n, want, ch.Summary())
	}
	fresh := &Fake{}
	mustReconcile(t, fresh, changed, nil)
	if k.Dump() != fresh.Dump() {
		t.Error("the changed table differs from one programmed from empty")
	}
}

// TestReconcileAdopt starts a second "process" over the table the first one left: it
// adopts it without a single write, and owns the services from then on.
func TestReconcileAdopt(t *testing.T) {
	k := &Fake{}
	specs := Desired(load(t, webConf), HealthView{})
	mustReconcile(t, k, specs, nil)
	k.ResetCalls()
	ch := mustReconcile(t, k, specs, nil) // a restart: nothing recorded as ours
	if n := k.Writes(); n != 0 || ch.Unchanged != 2 || len(ch.Owned) != 2 {
		t.Errorf("restart: %d writes, %s, owned %v", n, ch.Summary(), ch.Owned)
	}
	// A restart over a table that is off by one weight changes that weight only.
	specs[0].Destinations = slices.Clone(specs[0].Destinations)
	specs[0].Destinations[1].Weight = 9
	k.ResetCalls()
	mustReconcile(t, k, specs, nil)
	if calls := writes(k); !slices.Equal(calls, []string{"update-dest TCP 10.0.0.1:80 -> 10.0.1.2:8080"}) {
		t.Errorf("restart over a changed table: %q", calls)
	}
}

// writes returns the write calls recorded by k.
func writes(k *Fake) []string {
	var out []string
	for _, c := range k.Calls() {
		if c.Write() {
			out = append(out, c.String())
		}
	}
	return out
}

// TestReconcileForeign checks that services we do not own are never touched, and that
// an owned service that leaves the desired state is deleted.
func TestReconcileForeign(t *testing.T) {
	k := &Fake{}
	foreign := Service{Family: IPv4, Protocol: UDP, Addr: netip.MustParseAddr("10.9.9.9"), Port: 53, Scheduler: "lc"}
	if err := k.AddService(foreign); err != nil {
		t.Fatal(err)
	}
	if err := k.AddDest(foreign, Destination{Addr: netip.MustParseAddr("10.9.9.10"), Port: 53, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	specs := Desired(load(t, webConf), HealthView{})
	ch := mustReconcile(t, k, specs, nil)
	k.ResetCalls()
	ch = mustReconcile(t, k, specs[1:], ch.Owned) // the address service leaves the config
	if got := writes(k); !slices.Equal(got, []string{"del-service TCP 10.0.0.1:80"}) {
		t.Errorf("writes: %q", got)
	}
	if ch.Owned.Has(specs[0].Service.Key()) || !ch.Owned.Has(specs[1].Service.Key()) {
		t.Errorf("owned after the delete: %v", ch.Owned)
	}
	if !strings.Contains(k.Dump(), "UDP 10.9.9.9:53 lc\n  -> 10.9.9.10:53 NAT weight 1\n") || strings.Contains(k.Dump(), "10.0.0.1:80") {
		t.Errorf("table:\n%s", k.Dump())
	}
	// Not owned (a restart forgot it): left alone.
	k2 := &Fake{}
	mustReconcile(t, k2, specs, nil)
	k2.ResetCalls()
	mustReconcile(t, k2, specs[1:], nil)
	if n := k2.Writes(); n != 0 {
		t.Errorf("a service that is not owned was touched: %v", writes(k2))
	}
}

// TestReconcileErrorIsolation makes one service's creation and another's destination
// fail: every other change is made, the errors name their services, and the next pass
// retries only what failed.
func TestReconcileErrorIsolation(t *testing.T) {
	k := &Fake{}
	specs := bigSpecs(20, 3)
	bad, badDest := specs[3].Service.Key(), specs[7].Service.Key()
	boom := errors.New("boom")
	k.SetHook(func(c Call) error {
		if (c.Op == "add-service" && c.Service == bad) || (c.Op == "add-dest" && c.Service == badDest && c.Dest == specs[7].Destinations[1].Key()) {
			return boom
		}
		return nil
	})
	ch, err := Reconcile(k, specs, nil)
	if !errors.Is(err, boom) || len(ch.Errors) != 2 {
		t.Fatalf("Reconcile: %v (%d errors)", err, len(ch.Errors))
	}
	for i, key := range []ServiceKey{bad, badDest} {
		if !strings.Contains(ch.Errors[i].Error(), " "+key.String()) {
			t.Errorf("error %d does not name its service %s: %v", i, key, ch.Errors[i])
		}
	}
	if n, want := ch.Count(OpAddService), 19; n != want {
		t.Errorf("%d services added, want %d", n, want)
	}
	if n, want := ch.Count(OpAddDest), 19*3-1; n != want {
		t.Errorf("%d destinations added, want %d", n, want)
	}
	if !ch.Owned.Has(bad) {
		t.Error("a desired service that failed is not owned")
	}

	k.SetHook(nil)
	k.ResetCalls()
	ch = mustReconcile(t, k, specs, ch.Owned)
	want := []string{
		"add-service TCP 10.0.3.1:80", "add-dest TCP 10.0.3.1:80 -> 172.16.0.1:8080",
		"add-dest TCP 10.0.3.1:80 -> 172.16.0.2:8080", "add-dest TCP 10.0.3.1:80 -> 172.16.0.3:8080",
		"add-dest TCP 10.0.7.1:80 -> 172.16.0.2:8080",
	}
	if got := writes(k); !slices.Equal(got, want) {
		t.Errorf("retry pass:\n got %q\nwant %q", got, want)
	}
}

// TestReconcileReadErrors checks failures to read: the service list (nothing is done,
// ownership kept) and one service's destinations (only that service is skipped).
func TestReconcileReadErrors(t *testing.T) {
	k := &Fake{}
	specs := bigSpecs(3, 2)
	ch := mustReconcile(t, k, specs, nil)
	owned := ch.Owned
	gone := Service{Family: IPv4, Protocol: TCP, Addr: netip.MustParseAddr("10.5.5.5"), Port: 1, Scheduler: "rr"}
	owned[gone.Key()] = struct{}{}

	k.SetHook(func(c Call) error {
		if c.Op == "services" {
			return errors.New("netlink says no")
		}
		return nil
	})
	k.ResetCalls()
	ch, err := Reconcile(k, specs, owned)
	if err == nil || !strings.Contains(err.Error(), "reading the services") || k.Writes() != 0 || !ch.Owned.Has(gone.Key()) {
		t.Errorf("Services failing: %v, %d writes, owned %v", err, k.Writes(), ch.Owned)
	}

	for i := range specs {
		specs[i].Destinations = slices.Clone(specs[i].Destinations)
		specs[i].Destinations[0].Weight = 5
	}
	k.SetHook(func(c Call) error {
		if c.Op == "destinations" && c.Service == specs[1].Service.Key() {
			return errors.New("dump failed")
		}
		return nil
	})
	k.ResetCalls()
	ch, err = Reconcile(k, specs, owned)
	if err == nil || len(ch.Errors) != 1 || !strings.Contains(err.Error(), specs[1].Service.Key().String()) || ch.Count(OpUpdateDest) != 2 {
		t.Errorf("Destinations failing for one service: %v, %s", err, ch.Summary())
	}
	if ch.Owned.Has(gone.Key()) {
		t.Error("an owned service that is gone from the table is still owned")
	}
}

// staleKernel reports a service list, and destinations, that are out of date, as if
// the table changed between the read and the writes.
type staleKernel struct {
	*Fake
	services []Service
	dests    map[ServiceKey][]Destination
}

func (s staleKernel) Services() ([]Service, error) { return s.services, nil }

func (s staleKernel) Destinations(svc Service) ([]Destination, error) {
	if d, ok := s.dests[svc.Key()]; ok {
		return d, nil
	}
	return s.Fake.Destinations(svc)
}

// TestReconcileStale checks the idempotent outcomes: the kernel's answers show the table
// changed since it was read, and the pass converges all the same, without errors.
func TestReconcileStale(t *testing.T) {
	specs := bigSpecs(2, 3)
	k := &Fake{}
	mustReconcile(t, k, specs[:1], nil)
	// The service is there, but the read missed it: add becomes update, and each
	// destination add an update.
	specs[0].Destinations[2].Weight = 4
	ch := mustReconcile(t, staleKernel{Fake: k}, specs[:1], nil)
	if ch.Count(OpUpdateService) != 1 || ch.Count(OpUpdateDest) != 3 || k.Dump() != specLines(specs[:1]) {
		t.Errorf("service missed by the read: %s\ntable:\n%s", ch.String(), k.Dump())
	}

	// The list shows a service that is gone by the time its destinations are read: it
	// is added with all its destinations.
	gone := []Service{specs[1].Service}
	k = &Fake{}
	ch = mustReconcile(t, staleKernel{Fake: k, services: gone}, specs[1:], nil)
	if ch.Count(OpAddService) != 1 || ch.Count(OpAddDest) != 3 || k.Dump() != specLines(specs[1:]) {
		t.Errorf("service gone before its destinations were read: %s\ntable:\n%s", ch.String(), k.Dump())
	}

	// The reads show a service (with no destinations) that is gone by the time it is
	// updated: the update becomes an add, with all its destinations; the deletion of an
	// owned service that is gone is done.
	want := specs[1]
	want.Service.Scheduler = "wlc"
	other := Service{Family: IPv4, Protocol: TCP, Addr: netip.MustParseAddr("10.6.6.6"), Port: 2}
	k = &Fake{}
	sk := staleKernel{Fake: k, services: []Service{specs[1].Service, other}, dests: map[ServiceKey][]Destination{specs[1].Service.Key(): nil}}
	ch = mustReconcile(t, sk, []ServiceSpec{want}, OwnedSet{other.Key(): {}})
	if ch.Count(OpAddService) != 1 || ch.Count(OpAddDest) != 3 || ch.Count(OpDelService) != 1 || len(ch.Owned) != 1 || k.Dump() != specLines([]ServiceSpec{want}) {
		t.Errorf("service gone before its update: %s\ntable:\n%s", ch.String(), k.Dump())
	}
}

// TestReconcileSorrySwap checks the order of a pool swap: the sorry server is added
// before the real servers are removed, and removed after they are back.
func TestReconcileSorrySwap(t *testing.T) {
	cfg := load(t, poolConf("quorum 2\nsorry_server 10.0.0.9 80", "TCP_CHECK {\n}", "TCP_CHECK {\n}"))
	k := &Fake{}
	mustReconcile(t, k, Desired(cfg, HealthView{}), nil)
	k.ResetCalls()
	lost := health(map[string]RSHealth{"10.0.0.2": down}, true)
	mustReconcile(t, k, Desired(cfg, lost), nil)
	want := []string{"add-dest TCP 10.0.0.1:80 -> 10.0.0.9:80", "del-dest TCP 10.0.0.1:80 -> 10.0.0.2:80", "del-dest TCP 10.0.0.1:80 -> 10.0.0.3:80"}
	if got := writes(k); !slices.Equal(got, want) {
		t.Errorf("quorum lost:\n got %q\nwant %q", got, want)
	}
	k.ResetCalls()
	mustReconcile(t, k, Desired(cfg, health(map[string]RSHealth{}, false)), nil)
	want = []string{"add-dest TCP 10.0.0.1:80 -> 10.0.0.2:80", "add-dest TCP 10.0.0.1:80 -> 10.0.0.3:80", "del-dest TCP 10.0.0.1:80 -> 10.0.0.9:80"}
	if got := writes(k); !slices.Equal(got, want) {
		t.Errorf("quorum regained:\n got %q\nwant %q", got, want)
	}
}

// TestPlan checks that Plan changes nothing and lists what Reconcile then does.
func TestPlan(t *testing.T) {
	k := &Fake{}
	specs := bigSpecs(5, 4)
	mustReconcile(t, k, specs, nil)
	changed := cloneSpecs(specs)
	changed[2].Destinations[1].Weight = 3
	changed = changed[1:]
	owned := OwnedSet{}
	for _, s := range specs {
		owned[s.Service.Key()] = struct{}{}
	}
	k.ResetCalls()
	plan, err := Plan(k, changed, owned)
	if err != nil || k.Writes() != 0 {
		t.Fatalf("Plan: %v, %d writes", err, k.Writes())
	}
	ch := mustReconcile(t, k, changed, owned)
	var planned, done []string
	for _, op := range plan.Ops {
		planned = append(planned, op.String())
	}
	for _, op := range ch.Ops {
		done = append(done, op.String())
	}
	if !slices.Equal(planned, done) || len(done) != 2 {
		t.Errorf("planned %q, done %q", planned, done)
	}
}

// TestStartStop checks lvs_flush and lvs_timeouts at start, and the three ways to stop.
func TestStartStop(t *testing.T) {
	foreign := Service{Family: IPv4, Protocol: UDP, Addr: netip.MustParseAddr("10.9.9.9"), Port: 53, Scheduler: "lc"}
	setup := func(t *testing.T, global string) (*Fake, *parser.Config, OwnedSet) {
		t.Helper()
		k := &Fake{}
		if err := k.AddService(foreign); err != nil {
			t.Fatal(err)
		}
		cfg := load(t, "global_defs {\n"+global+"\n}\n"+webConf)
		if err := Start(k, &cfg.Global); err != nil {
			t.Fatal(err)
		}
		ch := mustReconcile(t, k, Desired(cfg, HealthView{}), nil)
		return k, cfg, ch.Owned
	}
	t.Run("start keeps foreign services", func(t *testing.T) {
		k, _, _ := setup(t, "lvs_timeouts tcp 900 udp 60")
		if !strings.Contains(k.Dump(), "10.9.9.9") || k.Timeouts() != (Timeouts{TCP: 900e9, UDP: 60e9}) {
			t.Errorf("table:\n%stimeouts %+v", k.Dump(), k.Timeouts())
		}
	})
	t.Run("lvs_flush flushes at start", func(t *testing.T) {
		k, _, _ := setup(t, "lvs_flush")
		if strings.Contains(k.Dump(), "10.9.9.9") || k.Calls()[1].Op != "flush" {
			t.Errorf("table:\n%s", k.Dump())
		}
	})
	t.Run("stop deletes owned services only", func(t *testing.T) {
		k, cfg, owned := setup(t, "")
		ch, err := Stop(k, owned, &cfg.Global, false)
		if err != nil || k.Dump() != "UDP 10.9.9.9:53 lc\n" || ch.Count(OpDelService) != 2 || len(ch.Owned) != 0 {
			t.Errorf("Stop: %v\n%s\ntable:\n%s", err, ch.String(), k.Dump())
		}
	})
	t.Run("lvs_flush_on_stop VS deletes owned services only", func(t *testing.T) {
		k, cfg, owned := setup(t, "lvs_flush_on_stop VS")
		if _, err := Stop(k, owned, &cfg.Global, false); err != nil || k.Dump() != "UDP 10.9.9.9:53 lc\n" {
			t.Errorf("Stop: %v, table:\n%s", err, k.Dump())
		}
	})
	t.Run("lvs_flush_on_stop flushes everything", func(t *testing.T) {
		k, cfg, owned := setup(t, "lvs_flush_on_stop")
		if _, err := Stop(k, owned, &cfg.Global, false); err != nil || k.Dump() != "" {
			t.Errorf("Stop: %v, table:\n%s", err, k.Dump())
		}
	})
	t.Run("-I keeps everything", func(t *testing.T) {
		k, cfg, owned := setup(t, "lvs_flush_on_stop")
		k.ResetCalls()
		ch, err := Stop(k, owned, &cfg.Global, true)
		if err != nil || len(k.Calls()) != 0 || len(ch.Owned) != 2 {
			t.Errorf("Stop -I: %v, calls %v", err, k.Calls())
		}
	})
	t.Run("a failed delete stays owned", func(t *testing.T) {
		k, cfg, owned := setup(t, "")
		k.SetHook(func(c Call) error {
			if c.Op == "del-service" && c.Service.FWMark == 5 {
				return fmt.Errorf("busy")
			}
			return nil
		})
		ch, err := Stop(k, owned, &cfg.Global, false)
		if err == nil || len(ch.Owned) != 1 || ch.Count(OpDelService) != 1 {
			t.Errorf("Stop: %v, %s, owned %v", err, ch.Summary(), ch.Owned)
		}
	})
}

// TestReconcileOnly checks the targeted pass: it reads the destinations of the services
// given and nothing else, converges them, adds back a service that vanished, owns what
// it was given and leaves the other services alone.
func TestReconcileOnly(t *testing.T) {
	specs := bigSpecs(5, 3)
	k := &Fake{}
	mustReconcile(t, k, specs, nil)
	specs[2].Destinations[1].Weight = 7
	if err := k.DelService(specs[4].Service); err != nil {
		t.Fatal(err)
	}
	k.ResetCalls()
	ch, err := reconcileOnly(k, []ServiceSpec{specs[2], specs[4], specs[3]})
	if err != nil {
		t.Fatalf("reconcileOnly: %v\n%s", err, ch.String())
	}
	want := []string{
		"destinations TCP 10.0.2.1:80", "destinations TCP 10.0.4.1:80", "destinations TCP 10.0.3.1:80",
		"update-dest TCP 10.0.2.1:80 -> 172.16.0.2:8080", "add-service TCP 10.0.4.1:80",
		"add-dest TCP 10.0.4.1:80 -> 172.16.0.1:8080", "add-dest TCP 10.0.4.1:80 -> 172.16.0.2:8080", "add-dest TCP 10.0.4.1:80 -> 172.16.0.3:8080",
	}
	if got := callLines(k); !slices.Equal(got, want) {
		t.Errorf("kernel calls:\n got %q\nwant %q", got, want)
	}
	if k.Dump() != specLines(specs) {
		t.Errorf("table:\n%s\nwant:\n%s", k.Dump(), specLines(specs))
	}
	if ch.Unchanged != 1 || !maps.Equal(ch.Owned, keysOf([]ServiceSpec{specs[2], specs[3], specs[4]})) {
		t.Errorf("%d unchanged, owned %v", ch.Unchanged, ch.Owned)
	}
}

// TestReconcileServiceVanishes: a service deleted behind the reconciler's back between
// its read and a destination change is added back with all its destinations.
func TestReconcileServiceVanishes(t *testing.T) {
	specs := bigSpecs(1, 2)
	k := &Fake{}
	mustReconcile(t, k, specs, nil)
	specs[0].Destinations[1].Weight = 9
	var once sync.Once
	k.SetHook(func(c Call) error {
		if c.Op == "update-dest" {
			once.Do(func() { _ = k.DelService(specs[0].Service) })
		}
		return nil
	})
	ch, err := reconcileOnly(k, specs)
	k.SetHook(nil)
	if err != nil {
		t.Fatalf("reconcileOnly: %v\n%s", err, ch.String())
	}
	if k.Dump() != specLines(specs) {
		t.Errorf("table:\n%s\nwant:\n%s", k.Dump(), specLines(specs))
	}
	if n := ch.Count(OpAddService); n != 1 || len(ch.Errors) != 0 {
		t.Errorf("%d services added, errors %v; want the service added back once, no error:\n%s", n, ch.Errors, ch.String())
	}
}
