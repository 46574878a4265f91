package pushdtest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is `pushd serve` as a child process, for tests that kill it
// (SIGKILL) and start it again on the same address and data.
type Process struct {
	// URL is the server's base URL, the same across restarts.
	URL  string
	addr string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has ended
	log    bytes.Buffer  // every run's standard error
}

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// BuildPushd builds cmd/pushd once per test binary and returns the path
// of the binary; it lives in a temporary folder for the life of the
// test binary's process.
func BuildPushd(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pushdtest-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, "pushd")
		out, err := exec.Command("go", "build", "-o", builtPath, "github.com/pushd/push/cmd/pushd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/pushd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtPath
}

// FreeAddr returns a loopback address whose port is free now, for a
// server that must come back on the same one.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var listeningLine = regexp.MustCompile(`msg="pushd listening"`)

// StartProcess runs `pushd serve --addr <a free loopback address>` with
// args (give --data DIR for a store that outlives a kill) and waits until
// it listens. It is killed when the test ends; its log is shown if the
// test failed.
func StartProcess(t testing.TB, args ...string) *Process {
	t.Helper()
	addr := FreeAddr(t)
	p := &Process{URL: "http://" + addr, addr: addr, args: args}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("pushd log:\n%s", p.log.String())
			p.mu.Unlock()
		}
	})
	p.Start(t)
	return p
}

// Start runs the process again, after Kill, on the same address with the
// same arguments, and waits until it listens.
func (p *Process) Start(t testing.TB) {
	t.Helper()
	argv := append([]string{"serve", "--addr", p.addr}, p.args...)
	cmd := exec.Command(BuildPushd(t), argv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited, up := make(chan struct{}), make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.OnceFunc(func() { close(up) })
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if listeningLine.MatchString(sc.Text()) {
				once()
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case <-up:
	case <-exited:
		t.Fatalf("pushd exited before listening:\n%s", p.Log())
	case <-time.After(Timeout):
		t.Fatalf("pushd did not listen within %v:\n%s", Timeout, p.Log())
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits until
// it is gone.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(Timeout):
		t.Fatal("pushd did not end after SIGKILL")
	}
}

// Log returns what the process wrote to its standard error, every run.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop kills the current process, if it runs, and waits for it.
func (p *Process) stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(Timeout):
	}
}
