package main

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pushd/push/protocol"
)

// events answers a short poll (wait=0) with the room's cursor and no
// events, and takes a WebSocket or SSE subscriber. It refuses long polls.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	rm := s.room(r.PathValue("room"))
	websocket := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if !websocket && !sse {
		if wait := r.URL.Query().Get("wait"); wait != "0" {
			http.Error(w, "floor answers only short polls (wait=0) for a room's cursor; subscribe over WebSocket or SSE", http.StatusBadRequest)
			return
		}
		rm.mu.Lock()
		cursor := protocol.Cursor{Epoch: epoch, Seq: rm.seq}
		rm.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(protocol.Poll{Events: []protocol.Event{}, Cursor: cursor.String()})
		return
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if websocket && key == "" {
		http.Error(w, "no Sec-WebSocket-Key", http.StatusBadRequest)
		return
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "take the connection over: "+err.Error(), http.StatusInternalServerError)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	var head string
	if websocket {
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
	} else {
		// No length and no chunks: the body is the stream, to the close.
		head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
	}
	// The head goes out under the room's lock, with the subscriber added:
	// every publish the client can see come after it reaches it.
	rm.mu.Lock()
	if _, err := io.WriteString(conn, head); err != nil {
		rm.mu.Unlock()
		_ = conn.Close()
		return
	}
	rm.subs = append(rm.subs, &subscriber{conn: conn, sse: !websocket})
	rm.mu.Unlock()
	// What the client sends (a WebSocket close, say) is read and dropped;
	// the connection ends when the client closes it.
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		_ = conn.Close()
	}()
}
