package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
	"github.com/pushd/push/server/tasks/tasktest"
)

// Starting tasks: the built-in kinds' params, kinds registered by a
// program, a kind that panics, and idempotency keys, kept in memory (the
// stores' own are the stores' tests).

func TestPanickingKindFailsOnlyItsTask(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{}, nil, nil)
	tasks.RegisterKind(r.Runner, "boom", func(ctx context.Context, p struct{}, rep *tasks.Reporter) error {
		rep.Progress(1, "about to panic")
		panic("kaboom")
	})
	other := r.start("demo", "", `{"total":10,"interval":"5ms"}`)
	boom := r.start("boom", "", "")
	final := r.stream.waitFinal(t, boom.ID)
	if final.State != protocol.TaskFailed || !strings.Contains(final.Message, "panic") || !strings.Contains(final.Message, "kaboom") {
		t.Errorf("the panicking task ended %s; want failed, saying it panicked with kaboom", tasktest.String(final))
	}
	if got := r.stream.waitFinal(t, other.ID); got.State != protocol.TaskSucceeded {
		t.Errorf("a task running beside the panic ended %s; want succeeded", tasktest.String(got))
	}
	// The runner goes on running tasks.
	again := r.start("demo", "", `{"total":2,"interval":"1ms"}`)
	if got := r.stream.waitFinal(t, again.ID); got.State != protocol.TaskSucceeded {
		t.Errorf("a task started after the panic ended %s; want succeeded", tasktest.String(got))
	}
	tasktest.CheckOrder(t, r.stream.seen())
}

// stepParams are the params of a registered kind in the tests.
type stepParams struct {
	Steps int64  `json:"steps"`
	Fail  string `json:"fail"`
}

func (p *stepParams) Validate() error {
	if p.Steps < 1 || p.Steps > 5 {
		return fmt.Errorf("steps must be from 1 to 5, not %d", p.Steps)
	}
	return nil
}

func TestRegisteredKind(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{}, nil, nil)
	tasks.RegisterKind(r.Runner, "steps", func(ctx context.Context, p stepParams, rep *tasks.Reporter) error {
		rep.SetTotal(p.Steps)
		for i := range p.Steps {
			rep.Progress(i+1, "")
		}
		if p.Fail != "" {
			return errors.New(p.Fail)
		}
		return nil
	})
	ok := r.start("steps", "", `{"steps":3}`)
	if ok.Name != "steps" {
		t.Errorf("a task started without a name is named %q; want its kind", ok.Name)
	}
	bad := r.start("steps", "", `{"steps":2,"fail":"disk full"}`)
	if got := r.stream.waitFinal(t, ok.ID); got.State != protocol.TaskSucceeded || got.Done != 3 || got.Percent != 100 {
		t.Errorf("ended %s; want succeeded 3/3", tasktest.String(got))
	}
	if got := r.stream.waitFinal(t, bad.ID); got.State != protocol.TaskFailed || got.Message != "disk full" {
		t.Errorf("ended %s; want failed \"disk full\"", tasktest.String(got))
	}
	before := len(r.List())
	_, _, err := r.Start(t.Context(), tasks.Spec{Kind: "steps", Params: json.RawMessage(`{"steps":9}`)})
	if !errors.Is(err, tasks.ErrBadParams) {
		t.Errorf("params that fail Validate: %v; want ErrBadParams", err)
	}
	if err == nil || !strings.Contains(err.Error(), "steps must be from 1 to 5") {
		t.Errorf("the error for params that fail Validate does not say why: %v", err)
	}
	if after := len(r.List()); after != before {
		t.Errorf("a refused start left %d tasks; there were %d", after, before)
	}
}

func TestStartRefusals(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{}, nil, nil)
	var typeErr *json.UnmarshalTypeError
	cases := []struct {
		name, kind, params string
		want               error
		says               string
	}{
		{"unknown kind", "nope", "", tasks.ErrUnknownKind, "known kinds: [demo external]"},
		{"param of the wrong type", "demo", `{"total":"ten"}`, tasks.ErrParamsJSON, ""},
		{"unknown param", "demo", `{"speed":2}`, tasks.ErrParamsJSON, `unknown field "speed"`},
		{"trailing data", "external", `{} {}`, tasks.ErrParamsJSON, "trailing data"},
		{"total too large", "demo", fmt.Sprintf(`{"total":%d}`, protocol.DemoMaxTotal+1), tasks.ErrBadParams, "total must be from 1 to 1000000"},
		{"interval not a duration", "demo", `{"interval":"soon"}`, tasks.ErrBadParams, `interval "soon"`},
		{"interval too long", "demo", `{"interval":"2h"}`, tasks.ErrBadParams, "interval 2h0m0s"},
		{"fail_at past total", "demo", `{"total":10,"fail_at":11}`, tasks.ErrBadParams, "fail_at must be from 1 to total (10)"},
		{"external total negative", "external", `{"total":-1}`, tasks.ErrBadParams, "total must be 0 or more"},
	}
	for _, c := range cases {
		_, _, err := r.Start(t.Context(), tasks.Spec{Kind: c.kind, Params: json.RawMessage(c.params)})
		if !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.says) {
			t.Errorf("%s: %v; want %v saying %q", c.name, err, c.want, c.says)
		}
		if c.name == "param of the wrong type" && (!errors.As(err, &typeErr) || typeErr.Field != "total") {
			t.Errorf("%s: %v; want the decoder's type error for total", c.name, err)
		}
	}
	if got := r.List(); len(got) != 0 {
		t.Errorf("refused starts left tasks: %v", got)
	}
}

func TestStartWithKeyStartsOnce(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{}, nil, nil)
	spec := tasks.Spec{Kind: "external", Name: "once", Params: []byte(`{"total": 5}`), Owner: "ann", Key: "k:1"}
	first, repeat, err := r.Start(t.Context(), spec)
	if err != nil || repeat {
		t.Fatalf("first start: %v (repeat %v)", err, repeat)
	}
	spec.Params = []byte(`{"total":5}`) // the same params, written otherwise
	again, repeat, err := r.Start(t.Context(), spec)
	if err != nil || !repeat || again.ID != first.ID {
		t.Fatalf("the start again: %s, repeat %v, %v; want task %s, a repeat", again.ID, repeat, err, first.ID)
	}
	// Many at once: one task.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	spec.Key = "k:2"
	for i := range ids {
		wg.Go(func() {
			tk, _, err := r.Start(t.Context(), spec)
			if err != nil {
				t.Error(err)
			}
			ids[i] = tk.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("8 starts at once with one key made tasks %v; want one", ids)
		}
	}
	if n := len(r.List()); n != 2 {
		t.Errorf("%d tasks; want 2 (one per key)", n)
	}
}

func TestStartWithKeyRefusals(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{}, nil, nil)
	spec := tasks.Spec{Kind: "external", Name: "n", Owner: "ann", Key: "key-1"}
	if _, _, err := r.Start(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	conflict := func(what string, s tasks.Spec, says string) {
		t.Helper()
		_, _, err := r.Start(t.Context(), s)
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Status != http.StatusConflict || pe.Code != protocol.CodeConflict {
			t.Errorf("%s: %v; want 409 conflict", what, err)
			return
		}
		if !strings.Contains(pe.Message, says) {
			t.Errorf("%s: %q does not say %q", what, pe.Message, says)
		}
	}
	other := spec
	other.Owner = "bob"
	conflict("another user", other, "another user")
	for _, c := range []func(*tasks.Spec){
		func(s *tasks.Spec) { s.Name = "m" },
		func(s *tasks.Spec) { s.Params = []byte(`{"total":3}`) },
		func(s *tasks.Spec) { s.Room = "ops" },
		func(s *tasks.Spec) { s.Private = true },
		func(s *tasks.Spec) { s.CancelUnwatched = time.Minute },
	} {
		s := spec
		c(&s)
		conflict(fmt.Sprintf("%+v", s), s, "another kind, name, params or scope")
	}
	for _, key := range []string{"with space", "ümlaut", string(make([]byte, 65))} {
		s := spec
		s.Key = key
		if _, _, err := r.Start(t.Context(), s); !errors.Is(err, tasks.ErrBadParams) {
			t.Errorf("key %q: %v; want ErrBadParams", key, err)
		}
	}
	if n := len(r.List()); n != 1 {
		t.Errorf("%d tasks after refused starts; want 1", n)
	}
}

func TestStartWithKeyAfterTheWindow(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{DedupeWindow: 50 * time.Millisecond}, nil, nil)
	spec := tasks.Spec{Kind: "external", Key: "k"}
	first, _, err := r.Start(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, taskWait, 5*time.Millisecond, func() error {
		tk, repeat, err := r.Start(t.Context(), spec)
		switch {
		case err != nil:
			return err
		case repeat || tk.ID == first.ID:
			return fmt.Errorf("still task %s", tk.ID)
		}
		return nil
	})
}

func TestStartScopes(t *testing.T) {
	r := startRunner(t, nil, tasks.Config{}, nil, nil)
	tk, _, err := r.Start(t.Context(), tasks.Spec{Kind: "external", Owner: "ann", Room: "ops", CancelUnwatched: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Owner != "ann" || tk.Room != "ops" || tk.Private || tk.CancelUnwatched != "30s" {
		t.Errorf("started %+v; want owner ann, room ops, cancel_unwatched 30s", tk)
	}
	for _, s := range []tasks.Spec{
		{Kind: "external", Room: "ops", Private: true},
		{Kind: "external", Room: "no room"},
		{Kind: "external", CancelUnwatched: time.Millisecond},
		{Kind: "external", CancelUnwatched: 25 * time.Hour},
	} {
		if _, _, err := r.Start(t.Context(), s); !errors.Is(err, tasks.ErrBadParams) {
			t.Errorf("%+v: %v; want ErrBadParams", s, err)
		}
	}
}
