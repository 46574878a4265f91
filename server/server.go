package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
)

// Server is pushd's HTTP API: subscribe, publish, presence and health. It
// is an http.Handler; Shutdown ends its subscriptions.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     Store
	ownsStore bool
	hub       *Hub
	runq      *runQueue // runs woken streaming subscribers
	presence  *presence
	ready     *readiness
	tasks     *tasks.Runner
	watchers  *taskWatchers
	tokens    *tokenVerifier // nil: the server runs open
	mux       *http.ServeMux

	conns      counter // open WebSocket and SSE subscriptions per address
	polls      counter // waiting long polls per address
	userConns  counter // open subscriptions per user
	publishes  *limiters
	taskStarts *limiters
	metrics    *metrics
	// upgradeLostLog logs WebSocket handshakes a proxy stripped, at most
	// once a minute.
	upgradeLostLog rate.Sometimes
	tracker        *tracker // open subscriptions, for the stats
	statsHub       *Hub     // the stats stream's, in memory only
	sampler        *sampler

	// background work that lives as long as the server: following shared
	// stores, the presence roster, task peers. Shutdown cancels it and
	// waits.
	bgCancel context.CancelFunc
	bg       sync.WaitGroup

	mu      sync.Mutex
	closing bool
	active  int           // running subscription handlers, including hijacked WebSockets
	drained chan struct{} // closed when closing and active reaches 0
}

// errShuttingDown refuses new subscriptions during Shutdown.
var errShuttingDown = protocol.Errorf(http.StatusServiceUnavailable, protocol.CodeUnavailable, "the server is shutting down; retry in a moment")

// begin counts a subscription handler in; false once Shutdown has begun.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.active++
	return true
}

// end counts a subscription handler out.
func (s *Server) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active--; s.closing && s.active == 0 {
		close(s.drained)
	}
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	tokens, err := newTokenVerifier(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: cfg.Store, drained: make(chan struct{}), tokens: tokens,
		upgradeLostLog: rate.Sometimes{Interval: time.Minute}, runq: newRunQueue()}
	if s.store == nil {
		s.store = NewMemoryStore(MemoryOptions{MaxEvents: cfg.History, MaxAge: cfg.HistoryAge, DedupeWindow: cfg.DedupeWindow})
		s.ownsStore = true
	}
	s.ready = newReadiness(s.store)
	s.hub = newHub(s.ready.watch(s.store), hubConfig{
		batchWindow: cfg.BatchWindow,
		perPusher:   windowPerPusher,
		tailSize:    cfg.TailSize,
		maxLag:      cfg.MaxLag,
		maxStreams:  cfg.Limits.MaxStreams,
		streamIdle:  cfg.StreamIdle,
		log:         cfg.Logger,
		onPublish:   func(n int) { s.metrics.published.Add(float64(n)) },
		onAppend:    func(d time.Duration) { s.metrics.appends.observe(d) },
	})
	s.tracker, s.statsHub = newTracker(), newStatsHub(cfg)
	// Metrics first: what follows may publish, and timers it starts may
	// fire before New returns.
	s.metrics = newMetrics(s.hub, func() *tasks.Runner { return s.tasks })
	s.newLimiters()
	saved, _ := s.store.(PresenceStore)
	s.presence = newPresence(s.hub, cfg.PresenceGrace, cfg.Roster, saved)
	if err := s.presence.adopt(context.Background()); err != nil {
		s.log.Warn("who was present before the restart is not known; they will log in again", "err", err)
	}
	s.watchers = newTaskWatchers()
	runner, err := tasks.New(context.Background(), taskStream{hub: s.hub, store: s.store, watchers: s.watchers}, cfg.Tasks, cfg.TaskStore, cfg.TaskPeers, cfg.Logger)
	if err != nil {
		tokens.close()
		return nil, err
	}
	s.tasks = runner
	s.mux = http.NewServeMux()
	s.routes()
	var bgCtx context.Context
	bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.startStats(bgCtx)
	if cfg.Roster != nil {
		s.bg.Go(func() { cfg.Roster.Run(bgCtx, s.presence.gone) })
	}
	if cfg.TaskPeers != nil {
		s.bg.Go(func() {
			if err := cfg.TaskPeers.Serve(bgCtx, s.tasks.Local()); err != nil && bgCtx.Err() == nil {
				s.log.Error("serve task requests from other servers", "err", err)
			}
		})
	}
	return s, nil
}

// Hub returns the server's hub, for programs that embed pushd and publish
// from Go.
func (s *Server) Hub() *Hub { return s.hub }

// Tasks returns the server's task runner, for programs that embed pushd
// and register their own task kinds (see tasks.RegisterKind).
func (s *Server) Tasks() *tasks.Runner { return s.tasks }

func (s *Server) routes() {
	s.handle("/healthz", map[string]handlerFunc{http.MethodGet: s.handleHealth})
	s.handle("/readyz", map[string]handlerFunc{http.MethodGet: s.handleReady})
	s.mux.Handle("GET /metrics", s.metrics.handler())
	s.handle("/v1/rooms", map[string]handlerFunc{http.MethodGet: s.handleRooms})
	s.handle("/v1/rooms/{room}/events", map[string]handlerFunc{http.MethodGet: s.handleRoomEvents})
	s.handle("/v1/rooms/{room}/messages", map[string]handlerFunc{http.MethodPost: s.handlePublish})
	s.handle("/v1/rooms/{room}/presence", map[string]handlerFunc{http.MethodGet: s.handlePresence})
	s.handle("/v1/tasks", map[string]handlerFunc{http.MethodGet: s.handleListTasks, http.MethodPost: s.handleStartTask})
	s.handle("/v1/tasks/events", map[string]handlerFunc{http.MethodGet: s.handleTasksEvents})
	s.handle("/v1/tasks/{id}", map[string]handlerFunc{http.MethodGet: s.handleGetTask})
	s.handle("/v1/tasks/{id}/events", map[string]handlerFunc{http.MethodGet: s.handleTaskEvents})
	s.handle("/v1/tasks/{id}/progress", map[string]handlerFunc{http.MethodPost: s.handleTaskProgress})
	s.handle("/v1/tasks/{id}/cancel", map[string]handlerFunc{http.MethodPost: s.handleCancelTask})
	s.statsRoutes()
	s.mux.Handle("/", s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		return protocol.Errorf(http.StatusNotFound, protocol.CodeNotFound, "no such endpoint: %s %s (see PROTOCOL.md)", r.Method, r.URL.Path)
	}))
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers a path with one handler per method, answering other
// methods with 405 and an Allow header, and a query that repeats a
// parameter with 400 (checkQuery).
func (s *Server) handle(pattern string, byMethod map[string]handlerFunc) {
	methods := slices.Sorted(maps.Keys(byMethod))
	if _, ok := byMethod[http.MethodGet]; ok {
		methods = append(methods, http.MethodHead)
	}
	allow := strings.Join(methods, ", ")
	s.mux.Handle(pattern, s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		h, ok := byMethod[method]
		if !ok {
			w.Header().Set("Allow", allow)
			return protocol.Errorf(http.StatusMethodNotAllowed, protocol.CodeMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, allow)
		}
		if err := checkQuery(r); err != nil {
			return err
		}
		return h(w, r)
	}))
}

// adapt turns a handlerFunc into an http.Handler that writes its error and
// turns a panic into a 500, so no panic reaches a client's connection.
func (s *Server) adapt(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				s.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		// Every answer must be written within the write timeout; streams
		// set their own deadline per write. A body must arrive within the
		// read timeout (slowloris), and the answer then has the write
		// timeout after it: a body that comes too late gets its 408.
		rc := http.NewResponseController(w)
		now := time.Now()
		write := now.Add(s.cfg.WriteTimeout)
		if r.ContentLength != 0 {
			_ = rc.SetReadDeadline(now.Add(s.cfg.ReadTimeout))
			write = write.Add(s.cfg.ReadTimeout)
		}
		_ = rc.SetWriteDeadline(write)
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.checkHost(w, r) || s.checkOrigin(w, r) {
		return
	}
	if p := r.URL.Path; p != "/" && p != cleanPath(p) {
		// The mux would answer with a redirect to the cleaned path; an API
		// client is better told what is wrong.
		s.writeError(w, r, protocol.Errorf(http.StatusNotFound, protocol.CodeNotFound,
			"no such endpoint: %s %s: the path has an empty or dot segment (a room name or task id missing?); see PROTOCOL.md", r.Method, p))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// cleanPath is p without empty or dot segments, keeping a final slash.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// Shutdown cancels the tasks this server runs (their final events go out
// first; external tasks, whose work runs elsewhere, are kept as they are
// for the next start when a task store of its own keeps them), then tells
// every subscriber to reconnect (WebSocket close 1012, SSE close
// event, empty long-poll answer) and waits for their handlers to finish,
// or for ctx. It does not stop an http.Server; do that too.
func (s *Server) Shutdown(ctx context.Context) error {
	terr := s.tasks.Shutdown(ctx)
	s.hub.settle(ctx)
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		if s.active == 0 {
			close(s.drained)
		}
	}
	s.mu.Unlock()
	s.hub.shutdown()
	s.stopStats()
	s.presence.stop()
	s.bgCancel()
	s.bg.Wait()
	s.tokens.close()
	s.closeStats()
	err := terr
	select {
	case <-s.drained:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("shutdown: subscribers still connected: %w", ctx.Err()))
	}
	if s.ownsStore {
		if cerr := s.store.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}
