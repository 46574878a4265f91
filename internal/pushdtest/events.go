package pushdtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

// optionalFields lists the JSON fields an event type may have besides its
// eventFields.
var optionalFields = map[protocol.Type][]string{
	protocol.TypeMessage: {"id"},
}

// eventFields lists the JSON fields each event type has, and no others
// but its optionalFields.
var eventFields = map[protocol.Type][]string{
	protocol.TypeMessage:  {"epoch", "seq", "stream", "text", "time", "type", "user"},
	protocol.TypeLogin:    {"epoch", "seq", "stream", "time", "type", "user"},
	protocol.TypeLogout:   {"epoch", "seq", "stream", "time", "type", "user"},
	protocol.TypeReset:    {"epoch", "reason", "seq", "stream", "time", "type"},
	protocol.TypeProgress: {"epoch", "seq", "stream", "task", "time", "type"},
}

var epochRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidEpoch reports whether epoch is as the protocol has epochs: 1 to 64
// of [A-Za-z0-9._-].
func ValidEpoch(epoch string) bool { return epochRE.MatchString(epoch) }

// CheckEvent checks one event's JSON against the protocol (the fields of
// its type and no others, an epoch, the time in RFC 3339 UTC) and returns
// it decoded.
func CheckEvent(t testing.TB, raw []byte) protocol.Event {
	t.Helper()
	ev, err := checkEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// checkEvent is CheckEvent for any goroutine.
func checkEvent(raw []byte) (protocol.Event, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return protocol.Event{}, fmt.Errorf("event %q is not a JSON object: %v", raw, err)
	}
	var ev protocol.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, fmt.Errorf("event %s: %v", raw, err)
	}
	want, ok := eventFields[ev.Type]
	if !ok {
		return ev, fmt.Errorf("event %s: unknown type %q", raw, ev.Type)
	}
	for _, k := range optionalFields[ev.Type] {
		if _, ok := fields[k]; ok {
			want = append(slices.Clone(want), k)
			slices.Sort(want)
		}
	}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
		return ev, fmt.Errorf("event %s has fields %v; a %s event has exactly %v", raw, got, ev.Type, want)
	}
	if !ValidEpoch(ev.Epoch) {
		return ev, fmt.Errorf("event %s: epoch %q is not 1 to 64 of [A-Za-z0-9._-]", raw, ev.Epoch)
	}
	var ts string
	_ = json.Unmarshal(fields["time"], &ts)
	if parsed, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") || parsed.IsZero() {
		return ev, fmt.Errorf("event %s: time %q is not RFC 3339 in UTC", raw, ts)
	}
	return ev, nil
}

// CheckMessages checks that evs are exactly the messages with seqs from
// first on, in one epoch, with the given texts.
func CheckMessages(t testing.TB, evs []protocol.Event, epoch string, first uint64, texts []string) {
	t.Helper()
	if len(evs) != len(texts) {
		t.Fatalf("got %d events %s; want %d messages from seq %d", len(evs), Summary(evs), len(texts), first)
	}
	for i, ev := range evs {
		if ev.Type != protocol.TypeMessage || ev.Epoch != epoch || ev.Seq != first+uint64(i) || ev.Text != texts[i] {
			t.Fatalf("event %d is %s; want message %q at %s:%d\nall: %s", i, OneLine(ev), texts[i], epoch, first+uint64(i), Summary(evs))
		}
	}
}

// OneLine describes an event briefly, for failure messages.
func OneLine(ev protocol.Event) string {
	s := fmt.Sprintf("%s %s:%d", ev.Type, ev.Epoch, ev.Seq)
	if ev.User != "" {
		s += " " + ev.User
	}
	if ev.Reason != "" {
		s += " (" + ev.Reason + ")"
	}
	if ev.Text != "" {
		text := ev.Text
		if len(text) > 20 {
			text = text[:20] + "..."
		}
		s += " " + strconv.Quote(text)
	}
	if ev.Task != nil {
		s += fmt.Sprintf(" task %s %s %d/%d", ev.Task.ID, ev.Task.State, ev.Task.Done, ev.Task.Total)
	}
	return s
}

// Summary describes events briefly, the first and last ten of many.
func Summary(evs []protocol.Event) string {
	parts := make([]string, len(evs))
	for i, ev := range evs {
		parts[i] = OneLine(ev)
	}
	if len(parts) > 20 {
		parts = append(parts[:10], append([]string{"..."}, parts[len(parts)-10:]...)...)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Texts returns n message texts: "prefix-1", "prefix-2", ...
func Texts(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + "-" + strconv.Itoa(i+1)
	}
	return out
}
