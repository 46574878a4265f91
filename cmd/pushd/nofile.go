package main

import "log/slog"

// filesReserve is how many open files a server keeps for what is not a
// client's connection: its listener, store, logs, NATS, a few requests.
const filesReserve = 64

// fileLimit is the process's open-file limit (RLIMIT_NOFILE).
type fileLimit struct {
	soft, hard uint64
	raisedFrom uint64 // the soft limit before raiseFileLimit, when it raised it
}

// logFileLimit reports the open-file limit and how many connections it
// leaves room for, and warns when the per-address limit cannot fit in it.
func logFileLimit(log *slog.Logger, fl fileLimit, connsPerIP int) {
	conns := 0
	if fl.soft > filesReserve {
		conns = int(min(fl.soft-filesReserve, 1<<31))
	}
	attrs := []any{"soft", fl.soft, "hard", fl.hard, "connections", conns}
	if fl.raisedFrom != 0 {
		attrs = append(attrs, "raised_from", fl.raisedFrom)
	}
	log.Info("open-file limit: each subscriber is one open file", attrs...)
	switch {
	case connsPerIP > conns:
		log.Warn("--max-conns-per-ip is more than the open-file limit leaves room for: the server runs out of files before one address reaches its limit; raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) or lower --max-conns-per-ip",
			"max_conns_per_ip", connsPerIP, "connections", conns)
	case conns < 4096:
		log.Warn("the open-file limit leaves room for few connections; raise it (ulimit -n, or LimitNOFILE= in a systemd unit) to serve more subscribers",
			"connections", conns)
	}
}
