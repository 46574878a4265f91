package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// TestChatPipedInput: lines piped in are sent once the chat is in the
// room, so its login comes first; at the end of input it prints the room up
// to its last line and exits 0.
func TestChatPipedInput(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv := startServer(t)
			pushtui(t, nil, "--server", srv.URL, "--user", "alice", "send", "--room", "r", "earlier")
			out, errOut, code := pushtui(t, strings.NewReader("one\n\n  \ntwo\n"), "--server", srv.URL, "--transport", tr, "chat", "--room", "r", "--history", "0")
			if code != 0 || errOut != "pushtui: connected to room/r over "+tr+"\n" {
				t.Fatalf("exit %d: %q", code, errOut)
			}
			want := []string{"login tester", "message tester one", "message tester two"}
			if got := eventTypes(out); !slices.Equal(got, want) {
				t.Fatalf("printed %q, want %q:\n%s", got, want, out)
			}
			stored := roomLog(t, srv, "r")
			if want := []string{"message alice earlier", "login tester", "message tester one", "message tester two"}; len(stored) < 4 || !slices.Equal(stored[:4], want) {
				t.Fatalf("the room holds %q, want it to start with %q", stored, want)
			}
		})
	}
}

// TestChatPipedInputNotSent: a line the server refuses is said on standard
// error; the others go out, and the exit code is 1.
func TestChatPipedInputNotSent(t *testing.T) {
	srv := startServer(t)
	in := "one\n" + strings.Repeat("x", 5000) + "\ntwo\n"
	out, errOut, code := pushtui(t, strings.NewReader(in), "--server", srv.URL, "chat", "--room", "r", "--history", "0")
	if code != cli.ExitFailed || !strings.Contains(errOut, "pushtui: not sent:") || !strings.HasSuffix(errOut, "pushtui: 1 of 3 lines were not sent\n") {
		t.Fatalf("exit %d: %q", code, errOut)
	}
	if got, want := eventTypes(out), []string{"login tester", "message tester one", "message tester two"}; !slices.Equal(got, want) {
		t.Fatalf("printed %q, want %q", got, want)
	}
}

// TestChatFollowAfterInput: with --follow the chat goes on printing the
// room after the end of its input.
func TestChatFollowAfterInput(t *testing.T) {
	srv := startServer(t)
	chat := start(t, strings.NewReader("one\n"), nil, "--server", srv.URL, "chat", "--room", "r", "--follow")
	chat.out.waitContains(t, "message tester one")
	pushtui(t, nil, "--server", srv.URL, "--user", "alice", "send", "--room", "r", "later")
	chat.out.waitContains(t, "message alice later")
	if code := chat.stop(t); code != cli.ExitInterrupted {
		t.Fatalf("exit %d after interrupt, want %d", code, cli.ExitInterrupted)
	}
}

// messages returns the texts of the room's stored messages by user, in
// order.
func messages(t *testing.T, srv *pushdtest.Server, room, user string) []string {
	t.Helper()
	var texts []string
	for _, e := range roomLog(t, srv, room) {
		if text, ok := strings.CutPrefix(e, "message "+user+" "); ok {
			texts = append(texts, text)
		}
	}
	return texts
}

// TestChatPipedLinesWaitForReconnect: a line piped in while pushd is
// unreachable waits until the chat is back in the room, and is sent then;
// nothing is lost, and the chat ends as if nothing happened.
func TestChatPipedLinesWaitForReconnect(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			srv := startServer(t)
			in, keys := io.Pipe()
			defer keys.Close()
			chat := start(t, in, nil, "--server", srv.URL, "--transport", tr, "chat", "--room", "pr", "--history", "0")
			io.WriteString(keys, "a1\n")
			chat.out.waitContains(t, "message tester a1")

			srv.Down(t)
			errOut := chat.errOut.waitContains(t, "reconnecting to room/pr")
			io.WriteString(keys, "b1\n") // returns once the chat has read it
			// A reconnect more: a line sent at once would have failed by now.
			n := strings.Count(errOut, "reconnecting to room/pr")
			chat.errOut.waitFor(t, "another reconnect", func(s string) bool { return strings.Count(s, "reconnecting to room/pr") > n })
			srv.Up(t)

			chat.out.waitContains(t, "message tester b1")
			io.WriteString(keys, "c1\n")
			keys.Close()
			chat.exits(t, 0)
			if strings.Contains(chat.errOut.String(), "not sent") {
				t.Fatalf("a line reported not sent:\n%s", chat.errOut.String())
			}
			if got, want := messages(t, srv, "pr", "tester"), []string{"a1", "b1", "c1"}; !slices.Equal(got, want) {
				t.Fatalf("the room holds %q, want %q", got, want)
			}
			if got := eventTypes(chat.out.String()); !slices.Contains(got, "message tester c1") {
				t.Fatalf("c1 not printed: %q", got)
			}
		})
	}
}

// TestChatPipedInputWhenTheQueueIsFull: while pushd is unreachable the chat
// reads lines until sendQueue wait, then stops reading; once it is back
// every line goes out, in order.
func TestChatPipedInputWhenTheQueueIsFull(t *testing.T) {
	srv := startServer(t)
	in, keys := io.Pipe()
	defer keys.Close()
	chat := start(t, in, nil, "--server", srv.URL, "chat", "--room", "q", "--history", "0")
	chat.errOut.waitContains(t, "connected to room/q")
	srv.Down(t)
	chat.errOut.waitContains(t, "reconnecting to room/q")
	const total = sendQueue + 10
	full := make(chan struct{})
	var written atomic.Int64
	go func() {
		for i := range total {
			if _, err := fmt.Fprintf(keys, "line %d\n", i); err != nil {
				return
			}
			written.Add(1)
			// One line is being sent, sendQueue wait, and one more is read:
			// the queue is full, and the next write waits.
			if i == sendQueue+1 {
				close(full)
			}
		}
		keys.Close()
	}()
	testwait.Recv(t, wait, full, fmt.Sprintf("read of %d lines while pushd was away", sendQueue+2))
	// While pushd stays away (another try to reconnect goes by), the chat
	// reads no further: the writer waits.
	tries := strings.Count(chat.errOut.String(), "reconnecting to room/q")
	waitUntil(t, func() error {
		if strings.Count(chat.errOut.String(), "reconnecting to room/q") <= tries {
			return errors.New("no further try to reconnect")
		}
		return nil
	})
	if n := written.Load(); n > sendQueue+3 {
		t.Fatalf("%d lines read while pushd was away; want at most %d", n, sendQueue+3)
	}
	srv.Up(t)
	chat.exits(t, 0)
	got := messages(t, srv, "q", "tester")
	if len(got) != total {
		t.Fatalf("%d messages in the room, want %d", len(got), total)
	}
	for i, text := range got {
		if want := fmt.Sprintf("line %d", i); text != want {
			t.Fatalf("message %d is %q, want %q", i, text, want)
		}
	}
}

// failPosts stands in front of pushd and hands each message posted, with
// its number from 1, to fail, which answers it and returns true, or returns
// false to let it through.
func failPosts(fail func(n int64, w http.ResponseWriter, r *http.Request, next http.Handler) bool) func(http.Handler) http.Handler {
	var posts atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages") && fail(posts.Add(1), w, r, next) {
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// cut closes the request's connection without an answer.
func cut(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}

// answer writes pushd's error answer.
func answer(w http.ResponseWriter, status int, code, retryAfter string) {
	w.Header().Set("Content-Type", "application/json")
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":"try later"}}`, code)
}

// TestChatPipedLineRetried: a line whose sending failed for a reason that
// retrying can fix is sent again, before the lines after it, and once: a
// line stored whose answer was lost is not sent again.
func TestChatPipedLineRetried(t *testing.T) {
	cases := map[string]func(w http.ResponseWriter, r *http.Request, next http.Handler){
		"503": func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
			answer(w, http.StatusServiceUnavailable, "unavailable", "")
		},
		"429 with Retry-After": func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
			answer(w, http.StatusTooManyRequests, protocol.CodeRateLimited, "1")
		},
		"502 from a proxy": func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		},
		"connection cut": func(w http.ResponseWriter, _ *http.Request, _ http.Handler) { cut(w) },
		"answer lost": func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			next.ServeHTTP(httptest.NewRecorder(), r) // stored
			cut(w)
		},
		// pushd's 503 when a store's acknowledgement timed out: stored.
		"503 after storing": func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			next.ServeHTTP(httptest.NewRecorder(), r)
			answer(w, http.StatusServiceUnavailable, "unavailable", "")
		},
		"201 cut in its body": func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(rec.Code)
			w.Write(body[:len(body)/2])
			cut(w) // sends what was written, then closes
		},
	}
	for name, fail := range cases {
		t.Run(name, func(t *testing.T) {
			// The second post (b) fails, and so does the next (b again,
			// unless it was stored).
			srv := startServerWith(t, nil, failPosts(func(n int64, w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if n == 2 || n == 3 {
					fail(w, r, next)
					return true
				}
				return false
			}))
			out, errOut, code := pushtui(t, strings.NewReader("a\nb\nc\n"), "--server", srv.URL, "chat", "--room", "r", "--history", "0")
			if code != 0 || strings.Contains(errOut, "not sent") {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if got, want := messages(t, srv, "r", "tester"), []string{"a", "b", "c"}; !slices.Equal(got, want) {
				t.Fatalf("the room holds %q, want %q", got, want)
			}
			if got, want := eventTypes(out), []string{"login tester", "message tester a", "message tester b", "message tester c"}; !slices.Equal(got, want) {
				t.Fatalf("printed %q, want %q", got, want)
			}
		})
	}
}

// TestChatPipedLineGivenUp: a line that keeps failing while the room is
// connected is given up after maxSendTries, reported, and the next goes
// on; so is a line the server refuses, at once. The one whose tries may
// have stored it (5xx) is reported not confirmed, not as not sent.
func TestChatPipedLineGivenUp(t *testing.T) {
	var tries atomic.Int64
	srv := startServerWith(t, nil, failPosts(func(n int64, w http.ResponseWriter, _ *http.Request, _ http.Handler) bool {
		if n < 2 {
			return false
		}
		if n <= 1+maxSendTries {
			tries.Add(1)
			answer(w, http.StatusServiceUnavailable, "unavailable", "")
			return true
		}
		return false
	}))
	in := "a\nb\n" + strings.Repeat("x", 5000) + "\nc\n"
	out, errOut, code := pushtui(t, strings.NewReader(in), "--server", srv.URL, "chat", "--room", "r", "--history", "0")
	if code != cli.ExitFailed || strings.Count(errOut, "pushtui: not sent:") != 1 || strings.Count(errOut, "pushtui: not confirmed:") != 1 ||
		!strings.HasSuffix(errOut, "pushtui: 1 of 4 lines were not sent, and 1 more not confirmed (they may be in the room)\n") {
		t.Fatalf("exit %d: %q", code, errOut)
	}
	if n := tries.Load(); n != maxSendTries {
		t.Fatalf("b tried %d times, want %d", n, maxSendTries)
	}
	if got, want := eventTypes(out), []string{"login tester", "message tester a", "message tester c"}; !slices.Equal(got, want) {
		t.Fatalf("printed %q, want %q", got, want)
	}
}

// postedText returns the text of a message post, leaving its body readable
// for the next handler.
func postedText(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	var p protocol.PublishRequest
	json.Unmarshal(b, &p)
	return p.Text
}

// TestChatPipedLineNotTakenForAnOlderCopy: a line whose send failed
// without being stored is sent again though the room holds an older
// message of the user with the same text (in the history the chat joined
// with): each line is known by its id, not by its text.
func TestChatPipedLineNotTakenForAnOlderCopy(t *testing.T) {
	t.Run("first line", func(t *testing.T) {
		srv := startServerWith(t, nil, failPosts(func(n int64, w http.ResponseWriter, _ *http.Request, _ http.Handler) bool {
			if n == 302 { // the chat's first try: cut before pushd has it
				cut(w)
				return true
			}
			return false
		}))
		// Much history, the last build's line at its end: the chat joins
		// well before it, and its subscription takes a while to get there.
		alice, err := client.New(srv.URL, client.WithUser("alice"))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			if _, err := alice.Publish(t.Context(), "ci", fmt.Sprint("step ", i)); err != nil {
				t.Fatal(err)
			}
		}
		pushtui(t, nil, "--server", srv.URL, "send", "--room", "ci", "build ok")
		_, errOut, code := pushtui(t, strings.NewReader("build ok\n"), "--server", srv.URL, "chat", "--room", "ci", "--history", "400")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if got, want := messages(t, srv, "ci", "tester"), []string{"build ok", "build ok"}; !slices.Equal(got, want) {
			t.Fatalf("the room holds %q, want %q", got, want)
		}
	})
}

// TestChatPipedLineSentWhenItComesBack: a line whose answer never comes
// counts as sent once its message comes back in the room; the try that
// waits for the answer is given up, and nothing is sent twice.
func TestChatPipedLineSentWhenItComesBack(t *testing.T) {
	abandoned := make(chan struct{})
	srv := startServerWith(t, nil, failPosts(func(n int64, w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if n != 2 {
			return false
		}
		next.ServeHTTP(httptest.NewRecorder(), r) // stored, and in the room
		<-r.Context().Done()                      // no answer until the chat gives up waiting
		close(abandoned)
		return true
	}))
	_, errOut, code := pushtui(t, strings.NewReader("a\nb\nc\n"), "--server", srv.URL, "chat", "--room", "r", "--history", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	select {
	case <-abandoned:
	case <-time.After(wait):
		t.Fatal("b's request still waits for its answer: the chat did not give it up")
	}
	if got, want := messages(t, srv, "r", "tester"), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("the room holds %q, want %q", got, want)
	}
}

// TestChatPipedLinesGivenUpWhileUnreachable: lines that wait longer than
// maxOffline for pushd to come back are reported not sent, and the chat
// exits 1.
func TestChatPipedLinesGivenUpWhileUnreachable(t *testing.T) {
	defer func(d time.Duration) { maxOffline = d }(maxOffline)
	maxOffline = 2 * time.Second
	srv := startServer(t)
	in, keys := io.Pipe()
	defer keys.Close()
	chat := start(t, in, nil, "--server", srv.URL, "chat", "--room", "u", "--history", "0")
	io.WriteString(keys, "a\n")
	chat.out.waitContains(t, "message tester a")
	srv.Down(t)
	chat.errOut.waitContains(t, "reconnecting to room/u")
	begun := time.Now()
	io.WriteString(keys, "b\n")
	io.WriteString(keys, "c\n") // returns once the chat has read it
	chat.exits(t, cli.ExitFailed)
	if d := time.Since(begun); d < maxOffline {
		t.Fatalf("gave up after %v, before maxOffline (%v)", d, maxOffline)
	}
	errOut := chat.errOut.String()
	if !strings.Contains(errOut, "pushtui: not sent: 2 lines:") || !strings.HasSuffix(errOut, "pushtui: 2 of 3 lines were not sent\n") {
		t.Fatalf("stderr:\n%s", errOut)
	}
	srv.Up(t)
	if got, want := messages(t, srv, "u", "tester"), []string{"a"}; !slices.Equal(got, want) {
		t.Fatalf("the room holds %q, want %q", got, want)
	}
}

// TestChatPipedLineCappedAcrossReconnects: a line that fails on every
// connection is given up after maxLineTries in all, though the connection
// keeps dropping (each drop starts maxSendTries afresh).
func TestChatPipedLineCappedAcrossReconnects(t *testing.T) {
	var tries atomic.Int64
	failed := make(chan struct{}, 4*maxLineTries)
	srv := startServerWith(t, nil, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages") && postedText(r) == "b" {
				tries.Add(1)
				answer(w, http.StatusTooManyRequests, protocol.CodeRateLimited, "")
				failed <- struct{}{}
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	// A new connection each time: the drops cut idle ones.
	alice, err := client.New(srv.URL, client.WithUser("alice"),
		client.WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}))
	if err != nil {
		t.Fatal(err)
	}
	chat := start(t, strings.NewReader("a\nb\nc\n"), nil, "--server", srv.URL, "--transport", "ws", "chat", "--room", "d", "--history", "0")
	var code int
	testwait.Until(t, 4*wait, time.Millisecond, func() error {
		for {
			select {
			case <-failed:
				// Drop the connection; a message once it is back keeps
				// its reconnects quick.
				srv.Down(t)
				srv.Up(t)
				if _, err := alice.Publish(t.Context(), "d", "ping"); err != nil {
					t.Fatal(err)
				}
			case code = <-chat.done:
				chat.done <- code
				return nil
			default:
				return fmt.Errorf("b still tried after %d tries: %s", tries.Load(), chat.errOut.String())
			}
		}
	})
	errOut := chat.errOut.String()
	// b was never stored. A drop may cut one of its tries before the 429
	// is read, and the chat cannot know that try did not store it: it
	// says b is not confirmed rather than not sent, which is true too.
	if code != cli.ExitFailed || !strings.HasSuffix(errOut, "pushtui: 1 of 3 lines were not sent\n") &&
		!strings.HasSuffix(errOut, "pushtui: 1 of 3 lines were not confirmed (they may be in the room)\n") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := tries.Load(); n <= maxSendTries || n > maxLineTries {
		t.Fatalf("b tried %d times, want more than %d and at most %d", n, maxSendTries, maxLineTries)
	}
	if got, want := messages(t, srv, "d", "tester"), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("the room holds %q, want %q", got, want)
	}
}

// TestChatFollowOutlastsAnOutage: a reader with --follow and nothing to
// send keeps printing the room through an outage longer than maxOffline:
// no line waits, so nothing is given up.
func TestChatFollowOutlastsAnOutage(t *testing.T) {
	defer func(d time.Duration) { maxOffline = d }(maxOffline)
	maxOffline = 300 * time.Millisecond
	srv := startServer(t)
	chat := start(t, strings.NewReader(""), nil, "--server", srv.URL, "chat", "--room", "f", "--history", "0", "--follow")
	chat.errOut.waitContains(t, "connected to room/f")
	srv.Down(t)
	chat.errOut.waitContains(t, "reconnecting to room/f")
	// Longer than maxOffline: what is checked is that nothing gave up.
	time.Sleep(3 * maxOffline)
	srv.Up(t)
	alice, err := client.New(srv.URL, client.WithUser("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Publish(t.Context(), "f", "after the outage"); err != nil {
		t.Fatal(err)
	}
	chat.out.waitContains(t, "after the outage")
}
