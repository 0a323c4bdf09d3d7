// Package ipvs keeps the kernel's IPVS table in line with the virtual_server blocks of
// keepalived.conf.
//
// It has four parts:
//
//   - The model: [Service] (a virtual service: address, port and protocol, or a firewall
//     mark; scheduler and flags; persistence) and [Destination] (a real server: address,
//     port, weight, forwarding method, thresholds).
//   - The desired state: [Desired] turns a parsed configuration and the health the
//     checkers report ([HealthView]) into the services and destinations the kernel must
//     hold. It is pure and applies keepalived's pool rules: real servers that are down
//     are removed (or kept at weight 0 with inhibit_on_failure), alpha starts them down,
//     quorum with hysteresis, the sorry server, weights from misc_dynamic, and the
//     expansion of virtual_server_group ranges and firewall marks.
//   - The kernel: the [Kernel] interface, with [Moby] over github.com/moby/ipvs (every
//     call under a deadline, a wedged netlink handle replaced, errno mapped to
//     [ErrExist], [ErrNoService] and [ErrNoDest]) and the in-memory [Fake]. moby/ipvs
//     reports success when the kernel has no IPVS at all, so [Probe] checks for it and
//     [NewMoby] refuses to start without it.
//   - The reconciler: [Reconcile] reads the kernel's table, compares it with the desired
//     state and makes the fewest calls that converge it. It adopts what is already there
//     (a restart changes nothing when the table matches), touches only the services it
//     owns, reports every failure with its service and carries on with the others; the
//     next pass retries. [Start] and [Stop] apply lvs_flush, lvs_timeouts and
//     lvs_flush_on_stop. The [Manager] runs it at start, on reload and to retry after
//     errors; a health change runs a targeted pass instead, over the services of the
//     virtual servers concerned: their destinations are read and converged, the table
//     is not dumped and no service is deleted. With [Manager.StateFile] the owned
//     services are kept in a file across restarts, so that a restart (after a stop
//     that kept the table, or a crash) deletes those an earlier run created and the
//     configuration no longer has.
package ipvs
