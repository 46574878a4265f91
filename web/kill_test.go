package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pushdtest.RemoveBuilt()
	os.Exit(code)
}

// startChild runs pushd serve (the binary) on addr with the bolt store in
// data, and args, and waits until it listens; it is killed when the test
// ends.
func startChild(t *testing.T, addr, data string, args ...string) *pushdtest.Process {
	t.Helper()
	argv := append([]string{"serve", "--addr", addr, "--data", data, "--publish-rate", "0", "--presence-grace", "2s"}, args...)
	return pushdtest.StartProcess(t, exec.Command(pushdtest.BuildPushd(t), argv...))
}

// TestAppAcrossSIGKILL: while messages are posted, pushd on the bolt store
// is killed with SIGKILL and started again; the app, on each transport,
// shows every message of the room once and in order, and says that it was
// reconnecting.
func TestAppAcrossSIGKILL(t *testing.T) {
	b := newBrowser(t, 1000, 700)
	for _, transport := range appTransports {
		t.Run(transport, func(t *testing.T) {
			addr, data := pushdtest.FreeAddr(t), t.TempDir()
			base := "http://" + addr
			p := startChild(t, addr, data)
			room := "kill-" + transport
			page := b.open(t, "ann", appURL(base, room, "ann", transport))
			page.waitFor("connected", connectedOver(transport))

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var acked atomic.Int32
			const total = 30
			done := make(chan error, 1)
			go func() { done <- postAll(ctx, base, room, total, &acked) }()
			testwait.Until(t, pushdtest.Timeout, 5*time.Millisecond, func() error {
				if n := acked.Load(); n < total/3 {
					return fmt.Errorf("%d messages acknowledged", n)
				}
				return nil
			})
			p.Kill(t)
			page.waitFor("noticed", `document.getElementById("conn").dataset.reconnects >= 1 ? "" : "not yet"`)
			p = startChild(t, addr, data)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(pushdtest.Timeout):
				t.Fatalf("the messages were not all posted: %d acknowledged", acked.Load())
			}

			want := roomMessages(t, p, room)
			if len(want) < total {
				t.Fatalf("the room has %d messages after the restart; want at least the %d acknowledged", len(want), total)
			}
			wantJSON, _ := json.Marshal(want)
			page.waitFor("every message once, in order", `(() => { const got = JSON.stringify(`+appMessages+`.map(m => [m[0], m[2]]));
				return got === `+js(string(wantJSON))+` ? "" : "shows " + got; })()`)
			page.waitFor("live again", connectedOver(transport))
			page.expect("said it was reconnecting", `(() => { const notes = [...document.querySelectorAll("#messages li.sys.net")].map(li => li.textContent);
				return notes.some(n => /reconnecting/.test(n)) && notes.some(n => /^Reconnected/.test(n)) &&
					Number(document.getElementById("conn").dataset.reconnects) >= 1 ? "" : "notes " + JSON.stringify(notes); })()`)
		})
	}
}

// postAll posts messages m-00 to m-(n-1) to room one after another, each
// retried until pushd acknowledges it (it refuses connections while it is
// down), counting the acknowledged ones in acked.
func postAll(ctx context.Context, base, room string, n int, acked *atomic.Int32) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	bo := backoff.New(backoff.Policy{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond})
	for i := range n {
		body := fmt.Sprintf(`{"user":"curl","text":"m-%02d"}`, i)
		for {
			resp, err := hc.Post(base+"/v1/rooms/"+room+"/messages", "application/json", strings.NewReader(body))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					acked.Add(1)
					bo.Reset()
					break
				}
				if resp.StatusCode < 500 {
					return fmt.Errorf("post m-%02d: %s", i, resp.Status)
				}
			}
			if !backoff.Sleep(ctx, bo.Next()) {
				return ctx.Err()
			}
		}
	}
	return nil
}

// roomMessages returns the room's messages as [seq, text] pairs, from
// the server's log.
func roomMessages(t *testing.T, p *pushdtest.Process, room string) [][2]any {
	t.Helper()
	var out [][2]any
	for _, ev := range p.History(t, pushdtest.RoomPath(room)) {
		if ev.Type == protocol.TypeMessage {
			out = append(out, [2]any{ev.Seq, ev.Text})
		}
	}
	return out
}

// TestServeWebFlag: pushd serve has the app and pushd.js by default, and
// --web=false leaves only the API.
func TestServeWebFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
	}{
		{nil, http.StatusOK},
		{[]string{"--web=false"}, http.StatusNotFound},
	} {
		p := startChild(t, pushdtest.FreeAddr(t), t.TempDir(), c.args...)
		for _, path := range []string{"/", "/pushd.js", "/app.js"} {
			if got := p.Get(t, path).Status; got != c.want {
				t.Errorf("pushd serve %v: GET %s: %d; want %d", c.args, path, got, c.want)
			}
		}
	}
}
