package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// demoParams are the parameters of the demo kind.
type demoParams struct {
	// Total is the number of steps (default 100).
	Total int64 `json:"total"`
	// Interval is the time per step, a Go duration (default "50ms").
	Interval string `json:"interval"`
	// FailAt makes the task fail at that step (0: never).
	FailAt int64 `json:"fail_at"`

	interval time.Duration
}

// Validate checks the params and fills in the defaults.
func (p *demoParams) Validate() error {
	if p.Total == 0 {
		p.Total = 100
	}
	if p.Total < 1 || p.Total > 1_000_000 {
		return fmt.Errorf("total must be from 1 to 1000000, not %d", p.Total)
	}
	if p.Interval == "" {
		p.Interval = "50ms"
	}
	d, err := time.ParseDuration(p.Interval)
	if err != nil || d < time.Millisecond || d > time.Hour {
		return fmt.Errorf("interval %q: give a duration from 1ms to 1h, such as \"50ms\"", p.Interval)
	}
	p.interval = d
	if p.FailAt < 0 || p.FailAt > p.Total {
		return fmt.Errorf("fail_at must be from 1 to total (%d), or left out; not %d", p.Total, p.FailAt)
	}
	return nil
}

// TaskTotal is the task's total from the start: its steps.
func (p *demoParams) TaskTotal() int64 { return p.Total }

// runDemo is simulated work for trying things out: Total steps of Interval
// each, failing at FailAt if set. It is written against the same API as any
// kind registered with RegisterKind.
func runDemo(ctx context.Context, p demoParams, r *Reporter) error {
	r.SetTotal(p.Total)
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for step := int64(1); step <= p.Total; step++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if step == p.FailAt {
			return fmt.Errorf("failed at step %d of %d (fail_at)", step, p.Total)
		}
		r.Progress(step, fmt.Sprintf("step %d of %d", step, p.Total))
	}
	return nil
}

// externalParams are the parameters of the external kind: the work happens
// elsewhere and is reported through POST /v1/tasks/{id}/progress.
type externalParams struct {
	// Total is the number of units of work, if known.
	Total int64 `json:"total"`
}

// parseExternal checks an external task's params. It has no run function:
// the task's goroutine waits for reports instead.
func parseExternal(raw json.RawMessage) (parsedTask, error) {
	var p externalParams
	if err := decodeParams(raw, &p); err != nil {
		return parsedTask{}, fmt.Errorf("%w: %w", errParamsJSON, err)
	}
	if p.Total < 0 {
		return parsedTask{}, fmt.Errorf("total must be 0 or more, not %d", p.Total)
	}
	return parsedTask{total: p.Total}, nil
}

// decodeParams decodes a kind's params strictly: unknown fields and wrong
// types are errors that name the field.
func decodeParams(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return errors.New(typeError(typeErr))
		}
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("params: trailing data after the object")
	}
	return nil
}
