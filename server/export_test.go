package server

// HeldStreams counts the streams the memory store holds, for the tests
// that check it lets go of those nobody uses.
func (m *MemoryStore) HeldStreams() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.streams)
}
