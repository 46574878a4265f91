package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/boltstore"
	"github.com/pushd/push/server/natsstore"
)

// historyStores are the stores a backwards read is tested on: each opens
// one for the test, closed when it ends.
var historyStores = map[string]func(t *testing.T) server.Store{
	"memory": func(t *testing.T) server.Store { return nil },
	"bolt": func(t *testing.T) server.Store {
		bs, err := boltstore.Open(t.TempDir(), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = bs.Close() })
		return bs
	},
	"nats": func(t *testing.T) server.Store {
		ns := natstest.Start(t)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		st, err := natsstore.Open(ctx, natsstore.Options{URL: ns.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	},
}

// readBack reads one page before the cursor before.
func readBack(t *testing.T, s *pushdtest.Server, room, before string, limit int) protocol.Page {
	t.Helper()
	var p protocol.Page
	s.Expect(t, http.MethodGet, fmt.Sprintf("%s?before=%s&limit=%d", pushdtest.RoomPath(room), before, limit), "", http.StatusOK, &p)
	return p
}

// Reading a room backwards page by page, on every store, gives every
// event once, each page oldest first, each page's Before leading to the
// one before, the last page without one.
func TestHistoryBackwards(t *testing.T) {
	for name, open := range historyStores {
		t.Run(name, func(t *testing.T) {
			s := pushdtest.Start(t, server.Config{Store: open(t)})
			for i := 1; i <= 25; i++ {
				s.Publish(t, "lobby", "ann", fmt.Sprintf("m-%d", i))
			}
			head := s.Head(t, pushdtest.RoomPath("lobby"))
			// A cursor past the end reads the newest events.
			before := protocol.Cursor{Epoch: head.Epoch, Seq: head.Seq + 100}.String()
			var got []protocol.Event
			pages := 0
			for before != "" {
				p := readBack(t, s, "lobby", before, 10)
				pages++
				for i := 1; i < len(p.Events); i++ {
					if p.Events[i].Seq != p.Events[i-1].Seq+1 {
						t.Fatalf("page %d is not oldest first, one by one: %s", pages, pushdtest.Summary(p.Events))
					}
				}
				got = append(p.Events, got...)
				before = p.Before
				if pages > 10 {
					t.Fatal("the pages do not end")
				}
			}
			if pages != 3 {
				t.Fatalf("%d pages of at most 10 for 25 events, want 3", pages)
			}
			pushdtest.CheckMessages(t, got, head.Epoch, 1, pushdtest.Texts("m", 25))

			// A page from the middle, from a bare seq (the current epoch).
			p := readBack(t, s, "lobby", "11", 4)
			pushdtest.CheckMessages(t, p.Events, head.Epoch, 7, []string{"m-7", "m-8", "m-9", "m-10"})
			if want := (protocol.Cursor{Epoch: head.Epoch, Seq: 7}).String(); p.Before != want {
				t.Fatalf("Before = %q, want %q", p.Before, want)
			}
			// Nothing before the first event.
			if p := readBack(t, s, "lobby", head.Epoch+":1", 10); len(p.Events) != 0 || p.Before != "" {
				t.Fatalf("before the first event: %+v", p)
			}
		})
	}
}

// A backwards read stops where retention dropped the log, and refuses a
// cursor of another epoch, a bad limit, and since beside before.
func TestHistoryBackwardsLimits(t *testing.T) {
	s := pushdtest.Start(t, server.Config{History: 10})
	for i := 1; i <= 30; i++ {
		s.Publish(t, "lobby", "ann", fmt.Sprintf("m-%d", i))
	}
	head := s.Head(t, pushdtest.RoomPath("lobby"))
	p := readBack(t, s, "lobby", head.Epoch+":31", 100)
	if len(p.Events) == 0 || p.Events[len(p.Events)-1].Seq != 30 || p.Before != "" {
		t.Fatalf("page after retention: before %q, %s", p.Before, pushdtest.Summary(p.Events))
	}
	if first := p.Events[0].Seq; first < 20 {
		t.Fatalf("the page starts at seq %d, which retention dropped", first)
	}
	for _, tc := range []struct {
		query string
		want  int
		code  string
	}{
		{"before=gone:5", http.StatusConflict, protocol.CodeConflict},
		{"before=x:y", http.StatusBadRequest, protocol.CodeInvalidCursor},
		{"before=5&limit=0", http.StatusBadRequest, protocol.CodeInvalidParam},
		{"before=5&limit=1001", http.StatusBadRequest, protocol.CodeInvalidParam},
		{"before=5&since=1", http.StatusBadRequest, protocol.CodeInvalidParam},
	} {
		a := s.Get(t, pushdtest.RoomPath("lobby")+"?"+tc.query)
		if a.Status != tc.want || a.Error(t).Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.query, a.Status, a.Body, tc.want, tc.code)
		}
	}
}
