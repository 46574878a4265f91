package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pushd/push/protocol"
)

// memory keeps, across runs of pushtui, the cursor of the last event of
// each room seen on a screen, per server, user and room, in one JSON file
// under the XDG state directory ($XDG_STATE_HOME, or ~/.local/state):
// pushtui/cursors.json. Saving reads the file again and changes only this
// run's rooms, so two pushtuis of other users or servers do not undo each
// other's; the file is replaced whole (written aside, then renamed), so a
// crash leaves the old one or the new one. Its methods are safe for
// concurrent use.
type memory struct {
	path   string
	prefix string // "<server> <user> ": the keys of this run's rooms

	mu    sync.Mutex
	saved map[string]protocol.Cursor // by room, as the file had them
	seen  map[string]protocol.Cursor // by room, noted since
}

// stateDir returns the XDG state directory, "" when neither
// XDG_STATE_HOME nor HOME is set.
func stateDir(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return d
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".local", "state")
	}
	return ""
}

// openMemory reads what the file remembers of server and user; nil when
// there is no state directory. A file that cannot be read is taken as
// empty (it is replaced at the next save), with the error.
func openMemory(getenv func(string) string, server, user string) (*memory, error) {
	dir := stateDir(getenv)
	if dir == "" {
		return nil, nil
	}
	m := &memory{path: filepath.Join(dir, "pushtui", "cursors.json"), prefix: server + " " + user + " ",
		saved: map[string]protocol.Cursor{}, seen: map[string]protocol.Cursor{}}
	all, err := m.read()
	for k, v := range all {
		room, ok := strings.CutPrefix(k, m.prefix)
		if cur, cerr := protocol.ParseCursor(v); ok && cerr == nil && cur.Epoch != "" {
			m.saved[room] = cur
		}
	}
	return m, err
}

// read returns the whole file: cursor by "<server> <user> <room>".
func (m *memory) read() (map[string]string, error) {
	all := map[string]string{}
	b, err := os.ReadFile(m.path)
	if errors.Is(err, fs.ErrNotExist) {
		return all, nil
	}
	if err != nil {
		return all, fmt.Errorf("read %s: %w", m.path, err)
	}
	if err := json.Unmarshal(b, &all); err != nil {
		return map[string]string{}, fmt.Errorf("read %s: %w", m.path, err)
	}
	return all, nil
}

// last returns the cursor remembered for room from the last run.
func (m *memory) last(room string) (protocol.Cursor, bool) {
	if m == nil {
		return protocol.Cursor{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.saved[room]
	return c, ok
}

// note records the cursor of an event of room shown.
func (m *memory) note(room string, c protocol.Cursor) {
	if m == nil || c.Epoch == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen[room] = c
}

// save writes the cursors noted since the last save into the file.
func (m *memory) save() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seen) == 0 {
		return nil
	}
	all, _ := m.read() // a file that cannot be read is replaced
	for room, c := range m.seen {
		all[m.prefix+room] = c.String()
		m.saved[room] = c
	}
	clear(m.seen)
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(m.path, append(b, '\n'))
}

// writeFileAtomic replaces path with data: written to a new file in the
// same directory, synced, then renamed over path.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".cursors-*.json")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}
