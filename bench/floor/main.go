// Command floor is the least a push server can do: it measures what a
// machine allows before any server's own work. It speaks as much of
// pushd's HTTP API as a load generator needs (GET /healthz, the short
// poll for a room's cursor, WebSocket and SSE subscriptions, and POST to a
// room's messages) and nothing else: no store, no history, no long polls,
// no limits, no authentication, no heartbeats. A subscriber that does not
// read for 10 s is dropped. A publish encodes its event once and
// writes the same frame to every subscriber of the room, on as many
// goroutines as the machine has CPUs, then answers.
//
// Run a benchmark against it as against pushd, one after the other on the
// same machine; what pushd adds is the difference. A subscriber's since=
// is not read: it gets the events published after it connected.
//
//	go run ./bench/floor --addr 127.0.0.1:18080
//	pushd bench --target http://127.0.0.1:18080 --subscribers 15000 --messages 20 --rate 2
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "address to listen on")
	writers := flag.Int("writers", runtime.GOMAXPROCS(0), "goroutines that write one publish to the subscribers")
	flag.Parse()
	if *writers < 1 {
		fmt.Fprintln(os.Stderr, "floor: --writers needs at least 1")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: newServer(*writers)}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Printf("floor: listening on http://%s with %d writers", ln.Addr(), *writers)
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
