package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second}
	for n := 1; n <= 40; n++ {
		ceil := min(p.Min<<min(n-1, 32), p.Max)
		if n > 32 {
			ceil = p.Max
		}
		for range 200 {
			if d := p.Delay(n, 0, 0); d < 0 || d > ceil {
				t.Fatalf("Delay(%d) = %v, want 0..%v", n, d, ceil)
			}
		}
	}
}

func TestDelayJitters(t *testing.T) {
	p := Policy{Min: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[p.Delay(3, 0, 0)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 delays took %d values: not jittered", len(seen))
	}
}

func TestDelayHintAndRetryAfter(t *testing.T) {
	p := Policy{Min: time.Millisecond, Max: 10 * time.Second}
	// A hint raises the ceiling, never above Max.
	var top time.Duration
	for range 500 {
		top = max(top, p.Delay(1, 5*time.Second, 0))
	}
	if top <= time.Millisecond || top > 5*time.Second {
		t.Fatalf("with a 5 s hint the longest of 500 waits is %v", top)
	}
	for range 100 {
		if d := p.Delay(1, time.Hour, 0); d > p.Max {
			t.Fatalf("a 1 h hint gave %v, over Max", d)
		}
	}
	// Retry-After is a floor, capped at Max, or at MaxRetryAfter when set.
	for range 100 {
		if d := p.Delay(1, 0, 3*time.Second); d != 3*time.Second {
			t.Fatalf("Retry-After 3 s gave %v", d)
		}
		if d := p.Delay(1, 0, time.Hour); d != p.Max {
			t.Fatalf("Retry-After 1 h gave %v, want Max", d)
		}
	}
	p.MaxRetryAfter = time.Minute
	if d := p.Delay(1, 0, time.Hour); d != time.Minute {
		t.Fatalf("Retry-After 1 h with MaxRetryAfter 1 min gave %v", d)
	}
}

func TestBackoffCountsAndResets(t *testing.T) {
	b := New(Policy{Min: time.Millisecond, Max: time.Hour})
	for range 5 {
		b.Next()
	}
	if b.Tries() != 5 {
		t.Fatalf("Tries() = %d after 5", b.Tries())
	}
	// The sixth wait may be up to 32 ms; after a reset, at most 1 ms.
	b.Reset()
	for range 100 {
		if d := b.Delay(1, 0, 0); d > time.Millisecond {
			t.Fatalf("after Reset the first wait is %v", d)
		}
	}
	if b.Next(); b.Tries() != 1 {
		t.Fatalf("Tries() = %d after Reset and one Next", b.Tries())
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep with a live context reported it ended early")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep with an ended context reported the hour passed")
	}
	if Sleep(ctx, 0) {
		t.Fatal("Sleep(0) with an ended context reported success")
	}
}
