package bench

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pushd/push/protocol"
)

// Transport is how the subscribers receive events.
type Transport string

// The transports of PROTOCOL.md.
const (
	WebSocket Transport = "ws"
	SSE       Transport = "sse"
	LongPoll  Transport = "longpoll"
)

// ParseTransport parses "ws", "sse" or "longpoll".
func ParseTransport(s string) (Transport, error) {
	switch t := Transport(s); t {
	case WebSocket, SSE, LongPoll:
		return t, nil
	}
	return "", &OptionError{Option: "transport", Value: strconv.Quote(s), Problem: "use ws, sse or longpoll"}
}

// Options say what to run. Start from DefaultOptions; Run refuses values
// that make no sense with an *OptionError.
type Options struct {
	// Targets are the base URLs of running pushd servers, e.g.
	// http://127.0.0.1:8080: one, or several nodes of one cluster (on
	// NATS), over which the subscribers are spread in turn (subscriber i
	// on Targets[i%len(Targets)]). The first is where the room's cursor
	// is learned, the publishers post unless PublishTo says otherwise,
	// and PID, ServerCommand and the long-poll gauge apply. None starts
	// a server in this process on 127.0.0.1 with the memory store and no
	// limits.
	Targets []string
	// PublishTo is the base URL the publishers post to, when it is not
	// the first of Targets: another node of a cluster, to measure delivery across nodes.
	// Empty posts to Target.
	PublishTo string
	// PID is the process id of the target's server, whose resident memory
	// (VmRSS in /proc, so Linux only) is read before and after the
	// subscribers connect. Zero measures nothing; only with one target.
	PID int
	// Transport is how subscribers receive events.
	Transport Transport
	// WSSubprotocol, with the WebSocket transport, is the subprotocol to
	// ask for: empty (one event per message) or protocol.BatchSubprotocol.
	WSSubprotocol string
	// Subscribers is how many subscribers connect to the room.
	Subscribers int
	// Messages is how many messages are published, by all publishers
	// together.
	Messages int
	// Publishers is how many publishers post at once; each waits for the
	// answer to one message before it sends the next.
	Publishers int
	// Rate is messages per second, all publishers together; 0 publishes as
	// fast as the publishers can.
	Rate float64
	// Size is the length of each message's text in bytes. The text starts
	// with a header (run, publisher, sequence number, send time) of about
	// 40 bytes and is padded to Size; a smaller Size sends the header only.
	Size int
	// Stall subscribers stop reading for StallFor once their first message
	// arrives, as a slow client would.
	Stall    int
	StallFor time.Duration
	// Room is the room to use (default DefaultRoom). Its messages stay in
	// the server's store like any room's, so runs against one server
	// share a room rather than leave one each; each run reads only its
	// own messages.
	Room string
	// Timeout bounds the whole run (zero: DefaultOptions').
	Timeout time.Duration
	// Drain is how long Run waits, once everything is published, without
	// a single new delivery before it counts what is missing as lost
	// (zero: DefaultOptions').
	Drain time.Duration
	// ConnectConcurrency is how many subscribers connect at once (zero:
	// DefaultOptions').
	ConnectConcurrency int
	// ServerCommand, with one target, is the command of its server (the
	// program and its arguments): Run starts it, waits until the target
	// answers /healthz, measures its memory as PID would, and ends it with
	// SIGTERM when the run is over. The server must listen at the target's
	// address and keep its store across a restart to resume subscribers
	// exactly (pushd serve --data DIR, or --nats).
	ServerCommand []string
	// ServerEnv is the environment of ServerCommand's process (nil: this
	// process's); ServerOutput receives its standard output and error
	// (nil: discarded).
	ServerEnv    []string
	ServerOutput io.Writer
	// RestartAfter, with ServerCommand, restarts the server once this many
	// messages are acknowledged: SIGTERM, wait for it to exit, start it
	// again. The publishers go on meanwhile, sending a publish that failed
	// in a way that trying again may fix (no answer, 5xx) again, with the
	// same message id, until it is acknowledged; the subscribers reconnect
	// from their cursors. The report says how long the server was away
	// and how long after it accepted again every subscriber was
	// connected. Zero: no restart.
	RestartAfter int
	// Progress, when set, receives a line at each phase and every few
	// seconds while messages flow.
	Progress io.Writer
}

// DefaultRoom is the room a run uses unless told another.
const DefaultRoom = "bench"

// DefaultOptions returns the defaults of pushd bench: an in-process server,
// 1000 WebSocket subscribers, 1000 messages of 64 bytes from 4 publishers
// as fast as they go, in the room DefaultRoom.
func DefaultOptions() Options {
	return Options{
		Room:               DefaultRoom,
		Transport:          WebSocket,
		Subscribers:        1000,
		Messages:           1000,
		Publishers:         4,
		Size:               64,
		StallFor:           4 * time.Second,
		Timeout:            2 * time.Minute,
		Drain:              10 * time.Second,
		ConnectConcurrency: 64,
	}
}

// OptionError is an option with a value Run cannot use. Option is named as
// the flag of pushd bench is (without the dashes).
type OptionError struct {
	Option  string
	Value   string
	Problem string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s %s: %s", e.Option, e.Value, e.Problem)
}

func badOption(option string, value any, format string, args ...any) error {
	return &OptionError{Option: option, Value: fmt.Sprint(value), Problem: fmt.Sprintf(format, args...)}
}

// checked returns o with defaults for zero durations and concurrency and
// an empty room, and the targets' base URLs without a final slash, or an
// *OptionError.
func (o Options) checked() (Options, error) {
	if _, err := ParseTransport(string(o.Transport)); err != nil {
		return o, err
	}
	switch {
	case o.Subscribers < 1:
		return o, badOption("subscribers", o.Subscribers, "need at least 1")
	case o.Messages < 1:
		return o, badOption("messages", o.Messages, "need at least 1")
	case o.Publishers < 1:
		return o, badOption("publishers", o.Publishers, "need at least 1")
	case o.Publishers > o.Messages:
		return o, badOption("publishers", o.Publishers, "more publishers than --messages %d", o.Messages)
	case o.Rate < 0:
		return o, badOption("rate", o.Rate, "must not be negative (0 publishes as fast as possible)")
	case o.Size < 1:
		return o, badOption("size", o.Size, "need at least 1 byte")
	case o.Stall < 0 || o.Stall > o.Subscribers:
		return o, badOption("stall", o.Stall, "must be between 0 and --subscribers %d", o.Subscribers)
	case o.Stall > 0 && o.StallFor <= 0:
		return o, badOption("stall-for", o.StallFor, "must be positive when --stall is set")
	case o.Timeout < 0:
		return o, badOption("timeout", o.Timeout, "must not be negative")
	case o.Drain < 0:
		return o, badOption("drain", o.Drain, "must not be negative")
	case o.ConnectConcurrency < 0:
		return o, badOption("connect-concurrency", o.ConnectConcurrency, "must not be negative")
	case o.PID < 0:
		return o, badOption("pid", o.PID, "must not be negative")
	case o.PID > 0 && len(o.Targets) != 1:
		return o, badOption("pid", o.PID, "only with one --target (the in-process server is measured directly)")
	case len(o.ServerCommand) > 0 && len(o.Targets) != 1:
		return o, badOption("server-cmd", strconv.Quote(strings.Join(o.ServerCommand, " ")), "only with one --target, the address the server listens at")
	case len(o.ServerCommand) > 0 && o.PID > 0:
		return o, badOption("pid", o.PID, "not with --server-cmd (its process is measured)")
	case o.RestartAfter < 0:
		return o, badOption("restart-after", o.RestartAfter, "must not be negative")
	case o.RestartAfter > 0 && len(o.ServerCommand) == 0:
		return o, badOption("restart-after", o.RestartAfter, "only with --server-cmd, the server to restart")
	case o.RestartAfter >= o.Messages && o.RestartAfter > 0:
		return o, badOption("restart-after", o.RestartAfter, "must be less than --messages %d, so that messages follow the restart", o.Messages)
	}
	switch o.WSSubprotocol {
	case "":
	case protocol.BatchSubprotocol:
		if o.Transport != WebSocket {
			return o, badOption("ws-subprotocol", o.WSSubprotocol, "only with --transport ws")
		}
	default:
		return o, badOption("ws-subprotocol", strconv.Quote(o.WSSubprotocol), "pushd knows only %s", protocol.BatchSubprotocol)
	}
	if o.Room != "" {
		if err := protocol.ValidateName("room", o.Room); err != nil {
			return o, badOption("room", strconv.Quote(o.Room), "use 1 to %d of A-Z a-z 0-9 . _ -", protocol.MaxNameLen)
		}
	}
	targets := make([]string, len(o.Targets))
	for i, t := range o.Targets {
		var err error
		if targets[i], err = baseURL("target", t, "want the server's base URL, e.g. http://127.0.0.1:8080"); err != nil {
			return o, err
		}
	}
	o.Targets = targets
	if o.PublishTo != "" {
		u, err := baseURL("publish-to", o.PublishTo, "want a server's base URL, e.g. http://127.0.0.1:8081")
		if err != nil {
			return o, err
		}
		if len(o.Targets) == 0 {
			return o, badOption("publish-to", strconv.Quote(o.PublishTo), "only with --target (another node of the same cluster)")
		}
		o.PublishTo = u
	}
	d := DefaultOptions()
	if o.Room == "" {
		o.Room = d.Room
	}
	if o.Timeout == 0 {
		o.Timeout = d.Timeout
	}
	if o.Drain == 0 {
		o.Drain = d.Drain
	}
	if o.ConnectConcurrency == 0 {
		o.ConnectConcurrency = d.ConnectConcurrency
	}
	return o, nil
}

// baseURL checks raw, the value of option, as the base URL of a server,
// and returns it without a final slash; problem says what is wanted.
func baseURL(option, raw, problem string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", badOption(option, strconv.Quote(raw), "%s", problem)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}
