package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/protocol"
)

// The test binary doubles as pushd: started with this variable set, it runs
// main with the arguments after "--", so tests can kill a real server
// process with SIGKILL and start it again.
const asPushd = "PUSHD_TEST_RUN_AS_PUSHD"

func TestMain(m *testing.M) {
	if os.Getenv(asPushd) == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"pushd"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// proc is a pushd child process.
type proc struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{} // closed when the process has ended; then err is set
	err    error
	log    *bytes.Buffer
	mu     *sync.Mutex
}

var listening = regexp.MustCompile(`msg="pushd listening" addr=(\S+)`)

// startPushd starts pushd serve on a free loopback port with args and waits
// until it listens.
func startPushd(t *testing.T, args ...string) *proc {
	t.Helper()
	argv := append([]string{"-test.run=^$", "--", "serve", "--addr", "127.0.0.1:0"}, args...)
	cmd := exec.Command(os.Args[0], argv...)
	cmd.Env = append(os.Environ(), asPushd+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{}), log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := listening.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("pushd log:\n%s", p.log.String())
			p.mu.Unlock()
		}
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.exited:
		t.Fatalf("pushd exited before listening: %v\n%s", p.err, p.log.String())
	case <-time.After(20 * time.Second):
		t.Fatal("pushd did not start listening within 20 s")
	}
	return p
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("pushd did not die after SIGKILL")
	}
}

func publish(t *testing.T, base, room, text string) protocol.Event {
	t.Helper()
	body := fmt.Sprintf(`{"user":"tester","text":%q}`, text)
	resp, err := http.Post(base+"/v1/rooms/"+room+"/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ev protocol.Event
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func poll(t *testing.T, url string) protocol.Poll {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p protocol.Poll
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKillNineKeepsAcknowledgedEvents(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data, "--publish-rate", "0")
	var acked []protocol.Event
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				ev := publish(t, p.url, "durable", fmt.Sprintf("w%d-%d", w, i))
				mu.Lock()
				acked = append(acked, ev)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	old := poll(t, p.url+"/v1/rooms/durable/events?since=0&wait=0")
	p.kill(t)

	p = startPushd(t, "--data", data, "--publish-rate", "0")
	after := poll(t, p.url+"/v1/rooms/durable/events?since=0&wait=0")
	if len(after.Events) != len(acked) {
		t.Fatalf("after SIGKILL and restart: %d events, want the %d acknowledged", len(after.Events), len(acked))
	}
	bySeq := map[uint64]string{}
	for _, ev := range acked {
		bySeq[ev.Seq] = ev.Text
	}
	for i, ev := range after.Events {
		if ev.Seq != uint64(i+1) || ev.Text != bySeq[ev.Seq] || ev.Epoch != acked[0].Epoch {
			t.Fatalf("event %d after restart = %+v; want seq %d %q in epoch %s", i, ev, i+1, bySeq[uint64(i+1)], acked[0].Epoch)
		}
	}
	// A client resumes with a cursor from before the crash: no reset, the rest in order.
	mid := old.Events[9].Cursor().String()
	resumed := poll(t, p.url+"/v1/rooms/durable/events?wait=0&since="+mid)
	if len(resumed.Events) != len(acked)-10 || resumed.Events[0].Type == protocol.TypeReset || resumed.Events[0].Seq != 11 {
		t.Fatalf("resume from %s: %d events starting %+v; want %d from seq 11 without a reset", mid, len(resumed.Events), resumed.Events[0], len(acked)-10)
	}
}

func TestTaskInterruptedByRestart(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	resp, err := http.Post(p.url+"/v1/tasks", "application/json", strings.NewReader(`{"kind":"demo","name":"long","total":1000,"interval":"1s"}`))
	if err != nil {
		t.Fatal(err)
	}
	var task protocol.Task
	_ = json.NewDecoder(resp.Body).Decode(&task)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("start task: %d", resp.StatusCode)
	}
	p.kill(t)
	p = startPushd(t, "--data", data)
	resp, err = http.Get(p.url + "/v1/tasks/" + task.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got protocol.Task
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.State != protocol.TaskFailed || got.Message != "interrupted by server restart" {
		t.Fatalf("task after restart = %s %q; want failed \"interrupted by server restart\"", got.State, got.Message)
	}
}

func TestGracefulShutdownTellsClientsToReconnect(t *testing.T) {
	p := startPushd(t, "--store", "memory")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.url, "http")+"/v1/rooms/lobby/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/v1/rooms/lobby/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	sse, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()
	if _, err := sse.Body.Read(make([]byte, 64)); err != nil { // the retry: line: the stream is open
		t.Fatal(err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.Read(ctx)
	if code := websocket.CloseStatus(err); code != protocol.CloseCodeServiceRestart {
		t.Fatalf("WebSocket read after SIGTERM: %v; want close code 1012", err)
	}
	rest, _ := io.ReadAll(sse.Body)
	if !strings.Contains(string(rest), "event: close") || !strings.Contains(string(rest), protocol.CloseShutdown) {
		t.Fatalf("SSE after SIGTERM: %q; want a close event with reason %s", rest, protocol.CloseShutdown)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("pushd exited with %v; want 0", p.err)
		}
	case <-ctx.Done():
		t.Fatal("pushd did not exit after SIGTERM")
	}
}

func TestServeFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "--store", "nope"}, 2, `--store "nope"`},
		{[]string{"serve", "--log-level", "loud"}, 2, `--log-level "loud"`},
		{[]string{"serve", "--history", "0", "--store", "memory"}, 2, "--history 0"},
		{[]string{"serve", "--addr", "256.0.0.1:1", "--store", "memory", "--insecure-open"}, 2, `--addr "256.0.0.1:1"`},
		{[]string{"serve", "extra"}, 2, "unknown command"},
		{[]string{"serve", "--addr", "0.0.0.0:0", "--store", "memory"}, 2, "refusing to listen on 0.0.0.0:0 without authentication"},
		{[]string{"serve", "--auth-secret", "short", "--store", "memory"}, 2, "at least 16 bytes"},
		{[]string{"serve", "--store", "nats"}, 2, "--store nats needs --nats URL"},
		{[]string{"serve", "--store", "memory", "--nats", "nats://127.0.0.1:4222"}, 2, "with --nats the store is NATS JetStream"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-replicas", "7"}, 2, "--nats-replicas 7"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:1", "--nats-timeout", "1s"}, 1, "connect to NATS at nats://127.0.0.1:1"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-prefix", "a.b"}, 2, `prefix "a.b"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := execute(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("pushd %v: exit %d, %q; want exit %d and an error mentioning %q", tc.args, code, stderr, tc.code, tc.want)
			}
		})
	}
}
