package protocol

// RoomList is the body of GET /v1/rooms: the rooms the caller may use that
// the server has in use, sorted by name.
type RoomList struct {
	Rooms []RoomInfo `json:"rooms"`
}

// RoomInfo is one room of a RoomList.
type RoomInfo struct {
	Name string `json:"name"`
	// Present is how many users are in the room.
	Present int `json:"present"`
}

// Page is the body of a backwards read of a room's history,
// GET /v1/rooms/{room}/events?before=C&limit=N: the newest events before
// C, at most N, oldest first.
type Page struct {
	Events []Event `json:"events"`
	// Before is the cursor to ask for the page before this one (the first
	// event's); empty when the page reaches the oldest event held.
	Before string `json:"before,omitempty"`
}

// Limits of a backwards read.
const (
	// DefaultPageEvents is a page's size when the request gives no limit.
	DefaultPageEvents = 100
	// MaxPageEvents is the largest limit a backwards read takes.
	MaxPageEvents = 1000
)
