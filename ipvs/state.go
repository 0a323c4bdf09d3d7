package ipvs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// stateVersion is the version of the state file's format.
const stateVersion = 1

// stateFile is the content of [Manager.StateFile]: the owned services, as
// {"version":1,"services":["TCP 10.0.0.1:80","FWM 7 IPv4"]}.
type stateFile struct {
	Version  int          `json:"version"`
	Services []ServiceKey `json:"services"`
}

// encodeOwned renders owned as the state file's content, its services sorted so that
// the same set always gives the same bytes.
func encodeOwned(owned OwnedSet) ([]byte, error) {
	keys := slices.SortedFunc(maps.Keys(owned), compareKeys)
	if keys == nil {
		keys = []ServiceKey{} // "services": [], not null
	}
	data, err := json.MarshalIndent(stateFile{Version: stateVersion, Services: keys}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the owned services: %w", err)
	}
	return append(data, '\n'), nil
}

// decodeOwned reads the state file's content.
func decodeOwned(data []byte) (OwnedSet, error) {
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("format version %d, want %d", st.Version, stateVersion)
	}
	owned := make(OwnedSet, len(st.Services))
	for _, k := range st.Services {
		owned[k] = struct{}{}
	}
	return owned, nil
}

// loadOwned returns the owned services that the state file lists, and records them as
// what the file holds. There are none without a state file, when the file does not
// exist yet (a first start), and when it cannot be read or decoded: that is logged, and
// the first pass writes the file again; nothing is deleted for it.
func (m *Manager) loadOwned() OwnedSet {
	if m.StateFile == "" {
		return OwnedSet{}
	}
	data, err := os.ReadFile(m.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		m.log.Info("no IPVS state file yet: no service owned from an earlier run", "file", m.StateFile)
		return OwnedSet{}
	}
	var owned OwnedSet
	if err == nil {
		owned, err = decodeOwned(data)
	}
	if err != nil {
		m.log.Warn("IPVS state file unusable, ignored: services an earlier run created and the configuration dropped stay in the table; the file is written again after the first pass",
			"file", m.StateFile, "err", err)
		return OwnedSet{}
	}
	m.log.Info("IPVS state file read", "file", m.StateFile, "services", len(owned))
	m.stateHeld = owned
	return owned
}

// persist writes owned to the state file, unless there is none or it holds owned
// already. A failure is logged when it differs from the previous one; the next pass
// tries again. It runs in the reconcile loop, or in Start and Stop when the loop is not
// running.
func (m *Manager) persist(owned OwnedSet) {
	if m.StateFile == "" || (m.stateHeld != nil && maps.Equal(m.stateHeld, owned)) {
		return
	}
	data, err := encodeOwned(owned)
	if err == nil {
		err = m.writeState(m.StateFile, data)
	}
	m.noteStateErr(err)
	if err == nil {
		m.stateHeld = owned // owned sets are not changed once recorded
	}
}

// persistAhead writes, before a pass over desired, the owned services with those of
// desired, which the pass may create: a crash during the pass must not leave services
// that the state file does not list.
func (m *Manager) persistAhead(owned OwnedSet, desired []ServiceSpec) {
	if m.StateFile != "" {
		m.persist(owned.with(keysOf(desired)))
	}
}

// noteStateErr logs the outcome of a write of the state file when it differs from the
// previous one: a new failure, or the first success after failures.
func (m *Manager) noteStateErr(err error) {
	switch {
	case err != nil && (m.stateErr == nil || m.stateErr.Error() != err.Error()):
		m.log.Warn("cannot write the IPVS state file; serving on, the next pass tries again", "file", m.StateFile, "err", err)
	case err == nil && m.stateErr != nil:
		m.log.Info("IPVS state file written again", "file", m.StateFile)
	}
	m.stateErr = err
}

// writeFileAtomic replaces the file at path with data: it is written to path+".tmp",
// synced and renamed over path, then the directory is synced, so that a crash leaves
// the old content or the new one, never a part.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	err := writeSynced(tmp, data)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeSynced writes data to the file at path, created with mode 0600 or truncated,
// and syncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir syncs the directory dir, making a rename in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
