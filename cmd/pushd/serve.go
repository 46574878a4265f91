package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pushd/push/server"
	"github.com/pushd/push/server/boltstore"
	"github.com/pushd/push/server/tasks"
	"github.com/pushd/push/web"
)

// serveOptions are serve's flags. cfg starts as server.DefaultConfig and
// its fields are bound to flags, so the flags' defaults are the server's.
type serveOptions struct {
	cfg          server.Config
	addr         string
	store        string
	storeSet     bool // --store given on the command line
	dataDir      string
	logLevel     string
	shutdownWait time.Duration
	pprofAddr    string
	nats         natsOptions
	auth         authOptions
	idp          idpOptions
	changed      func(flag string) bool
	insecureOpen bool
	maxHeader    int
	readTimeout  time.Duration
	idleTimeout  time.Duration
	web          bool
	proxies      []string
	tlsCert      string
	tlsKey       string
	configFile   string
	printConfig  bool
}

func newServeCmd() *cobra.Command {
	o := serveOptions{cfg: server.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server",
		Long: `Run the server.

Every flag can also come from the environment, as PUSHD_ and the flag's name
in upper case with _ for - (PUSHD_AUTH_SECRET_FILE=/etc/pushd/secret), and
from a TOML config file (--config FILE, or PUSHD_CONFIG) whose keys are the
flags' names (auth-secret-file = "/etc/pushd/secret"). Flags beat the
environment, which beats the file. --print-config shows the settings in
effect and where each came from.`,
		Example: `  pushd serve
  pushd serve --addr 127.0.0.1:18080 --store memory --log-level debug
  pushd serve --config /etc/pushd/pushd.toml --print-config`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sources, err := configLayers(cmd.Flags(), o.configFile, os.LookupEnv)
			if err != nil {
				return err
			}
			o.storeSet = cmd.Flags().Changed("store")
			if o.printConfig {
				if err := printConfig(cmd.OutOrStdout(), cmd.Flags(), sources); err != nil {
					return err
				}
				_, err := o.check()
				return withSource(err, sources)
			}
			return withSource(o.run(cmd.Context()), sources)
		},
	}
	f := cmd.Flags()
	c, lim, tasks := &o.cfg, &o.cfg.Limits, &o.cfg.Tasks
	f.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&o.store, "store", "bolt", "event store: bolt (durable, in --data), memory (forgets everything on exit), or nats (set by --nats)")
	f.StringVar(&o.dataDir, "data", "pushd-data", "data directory of the bolt store")
	f.IntVar(&c.History, "history", c.History, "events kept per stream")
	f.DurationVar(&c.HistoryAge, "history-age", c.HistoryAge, "drop events older than this (0: keep by count only)")
	f.DurationVar(&c.PresenceGrace, "presence-grace", c.PresenceGrace, "how long a user stays present after their last connection closes")
	f.DurationVar(&c.LongPollWait, "long-poll-wait", c.LongPollWait, "longest wait of one long poll")
	f.DurationVar(&c.Heartbeat, "heartbeat", c.Heartbeat, "SSE heartbeat comment and WebSocket ping interval")
	f.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "a subscriber that takes longer to accept one write is dropped (and resumes)")
	f.IntVar(&c.MaxTextBytes, "max-text", c.MaxTextBytes, "longest message text in bytes")
	f.DurationVar(&c.BatchWindow, "batch-window", c.BatchWindow, "on a busy stream of 1,000 or more subscribers, tell them of new events at most this often, each getting everything since in one write; smaller streams wait less (negative: every event at once)")
	f.IntVar(&c.MaxLag, "max-lag", c.MaxLag, "events a live subscriber may fall behind before it is told to reconnect")
	f.IntVar(&tasks.MaxRunning, "max-tasks", tasks.MaxRunning, "background tasks running at once; the rest queue")
	f.IntVar(&tasks.MaxQueued, "max-queued-tasks", tasks.MaxQueued, "tasks waiting to run; a start beyond is refused with 429")
	f.IntVar(&tasks.MaxExternal, "max-external-tasks", tasks.MaxExternal, "external tasks running at once (they take no --max-tasks slot); a start beyond is refused with 429")
	f.DurationVar(&tasks.StallTimeout, "task-stall-timeout", tasks.StallTimeout, "an external task that reports nothing for this long fails as stalled")
	f.IntVar(&tasks.KeepFinished, "keep-tasks", tasks.KeepFinished, "finished tasks kept for GET /v1/tasks")
	f.DurationVar(&tasks.KeepFor, "keep-tasks-for", tasks.KeepFor, "how long finished tasks are kept")
	f.DurationVar(&c.DedupeWindow, "dedupe-window", c.DedupeWindow, "how long message ids and Idempotency-Keys are remembered: a publish or task start repeated with one within this time is not done again")
	f.StringVar(&o.pprofAddr, "pprof", "", "serve Go profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060")
	o.nats.addFlags(f)
	o.auth.addFlags(f)
	o.idp.addFlags(f)
	o.changed = f.Changed
	f.BoolVar(&o.insecureOpen, "insecure-open", false, "without --auth-secret, listen on addresses other than loopback anyway")
	f.StringSliceVar(&c.AllowedHosts, "allowed-hosts", c.AllowedHosts, "host names the server answers to besides localhost and IP addresses, e.g. chat.example.com,*.example.com: a request for another (its Host, or the host a trusted proxy forwards) is refused with 421, so that no page can reach pushd under a name of its own (DNS rebinding)")
	f.StringSliceVar(&c.AllowOrigins, "allow-origin", c.AllowOrigins, "browser origins (besides the server's own) whose pages may use the server, e.g. app.example.com, *.example.com, https://app.example.com")
	f.Float64Var(&lim.PublishRate, "publish-rate", lim.PublishRate, "messages one user may post per second (0: no limit)")
	f.IntVar(&lim.PublishBurst, "publish-burst", lim.PublishBurst, "messages one user may post at once")
	f.Float64Var(&lim.TaskRate, "task-rate", lim.TaskRate, "tasks one user may start per second (0: no limit)")
	f.IntVar(&lim.TaskBurst, "task-burst", lim.TaskBurst, "tasks one user may start at once")
	f.IntVar(&lim.ConnsPerIP, "max-conns-per-ip", lim.ConnsPerIP, "open WebSocket and SSE subscriptions per client address (0: no limit)")
	f.IntVar(&lim.ConnsPerUser, "max-conns-per-user", lim.ConnsPerUser, "subscriptions per user (a token's, or without tokens the ?user= name): rooms and tasks, every transport, waiting long polls too (0: no limit)")
	f.IntVar(&lim.LongPollsPerIP, "max-long-polls-per-ip", lim.LongPollsPerIP, "waiting long polls per client address (0: no limit)")
	f.IntVar(&lim.MaxStreams, "max-rooms", lim.MaxStreams, "rooms in use the server keeps in memory at once (its own streams and publishes are never refused); one unused for two minutes or more leaves, and at the limit an unused one makes room at once")
	f.Int64Var(&lim.WSReadLimit, "ws-read-limit", lim.WSReadLimit, "largest WebSocket message a client may send, in bytes")
	f.Int64Var(&c.MaxBodyBytes, "max-body", c.MaxBodyBytes, "largest request body, in bytes")
	f.IntVar(&o.maxHeader, "max-header-bytes", 16<<10, "largest request header, in bytes")
	f.DurationVar(&o.readTimeout, "read-header-timeout", 10*time.Second, "time a client has to send its request header")
	f.DurationVar(&c.ReadTimeout, "read-timeout", c.ReadTimeout, "time a client has to send a request body")
	f.DurationVar(&o.idleTimeout, "idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	f.BoolVar(&o.web, "web", true, "serve the web app at / and the browser client at /pushd.js")
	f.StringSliceVar(&o.proxies, "trusted-proxies", nil, "addresses or CIDRs of the proxies in front of pushd, e.g. 127.0.0.1,10.0.0.0/8: from them the client's address comes from X-Forwarded-For or Forwarded (for the per-address limits and logs), and the page's origin from X-Forwarded-Host and -Proto")
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS (and HTTP/2) with this PEM certificate (chain) file; SIGHUP loads it again")
	f.StringVar(&o.tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	f.StringVar(&o.configFile, "config", "", "TOML file of settings, one key per flag (env PUSHD_CONFIG)")
	f.BoolVar(&o.printConfig, "print-config", false, "print the settings in effect, where each came from, secrets masked, and exit")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.DurationVar(&o.shutdownWait, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take")
	return cmd
}

// check validates the flags, before anything is opened or logged: every
// mistake in them is a usage error.
func (o *serveOptions) check() (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return level, usagef("--log-level %q: use debug, info, warn or error", o.logLevel)
	}
	if err := checkListenAddr("--addr", o.addr); err != nil {
		return level, err
	}
	if o.pprofAddr != "" {
		if err := checkListenAddr("--pprof", o.pprofAddr); err != nil {
			return level, err
		}
		if !isLoopback(o.pprofAddr) {
			return level, usagef("--pprof %s: the profiles are served on loopback only, such as 127.0.0.1:6060 or [::1]:6060 (they show what the process holds)", o.pprofAddr)
		}
	}
	for _, h := range o.cfg.AllowedHosts {
		if _, err := path.Match(h, ""); err != nil || h == "" || strings.Contains(h, "/") {
			return level, usagef("--allowed-hosts %q: give host names such as chat.example.com or *.example.com, optionally with :port", h)
		}
	}
	if err := o.idp.check(o.changed); err != nil {
		return level, err
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return level, usagef("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
	}
	proxies, err := server.ParseTrustedProxies(o.proxies)
	if err != nil {
		return level, usagef("--trusted-proxies: %v; give addresses or CIDRs such as 127.0.0.1,10.0.0.0/8", err)
	}
	o.cfg.TrustedProxies = proxies
	if o.cfg.History < 1 {
		return level, usagef("--history %d: keep at least 1 event per stream", o.cfg.History)
	}
	if err := o.checkRanges(); err != nil {
		return level, err
	}
	if o.nats.url != "" {
		if o.storeSet && o.store != "nats" {
			return level, usagef("--store %s and --nats: with --nats the store is NATS JetStream; leave --store out", o.store)
		}
		o.store = "nats"
	}
	switch o.store {
	case "nats":
		if o.nats.url == "" {
			return level, usagef("--store nats needs --nats URL, e.g. --nats nats://127.0.0.1:4222")
		}
		if err := o.nats.check(); err != nil {
			return level, err
		}
	case "memory", "bolt":
	default:
		return level, usagef("--store %q: use bolt or memory, or give --nats URL", o.store)
	}
	return level, nil
}

// checkRanges refuses values that mean nothing, where the server would
// otherwise take them quietly for its default: a zero heartbeat, a
// negative limit. A 0 that means "no limit" is documented on its flag.
func (o *serveOptions) checkRanges() error {
	c, lim, tasks := &o.cfg, &o.cfg.Limits, &o.cfg.Tasks
	positive := []struct {
		flag string
		d    time.Duration
	}{
		{"--presence-grace", c.PresenceGrace}, {"--long-poll-wait", c.LongPollWait}, {"--heartbeat", c.Heartbeat},
		{"--write-timeout", c.WriteTimeout}, {"--task-stall-timeout", tasks.StallTimeout}, {"--keep-tasks-for", tasks.KeepFor},
		{"--read-header-timeout", o.readTimeout}, {"--read-timeout", c.ReadTimeout}, {"--idle-timeout", o.idleTimeout},
		{"--shutdown-timeout", o.shutdownWait}, {"--dedupe-window", c.DedupeWindow},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return usagef("%s %s: give a positive duration, e.g. %s 10s", p.flag, p.d, p.flag)
		}
	}
	counts := []struct {
		flag string
		n    int64
	}{
		{"--max-text", int64(c.MaxTextBytes)}, {"--max-lag", int64(c.MaxLag)}, {"--max-tasks", int64(tasks.MaxRunning)},
		{"--max-queued-tasks", int64(tasks.MaxQueued)}, {"--max-external-tasks", int64(tasks.MaxExternal)},
		{"--keep-tasks", int64(tasks.KeepFinished)}, {"--max-rooms", int64(lim.MaxStreams)},
		{"--ws-read-limit", lim.WSReadLimit}, {"--max-body", c.MaxBodyBytes}, {"--max-header-bytes", int64(o.maxHeader)},
	}
	for _, c := range counts {
		if c.n < 1 {
			return usagef("%s %d: give 1 or more", c.flag, c.n)
		}
	}
	switch {
	case c.MaxBodyBytes < int64(c.MaxTextBytes)+1024:
		return usagef("--max-body %d: leave room for a message of --max-text %d bytes and its JSON, e.g. --max-body %d", c.MaxBodyBytes, c.MaxTextBytes, max(int64(c.MaxTextBytes)*2, 64<<10))
	case c.HistoryAge < 0:
		return usagef("--history-age %s: give 0 (keep by count only) or a positive duration", c.HistoryAge)
	case lim.PublishRate < 0:
		return usagef("--publish-rate %g: give 0 (no limit) or more", lim.PublishRate)
	case lim.PublishRate > 0 && lim.PublishBurst < 1:
		return usagef("--publish-burst %d: give 1 or more", lim.PublishBurst)
	case lim.TaskRate < 0:
		return usagef("--task-rate %g: give 0 (no limit) or more", lim.TaskRate)
	case lim.TaskRate > 0 && lim.TaskBurst < 1:
		return usagef("--task-burst %d: give 1 or more", lim.TaskBurst)
	case lim.ConnsPerIP < 0, lim.ConnsPerUser < 0, lim.LongPollsPerIP < 0:
		return usagef("--max-conns-per-ip, --max-conns-per-user and --max-long-polls-per-ip: give 0 (no limit) or more")
	}
	return nil
}

func (o *serveOptions) run(ctx context.Context) error {
	level, err := o.check()
	if err != nil {
		return err
	}
	secret, err := o.auth.secret()
	if err != nil {
		return err
	}
	open := len(secret) == 0 && o.idp.p.JWKS == ""
	if open && !o.insecureOpen && !isLoopback(o.addr) {
		return usagef("refusing to listen on %s without authentication: give --auth-secret-file (or --auth-secret) or --auth-jwks, listen on 127.0.0.1, or pass --insecure-open", o.addr)
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	files, err := raiseFileLimit()
	if err != nil {
		log.Warn("open-file limit", "err", err)
	} else {
		logFileLimit(log, files, o.cfg.Limits.ConnsPerIP)
	}
	if open {
		log.Warn("running open: no --auth-secret or --auth-jwks, so anyone who can reach the server can read and post anything")
	}

	var store server.Store
	var taskStore tasks.Store
	var roster server.Roster
	var taskPeers tasks.Peers
	switch o.store {
	case "nats":
		parts, err := o.nats.open(ctx, o.cfg.History, o.cfg.HistoryAge, o.cfg.DedupeWindow, log)
		if err != nil {
			return err
		}
		defer parts.close()
		store, taskStore, roster, taskPeers = parts.store, parts.taskStore, parts.roster, parts.taskPeers
	case "bolt":
		bs, err := boltstore.Open(o.dataDir, boltstore.Options{MaxEvents: o.cfg.History, MaxAge: o.cfg.HistoryAge, DedupeWindow: o.cfg.DedupeWindow})
		if err != nil {
			return err
		}
		defer bs.Close()
		store, taskStore = bs, bs
	}
	cfg := o.cfg
	cfg.AuthSecret, cfg.IdentityProvider, cfg.Logger = secret, o.idp.p, log
	cfg.Store, cfg.TaskStore, cfg.Roster, cfg.TaskPeers = store, taskStore, roster, taskPeers
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	if o.pprofAddr != "" {
		stopProfiles, err := servePprof(o.pprofAddr, log)
		if err != nil {
			_ = srv.Shutdown(ctx) // it has served nothing: nothing to wait for
			return err
		}
		defer stopProfiles()
	}
	var certs *certLoader
	if o.tlsCert != "" {
		if certs, err = newCertLoader(o.tlsCert, o.tlsKey); err != nil {
			_ = srv.Shutdown(ctx)
			return err
		}
	}
	ln, err := listen("--addr", o.addr)
	if err != nil {
		_ = srv.Shutdown(ctx)
		return err
	}
	ln = srv.Listener(ln)
	var handler http.Handler = srv
	if o.web {
		handler = web.Handler(srv)
	}
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: o.readTimeout,
		IdleTimeout:       o.idleTimeout,
		MaxHeaderBytes:    o.maxHeader,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if certs != nil {
		// HTTP/2 where the client offers it (SSE streams then share one
		// connection); a WebSocket upgrade is a request of HTTP/1.1, which
		// clients make on a connection of its own.
		scheme = "https"
		hs.TLSConfig = certs.config()
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	log.Info("pushd listening", "addr", ln.Addr().String(), "scheme", scheme, "store", o.store, "data", o.dataDirFor(), "history", o.cfg.History)
	if certs != nil {
		log.Info("serving TLS", describeCert(certs.cur.Load().Leaf)...)
	}
	if o.store == "nats" {
		log.Info("sharing streams through NATS JetStream", "nats", maskURLs(o.nats.url), "prefix", o.nats.prefix, "replicas", o.nats.replicas)
	}
	stopReloads := reloadOnHangup(certs, log)
	defer stopReloads()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: telling clients to reconnect")
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownWait)
	defer cancel()
	// Stop accepting first, then end the subscriptions; Shutdown waits for
	// plain requests, srv.Shutdown for the streams (hijacked ones too).
	hsDone := make(chan error, 1)
	go func() { hsDone <- hs.Shutdown(sctx) }()
	serr := srv.Shutdown(sctx)
	herr := <-hsDone
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("serve", "err", err)
	}
	if err := errors.Join(serr, herr); err != nil {
		_ = hs.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// reloadOnHangup loads the TLS certificate again on every SIGHUP, until the
// returned func is called; a certificate that does not load is logged and
// the one served so far stays. Without TLS there is nothing to load, and
// SIGHUP is only logged (it does not end the process).
func reloadOnHangup(certs *certLoader, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-hup:
			case <-done:
				return
			}
			if certs == nil {
				log.Info("SIGHUP: nothing to reload (no --tls-cert)")
				continue
			}
			leaf, err := certs.reload()
			if err != nil {
				log.Error("SIGHUP: TLS certificate not reloaded; serving the previous one", "err", err)
				continue
			}
			log.Info("SIGHUP: TLS certificate reloaded", describeCert(leaf)...)
		}
	})
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}

// dataDirFor names the data directory in logs, or "-" for the memory store.
func (o *serveOptions) dataDirFor() string {
	if o.store != "bolt" {
		return "-"
	}
	return o.dataDir
}

// listenAddrHint is what a listen address looks like, for its errors.
const listenAddrHint = "want host:port, such as 127.0.0.1:8080, [::1]:8080 or :8080 for every interface"

// checkListenAddr checks that addr, the value of flag, is host:port with a
// port from 0 to 65535 (0: any free one). The host is left to listen,
// which refuses one that names nothing.
func checkListenAddr(flag, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return usagef("%s %q: %v; %s", flag, addr, err, listenAddrHint)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return usagef("%s %q: the port must be a number from 0 to 65535; %s", flag, addr, listenAddrHint)
	}
	return nil
}

// listen listens on addr, the value of flag. A host that names no address
// is a mistake on the command line, like a malformed address.
func listen(flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return nil, usagef("%s %q: %v; %s", flag, addr, dnsErr, listenAddrHint)
	case err != nil:
		return nil, fmt.Errorf("%s: listen on %s: %w", flag, addr, err)
	}
	return ln, nil
}

// isLoopback reports whether a listen address stays on this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
