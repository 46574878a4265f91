package server

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/pushd/push/protocol"
)

// handleRooms answers GET /v1/rooms: the rooms the server has in use (a
// stream in memory, or someone present) that the caller's token allows,
// each with how many are present, sorted by name.
func (s *Server) handleRooms(w http.ResponseWriter, r *http.Request) error {
	id, err := s.authenticate(r)
	if err != nil {
		return err
	}
	names := s.hub.rooms()
	for _, room := range s.presence.occupied() {
		names[room] = true
	}
	list := protocol.RoomList{Rooms: []protocol.RoomInfo{}}
	for _, room := range slices.Sorted(maps.Keys(names)) {
		if !id.mayJoin(room) {
			continue
		}
		users, err := s.presence.present(r.Context(), room)
		if err != nil {
			return err
		}
		list.Rooms = append(list.Rooms, protocol.RoomInfo{Name: room, Present: len(users)})
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// rooms returns the names of the rooms whose streams are in memory.
func (h *Hub) rooms() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make(map[string]bool)
	for name := range h.streams {
		if room, ok := strings.CutPrefix(name, protocol.RoomStream("")); ok {
			names[room] = true
		}
	}
	return names
}

// occupied returns the rooms where this server has someone present.
func (p *presence) occupied() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var names []string
	for name, r := range p.rooms {
		r.mu.Lock()
		if len(r.members) > 0 {
			names = append(names, name)
		}
		r.mu.Unlock()
	}
	return names
}
