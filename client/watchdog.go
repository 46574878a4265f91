package client

import (
	"fmt"
	"sync/atomic"
	"time"
)

// watchdog cancels a connection on which nothing arrived for a while.
// kick, pause and set are called from the subscription's goroutine; the
// timer fires on its own.
type watchdog struct {
	t     *time.Timer
	d     time.Duration
	fired atomic.Bool
}

// newWatchdog returns a watchdog that calls cancel after d without a kick.
func newWatchdog(d time.Duration, cancel func()) *watchdog {
	w := &watchdog{d: d}
	w.t = time.AfterFunc(d, func() {
		w.fired.Store(true)
		cancel()
	})
	return w
}

// kick restarts the countdown. A nil watchdog does nothing.
func (w *watchdog) kick() {
	if w != nil && w.d > 0 {
		w.t.Reset(w.d)
	}
}

// pause stops the countdown until the next kick.
func (w *watchdog) pause() {
	if w != nil {
		w.t.Stop()
	}
}

// set changes the countdown to d and restarts it; d <= 0 stops it for
// good.
func (w *watchdog) set(d time.Duration) {
	w.d = d
	if d <= 0 {
		w.t.Stop()
		return
	}
	w.t.Reset(d)
}

// err returns why the connection was cancelled, if the watchdog did it.
func (w *watchdog) err(what string) error {
	if w.fired.Load() {
		return fmt.Errorf("%s: %w for %s", what, ErrQuiet, w.d)
	}
	return nil
}

// stop ends the watchdog.
func (w *watchdog) stop() { w.t.Stop() }
