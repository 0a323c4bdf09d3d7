package ipvs

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"gokeepalived/parser"
)

// OwnedSet is the set of kernel services this daemon owns: those of its desired state,
// and those it created and has not managed to delete yet. Services outside it are
// foreign and never touched (lvs_flush aside). [Changes.Owned] is the set to pass to the
// next pass.
type OwnedSet map[ServiceKey]struct{}

// Has reports whether k is owned.
func (o OwnedSet) Has(k ServiceKey) bool {
	_, ok := o[k]
	return ok
}

// with returns o with the keys of add. o is not changed: a new set is made when add has
// keys that o lacks, so that an owned set handed out stays as it was.
func (o OwnedSet) with(add OwnedSet) OwnedSet {
	for k := range add {
		if !o.Has(k) {
			out := make(OwnedSet, len(o)+len(add))
			maps.Copy(out, o)
			maps.Copy(out, add)
			return out
		}
	}
	return o
}

// OpKind is the kind of a kernel change.
type OpKind uint8

// Kernel changes.
const (
	OpAddService OpKind = iota + 1
	OpUpdateService
	OpDelService
	OpAddDest
	OpUpdateDest
	OpDelDest
	OpFlush
)

var opNames = map[OpKind]string{
	OpAddService: "add service", OpUpdateService: "update service", OpDelService: "delete service",
	OpAddDest: "add destination", OpUpdateDest: "update destination", OpDelDest: "delete destination",
	OpFlush: "flush",
}

// String names the change: "add service", "delete destination".
func (k OpKind) String() string { return opNames[k] }

// isDest reports whether k changes a destination.
func (k OpKind) isDest() bool { return k == OpAddDest || k == OpUpdateDest || k == OpDelDest }

// Op is one kernel change, done or planned.
type Op struct {
	Kind    OpKind
	Service Service
	Dest    Destination // destination changes only
	Err     error       // why it failed; nil when it worked (or is only planned)
}

// String renders the change: "add service TCP 10.0.0.1:80 rr",
// "update destination 10.0.0.2:80 NAT weight 3 of TCP 10.0.0.1:80".
func (o Op) String() string {
	switch {
	case o.Kind == OpFlush:
		return o.Kind.String()
	case o.Kind.isDest():
		return fmt.Sprintf("%s %s of %s", o.Kind, o.Dest, o.Service.Key())
	case o.Kind == OpDelService:
		return fmt.Sprintf("%s %s", o.Kind, o.Service.Key())
	}
	return fmt.Sprintf("%s %s", o.Kind, o.Service)
}

// Changes is what a pass did (or, from [Plan], would do): for logs, status and
// `reload --dry-run`.
type Changes struct {
	// Ops are the kernel changes in the order they were made, failed ones included.
	Ops []Op
	// Errors are the failures, each naming its service. A failed service is retried by
	// the next pass; it never stops the others.
	Errors []error
	// Unchanged counts the desired services that the kernel already held as wanted.
	Unchanged int
	// Owned is the set of owned services to pass to the next pass.
	Owned OwnedSet
}

// Count returns the number of successful changes of kind k.
func (c *Changes) Count(k OpKind) int {
	n := 0
	for _, op := range c.Ops {
		if op.Kind == k && op.Err == nil {
			n++
		}
	}
	return n
}

// Summary renders the counts: "services +1 ~0 -0, destinations +6 ~0 -0, 3 unchanged,
// 0 errors".
func (c *Changes) Summary() string {
	return fmt.Sprintf("services +%d ~%d -%d, destinations +%d ~%d -%d, %d unchanged, %d errors",
		c.Count(OpAddService), c.Count(OpUpdateService), c.Count(OpDelService),
		c.Count(OpAddDest), c.Count(OpUpdateDest), c.Count(OpDelDest), c.Unchanged, len(c.Errors))
}

func (c *Changes) fail(err error) { c.Errors = append(c.Errors, err) }

// work is the planned changes of one service.
type work struct {
	spec *ServiceSpec // nil for the deletion of a service we no longer want
	ops  []Op
}

// Reconcile converges the kernel's table to desired (keepalived.md §2.4, design rule 3):
// it reads the services, and the destinations of the services it wants, and makes the
// fewest changes: services are added, updated (scheduler, flags, persistence) or
// deleted, destinations added, updated (weight, forwarding, thresholds) or deleted.
// Destinations are added and updated before any is deleted, so that a pool swap (the
// sorry server) never leaves a service empty.
//
// What is there already is adopted: a restart over a table that matches changes
// nothing. Only owned services are touched: those in desired, and those in owned that
// desired no longer has (they are deleted). Everything else in the table is foreign and
// left alone.
//
// An answer showing that the table changed since it was read is taken as the
// idempotent outcome it is (adding what exists updates it, updating what is gone adds
// it, deleting what is gone is done). Any other failure is recorded with its service in
// Changes.Errors and the pass carries on with the other services; the next pass
// retries. The error is all of them joined, or the failure to read the table.
func Reconcile(k Kernel, desired []ServiceSpec, owned OwnedSet) (Changes, error) {
	plan, ch, err := makePlan(k, desired, owned)
	if err != nil {
		return ch, err
	}
	err = ch.applyPlan(k, plan)
	return ch, err
}

// reconcileOnly converges the services of desired alone, for a pass that follows health
// changes: it reads the destinations of each (not the list of services, the dump that
// makes [Reconcile] cost a netlink round trip per service), takes the service's own
// settings as desired (they change only with the configuration, which a full
// [Reconcile] applies) and adds back a service the kernel no longer has, with its
// destinations. It deletes no service: only a full pass knows which owned services are
// no longer desired. Changes.Owned holds the services of desired, to add to the owned
// set.
func reconcileOnly(k Kernel, desired []ServiceSpec) (Changes, error) {
	ch := Changes{Owned: keysOf(desired)}
	plan, _ := ch.planServices(k, desired, func(want Service) (Service, bool) { return want, true })
	err := ch.applyPlan(k, plan)
	return ch, err
}

// Plan returns the changes [Reconcile] would make, without making them: Changes.Ops
// lists them (none has an Err), Changes.Errors the services whose state could not be
// read.
func Plan(k Kernel, desired []ServiceSpec, owned OwnedSet) (Changes, error) {
	plan, ch, err := makePlan(k, desired, owned)
	if err != nil {
		return ch, err
	}
	for _, w := range plan {
		ch.Ops = append(ch.Ops, w.ops...)
	}
	return ch, errors.Join(ch.Errors...)
}

// keysOf returns the keys of the services of desired.
func keysOf(desired []ServiceSpec) OwnedSet {
	keys := make(OwnedSet, len(desired))
	for _, spec := range desired {
		keys[spec.Service.normalized().Key()] = struct{}{}
	}
	return keys
}

// makePlan reads the table and computes the changes per service: those of the desired
// services, then the deletion of the owned services no longer desired.
func makePlan(k Kernel, desired []ServiceSpec, owned OwnedSet) ([]work, Changes, error) {
	ch := Changes{Owned: keysOf(desired)}
	have, err := k.Services()
	if err != nil {
		maps.Copy(ch.Owned, owned)
		return nil, ch, fmt.Errorf("ipvs: reading the services: %w", err)
	}
	current := make(map[ServiceKey]Service, len(have))
	for _, s := range have {
		s = s.normalized()
		current[s.Key()] = s
	}
	plan, seen := ch.planServices(k, desired, func(want Service) (Service, bool) {
		cur, present := current[want.Key()]
		return cur, present
	})

	var gone []ServiceKey
	for key := range owned {
		if _, present := current[key]; present && !seen[key] {
			gone = append(gone, key)
		}
	}
	slices.SortFunc(gone, compareKeys)
	for _, key := range gone {
		ch.Owned[key] = struct{}{} // until it is deleted
		plan = append(plan, work{ops: []Op{{Kind: OpDelService, Service: current[key]}}})
	}
	return plan, ch, nil
}

// planServices computes the changes of each desired service, in order; held tells how
// the kernel holds the service wanted: its settings, and whether it is there. A service
// desired twice is an error and the second is ignored; a service whose state cannot be
// read is an error and skipped; a service that needs nothing counts as unchanged. It
// returns the plan and the keys of the services planned.
func (c *Changes) planServices(k Kernel, desired []ServiceSpec, held func(want Service) (Service, bool)) ([]work, map[ServiceKey]bool) {
	var plan []work
	seen := make(map[ServiceKey]bool, len(desired))
	for i := range desired {
		spec := &desired[i]
		want := spec.Service.normalized()
		key := want.Key()
		if seen[key] {
			c.fail(fmt.Errorf("ipvs: service %s: in the desired state twice; the second is ignored", key))
			continue
		}
		seen[key] = true
		cur, present := held(want)
		ops, err := planService(k, spec, want, cur, present)
		switch {
		case err != nil:
			c.fail(err)
		case len(ops) == 0:
			c.Unchanged++
		default:
			plan = append(plan, work{spec: spec, ops: ops})
		}
	}
	return plan, seen
}

// planService returns the changes that make the kernel hold spec, whose service is want
// (normalized); cur is the kernel's service when present. It reads the destinations of
// a present service; one that is not there, or is gone by then, is added with all its
// destinations.
func planService(k Kernel, spec *ServiceSpec, want, cur Service, present bool) ([]Op, error) {
	addService := []Op{{Kind: OpAddService, Service: want}}
	if !present {
		return addAll(want, spec.Destinations, addService), nil
	}
	dests, err := k.Destinations(cur)
	if errors.Is(err, ErrNoService) { // gone since the list was read
		return addAll(want, spec.Destinations, addService), nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipvs: service %s: reading its destinations: %w", want.Key(), err)
	}
	var ops []Op
	if cur != want {
		ops = append(ops, Op{Kind: OpUpdateService, Service: want})
	}
	return append(ops, diffDests(want, spec.Destinations, dests)...), nil
}

// addAll appends to ops the addition of every destination of svc.
func addAll(svc Service, dests []Destination, ops []Op) []Op {
	for _, d := range dests {
		ops = append(ops, Op{Kind: OpAddDest, Service: svc, Dest: d.normalized()})
	}
	return ops
}

// diffDests returns the changes that turn have into want: additions and updates first,
// then deletions.
func diffDests(svc Service, want, have []Destination) []Op {
	current := make(map[DestKey]Destination, len(have))
	for _, d := range have {
		current[d.Key()] = d.normalized()
	}
	wanted := make(map[DestKey]bool, len(want))
	var ops []Op
	for _, d := range want {
		d = d.normalized()
		wanted[d.Key()] = true
		switch cur, ok := current[d.Key()]; {
		case !ok:
			ops = append(ops, Op{Kind: OpAddDest, Service: svc, Dest: d})
		case cur != d:
			ops = append(ops, Op{Kind: OpUpdateDest, Service: svc, Dest: d})
		}
	}
	for _, d := range have {
		if !wanted[d.Key()] {
			ops = append(ops, Op{Kind: OpDelDest, Service: svc, Dest: d})
		}
	}
	return ops
}

// applyPlan makes the changes of plan, service by service, several services at a time
// when k is [Concurrent] (the changes of one service stay in order, and Changes lists
// them in plan order whatever the timing); it returns the failures joined.
func (c *Changes) applyPlan(k Kernel, plan []work) error {
	n := 1
	if ck, ok := k.(Concurrent); ok {
		n = min(ck.Concurrency(), len(plan))
	}
	if n <= 1 {
		for _, w := range plan {
			c.apply(k, w)
		}
		return errors.Join(c.Errors...)
	}
	parts := make([]Changes, len(plan))
	next := make(chan int)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				parts[i].Owned = OwnedSet{}
				parts[i].apply(k, plan[i])
			}
		}()
	}
	for i := range plan {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, p := range parts {
		c.Ops = append(c.Ops, p.Ops...)
		c.Errors = append(c.Errors, p.Errors...)
		for _, op := range p.Ops {
			if op.Kind == OpDelService && op.Err == nil {
				delete(c.Owned, op.Service.Key())
			}
		}
	}
	return errors.Join(c.Errors...)
}

// apply makes the changes of one service. A failed service change skips the service's
// remaining changes; a failed destination change skips only itself.
//
// A destination change answered with ErrNoService means the service vanished after it
// was read (the kernel lists no destinations for a missing service, so a read cannot
// tell): the service is added back with all its destinations, once.
func (c *Changes) apply(k Kernel, w work) {
	ops := w.ops
	readded := false
	for i := 0; i < len(ops); i++ {
		done, err := do(k, ops[i])
		if done.Kind.isDest() && errors.Is(err, ErrNoService) && w.spec != nil && !readded {
			readded = true
			back := append(slices.Clone(ops[:i+1]), Op{Kind: OpAddService, Service: done.Service})
			ops = addAll(done.Service, w.spec.Destinations, back)
			continue
		}
		done.Err = err
		c.Ops = append(c.Ops, done)
		if err != nil {
			c.fail(fmt.Errorf("ipvs: %s: %w", done, err)) // done names the service
			if !done.Kind.isDest() {
				return
			}
			continue
		}
		switch {
		case done.Kind == OpDelService:
			delete(c.Owned, done.Service.Key())
		case ops[i].Kind == OpUpdateService && done.Kind == OpAddService:
			// The service vanished since the table was read: it is back, and empty.
			ops = addAll(done.Service, w.spec.Destinations, slices.Clone(ops[:i+1]))
		}
	}
}

// do makes one change. When the kernel's answer shows the table changed since it was
// read, it falls back to what converges it: adding what exists updates it, updating
// what is gone adds it, deleting what is gone is done. It returns the change as made.
func do(k Kernel, op Op) (Op, error) {
	switch op.Kind {
	case OpAddService:
		err := k.AddService(op.Service)
		if errors.Is(err, ErrExist) {
			op.Kind = OpUpdateService
			err = k.UpdateService(op.Service)
		}
		return op, err
	case OpUpdateService:
		err := k.UpdateService(op.Service)
		if errors.Is(err, ErrNoService) {
			op.Kind = OpAddService
			err = k.AddService(op.Service)
		}
		return op, err
	case OpDelService:
		if err := k.DelService(op.Service); err != nil && !errors.Is(err, ErrNoService) {
			return op, err
		}
		return op, nil
	case OpAddDest:
		err := k.AddDest(op.Service, op.Dest)
		if errors.Is(err, ErrExist) {
			op.Kind = OpUpdateDest
			err = k.UpdateDest(op.Service, op.Dest)
		}
		return op, err
	case OpUpdateDest:
		err := k.UpdateDest(op.Service, op.Dest)
		if errors.Is(err, ErrNoDest) {
			op.Kind = OpAddDest
			err = k.AddDest(op.Service, op.Dest)
		}
		return op, err
	case OpDelDest:
		if err := k.DelDest(op.Service, op.Dest); err != nil && !errors.Is(err, ErrNoDest) {
			return op, err
		}
		return op, nil
	case OpFlush:
		return op, k.Flush()
	}
	return op, fmt.Errorf("unknown change kind %d", op.Kind)
}

// Start prepares the kernel when the daemon starts: lvs_flush flushes the whole table
// (foreign services included), and lvs_timeouts are set. Without lvs_flush the table
// is kept, and the first [Reconcile] adopts it. On a reload, call Kernel.SetTimeouts
// with [TimeoutsOf] instead: a reload never flushes.
func Start(k Kernel, g *parser.GlobalDefs) error {
	var errs []error
	if g.LVSFlush {
		if err := k.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("ipvs: lvs_flush: %w", err))
		}
	}
	if t := TimeoutsOf(g.LVSTimeouts); !t.IsZero() {
		if err := k.SetTimeouts(t); err != nil {
			errs = append(errs, fmt.Errorf("ipvs: lvs_timeouts: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Stop removes what the daemon owns when it stops, as keepalived does:
//
//   - keep (-I, --dont-release-ipvs): nothing is removed;
//   - lvs_flush_on_stop (all): the whole table is flushed, foreign services included;
//   - otherwise, and with lvs_flush_on_stop VS: each owned service is deleted, and the
//     kernel drops its destinations with it.
//
// Run the [OmegaNotifies] first. Failures are reported with their service; the other
// services are deleted all the same.
func Stop(k Kernel, owned OwnedSet, g *parser.GlobalDefs, keep bool) (Changes, error) {
	ch := Changes{Owned: OwnedSet{}}
	switch {
	case keep:
		for key := range owned {
			ch.Owned[key] = struct{}{}
		}
		return ch, nil
	case g.LVSFlushOnStop == "all":
		done, err := do(k, Op{Kind: OpFlush})
		done.Err = err
		ch.Ops = append(ch.Ops, done)
		if err != nil {
			ch.fail(fmt.Errorf("ipvs: lvs_flush_on_stop: %w", err))
			for key := range owned {
				ch.Owned[key] = struct{}{}
			}
		}
		return ch, errors.Join(ch.Errors...)
	}
	plan, ch, err := makePlan(k, nil, owned)
	if err != nil {
		return ch, err
	}
	err = ch.applyPlan(k, plan)
	return ch, err
}

// String renders the changes one a line, failures with their error, after the summary.
func (c *Changes) String() string {
	var b strings.Builder
	b.WriteString(c.Summary() + "\n")
	for _, op := range c.Ops {
		b.WriteString(op.String())
		if op.Err != nil {
			b.WriteString(": " + op.Err.Error())
		}
		b.WriteString("\n")
	}
	return b.String()
}
