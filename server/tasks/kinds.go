package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// kind is a registered task kind: parse checks a start request's params
// and returns what the task needs to run.
type kind struct {
	parse    func(params json.RawMessage) (parsedTask, error)
	external bool // reports through Runner.Report and needs no run slot
}

// parsedTask is a start request's params made ready to run.
type parsedTask struct {
	run   func(ctx context.Context, r *Reporter) error // nil for external tasks
	total int64                                        // known at start, if any
}

// RegisterKind makes a task kind available to Runner.Start (and so to POST
// /v1/tasks) under name. A start request's fields other than "kind" and
// "name" are decoded into P (unknown fields refused: ErrParamsJSON); if P
// has a Validate() error method it is called too (its error is wrapped in
// ErrBadParams), so bad params are refused before anything runs, and if it
// has a TaskTotal() int64 method its answer is the task's total from the
// start (the answer to the start request shows it). run is called on the
// task's own goroutine; it reports through r and ends the task by
// returning: nil succeeds, an error fails it with the error's text, and a
// cancelled ctx cancels it. A panic in run fails the task, not the server.
func RegisterKind[P any](rn *Runner, name string, run func(ctx context.Context, params P, r *Reporter) error) {
	parse := func(raw json.RawMessage) (parsedTask, error) {
		var p P
		if err := decodeParams(raw, &p); err != nil {
			return parsedTask{}, err
		}
		if v, ok := any(&p).(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return parsedTask{}, err
			}
		}
		parsed := parsedTask{run: func(ctx context.Context, r *Reporter) error { return run(ctx, p, r) }}
		if v, ok := any(&p).(interface{ TaskTotal() int64 }); ok {
			parsed.total = v.TaskTotal()
		}
		return parsed, nil
	}
	rn.kindsMu.Lock()
	defer rn.kindsMu.Unlock()
	rn.kinds[name] = kind{parse: parse}
}

// kindNames lists the registered kinds, for the error of an unknown one.
func (r *Runner) kindNames() string {
	r.kindsMu.RLock()
	defer r.kindsMu.RUnlock()
	var names []string
	for n := range r.kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprint(names)
}

// decodeParams decodes a kind's params strictly into v. Its errors wrap
// ErrParamsJSON: unknown fields and trailing data say so, and a value of
// the wrong type is the decoder's *json.UnmarshalTypeError, which names
// the field.
func decodeParams(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return fmt.Errorf("%w: %w", ErrParamsJSON, typeErr)
		}
		return fmt.Errorf("%w: %s", ErrParamsJSON, strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: params: trailing data after the object", ErrParamsJSON)
	}
	return nil
}
