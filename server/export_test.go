package server

// HeldStreams counts the streams the memory store holds, for the tests
// that check it lets go of those nobody uses.
func (m *MemoryStore) HeldStreams() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.streams)
}

// ParkedSubscribers is how many streaming subscribers of the named stream
// wait parked for its next publish, for benchmarks that time the wake of
// a parked room.
func ParkedSubscribers(h *Hub, name string) int {
	h.mu.Lock()
	st := h.streams[name]
	h.mu.Unlock()
	if st == nil {
		return 0
	}
	st.waitMu.Lock()
	defer st.waitMu.Unlock()
	return len(st.waiters)
}
