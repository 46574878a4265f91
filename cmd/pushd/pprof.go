package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
)

// servePprof serves Go's profiles on their own listener, so they are never
// exposed on the public address by accident: on loopback only (check
// refuses another --pprof address), to requests for a loopback host only
// (a page of another name resolved to 127.0.0.1 gets 421), and with the
// secrets of the command line masked. The returned func stops it.
func servePprof(addr string, log *slog.Logger) (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", maskedCmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := listen("--pprof", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: loopbackHostOnly(mux)}
	go func() { _ = srv.Serve(ln) }()
	log.Info("profiles on", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { _ = srv.Close() }, nil
}

// loopbackHostOnly answers only requests whose Host is localhost or a
// loopback address: a page whose name is made to resolve to 127.0.0.1
// (DNS rebinding) is refused.
func loopbackHostOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			http.Error(w, fmt.Sprintf("the profiles answer only to localhost and loopback addresses, not to %q", r.Host), http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether host (a Host header) names this machine:
// localhost or a loopback address, with or without a port.
func loopbackHost(host string) bool {
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "0")
	}
	return isLoopback(host)
}

// maskedCmdline is pprof's cmdline, with the values of secret flags and
// the passwords of URLs masked as --print-config masks them.
func maskedCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, strings.Join(maskArgs(os.Args), "\x00"))
}

// maskArgs returns args with the value of every secret flag (--flag V,
// --flag=V, and the single-dash forms) masked, and the passwords of URLs.
func maskArgs(args []string) []string {
	out := make([]string, len(args))
	secretNext := false
	for i, a := range args {
		switch {
		case secretNext:
			out[i], secretNext = "********", false
			continue
		case strings.HasPrefix(a, "-"):
			flag, value, hasValue := strings.Cut(a, "=")
			switch {
			case secretFlags[strings.TrimLeft(flag, "-")] && hasValue:
				out[i] = flag + "=********"
			case secretFlags[strings.TrimLeft(flag, "-")]:
				out[i], secretNext = a, true
			case hasValue:
				out[i] = flag + "=" + maskURLs(value)
			default:
				out[i] = a
			}
			continue
		}
		out[i] = maskURLs(a)
	}
	return out
}
