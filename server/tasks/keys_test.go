package tasks_test

import (
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
)

// Idempotency keys of task starts, kept in memory (the stores' own are
// the stores' tests).

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
