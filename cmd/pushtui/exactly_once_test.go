package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
)

// TestChatPipedExactlyOnceThroughFaultsAndKill: every line piped to the
// chat is in the room exactly once, in order, and the chat says so (exit
// 0, nothing reported unsent), while a proxy between it and pushd loses
// the answers to some sends (or, separately, cuts some sends before pushd
// sees them) and pushd, on the bolt store, is killed with SIGKILL and
// started again in the middle.
func TestChatPipedExactlyOnceThroughFaultsAndKill(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault pushdtest.Fault
	}{{"answers lost", pushdtest.LoseAnswer}, {"requests cut", pushdtest.CutRequest}} {
		t.Run(tc.name, func(t *testing.T) {
			addr, data := pushdtest.FreeAddr(t), t.TempDir()
			startPushd := func() *pushdtest.Process {
				return pushdtest.StartProcess(t, exec.Command(pushdtest.BuildPushd(t), "serve", "--addr", addr, "--data", data, "--publish-rate", "0"))
			}
			pd := startPushd()
			proxy := pushdtest.StartFaultyProxy(t, func(_ *http.Request, n int) pushdtest.Fault {
				if n%3 == 0 {
					return tc.fault
				}
				return pushdtest.Pass
			}, pd.URL)
			in, keys := io.Pipe()
			defer keys.Close()
			chat := start(t, in, nil, "--server", proxy.URL, "chat", "--room", "once", "--history", "0")
			const lines, killAt = 30, 12
			var want []string
			for i := 1; i <= lines; i++ {
				text := fmt.Sprintf("line-%d", i)
				want = append(want, text)
				io.WriteString(keys, text+"\n") // returns once the chat has read it
				if i == killAt {
					chat.out.waitContains(t, "message tester line-5")
					pd.Kill(t)
					pd = startPushd()
				}
			}
			keys.Close()
			select {
			case code := <-chat.done:
				chat.done <- code
				if errOut := chat.errOut.String(); code != 0 || strings.Contains(errOut, "not sent") || strings.Contains(errOut, "not confirmed") {
					t.Fatalf("exit %d; stderr:\n%s", code, errOut)
				}
			case <-time.After(2 * time.Minute):
				t.Fatalf("the chat did not end; stderr:\n%s", chat.errOut.String())
			}
			if got := roomTexts(t, pd.URL, "once", "tester"); !slices.Equal(got, want) {
				t.Fatalf("the room holds %q; want each line once, in order: %q", got, want)
			}
			if proxy.Count(tc.fault) == 0 {
				t.Fatal("the proxy did no harm: the test proves nothing")
			}
		})
	}
}

// roomTexts returns the texts of user's messages in room, read from pushd
// at base.
func roomTexts(t *testing.T, base, room, user string) []string {
	t.Helper()
	c, err := client.New(base)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	waitUntil(t, func() error {
		texts = nil
		since := "0"
		for range 100 {
			p, err := c.Poll(t.Context(), client.Room(room), client.PollOptions{Since: since})
			if err != nil {
				return err
			}
			for _, e := range p.Events {
				if e.Type == protocol.TypeMessage && e.User == user {
					texts = append(texts, e.Text)
				}
			}
			since = p.Cursor
			if len(p.Events) == 0 {
				return nil
			}
		}
		return fmt.Errorf("more than 100 pages in room %s", room)
	})
	return texts
}
