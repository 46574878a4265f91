package server

import (
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushd/push/protocol"
)

// Limits bound what one client can take from the server. For the rate and
// the per-client counts, zero or less means no limit (DefaultConfig has
// the ones pushd serve applies); MaxStreams and WSReadLimit take
// DefaultConfig's when zero.
type Limits struct {
	// PublishRate is how many messages one user may post per second,
	// PublishBurst how many at once (zero: as many as PublishRate).
	PublishRate  float64
	PublishBurst int
	// TaskRate is how many tasks one user may start per second, TaskBurst
	// how many at once (zero: as many as TaskRate).
	TaskRate  float64
	TaskBurst int
	// ConnsPerIP bounds open WebSocket and SSE subscriptions per client
	// address; ConnsPerUser every subscription of one user (streams and
	// waiting long polls, of rooms and tasks), on any address.
	ConnsPerIP   int
	ConnsPerUser int
	// LongPollsPerIP bounds long polls waiting at once from one address.
	LongPollsPerIP int
	// MaxStreams bounds the rooms clients open that the server keeps in
	// memory at once: a new room past it is refused with 503, but one no
	// one uses makes room for it, and goes after a while anyway. The
	// server's own streams (tasks) and publishes (logouts, task progress)
	// are never refused.
	MaxStreams int
	// WSReadLimit is the largest WebSocket message a client may send
	// (clients have nothing to say but control frames).
	WSReadLimit int64
}

// withDefaults fills MaxStreams and WSReadLimit from d when zero, and a
// zero PublishBurst or TaskBurst from its rate.
func (l Limits) withDefaults(d Limits) Limits {
	if l.PublishBurst <= 0 {
		l.PublishBurst = max(1, int(math.Ceil(l.PublishRate)))
	}
	if l.TaskBurst <= 0 {
		l.TaskBurst = max(1, int(math.Ceil(l.TaskRate)))
	}
	orDefault(&l.MaxStreams, d.MaxStreams)
	orDefault(&l.WSReadLimit, d.WSReadLimit)
	return l
}

// counter counts open things per key, up to a maximum.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire counts one more for key; false, counting nothing, at max (zero
// or less is no limit).
func (c *counter) acquire(key string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[string]int)
	}
	if max > 0 && c.n[key] >= max {
		return false
	}
	c.n[key]++
	return true
}

func (c *counter) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key]--; c.n[key] <= 0 {
		delete(c.n, key)
	}
}

// limiters hands out one token bucket per user, forgetting idle ones.
type limiters struct {
	mu      sync.Mutex
	every   rate.Limit
	burst   int
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

// allow takes one of key's tokens for a request if one is free now, and
// the returned settle keeps it (the request succeeded) or gives it back
// (it was refused for another reason, which so costs nothing). Otherwise
// it says how long until a token is free. A token is taken at once, so
// concurrent requests of one key cannot share one.
func (l *limiters) allow(key string, now time.Time) (settle func(kept bool), wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = make(map[string]*bucket)
	}
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.used) > time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.every, l.burst)}
		l.buckets[key] = b
	}
	b.used = now
	r := b.lim.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return nil, wait
	}
	return func(kept bool) {
		if !kept {
			// As of when it was taken: Cancel at a later time gives back
			// nothing of a token whose time has come.
			r.CancelAt(now)
		}
	}, 0
}

// tooMany is a 429 with Retry-After (at least a second).
func tooMany(retry time.Duration, format string, args ...any) error {
	return protocol.Errorf(http.StatusTooManyRequests, protocol.CodeRateLimited, format, args...).RetryIn(max(retry, time.Second))
}

// allowPublish applies the per-user publish rate; the caller settles the
// token it took: kept if the publish succeeded, given back if not.
func (s *Server) allowPublish(user string) (settle func(kept bool), err error) {
	if s.cfg.Limits.PublishRate <= 0 {
		return func(bool) {}, nil
	}
	settle, wait := s.publishes.allow(user, time.Now())
	if settle == nil {
		return nil, tooMany(wait, "user %s is posting faster than %g messages per second; retry in %s", user, s.cfg.Limits.PublishRate, wait.Round(time.Millisecond))
	}
	return settle, nil
}

// allowTaskStart applies the per-user rate of task starts: by the
// owner's name, or on a server without tokens for a start without one, by
// the client's address. The caller settles the token it took: kept if a
// task was started, given back if not.
func (s *Server) allowTaskStart(r *http.Request, owner string) (settle func(kept bool), err error) {
	if s.cfg.Limits.TaskRate <= 0 {
		return func(bool) {}, nil
	}
	key, who := "user "+owner, "user "+owner
	if owner == "" {
		ip := s.clientIP(r)
		key, who = "address "+ip, ip
	}
	settle, wait := s.taskStarts.allow(key, time.Now())
	if settle == nil {
		return nil, tooMany(wait, "%s is starting tasks faster than %g a second; retry in %s", who, s.cfg.Limits.TaskRate, wait.Round(time.Millisecond))
	}
	return settle, nil
}

// admit counts a subscription against the per-address and per-user limits
// (the address is the client's, behind trusted proxies too: see clientIP);
// the returned func releases it. Every subscription of a user counts
// against ConnsPerUser, whatever its stream and transport (a waiting long
// poll too): the user is the token's, or on a server without tokens the
// name the request claims (none: the address alone counts).
func (s *Server) admit(r *http.Request, user string, longPoll bool) (func(), error) {
	ip := s.clientIP(r)
	byIP, maxIP, what := &s.conns, s.cfg.Limits.ConnsPerIP, "open subscriptions"
	if longPoll {
		byIP, maxIP, what = &s.polls, s.cfg.Limits.LongPollsPerIP, "waiting long polls"
	}
	if !byIP.acquire(ip, maxIP) {
		return nil, tooMany(time.Second, "%s has %d %s, the most one address may have; close some", ip, maxIP, what)
	}
	if user == "" {
		return func() { byIP.release(ip) }, nil
	}
	if !s.userConns.acquire(user, s.cfg.Limits.ConnsPerUser) {
		byIP.release(ip)
		return nil, tooMany(time.Second, "user %s has %d open subscriptions (streams and waiting long polls, over every transport), the most one user may have; close some", user, s.cfg.Limits.ConnsPerUser)
	}
	return func() {
		s.userConns.release(user)
		byIP.release(ip)
	}, nil
}

func (s *Server) newLimiters() {
	s.publishes = &limiters{every: rate.Limit(s.cfg.Limits.PublishRate), burst: s.cfg.Limits.PublishBurst}
	s.taskStarts = &limiters{every: rate.Limit(s.cfg.Limits.TaskRate), burst: s.cfg.Limits.TaskBurst}
}
