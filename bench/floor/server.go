package main

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/pushd/push/protocol"
)

// epoch is the one history every room of a floor server has.
const epoch = "floor"

// server holds the rooms and their subscribers.
type server struct {
	writers      int
	writeTimeout time.Duration
	mux          *http.ServeMux

	mu    sync.Mutex
	rooms map[string]*room
}

// room is one room's sequence and subscribers. Its lock is held for a
// whole publish, so events go out in order.
type room struct {
	mu   sync.Mutex
	seq  uint64
	subs []*subscriber
}

// subscriber is one streaming connection. Its fields are the room's,
// under room.mu.
type subscriber struct {
	conn     net.Conn
	sse      bool
	deadline time.Time // the connection's write deadline
	gone     bool      // a write failed or timed out
}

// writeTimeout is how long a write to a subscriber may wait for room in
// its socket; one that does not read in time is dropped, so that it does
// not hold up the room.
const writeTimeout = 10 * time.Second

// write sends frame, moving the write deadline to timeout from now when
// less than nine tenths of it remain (setting it costs, so not every
// time).
func (sub *subscriber) write(frame []byte, now time.Time, timeout time.Duration) {
	if sub.deadline.Sub(now) < timeout-timeout/10 {
		sub.deadline = now.Add(timeout)
		_ = sub.conn.SetWriteDeadline(sub.deadline)
	}
	if _, err := sub.conn.Write(frame); err != nil {
		sub.gone = true
		_ = sub.conn.Close()
	}
}

func newServer(writers int) *server {
	s := &server{writers: writers, writeTimeout: writeTimeout, mux: http.NewServeMux(), rooms: make(map[string]*room)}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /v1/rooms/{room}/events", s.events)
	s.mux.HandleFunc("POST /v1/rooms/{room}/messages", s.publish)
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *server) room(name string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := s.rooms[name]
	if rm == nil {
		rm = &room{}
		s.rooms[name] = rm
	}
	return rm
}

// publish sends one message to every subscriber of the room, then
// answers with its event.
func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	var req protocol.PublishRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, "the body is not a JSON message: "+err.Error(), http.StatusBadRequest)
		return
	}
	name := r.PathValue("room")
	rm := s.room(name)
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.seq++
	ev := protocol.Event{Seq: rm.seq, Epoch: epoch, Stream: "room:" + name, Type: protocol.TypeMessage, Time: time.Now().UTC(), User: req.User, Text: req.Text, ID: req.ID}
	body, err := json.Marshal(ev)
	if err != nil {
		http.Error(w, "encode the event: "+err.Error(), http.StatusInternalServerError)
		return
	}
	ws, sse := wsFrame(body), sseFrame(ev.Cursor(), body)
	now := time.Now()
	var wg sync.WaitGroup
	for k := range s.writers {
		wg.Go(func() {
			for i := k; i < len(rm.subs); i += s.writers {
				sub := rm.subs[i]
				frame := ws
				if sub.sse {
					frame = sse
				}
				if !sub.gone {
					sub.write(frame, now, s.writeTimeout)
				}
			}
		})
	}
	wg.Wait()
	live := rm.subs[:0]
	for _, sub := range rm.subs {
		if !sub.gone {
			live = append(live, sub)
		}
	}
	clear(rm.subs[len(live):])
	rm.subs = live
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(body)
}

// wsFrame is one unmasked WebSocket text frame holding body.
func wsFrame(body []byte) []byte {
	n := len(body)
	var b []byte
	switch {
	case n < 126:
		b = append(b, 0x81, byte(n))
	case n < 1<<16:
		b = append(b, 0x81, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x81, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, body...)
}

// sseFrame is one SSE event holding body, with its cursor as the id.
func sseFrame(c protocol.Cursor, body []byte) []byte {
	b := append([]byte("id: "), c.String()...)
	b = append(b, "\ndata: "...)
	b = append(b, body...)
	return append(b, '\n', '\n')
}
