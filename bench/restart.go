package bench

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pushd/push/internal/backoff"
)

// Bounds on the server process that Run starts with ServerCommand: how
// long it may take to answer /healthz after it starts, and to exit after
// SIGTERM before it is killed.
const (
	serverStartTimeout = time.Minute
	serverStopTimeout  = 30 * time.Second
)

// serverProc is the target's server when Run starts it (ServerCommand):
// one process at a time, started again by restart. Only Run's goroutine
// and the restart goroutine use it, one after the other.
type serverProc struct {
	o    Options
	url  string // the target, whose /healthz says the process accepts
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // how cmd exited, once done is closed
}

// startServer starts ServerCommand and waits until the target answers
// /healthz with 200.
func startServer(ctx context.Context, o Options, url string) (*serverProc, error) {
	p := &serverProc{o: o, url: url}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// start starts a process of ServerCommand and waits until it accepts.
func (p *serverProc) start(ctx context.Context) error {
	cmd := exec.Command(p.o.ServerCommand[0], p.o.ServerCommand[1:]...)
	cmd.Env = p.o.ServerEnv
	cmd.Stdout, cmd.Stderr = p.o.ServerOutput, p.o.ServerOutput
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the server: %w", err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := p.waitAccepting(ctx); err != nil {
		_ = p.stop()
		return fmt.Errorf("start the server: %w", err)
	}
	return nil
}

// pid is the process id of the running server.
func (p *serverProc) pid() int { return p.cmd.Process.Pid }

// waitAccepting asks /healthz every 5 ms until it answers 200, the
// process exits, or serverStartTimeout passes. In a reconnect storm its
// connection waits in the kernel's queue like the subscribers' do.
func (p *serverProc) waitAccepting(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, serverStartTimeout)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	for {
		select {
		case <-p.done:
			return fmt.Errorf("the server exited before it accepted connections: %v", p.err)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !backoff.Sleep(ctx, 5*time.Millisecond) {
			return fmt.Errorf("%s did not answer /healthz within %s", p.url, serverStartTimeout)
		}
	}
}

// stop ends the server as an operator would: SIGTERM, then SIGKILL if it
// has not exited within serverStopTimeout. It returns how the process
// exited when that was not with status 0 after SIGTERM.
func (p *serverProc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(serverStopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("the server exited after SIGTERM with %w", p.err)
		}
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("the server did not exit within %s of SIGTERM and was killed", serverStopTimeout)
	}
}

// storm is the restart of a run with RestartAfter: when it happened and
// how the subscribers came back. Subscribers call resumed; the rest is
// read once the run is over.
type storm struct {
	oldGone   atomic.Bool   // the old server has exited
	resumedN  atomic.Int64  // subscribers connected to the new server
	all       chan struct{} // closed when every subscriber has
	firstAt   atomic.Int64  // unix nanos when the first one did
	allAt     atomic.Int64  // unix nanos when the last one did
	stopAt    time.Time     // SIGTERM sent to the old server
	healthyAt time.Time     // the new server answered /healthz
	stopErr   error         // how the old server did not stop cleanly, if it did not
	err       error         // why the restart failed, if it did
	restarted chan struct{} // closed once the restart is over, failed or not
}

func newStorm() *storm {
	return &storm{all: make(chan struct{}), restarted: make(chan struct{})}
}

// resumed is called by subscriber s each time a connection of its comes
// up. One that comes up once the old server has exited is to the new one,
// however long ago it began: in a storm a connection may wait out SYN
// retransmissions while the kernel's accept queue is full.
func (r *runner) resumed(s *subscriber) {
	st := r.storm
	if st == nil || s.resumed || !st.oldGone.Load() {
		return
	}
	s.resumed = true
	now := time.Now().UnixNano()
	st.firstAt.CompareAndSwap(0, now)
	if st.resumedN.Add(1) == int64(r.o.Subscribers) {
		st.allAt.Store(now)
		close(st.all)
	}
}

// restart stops the server and starts it again, once RestartAfter
// messages are acknowledged. Subscribers' connections that come up after
// the old process has exited count as resumed.
func (r *runner) restart(ctx context.Context, trigger <-chan struct{}) {
	st := r.storm
	defer close(st.restarted)
	select {
	case <-trigger:
	case <-ctx.Done():
		st.err = ctx.Err()
		return
	}
	r.progressf("%d messages acknowledged; restarting the server", r.published.Load())
	st.stopAt = time.Now()
	st.stopErr = r.server.stop()
	st.oldGone.Store(true)
	if err := r.server.start(ctx); err != nil {
		st.err = err
		return
	}
	st.healthyAt = time.Now()
	r.progressf("the server answered /healthz %s after SIGTERM (pid %d)", seconds(st.healthyAt.Sub(st.stopAt)), r.server.pid())
}

// stormReport puts what the restart measured in rep, once the run is over.
func (r *runner) stormReport(rep *Report) {
	st := r.storm
	<-st.restarted
	rep.RestartAfter = r.o.RestartAfter
	rep.Resumed = st.resumedN.Load()
	if st.stopErr != nil {
		rep.Notes = append(rep.Notes, "restart: "+st.stopErr.Error())
	}
	if st.err != nil {
		rep.Notes = append(rep.Notes, "restart: "+st.err.Error())
		return
	}
	// The server accepted again when it first answered anyone: /healthz
	// or a subscriber, whichever was first.
	accept := st.healthyAt.UnixNano()
	if first := st.firstAt.Load(); first > 0 && first < accept {
		accept = first
	}
	rep.Outage = time.Duration(accept - st.stopAt.UnixNano())
	if at := st.allAt.Load(); at > 0 {
		rep.ResumeTime = time.Duration(at - accept)
	} else {
		rep.Notes = append(rep.Notes, fmt.Sprintf("restart: %d of %d subscribers resumed", rep.Resumed, r.o.Subscribers))
	}
}
