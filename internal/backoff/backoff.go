// Package backoff is the one retry schedule of pushd and its clients:
// exponential backoff with full jitter, which a server's Retry-After and
// an SSE stream's retry hint can lengthen.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a retry schedule. Its zero value is not usable: set Min and Max.
type Policy struct {
	// Min is the ceiling of the first wait; each try doubles it.
	Min time.Duration
	// Max caps every wait.
	Max time.Duration
	// MaxRetryAfter caps how long a server's Retry-After may make a wait;
	// 0 means Max.
	MaxRetryAfter time.Duration
}

// Delay returns the wait before try n (from 1): a random time up to
// Min·2ⁿ⁻¹ (full jitter), or up to hint when that is larger (an SSE
// stream's retry field), capped at Max; and at least retryAfter (a
// server's Retry-After), capped at MaxRetryAfter.
func (p Policy) Delay(n int, hint, retryAfter time.Duration) time.Duration {
	ceil := p.Max
	if n < 1 {
		n = 1
	}
	if n <= 32 {
		if c := p.Min << (n - 1); c > 0 && c < ceil {
			ceil = c
		}
	}
	if hint > ceil {
		ceil = min(hint, p.Max)
	}
	d := time.Duration(0)
	if ceil > 0 {
		d = rand.N(ceil + 1)
	}
	capRA := p.MaxRetryAfter
	if capRA <= 0 {
		capRA = p.Max
	}
	if ra := min(retryAfter, capRA); ra > d {
		d = ra
	}
	return d
}

// Backoff counts the failed tries of one retry loop against its Policy.
// It is not safe for concurrent use.
type Backoff struct {
	Policy
	tries int
}

// New returns a Backoff for p with no failed tries.
func New(p Policy) *Backoff { return &Backoff{Policy: p} }

// Next counts a failed try and returns the wait before the next one.
func (b *Backoff) Next() time.Duration { return b.NextAfter(0, 0) }

// NextAfter is Next with a server's retry hint and Retry-After (see
// Policy.Delay).
func (b *Backoff) NextAfter(hint, retryAfter time.Duration) time.Duration {
	b.tries++
	return b.Delay(b.tries, hint, retryAfter)
}

// Tries returns the failed tries counted since the last Reset.
func (b *Backoff) Tries() int { return b.tries }

// Reset starts the schedule over, after a success.
func (b *Backoff) Reset() { b.tries = 0 }

// Sleep waits d, or until ctx ends; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
