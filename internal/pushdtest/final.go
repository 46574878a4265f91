package pushdtest

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/pushd/push/protocol"
)

// pollFinal reports whether a poll's answer ends its stream ("final":true,
// after the final event of one task's stream).
func pollFinal(a Answer) bool {
	var p protocol.Poll
	return json.Unmarshal(a.Body, &p) == nil && p.Final
}

// PollFinal makes a poll like Poll and also returns whether the answer
// ends the stream.
func (s *Remote) PollFinal(t testing.TB, path, query string) ([]protocol.Event, string, bool) {
	t.Helper()
	a := s.Get(t, path+"?"+query)
	if a.Status != http.StatusOK {
		t.Fatalf("poll %s?%s: %d %s", path, query, a.Status, a.Body)
	}
	evs, cur, err := parsePoll(a)
	if err != nil {
		t.Fatal(err)
	}
	return evs, cur, pollFinal(a)
}
