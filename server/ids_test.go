package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// publishWithID posts a message with an id in the body and, if header is
// not "", an Idempotency-Key header.
func publishWithID(t testing.TB, s *pushdtest.Server, room, user, text, id, header string) pushdtest.Answer {
	t.Helper()
	body, _ := json.Marshal(protocol.PublishRequest{User: user, Text: text, ID: id})
	var hdr []string
	if header != "" {
		hdr = []string{protocol.IdempotencyKeyHeader, header}
	}
	return s.Post(t, "/v1/rooms/"+room+"/messages", string(body), hdr...)
}

func TestPublishWithAnIDStoresOnce(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	first := publishWithID(t, s, "r", "ann", "hello", "m-1", "")
	if first.Status != http.StatusCreated {
		t.Fatalf("first publish of m-1: %d %s", first.Status, first.Body)
	}
	ev := pushdtest.CheckEvent(t, first.Body)
	if ev.ID != "m-1" {
		t.Fatalf("the stored event %s does not carry its id", first.Body)
	}
	again := publishWithID(t, s, "r", "ann", "hello", "m-1", "")
	if again.Status != http.StatusOK || string(again.Body) != string(first.Body) {
		t.Fatalf("repeat of m-1: %d %s; want 200 and the first answer %s", again.Status, again.Body, first.Body)
	}
	// The header says the same as the body's id.
	byHeader := publishWithID(t, s, "r", "ann", "hello", "", "m-1")
	if byHeader.Status != http.StatusOK || string(byHeader.Body) != string(first.Body) {
		t.Fatalf("repeat of m-1 by header: %d %s", byHeader.Status, byHeader.Body)
	}
	both := publishWithID(t, s, "r", "ann", "hello", "m-1", "m-1")
	if both.Status != http.StatusOK {
		t.Fatalf("repeat of m-1 in body and header: %d %s", both.Status, both.Body)
	}
	pushdtest.CheckMessages(t, s.History(t, pushdtest.RoomPath("r")), ev.Epoch, ev.Seq, []string{"hello"})
}

func TestPublishIDConflictsAndRefusals(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	ev := pushdtest.CheckEvent(t, publishWithID(t, s, "r", "ann", "hello", "m-1", "").Body)
	for _, c := range []struct {
		name, user, text string
	}{{"other text", "ann", "goodbye"}, {"other user", "bob", "hello"}} {
		a := publishWithID(t, s, "r", c.user, c.text, "m-1", "")
		if a.Status != http.StatusConflict || a.Error(t).Code != protocol.CodeConflict ||
			!strings.Contains(a.Error(t).Message, `"m-1"`) || !strings.Contains(a.Error(t).Message, fmt.Sprint("seq ", ev.Seq)) {
			t.Errorf("%s under m-1: %d %s; want 409 conflict naming the id and the first's seq", c.name, a.Status, a.Body)
		}
	}
	for _, c := range []struct {
		name, id, header, want string
	}{
		{"id too long", strings.Repeat("x", 65), "", `id "xxxx`},
		{"id with a space", "a b", "", "A-Z a-z 0-9 . _ : -"},
		{"header with a slash", "", "a/b", protocol.IdempotencyKeyHeader},
		{"body and header differ", "m-2", "m-3", "differ"},
	} {
		a := publishWithID(t, s, "r", "ann", "x", c.id, c.header)
		if a.Status != http.StatusBadRequest || a.Error(t).Code != protocol.CodeInvalidParam || !strings.Contains(a.Error(t).Message, c.want) {
			t.Errorf("%s: %d %s; want 400 invalid_param saying %q", c.name, a.Status, a.Body, c.want)
		}
	}
	twice := s.Post(t, "/v1/rooms/r/messages", `{"user":"ann","text":"x"}`, protocol.IdempotencyKeyHeader, "k")
	if twice.Status != http.StatusCreated {
		t.Fatalf("one header: %d %s", twice.Status, twice.Body)
	}
	pushdtest.CheckMessages(t, s.History(t, pushdtest.RoomPath("r")), ev.Epoch, ev.Seq, []string{"hello", "x"})
}

func TestConcurrentRepeatsStoreOnce(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	const n = 16
	answers := make([]pushdtest.Answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = publishWithID(pushdtest.GoTB{TB: t}, s, "r", "ann", "once", "same", "") })
	}
	wg.Wait()
	created := 0
	for _, a := range answers {
		switch a.Status {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Fatalf("a concurrent publish of the same id: %d %s", a.Status, a.Body)
		}
		if string(a.Body) != string(answers[0].Body) {
			t.Fatalf("answers differ: %s and %s", a.Body, answers[0].Body)
		}
	}
	if created != 1 {
		t.Fatalf("%d of %d concurrent publishes of one id were answered 201; want exactly 1", created, n)
	}
	if h := s.History(t, pushdtest.RoomPath("r")); len(h) != 1 {
		t.Fatalf("the room holds %s; want the message once", pushdtest.Summary(h))
	}
}

func TestEveryTransportCarriesTheID(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	for _, kind := range pushdtest.Transports {
		t.Run(kind, func(t *testing.T) {
			sub := s.Subscribe(t, kind, pushdtest.RoomPath(kind), pushdtest.SubOptions{Since: "0"})
			publishWithID(t, s, kind, "ann", "with an id", "id-"+kind, "")
			if ev := sub.Next(t); ev.ID != "id-"+kind || ev.Text != "with an id" {
				t.Fatalf("%s delivered %s (id %q)", kind, pushdtest.OneLine(ev), ev.ID)
			}
		})
	}
}
