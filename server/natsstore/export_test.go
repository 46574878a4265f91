package natsstore

// StreamName is the JetStream stream that holds a pushd stream, for the
// package's external tests that look at JetStream behind a store's back.
func (s *Store) StreamName(stream string) string { return s.streamName(stream) }
