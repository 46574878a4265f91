package protocol

import "time"

// Type is the kind of an event.
type Type string

// The event types. Login, logout and message happen in rooms; progress on the
// tasks stream; reset is sent by the server, never stored, to say that the
// client may have missed events and should refetch any state it keeps.
const (
	TypeLogin    Type = "login"
	TypeLogout   Type = "logout"
	TypeMessage  Type = "message"
	TypeProgress Type = "progress"
	TypeReset    Type = "reset"
)

// Reset reasons, carried in Event.Reason of a reset event.
const (
	// ResetEpochChanged: the cursor's epoch is not the stream's, so the
	// history it refers to is gone (for example the server restarted on a
	// memory store).
	ResetEpochChanged = "epoch_changed"
	// ResetRetention: events after the cursor were dropped by retention.
	ResetRetention = "history_truncated"
	// ResetCursorAhead: the cursor names a seq the stream never reached.
	ResetCursorAhead = "cursor_ahead"
)

// TasksStream is the name of the stream that carries every task's progress.
const TasksStream = "tasks"

// RoomStream returns the stream name of a chat room: "room/<name>".
func RoomStream(room string) string { return "room/" + room }

// Event is one entry of a stream's log, identical on every transport.
//
// Seq rises by one per event within a stream and Epoch changes whenever the
// stream's history is lost; together they form the event's Cursor. Fields
// that do not apply to a type are left out of the JSON.
type Event struct {
	Seq    uint64    `json:"seq"`
	Epoch  string    `json:"epoch"`
	Stream string    `json:"stream"`
	Type   Type      `json:"type"`
	Time   time.Time `json:"time"`
	User   string    `json:"user,omitempty"`
	Text   string    `json:"text,omitempty"`
	// ID is the id its publisher gave a message (see PublishRequest.ID).
	ID string `json:"id,omitempty"`
	// Reason says why a reset was sent (one of the Reset* constants).
	Reason string `json:"reason,omitempty"`
	// Task is the state of a task after a change, on progress events.
	Task *Task `json:"task,omitempty"`
	// Stats is a snapshot of the server, on the stats stream's events.
	Stats *Stats `json:"stats,omitempty"`
}

// Cursor returns the position of e in its stream.
func (e *Event) Cursor() Cursor { return Cursor{Epoch: e.Epoch, Seq: e.Seq} }

// Poll is the body of a long-poll or short-poll answer.
type Poll struct {
	Events []Event `json:"events"`
	// Cursor is where the next poll continues: pass it back as ?since=.
	Cursor string `json:"cursor"`
	// Final is true when the stream has ended with these events: one
	// task's stream after the task's final event. Poll no more.
	Final bool `json:"final,omitempty"`
}

// Presence is the body of GET /v1/rooms/{room}/presence.
type Presence struct {
	Users []string `json:"users"`
}

// PublishRequest is the body of POST /v1/rooms/{room}/messages.
type PublishRequest struct {
	User string `json:"user"`
	Text string `json:"text"`
	// ID, when set, makes the publish safe to repeat: the server stores
	// the message once, and answers a repeat of the same ID within its
	// de-duplication window with the message as first stored. The
	// Idempotency-Key header says the same. See ValidateID.
	ID string `json:"id,omitempty"`
}

// IdempotencyKeyHeader is the request header that gives a publish, or a
// task's start, its ID.
const IdempotencyKeyHeader = "Idempotency-Key"

// Close reasons: why the server ended a subscription. They are sent as the
// reason of a WebSocket close frame and in the "close" event of SSE.
const (
	CloseSlowConsumer = "slow_consumer"
	CloseShutdown     = "server_shutdown"
	CloseInternal     = "internal_error"
	// CloseUnavailable: the server cannot reach its store for now (a
	// cluster's NATS is away); reconnect with the last cursor after a
	// moment, to this server or another.
	CloseUnavailable = "unavailable"
	// CloseTaskFinished: the stream of one task has sent the task's
	// final event and has nothing more; do not reconnect.
	CloseTaskFinished = "task_finished"
	// CloseTokenExpired: the token the subscription was made with has
	// expired; reconnect with a new token and the last cursor.
	CloseTokenExpired = "token_expired"
)

// WebSocket close codes used by the server besides the standard ones.
const (
	// CloseCodeNormal (1000, standard) means the stream is complete (with
	// the reason CloseTaskFinished): do not reconnect.
	CloseCodeNormal = 1000
	// CloseCodeServiceRestart (1012, standard) means the server is going
	// away for a restart: reconnect with the last cursor.
	CloseCodeServiceRestart = 1012
	// CloseCodeSlowConsumer means the subscriber fell too far behind; it
	// should reconnect with its last cursor and will lose nothing.
	CloseCodeSlowConsumer = 4008
	// CloseCodeTryAgainLater (1013, standard) means the server cannot serve
	// the subscription for now: reconnect with the last cursor after a
	// moment.
	CloseCodeTryAgainLater = 1013
	// CloseCodeTokenExpired means the subscription's token has expired:
	// reconnect with a new token and the last cursor.
	CloseCodeTokenExpired = 4401
)

// BatchSubprotocol is the WebSocket subprotocol in which one message may
// carry several events, separated by "\n". Without it, every message is
// exactly one event.
const BatchSubprotocol = "pushd.batch.v1"
