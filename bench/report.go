package bench

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is what a run measured. Durations are in nanoseconds in JSON.
type Report struct {
	// What ran.
	Target        string        `json:"target"` // the URLs, comma-separated, or "in-process"
	Transport     Transport     `json:"transport"`
	WSSubprotocol string        `json:"ws_subprotocol,omitempty"`
	Room          string        `json:"room"`
	Subscribers   int           `json:"subscribers"`
	Messages      int           `json:"messages"`
	Publishers    int           `json:"publishers"`
	Rate          float64       `json:"rate"` // 0: as fast as possible
	Size          int           `json:"size"`
	Stall         int           `json:"stall,omitempty"`
	StallFor      time.Duration `json:"stall_for_ns,omitempty"`
	CPUs          int           `json:"cpus"`
	GoVersion     string        `json:"go_version"`

	// ConnectTime is how long the subscribers took to connect,
	// PublishTime how long the publishers took to have every message
	// acknowledged.
	ConnectTime time.Duration `json:"connect_ns"`
	PublishTime time.Duration `json:"publish_ns"`
	// PublishRate is the rate the publishers reached: Messages over
	// PublishTime.
	PublishRate float64 `json:"publish_rate"`
	// Deliveries counts messages that reached a subscriber, each once per
	// subscriber; Expected is subscribers × messages.
	Deliveries int64 `json:"deliveries"`
	Expected   int64 `json:"expected"`
	// DeliveryTime runs from the first publish to the last delivery.
	DeliveryTime     time.Duration `json:"delivery_ns"`
	DeliveriesPerSec float64       `json:"deliveries_per_sec"`
	// Latency is receive time minus send time, over all deliveries.
	Latency Latency `json:"latency"`

	// Lost counts acknowledged messages some subscriber never got (one per
	// subscriber and message); Duplicates messages a subscriber got again;
	// OutOfOrder messages that came after a later one of their publisher;
	// Malformed events the bench could not read.
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"dup"`
	OutOfOrder int64 `json:"out_of_order"`
	Malformed  int64 `json:"malformed"`
	// Reconnects counts connections that ended while the run went on, of
	// them SlowConsumer those the server ended as slow_consumer; Resets
	// counts reset events.
	Reconnects   int64 `json:"reconnects"`
	SlowConsumer int64 `json:"slow_consumer"`
	Resets       int64 `json:"resets"`

	// RestartAfter is how many messages were acknowledged when the server
	// was restarted (zero: no restart). Outage runs from SIGTERM to the
	// new server's first answer (to /healthz or a subscriber), ResumeTime
	// from then until every subscriber was connected to it; Resumed
	// counts those that were.
	RestartAfter int           `json:"restart_after,omitempty"`
	Outage       time.Duration `json:"outage_ns,omitempty"`
	ResumeTime   time.Duration `json:"resume_ns,omitempty"`
	Resumed      int64         `json:"resumed,omitempty"`
	// PublishRetries counts publishes sent again after a failure (only
	// with RestartAfter).
	PublishRetries int64 `json:"publish_retries,omitempty"`

	// MemPerConn is memory per subscriber connection in bytes, measured as
	// MemSource says; zero with MemSource empty when not measured.
	MemPerConn int64  `json:"mem_per_conn_bytes"`
	MemSource  string `json:"mem_source,omitempty"`

	// Notes say what else the run noticed.
	Notes []string `json:"notes,omitempty"`
}

// ErrDelivery is returned (wrapped) by Report.Check when messages were
// lost, duplicated or reordered.
var ErrDelivery = errors.New("delivery failed")

// Check returns an error wrapping ErrDelivery that says what went wrong if
// any acknowledged message was lost, duplicated or delivered out of order,
// an event could not be read, or after a restart some subscriber never
// connected to the new server; nil otherwise.
func (r *Report) Check() error {
	var problems []string
	if r.Lost > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d deliveries lost (acknowledged messages a subscriber never got)", r.Lost, r.Expected))
	}
	if r.Duplicates > 0 {
		problems = append(problems, fmt.Sprintf("%d duplicate deliveries", r.Duplicates))
	}
	if r.OutOfOrder > 0 {
		problems = append(problems, fmt.Sprintf("%d deliveries out of order", r.OutOfOrder))
	}
	if r.RestartAfter > 0 && r.Resumed < int64(r.Subscribers) {
		problems = append(problems, fmt.Sprintf("%d of %d subscribers resumed after the restart", r.Resumed, r.Subscribers))
	}
	if r.Malformed > 0 {
		problems = append(problems, fmt.Sprintf("%d events the bench could not read", r.Malformed))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrDelivery, strings.Join(problems, "; "))
}

// WriteText writes the report as a small table for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	rate := "as fast as possible"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%g msgs/s", r.Rate)
	}
	transport := string(r.Transport)
	if r.WSSubprotocol != "" {
		transport += " (" + r.WSSubprotocol + ")"
	}
	fmt.Fprintf(&b, "pushd bench: %s, %d subscribers, %d messages of %d bytes, %d publishers at %s\n",
		transport, r.Subscribers, r.Messages, r.Size, r.Publishers, rate)
	fmt.Fprintf(&b, "  server        %s, room %s (%d CPUs, %s)\n", r.Target, r.Room, r.CPUs, r.GoVersion)
	if r.Stall > 0 {
		fmt.Fprintf(&b, "  stalled       %d subscribers for %s each\n", r.Stall, r.StallFor)
	}
	fmt.Fprintf(&b, "  connect       %s\n", seconds(r.ConnectTime))
	fmt.Fprintf(&b, "  publish       %s (%.0f msgs/s)\n", seconds(r.PublishTime), r.PublishRate)
	fmt.Fprintf(&b, "  deliveries    %d of %d in %s: %.0f/s\n", r.Deliveries, r.Expected, seconds(r.DeliveryTime), r.DeliveriesPerSec)
	fmt.Fprintf(&b, "  latency       p50 %s  p99 %s  max %s\n", millis(r.Latency.P50), millis(r.Latency.P99), millis(r.Latency.Max))
	fmt.Fprintf(&b, "  lost %d  dup %d  out-of-order %d  reconnects %d (slow consumer %d)  resets %d\n",
		r.Lost, r.Duplicates, r.OutOfOrder, r.Reconnects, r.SlowConsumer, r.Resets)
	if r.RestartAfter > 0 {
		fmt.Fprintf(&b, "  restart       after %d messages: away %s, then %d of %d subscribers resumed in %s; %d publishes sent again\n",
			r.RestartAfter, seconds(r.Outage), r.Resumed, r.Subscribers, seconds(r.ResumeTime), r.PublishRetries)
	}
	if r.MemSource != "" {
		fmt.Fprintf(&b, "  memory        %s per connection (%s)\n", kib(r.MemPerConn), r.MemSource)
	} else {
		fmt.Fprintf(&b, "  memory        not measured (give --pid of the --target server)\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func millis(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func kib(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }
