package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pushd/push/protocol"
)

// kindExternal names the kind whose work happens elsewhere and is reported
// through Runner.Report (POST /v1/tasks/{id}/progress).
const kindExternal = "external"

// demoParams are the parameters of the demo kind.
type demoParams struct {
	// Total is the number of steps (default 100 when left out; 0 is
	// refused like any other value out of bounds).
	Total *int64 `json:"total"`
	// Interval is the time per step, a Go duration (default "50ms").
	Interval string `json:"interval"`
	// FailAt makes the task fail at that step (0: never).
	FailAt int64 `json:"fail_at"`

	total    int64
	interval time.Duration
}

// Validate checks the params against protocol's bounds for the demo kind
// and fills in the defaults.
func (p *demoParams) Validate() error {
	p.total = 100
	if p.Total != nil {
		p.total = *p.Total
	}
	if p.Interval == "" {
		p.Interval = "50ms"
	}
	d, err := time.ParseDuration(p.Interval)
	if err != nil {
		return fmt.Errorf("interval %q: give a duration from %s to %s, such as \"50ms\"", p.Interval, protocol.DemoMinInterval, protocol.DemoMaxInterval)
	}
	if err := protocol.ValidateDemo(p.total, d); err != nil {
		return err
	}
	p.interval = d
	if p.FailAt < 0 || p.FailAt > p.total {
		return fmt.Errorf("fail_at must be from 1 to total (%d), or left out; not %d", p.total, p.FailAt)
	}
	return nil
}

// TaskTotal is the task's total from the start: its steps.
func (p *demoParams) TaskTotal() int64 { return p.total }

// runDemo is simulated work for trying things out: Total steps of Interval
// each, failing at FailAt if set. It is written against the same API as any
// kind registered with RegisterKind.
func runDemo(ctx context.Context, p demoParams, r *Reporter) error {
	r.SetTotal(p.total)
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for step := int64(1); step <= p.total; step++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if step == p.FailAt {
			return fmt.Errorf("failed at step %d of %d (fail_at)", step, p.total)
		}
		r.Progress(step, fmt.Sprintf("step %d of %d", step, p.total))
	}
	return nil
}

// externalParams are the parameters of the external kind.
type externalParams struct {
	// Total is the number of units of work, if known.
	Total int64 `json:"total"`
}

// parseExternal checks an external task's params. It has no run function:
// the task's goroutine waits for reports instead.
func parseExternal(raw json.RawMessage) (parsedTask, error) {
	var p externalParams
	if err := decodeParams(raw, &p); err != nil {
		return parsedTask{}, err
	}
	if p.Total < 0 {
		return parsedTask{}, fmt.Errorf("total must be 0 or more, not %d", p.Total)
	}
	return parsedTask{total: p.Total}, nil
}
