package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// screen is a program running in a tmux session of its own, on a tmux
// server of its own, at a fixed size, whose screen the test reads as a
// person would see it.
type screen struct {
	t      *testing.T
	socket string
}

// startScreen runs argv in a w×h tmux session; it ends with the test.
func startScreen(t *testing.T, w, h int, argv ...string) *screen {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed: this test drives pushd top in it (apt-get install -y tmux; .ci/run does)")
	}
	s := &screen{t: t, socket: fmt.Sprintf("pushd-top-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	args := append([]string{"new-session", "-d", "-s", "top", "-x", strconv.Itoa(w), "-y", strconv.Itoa(h), "--"}, argv...)
	s.tmux(args...)
	t.Cleanup(func() { _ = s.cmd("kill-server").Run() })
	return s
}

// cmd is a tmux command on the screen's own tmux server, which reads no
// configuration.
func (s *screen) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command("tmux", append([]string{"-L", s.socket, "-f", "/dev/null"}, args...)...)
	cmd.Env = append(os.Environ(), "TMUX=", "TERM=xterm-256color", "PUSH_SERVER=", "PUSH_TOKEN=", "NO_COLOR=")
	return cmd
}

func (s *screen) tmux(args ...string) string {
	s.t.Helper()
	out, err := s.cmd(args...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// capture returns what the screen shows.
func (s *screen) capture() string { return s.tmux("capture-pane", "-p", "-t", "top") }

// keys types keys (tmux key names, or text), one at a time.
func (s *screen) keys(keys ...string) {
	for _, k := range keys {
		s.tmux("send-keys", "-t", "top", k)
	}
}

// waitFor waits until the screen passes check, and returns it; on a
// timeout the test fails with the last screen.
func (s *screen) waitFor(what string, check func(string) error) string {
	s.t.Helper()
	var shown string
	testwait.Until(s.t, pushdtest.Timeout, 100*time.Millisecond, func() error {
		shown = s.capture()
		if err := check(shown); err != nil {
			return fmt.Errorf("%s: %v; the screen:\n%s", what, err, shown)
		}
		return nil
	})
	s.t.Logf("%s:\n%s", what, shown)
	return shown
}

// has is a check that the screen shows every one of wants.
func has(wants ...string) func(string) error {
	return func(shown string) error {
		for _, w := range wants {
			if !strings.Contains(shown, w) {
				return fmt.Errorf("no %q", w)
			}
		}
		return nil
	}
}

// matches is a check that the screen matches every one of res.
func matches(res ...*regexp.Regexp) func(string) error {
	return func(shown string) error {
		for _, re := range res {
			if !re.MatchString(shown) {
				return fmt.Errorf("nothing matches %s", re)
			}
		}
		return nil
	}
}

// pushd top against a real pushd with 200 subscribers over every transport
// and one that has stopped reading: the counts are right, the stalled one
// shows with its lag, which grows with every event, and its room lists it.
// The screen goes on across a restart of the server.
func TestTopInTmux(t *testing.T) {
	// The restart below comes back on the same address, which pushd top
	// keeps calling.
	addr := pushdtest.FreeAddr(t)
	start := func() *pushdtest.Process {
		return startPushd(t, "--addr", addr, "--store", "memory", "--write-timeout", "10m", "--max-text", "70000", "--max-body", "1000000",
			"--publish-rate", "0", "--max-conns-per-ip", "0", "--max-conns-per-user", "0", "--max-long-polls-per-ip", "0")
	}
	p := start()
	ctx := t.Context()
	c, err := client.New(p.URL, client.WithUser("ann"))
	if err != nil {
		t.Fatal(err)
	}

	// 200 subscribers, each present as a user of its own: a hundred in
	// lobby, a hundred in dev; a third each over WebSocket, SSE and long
	// polling.
	transports := []client.Transport{client.TransportWebSocket, client.TransportSSE, client.TransportLongPoll}
	for i := range 200 {
		room := "lobby"
		if i >= 100 {
			room = "dev"
		}
		sub := c.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: transports[i%3], User: fmt.Sprintf("u%03d", i),
			MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second})
		t.Cleanup(sub.Close)
		go func() {
			for range sub.Events() {
			}
		}()
	}
	wantConns := func(ws, sse, lp int) func(protocol.Stats) error {
		return func(st protocol.Stats) error {
			if st.Connections["ws"] != ws || st.Connections["sse"] != sse || st.Connections["longpoll"] != lp {
				return fmt.Errorf("connections %v; want ws %d, sse %d, longpoll %d", st.Connections, ws, sse, lp)
			}
			return nil
		}
	}
	waitStats(t, c, wantConns(67, 67, 66))

	// One that stops reading: once its socket is full, its lag grows.
	stuck := pushdtest.StallSSE(t, p.URL, pushdtest.RoomPath("slow")+"?user=stuck")
	big := strings.Repeat("0123456789abcdef", 4096)
	publish := func(n int, text string) (head uint64) {
		for i := range n {
			ev, err := c.Publish(ctx, "slow", fmt.Sprint(i, text))
			if err != nil {
				t.Fatal(err)
			}
			head = ev.Seq
		}
		return head
	}
	head := publish(100, big)

	// Its exit status shows on the screen when it ends (and the pane
	// stays: tmux may lose the last output of a pane whose process ends).
	s := startScreen(t, 100, 30, "sh", "-c", `"$0" "$@"; echo "pushd top exited $?"; exec sleep 600`,
		pushdtest.BuildPushd(t), "top", "--server", p.URL)
	row := func(room string, subs, users int) *regexp.Regexp {
		return regexp.MustCompile(fmt.Sprintf(`(?m)^[ ▸]%s +%d +%d +`, room, subs, users))
	}
	// The stalled one's lag, in its row and as its room's most, once the
	// room's head is head (the screen starts with the snapshots the
	// server kept from before).
	stuckRow := regexp.MustCompile(`(?m)^ slow +sse +` + regexp.QuoteMeta(stuck.LocalAddr().String()) + ` +stuck +([0-9,]+) `)
	lagAt := func(shown string, head uint64) (int, error) {
		slow := regexp.MustCompile(`(?m)^[ ▸]slow +1 +1 +\S+ +\S+ +` + count(int(head)) + ` +([0-9,]+) *$`).FindStringSubmatch(shown)
		stuck := stuckRow.FindStringSubmatch(shown)
		if slow == nil || stuck == nil || slow[1] != stuck[1] {
			return 0, fmt.Errorf("no room slow at head %d with the stuck subscriber's lag as its most", head)
		}
		n, _ := strconv.Atoi(strings.ReplaceAll(stuck[1], ",", ""))
		return n, nil
	}
	var first int
	s.waitFor("the counts and the stalled subscriber", func(shown string) error {
		if err := has("conns 201 · ws 67 · sse 68 · longpoll 66", "● live")(shown); err != nil {
			return err
		}
		if err := matches(row("lobby", 100, 100), row("dev", 100, 100))(shown); err != nil {
			return err
		}
		var err error
		first, err = lagAt(shown, head)
		return err
	})
	if first <= 0 {
		t.Fatalf("the stalled subscriber's lag is %d", first)
	}
	head = publish(10, "more")
	s.waitFor("the lag grown by 10", func(shown string) error {
		got, err := lagAt(shown, head)
		if err == nil && got != first+10 {
			err = fmt.Errorf("lag %d; want %d", got, first+10)
		}
		return err
	})

	// The room's subscribers: filter to it, open it.
	s.keys("/", "slow")
	s.waitFor("the filter typed", has("filter: slow▏"))
	s.keys("Enter")
	s.waitFor("the streams filtered", has("1 of 3 · by OUT/s ▼ · filter: slow ─"))
	s.keys("Enter")
	s.waitFor("the room's subscribers", func(shown string) error {
		if err := has("slow · 1 subscriber · head")(shown); err != nil {
			return err
		}
		want := regexp.MustCompile(`(?m)^ sse +` + regexp.QuoteMeta(stuck.LocalAddr().String()) + ` +stuck +` + regexp.QuoteMeta(count(first+10)) + ` `)
		return matches(want)(shown)
	})
	s.keys("Escape")
	s.waitFor("back to the streams", has("filter: slow", "furthest behind"))

	// A restart: the screen says it reconnects, then shows the new server
	// with the subscribers back (the stalled one is gone with the old).
	p.Kill(t)
	s.waitFor("the server away", has("reconnecting"))
	p = start()
	s.keys("/", "Escape")
	s.waitFor("the new server", func(shown string) error {
		if err := has("conns 200 · ws 67 · sse 67 · longpoll 66", "● live")(shown); err != nil {
			return err
		}
		return matches(row("lobby", 100, 100), row("dev", 100, 100))(shown)
	})
	if strings.Contains(s.capture(), "closed") {
		t.Errorf("the screen says closed:\n%s", s.capture())
	}
	s.keys("q")
	s.waitFor("pushd top quit", has("pushd top exited 0"))
}

// waitStats waits until the server's stats pass check.
func waitStats(t *testing.T, c *client.Client, check func(protocol.Stats) error) {
	t.Helper()
	testwait.Until(t, pushdtest.Timeout, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
		defer cancel()
		st, err := c.Stats(ctx)
		if err != nil {
			return err
		}
		return check(*st)
	})
}

// count writes n as pushd top does, with a comma every three digits.
func count(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// top's command line: one snapshot as JSON or as text, and its mistakes;
// a token without the admin right is refused with the server's reason.
func TestTopCommandLine(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	s.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "ann"})
	s.WaitStats(t, func(st protocol.Stats) error {
		if st.Connections["ws"] != 1 {
			return fmt.Errorf("connections %v", st.Connections)
		}
		return nil
	})

	code, out, errOut := execute(t, "top", "--server", s.URL, "--once", "--json")
	var st protocol.Stats
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.Connections["ws"] != 1 || strings.Count(out, "\n") != 1 {
		t.Errorf("top --once --json: %d %q %s (%v); want one line of stats with the WebSocket", code, out, errOut, err)
	}
	code, out, errOut = execute(t, "top", "--server", s.URL, "--once")
	if code != 0 || !strings.Contains(out, "conns 1 · ws 1 · sse 0 · longpoll 0") || !regexp.MustCompile(`(?m)^[ ▸]lobby +1 +1 `).MatchString(out) {
		t.Errorf("top --once: %d %s\n%s", code, errOut, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"top", "--transport", "pigeon"}, `--transport "pigeon": use auto, ws, sse, longpoll or poll`},
		{[]string{"top", "--server", "ftp://x"}, `--server "ftp://x"`},
		{[]string{"top", "--server", s.URL}, "this is not a terminal: use --once, or --json"},
		{[]string{"top", "extra"}, "unknown command"},
	} {
		code, _, errOut := execute(t, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("pushd %v: %d %q; want %d saying %q", c.args, code, errOut, exitUsage, c.want)
		}
	}

	locked := pushdtest.Start(t, server.Config{AuthSecret: []byte(testSecret)})
	user := token(t, "eve", server.Claims{Rooms: []string{"*"}})
	code, _, errOut = execute(t, "top", "--server", locked.URL, "--token", user, "--once")
	if code != 1 || !strings.Contains(errOut, "not an admin") {
		t.Errorf("a token without admin: %d %q; want 1 saying not an admin", code, errOut)
	}
	admin := token(t, "root", server.Claims{Admin: true})
	if code, out, errOut := execute(t, "top", "--server", locked.URL, "--token", admin, "--once", "--json"); code != 0 || !strings.Contains(out, `"nodes"`) {
		t.Errorf("an admin token: %d %q %s", code, out, errOut)
	}
}

// top --json prints a snapshot a line, as they come.
func TestTopJSONLines(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	cmd := pushdtest.ProgramCommand(t.Context(), "top", "--server", s.URL, "--json", "--transport", "sse")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	dec := json.NewDecoder(out)
	var first, second protocol.Stats
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err != nil {
		t.Fatal(err)
	}
	if len(first.Nodes) != 1 || !second.Time.After(first.Time) {
		t.Errorf("snapshots at %v and %v, %d nodes", first.Time, second.Time, len(first.Nodes))
	}
}
