package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/protocol"
)

// runner is one run: its options, clients, subscribers and shared tallies.
type runner struct {
	o         Options
	base      string   // the first server's base URL
	bases     []string // every server's: subscriber i connects to bases[i%len(bases)]
	room      string
	runID     string // starts every message text of this run
	since     protocol.Cursor
	subClient *http.Client
	pubClient *http.Client
	subs      []*subscriber
	latency   shardedHistogram
	published atomic.Int64
	complete  atomic.Int64  // subscribers that have every message
	allDone   chan struct{} // closed when complete reaches Subscribers

	wg       sync.WaitGroup // the subscribers' goroutines
	stopSubs context.CancelFunc

	// With ServerCommand: the server's process, and with RestartAfter the
	// restart, which the publishers trigger by closing restartNow.
	server     *serverProc
	storm      *storm
	restartNow chan struct{}
	retries    atomic.Int64 // publishes sent again after a failure

	progressMu sync.Mutex // one line at a time to Options.Progress
}

// gaugeWait bounds the wait for the server to count every long poll.
const gaugeWait = 5 * time.Second

// Run runs the benchmark that o describes and reports what it measured. It
// returns an error, and no report, when the run could not be carried out
// (bad options, a server that refuses or cannot be reached, a publish that
// fails, a timeout before everything was published); a report of lost or
// duplicated messages is not an error of Run: see Report.Check. Everything
// Run starts has stopped when it returns.
func Run(ctx context.Context, o Options) (*Report, error) {
	o, err := o.checked()
	if err != nil {
		return nil, err
	}
	bases := o.Targets
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	rep := &Report{Target: strings.Join(bases, ","), Transport: o.Transport, WSSubprotocol: o.WSSubprotocol,
		Subscribers: o.Subscribers, Messages: o.Messages, Publishers: o.Publishers, Rate: o.Rate,
		Size: o.Size, Stall: o.Stall, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if o.Stall > 0 {
		rep.StallFor = o.StallFor
	}
	if len(bases) == 0 {
		local, err := startLocal(o)
		if err != nil {
			return nil, err
		}
		defer func() {
			// Runs last, after the subscribers have stopped.
			if err := local.stop(); err != nil {
				rep.Notes = append(rep.Notes, "in-process server: "+err.Error())
			}
		}()
		bases, rep.Target = []string{local.url}, "in-process"
	}
	var server *serverProc
	if len(o.ServerCommand) > 0 {
		if server, err = startServer(ctx, o, bases[0]); err != nil {
			return nil, err
		}
		defer func() {
			// Runs last, after the subscribers and the restart.
			if err := server.stop(); err != nil {
				rep.Notes = append(rep.Notes, err.Error())
			}
		}()
		o.PID = server.pid()
	}

	r := &runner{o: o, base: bases[0], bases: bases, room: o.Room, runID: randomID(8), allDone: make(chan struct{}), stopSubs: func() {}, server: server}
	if o.RestartAfter > 0 {
		r.storm, r.restartNow = newStorm(), make(chan struct{})
		rctx, stopRestart := context.WithCancel(ctx)
		go r.restart(rctx, r.restartNow)
		defer func() {
			stopRestart()
			<-r.storm.restarted
		}()
	}
	rep.Room = r.room
	subTransport := newTransport(o.Subscribers + 16)
	pubTransport := newTransport(o.Publishers + 4)
	defer subTransport.CloseIdleConnections()
	defer pubTransport.CloseIdleConnections()
	r.subClient = &http.Client{Transport: subTransport}
	r.pubClient = &http.Client{Transport: pubTransport}
	defer r.stopSubscribers()

	if r.since, err = r.currentCursor(ctx); err != nil {
		return nil, err
	}
	r.subs = make([]*subscriber, o.Subscribers)
	for i := range r.subs {
		r.subs[i] = newSubscriber(r, i)
	}
	mem, err := r.memoryBefore(ctx, rep)
	if err != nil {
		return nil, err
	}
	r.progressf("connecting %d %s subscribers to %s, room %s", o.Subscribers, o.Transport, strings.Join(bases, ", "), r.room)
	if err := r.connect(ctx, rep); err != nil {
		return nil, err
	}
	if err := mem.after(rep); err != nil {
		return nil, err
	}
	r.progressf("connected in %s; publishing %d messages", seconds(rep.ConnectTime), o.Messages)

	stopProgress := r.reportProgress()
	defer stopProgress()
	pubStart := time.Now()
	firstSent, err := r.publish(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("publish: %d of %d messages acknowledged when %s: %w", r.published.Load(), o.Messages, r.ended(ctx), err)
		}
		return nil, fmt.Errorf("publish: %w", withHint(err))
	}
	rep.PublishTime = time.Since(pubStart)
	rep.PublishRate = float64(o.Messages) / rep.PublishTime.Seconds()
	if o.Rate > 0 && o.RestartAfter == 0 && rep.PublishRate < 0.9*o.Rate {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the publishers reached %.0f of the %g msgs/s asked for: the server or the bench (or both) could not keep up", rep.PublishRate, o.Rate))
	}
	r.progressf("published in %s; waiting for deliveries", seconds(rep.PublishTime))
	if note := r.drain(ctx); note != "" {
		rep.Notes = append(rep.Notes, note)
	}
	stopProgress()
	r.stopSubscribers()
	r.tally(rep, firstSent)
	rep.PublishRetries = r.retries.Load()
	if r.storm != nil {
		r.stormReport(rep)
	}
	return rep, nil
}

// connect starts every subscriber, at most ConnectConcurrency connecting at
// once, and returns when all are connected or one could not connect. For
// long polling it then waits (briefly) until the server counts every poll
// as waiting.
func (r *runner) connect(ctx context.Context, rep *Report) error {
	o := r.o
	gaugeBefore, gaugeErr := 0.0, error(nil)
	if o.Transport == LongPoll {
		gaugeBefore, gaugeErr = r.connectionGauge(ctx)
	}
	subCtx, stop := context.WithCancel(ctx)
	r.stopSubs = stop
	slots := make(chan struct{}, o.ConnectConcurrency)
	ready := make(chan error, o.Subscribers)
	start := time.Now()
	for _, s := range r.subs {
		r.wg.Go(func() { s.run(subCtx, slots, ready) })
	}
	for n := range o.Subscribers {
		select {
		case err := <-ready:
			if err != nil {
				return fmt.Errorf("connect subscribers: %w", withHint(err))
			}
		case <-ctx.Done():
			return fmt.Errorf("connect subscribers: %d of %d connected when %s", n, o.Subscribers, r.ended(ctx))
		}
	}
	rep.ConnectTime = time.Since(start)
	if o.Transport == LongPoll {
		// A long poll is up once the server holds it: wait until the
		// server counts them all, so memory and the first deliveries
		// see every subscriber waiting.
		if gaugeErr == nil {
			// The first target holds every len(bases)th subscriber.
			n := (o.Subscribers + len(r.bases) - 1) / len(r.bases)
			gaugeErr = r.waitForGauge(ctx, gaugeBefore+float64(n))
		}
		if gaugeErr != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("publishing began without knowing that every long poll was waiting: %v", gaugeErr))
		}
	}
	return nil
}

// stopSubscribers ends every subscriber and waits for them. It may be
// called more than once.
func (r *runner) stopSubscribers() {
	r.stopSubs()
	r.wg.Wait()
}

// memProbe measures memory per connection: live heap and stacks of this
// process for the in-process server, resident memory of PID for a target.
type memProbe struct {
	r      *runner
	heap   uint64
	rss    int64
	source string // empty: nothing is measured
}

// memoryBefore takes the first measurement, before anyone connects.
func (r *runner) memoryBefore(ctx context.Context, rep *Report) (*memProbe, error) {
	m := &memProbe{r: r}
	switch {
	case rep.Target == "in-process":
		m.heap = liveHeapAndStacks()
		m.source = "growth of live heap and stacks in-process: server and bench clients together"
	case r.o.PID > 0:
		rss, err := residentBytes(r.o.PID)
		if err != nil {
			return nil, fmt.Errorf("measure memory: %w", err)
		}
		m.rss = rss
		m.source = fmt.Sprintf("growth of the resident memory of pid %d", r.o.PID)
	}
	return m, nil
}

// after takes the second measurement, once every subscriber is connected,
// and puts the growth per connection in rep.
func (m *memProbe) after(rep *Report) error {
	n := int64(m.r.o.Subscribers)
	switch {
	case m.source == "":
		return nil
	case m.r.o.PID > 0:
		rss, err := residentBytes(m.r.o.PID)
		if err != nil {
			return fmt.Errorf("measure memory: %w", err)
		}
		rep.MemPerConn = (rss - m.rss) / n
	default:
		rep.MemPerConn = (int64(liveHeapAndStacks()) - int64(m.heap)) / n
	}
	rep.MemSource = m.source
	return nil
}

// tally adds up what the subscribers (stopped by now) received.
func (r *runner) tally(rep *Report, firstSent time.Time) {
	var lastRecv int64
	var firstDrop string
	for _, s := range r.subs {
		rep.Deliveries += s.unique.Load()
		rep.Duplicates += s.dups
		rep.OutOfOrder += s.outOfOrder
		rep.Malformed += s.malformed
		rep.Reconnects += s.reconnects
		rep.SlowConsumer += s.slow
		rep.Resets += s.resets
		lastRecv = max(lastRecv, s.lastRecv)
		if firstDrop == "" {
			firstDrop = s.firstDrop
		}
	}
	rep.Expected = int64(r.o.Subscribers) * int64(r.o.Messages)
	rep.Lost = rep.Expected - rep.Deliveries
	if lastRecv > 0 {
		rep.DeliveryTime = time.Duration(lastRecv - firstSent.UnixNano())
		if rep.DeliveryTime > 0 {
			rep.DeliveriesPerSec = float64(rep.Deliveries) / rep.DeliveryTime.Seconds()
		}
	}
	rep.Latency = r.latency.sum().summary()
	if firstDrop != "" && rep.Reconnects > rep.SlowConsumer {
		rep.Notes = append(rep.Notes, "first dropped connection: "+firstDrop)
	}
}

// drain waits until every subscriber has every message (and with a
// restart, has connected to the new server), until Drain passes without a
// new delivery, or until ctx ends. It returns a note when
// it stopped waiting before everything arrived.
func (r *runner) drain(ctx context.Context) string {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last, since := r.delivered(), time.Now()
	allDone, missing := r.allDone, "deliveries were missing"
	var allResumed <-chan struct{} // with a restart, once everything arrived
	for {
		select {
		case <-allDone:
			if r.storm == nil {
				return ""
			}
			allDone, allResumed = nil, r.storm.all
			missing = "some subscribers had not reconnected since the restart"
		case <-allResumed:
			return ""
		case <-ctx.Done():
			return fmt.Sprintf("%s while %s", r.ended(ctx), missing)
		case now := <-tick.C:
			if n := r.delivered(); n != last {
				last, since = n, now
			} else if now.Sub(since) >= r.o.Drain {
				return fmt.Sprintf("no delivery for %s (--drain) while %s", r.o.Drain, missing)
			}
		}
	}
}

// ended says why the run's ctx ended.
func (r *runner) ended(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("the run timed out (--timeout %s)", r.o.Timeout)
	}
	return "the run was interrupted"
}

// delivered counts the deliveries so far.
func (r *runner) delivered() int64 {
	var n int64
	for _, s := range r.subs {
		n += s.unique.Load()
	}
	return n
}

// subscriberDone is called by each subscriber once it has every message.
func (r *runner) subscriberDone() {
	if r.complete.Add(1) == int64(r.o.Subscribers) {
		close(r.allDone)
	}
}

// waitForGauge waits until the server's connection gauge reaches want.
func (r *runner) waitForGauge(ctx context.Context, want float64) error {
	ctx, cancel := context.WithTimeout(ctx, gaugeWait)
	defer cancel()
	for {
		got, err := r.connectionGauge(ctx)
		if err != nil {
			return err
		}
		if got >= want {
			return nil
		}
		if !backoff.Sleep(ctx, 20*time.Millisecond) {
			return fmt.Errorf("the server counted %g of %g after %s", got, want, gaugeWait)
		}
	}
}

// progressf writes a line to Options.Progress, if set. The run's
// goroutines (the phases, the progress ticker, a restart) write one line
// at a time.
func (r *runner) progressf(format string, args ...any) {
	if r.o.Progress != nil {
		r.progressMu.Lock()
		defer r.progressMu.Unlock()
		fmt.Fprintf(r.o.Progress, "pushd bench: "+format+"\n", args...)
	}
}

// reportProgress writes how far the run is every few seconds until the
// returned func is called (which may be called more than once).
func (r *runner) reportProgress() func() {
	if r.o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		want := int64(r.o.Subscribers) * int64(r.o.Messages)
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				r.progressf("published %d of %d, delivered %d of %d", r.published.Load(), r.o.Messages, r.delivered(), want)
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// currentCursor learns where the room is now with a short poll.
func (r *runner) currentCursor(ctx context.Context) (protocol.Cursor, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	url := r.base + "/v1/rooms/" + r.room + "/events?wait=0"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return protocol.Cursor{}, fmt.Errorf("learn the room's cursor: %w", err)
	}
	resp, err := r.pubClient.Do(req)
	if err != nil {
		return protocol.Cursor{}, fmt.Errorf("learn the room's cursor: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return protocol.Cursor{}, fmt.Errorf("learn the room's cursor: %w", withHint(answerError(resp)))
	}
	var poll protocol.Poll
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxPollBody)).Decode(&poll); err != nil {
		return protocol.Cursor{}, fmt.Errorf("learn the room's cursor: %w", err)
	}
	c, err := protocol.ParseCursor(poll.Cursor)
	if err != nil {
		return protocol.Cursor{}, fmt.Errorf("learn the room's cursor: %w", err)
	}
	return c, nil
}

// eventsURL is the room's events URL on the subscriber's server,
// continuing after its cursor.
func (s *subscriber) eventsURL() string {
	return s.base + "/v1/rooms/" + s.r.room + "/events?since=" + s.cursor()
}

// newTransport returns an HTTP transport for the bench's clients: straight
// to the target (no proxy), no compression, HTTP/1.1, and enough idle
// connections kept for idle of them to be reused.
func newTransport(idle int) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connectTimeout,
		ResponseHeaderTimeout: pollWait + pollSlack,
		DisableCompression:    true,
	}
}

// getEvents asks for url, a room's events, with the subscribers' client and
// returns the answer when it is 200 OK, else an error that says the
// answer; the caller closes the answer's body.
func (r *runner) getEvents(ctx context.Context, url, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := r.subClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, answerError(resp)
	}
	return resp, nil
}

// answerError turns an answer other than the one wanted into an error: a
// *protocol.Error when it has pushd's error body.
func answerError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var eb protocol.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		return &protocol.Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return fmt.Errorf("answer %s: %q", resp.Status, body)
}

// withHint adds what to do to errors a user can fix.
func withHint(err error) error {
	var perr *protocol.Error
	switch {
	case errors.As(err, &perr) && perr.Code == protocol.CodeRateLimited:
		return fmt.Errorf("%w (the target limits clients; start it with --publish-rate 0 --max-conns-per-ip 0 --max-conns-per-user 0 --max-long-polls-per-ip 0 to measure it)", err)
	case errors.As(err, &perr) && (perr.Code == protocol.CodeUnauthorized || perr.Code == protocol.CodeForbidden):
		return fmt.Errorf("%w (pushd bench sends no token: measure a server started without --auth-secret)", err)
	case errors.As(err, &perr) && perr.Code == protocol.CodeTextTooLong:
		return fmt.Errorf("%w (lower --size, or raise --max-text of the target)", err)
	case errors.Is(err, syscall.EMFILE):
		return fmt.Errorf("%w (this process may open too few files for so many connections: raise the limit, e.g. ulimit -n 65536)", err)
	}
	return err
}

// randomID returns n random characters of [a-z0-9].
func randomID(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
