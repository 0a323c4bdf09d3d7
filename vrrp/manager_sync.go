package vrrp

import "gokeepalived/parser"

// syncGroup makes the members of a vrrp_sync_group move together (keepalived §2.3):
// MASTER only when every member wants MASTER, and one member leaving MASTER takes the
// others with it.
type syncGroup struct {
	name    string
	members []*instance
}

// syncGroups links instances to their groups. Members that were dropped by the parser
// are simply absent.
func syncGroups(cfg *parser.Config, byName map[string]*instance) []*syncGroup {
	var out []*syncGroup
	for _, g := range cfg.SyncGroups {
		sg := &syncGroup{name: g.Name}
		for _, name := range g.Members {
			if in := byName[name]; in != nil {
				sg.members = append(sg.members, in)
				in.group = sg
			}
		}
		out = append(out, sg)
	}
	return out
}

// wantMaster is called when a member's master-down timer expired. If every other member
// is MASTER or wants to be, the whole group goes MASTER.
func (g *syncGroup) wantMaster(from *instance) {
	for _, in := range g.members {
		if in == from {
			continue
		}
		if m := in.machine(); m.State != StateMaster && !m.WantMaster {
			return
		}
	}
	for _, in := range g.members {
		if in == from || in.machine().State != StateMaster {
			in.deliver(Event{Kind: EvGroupMaster})
		}
	}
}

// left is called when a member leaves MASTER: the other members follow.
func (g *syncGroup) left(from *instance) {
	for _, in := range g.members {
		if in != from {
			in.deliver(Event{Kind: EvGroupBackup})
		}
	}
}
