package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/backoff"
)

// publishTimeout bounds one publish request.
const publishTimeout = 10 * time.Second

// publish posts every message of the run: publisher p sends the messages
// k with k%Publishers == p, as its sequence numbers 0, 1, 2, ..., each
// after the answer to the one before. With a rate, publisher p sends its
// message i at start + (p + i*Publishers)/Rate, or at once when it is
// behind. It returns when all are acknowledged (201) or at the first
// failure, and says when the first was sent.
func (r *runner) publish(ctx context.Context) (first time.Time, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := r.o.Publishers
	firsts := make([]time.Time, p)
	var once sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for pub := range p {
		wg.Go(func() {
			var perr error
			firsts[pub], perr = r.publisher(ctx, pub, start)
			if perr != nil {
				// The first failure stops the others; theirs are its echo.
				once.Do(func() { err = perr; cancel() })
			}
		})
	}
	wg.Wait()
	for _, t := range firsts {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first, err
}

// publisher sends publisher pub's share of the messages.
func (r *runner) publisher(ctx context.Context, pub int, start time.Time) (first time.Time, err error) {
	p, m := r.o.Publishers, r.o.Messages
	n := m / p
	if pub < m%p {
		n++
	}
	base := r.base
	if r.o.PublishTo != "" {
		base = r.o.PublishTo
	}
	url := base + "/v1/rooms/" + r.room + "/messages"
	body := make([]byte, 0, r.o.Size+128)
	for seq := range n {
		if r.o.Rate > 0 {
			due := start.Add(time.Duration(float64(pub+seq*p) / r.o.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 && !backoff.Sleep(ctx, d) {
				return first, fmt.Errorf("publisher %d: message %d: %w", pub, seq, ctx.Err())
			}
		}
		sent := time.Now()
		if first.IsZero() {
			first = sent
		}
		body = append(body[:0], `{"user":"bench","text":"`...)
		body = appendPayload(body, r.runID, pub, seq, sent.UnixNano(), r.o.Size)
		body = append(body, '"')
		if r.o.RestartAfter > 0 {
			body = fmt.Appendf(body, `,"id":"%s-%d-%d"`, r.runID, pub, seq)
		}
		body = append(body, '}')
		if err := r.postRetrying(ctx, url, body); err != nil {
			return first, fmt.Errorf("publisher %d: message %d: %w", pub, seq, err)
		}
		if n := r.published.Add(1); n == int64(r.o.RestartAfter) {
			close(r.restartNow)
		}
	}
	return first, nil
}

// publishRetry paces the publishes sent again across a restart.
var publishRetry = backoff.Policy{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond}

// postRetrying posts body; with RestartAfter (the body then has an id) it
// sends it again after a failure that trying again may fix
// (client.Retryable), until it is acknowledged or ctx ends.
func (r *runner) postRetrying(ctx context.Context, url string, body []byte) error {
	retry := backoff.New(publishRetry)
	for {
		err := r.post(ctx, url, body)
		if err == nil || r.o.RestartAfter == 0 || !client.Retryable(err) || ctx.Err() != nil {
			return err
		}
		r.retries.Add(1)
		backoff.Sleep(ctx, retry.Next())
	}
}

// post sends one message and wants 201, or 200 for a message id the
// server already stored.
func (r *runner) post(ctx context.Context, url string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.pubClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return answerError(resp)
	}
	_, err = io.Copy(io.Discard, resp.Body) // so the connection is reused
	return err
}
