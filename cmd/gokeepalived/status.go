package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"gokeepalived/ipvs"
	"gokeepalived/vrrp"
)

// statusDoc is what `gokeepalived status --json` prints: a rendering of the engines'
// snapshots.
type statusDoc struct {
	Version        string           `json:"version"`
	Instances      []instanceDoc    `json:"vrrp_instances"`
	VirtualServers []realServersDoc `json:"virtual_servers"`
	SyncDaemon     *syncDaemonDoc   `json:"lvs_sync_daemon,omitempty"`
}

type instanceDoc struct {
	Name           string             `json:"name"`
	State          string             `json:"state"`
	Priority       int                `json:"effective_priority"`
	BasePriority   int                `json:"base_priority"`
	Master         string             `json:"master,omitempty"`
	MasterPriority int                `json:"master_priority,omitempty"`
	LastTransition time.Time          `json:"last_transition"`
	Reason         string             `json:"reason"`
	Trackers       []trackerDoc       `json:"trackers"`
	Stats          vrrp.StatsSnapshot `json:"stats"`
	// NoAccept says why a master drops the traffic to its addresses (no_accept,
	// vrrp_strict, strict_mode); FirewallErrors counts the firewall changes that failed.
	NoAccept       string `json:"no_accept,omitempty"`
	FirewallErrors uint64 `json:"firewall_errors,omitempty"`
}

type trackerDoc struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Weight  int    `json:"weight"`
	Delta   int    `json:"delta"`
	Fault   bool   `json:"fault,omitempty"`
	Pending bool   `json:"pending,omitempty"`
	Why     string `json:"why"`
}

type realServersDoc struct {
	Service     string          `json:"service"`
	RealServers []realServerDoc `json:"real_servers"`
}

type realServerDoc struct {
	Address   string    `json:"address"`
	Up        bool      `json:"up"`
	Weight    int       `json:"weight"`
	LastCheck time.Time `json:"last_check,omitzero"`
	LatencyMS float64   `json:"latency_ms"`
	LastError string    `json:"last_error,omitempty"`
}

// buildStatus renders the engines' snapshots.
func buildStatus(v *vrrp.Manager, l *ipvs.Manager) statusDoc {
	doc := statusDoc{Version: version, Instances: []instanceDoc{}, VirtualServers: []realServersDoc{}}
	if v != nil {
		for _, s := range v.Status() {
			d := instanceDoc{Name: s.Name, State: s.State.String(), Priority: int(s.Priority),
				BasePriority: int(s.BasePriority), LastTransition: s.LastTransition, Reason: s.Reason,
				Trackers: []trackerDoc{}, Stats: s.Stats, NoAccept: s.NoAccept, FirewallErrors: s.FirewallErrors}
			if s.MasterAddr.IsValid() {
				d.Master, d.MasterPriority = s.MasterAddr.String(), int(s.MasterPriority)
			}
			for _, t := range s.Trackers {
				d.Trackers = append(d.Trackers, trackerDoc{Kind: t.Kind.String(), Name: t.Name, Weight: t.Weight,
					Delta: t.Delta, Fault: t.Fault, Pending: t.Pending, Why: t.Why})
			}
			doc.Instances = append(doc.Instances, d)
		}
	}
	if l != nil {
		idx := map[string]int{}
		for _, r := range l.RealServers() {
			svc := lvsService(r.VS).String()
			i, ok := idx[svc]
			if !ok {
				i = len(doc.VirtualServers)
				idx[svc] = i
				doc.VirtualServers = append(doc.VirtualServers, realServersDoc{Service: svc})
			}
			doc.VirtualServers[i].RealServers = append(doc.VirtualServers[i].RealServers, realServerDoc{
				Address: fmt.Sprintf("%s:%d", r.RS.Addr, r.RS.Port), Up: r.Up, Weight: r.Weight,
				LastCheck: r.LastCheck, LatencyMS: float64(r.Latency.Microseconds()) / 1000, LastError: r.LastError,
			})
		}
	}
	return doc
}

// writeStatusText prints a status document for people.
func writeStatusText(w io.Writer, doc statusDoc) {
	for _, in := range doc.Instances {
		fmt.Fprintf(w, "VRRP %s: %s, priority %d (base %d)", in.Name, in.State, in.Priority, in.BasePriority)
		if in.Master != "" {
			fmt.Fprintf(w, ", master %s priority %d", in.Master, in.MasterPriority)
		}
		fmt.Fprintf(w, "\n  last transition %s: %s\n", in.LastTransition.Format(time.RFC3339), in.Reason)
		if in.NoAccept != "" {
			fmt.Fprintf(w, "  no_accept (%s): traffic to the virtual addresses is dropped while master; %d firewall errors\n", in.NoAccept, in.FirewallErrors)
		}
		for _, t := range in.Trackers {
			fmt.Fprintf(w, "  %s %s: weight %d, %+d %s\n", t.Kind, t.Name, t.Weight, t.Delta, t.Why)
		}
	}
	if d := doc.SyncDaemon; d != nil {
		fmt.Fprintf(w, "LVS sync daemon on %s for %s (syncid %d): %s", d.Interface, d.Instance, d.SyncID, cmp.Or(d.Role, "not running"))
		if d.Error != "" {
			fmt.Fprintf(w, "; last change failed: %s", d.Error)
		}
		fmt.Fprintln(w)
	}
	for _, vs := range doc.VirtualServers {
		fmt.Fprintf(w, "LVS %s\n", vs.Service)
		for _, rs := range vs.RealServers {
			state := "DOWN"
			if rs.Up {
				state = "UP"
			}
			fmt.Fprintf(w, "  %-24s %-4s weight %d, last check %.1f ms %s\n", rs.Address, state, rs.Weight, rs.LatencyMS, rs.LastError)
		}
	}
}

// encodeStatus writes the status document as indented JSON.
func encodeStatus(w io.Writer, doc statusDoc) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
