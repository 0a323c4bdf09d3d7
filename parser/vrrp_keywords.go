package parser

// Keyword handlers and types shared by vrrp_instance and vrrp_sync_group.

// Notifies holds the notify scripts shared by vrrp_instance and vrrp_sync_group.
type Notifies struct {
	NotifyMaster *Script `json:"notify_master,omitempty"`
	NotifyBackup *Script `json:"notify_backup,omitempty"`
	NotifyFault  *Script `json:"notify_fault,omitempty"`
	NotifyStop   *Script `json:"notify_stop,omitempty"`
	// Notify runs on every transition with TYPE NAME STATE PRIORITY appended.
	Notify *Script `json:"notify,omitempty"`
	// NotifyDeleted reports DELETED instead of FAULT when a reload removes the instance;
	// NotifyDeletedScript, if set, is run then too.
	NotifyDeleted       bool    `json:"notify_deleted,omitempty"`
	NotifyDeletedScript *Script `json:"notify_deleted_script,omitempty"`
}

// scripts returns the configured notify scripts.
func (n *Notifies) scripts() []*Script {
	return []*Script{n.NotifyMaster, n.NotifyBackup, n.NotifyFault, n.NotifyStop, n.Notify, n.NotifyDeletedScript}
}

// scriptKeyword handles a quoted-script keyword whose value is kept once.
func scriptKeyword[T any](field func(*T) **Script) handler[T] {
	return func(c *ctx, s *Stmt, t *T) {
		p := field(t)
		if *p != nil {
			c.errorf(s.At(), "'%s' is already set; this one is ignored", s.Key)
			return
		}
		*p = c.script(s)
	}
}

// notifyKeywords adds the notify_* keywords of Notifies to table.
func notifyKeywords[T any](table keywords[T], get func(*T) *Notifies) keywords[T] {
	table["notify_master"] = scriptKeyword(func(t *T) **Script { return &get(t).NotifyMaster })
	table["notify_backup"] = scriptKeyword(func(t *T) **Script { return &get(t).NotifyBackup })
	table["notify_fault"] = scriptKeyword(func(t *T) **Script { return &get(t).NotifyFault })
	table["notify_stop"] = scriptKeyword(func(t *T) **Script { return &get(t).NotifyStop })
	table["notify"] = scriptKeyword(func(t *T) **Script { return &get(t).Notify })
	table["notify_deleted"] = func(c *ctx, s *Stmt, t *T) {
		get(t).NotifyDeleted = true
		if len(s.Args) == 0 {
			c.want(s, 0, 0)
			return
		}
		scriptKeyword(func(t *T) **Script { return &get(t).NotifyDeletedScript })(c, s, t)
	}
	return table
}

// explicitBool handles "KEY [<BOOL>]", recording in at(t) that the key was set.
func explicitBool[T any](field func(*T) *bool, at func(*T) map[string]Pos) handler[T] {
	return func(c *ctx, s *Stmt, t *T) {
		var b bool
		c.setFlag(s, &b)
		if len(s.Args) > 0 && !isBool(s.Args[0].Value()) {
			return
		}
		*field(t) = b
		at(t)[s.Key] = s.At()
	}
}

// trackBFD parses a track_bfd block for its syntax, then reports it unimplemented.
func trackBFD[T any](c *ctx, s *Stmt, t *T) {
	parseTrackBlock(c, s, -253, 253, true)
	ignored(c, s, t)
}

func isBool(v string) bool {
	_, ok := parseBool(v)
	return ok
}
