package pushdtest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/internal/testwait"
)

// Process is a pushd serve running as a process of its own, for tests
// that kill it (SIGKILL) or signal it as an operator would.
type Process struct {
	// Remote is the server as its clients reach it, at http://addr where
	// its log says it listens; its Client's idle connections are closed
	// when the test ends.
	*Remote

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // how it ended, once exited is closed
	log    testlog.Buffer
}

// listening is the log line of a pushd that listens, with its address.
var listening = regexp.MustCompile(`msg="pushd listening" addr=(\S+)`)

// StartProcess starts cmd, a pushd serve (its standard error not set: the
// Process reads it), and waits until it logs that it listens. The process
// is killed when the test ends, and its log passed to the test's log if
// the test failed.
func StartProcess(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.log.Write([]byte(line + "\n"))
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("pushd log:\n%s", p.Log())
		}
	})
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case a := <-addr:
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		t.Cleanup(tr.CloseIdleConnections)
		p.Remote = newRemote("http://"+a, &http.Client{Transport: tr})
	case <-p.exited:
		t.Fatalf("pushd exited before listening: %v\n%s", p.err, p.Log())
	case <-timer.C:
		t.Fatalf("pushd did not listen within %v", Timeout)
	}
	return p
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// Kill ends the process with SIGKILL and waits until it is gone.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	p.Signal(t, syscall.SIGKILL)
	p.Wait(t)
}

// Wait waits for the process to end and returns how it did: nil for exit
// status 0.
func (p *Process) Wait(t testing.TB) error {
	t.Helper()
	testwait.Recv(t, Timeout, p.exited, "end of pushd")
	return p.err
}

// Log returns what the process has logged so far.
func (p *Process) Log() string {
	return p.log.String()
}

// asProgram, set to 1 in a test binary's environment, makes it run as the
// program of its AsProgram.
const asProgram = "PUSHDTEST_AS_PROGRAM"

// AsProgram lets a test binary double as a program (pushd, pushtui), so
// that tests can run the real program as a process: kill it, signal it,
// give it a terminal. Call it first in TestMain. In a binary started by
// ProgramCommand it runs run with os.Args set to name and the arguments
// given, and exits with the code run returns; elsewhere it returns.
func AsProgram(name string, run func() int) {
	if os.Getenv(asProgram) != "1" {
		return
	}
	for i, a := range os.Args {
		if a == "--" {
			os.Args = append([]string{name}, os.Args[i+1:]...)
			break
		}
	}
	os.Exit(run())
}

// ProgramCommand returns a command that runs this test binary as the
// program of its AsProgram, with args; ctx kills it.
func ProgramCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), asProgram+"=1")
	return cmd
}

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// BuildPushd builds cmd/pushd once per test binary and returns the path of
// the binary, for tests that run the real pushd as a process from a
// package other than cmd/pushd (where AsProgram does). It lives in a
// temporary folder for the life of the test binary's process.
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

// RemoveBuilt removes what BuildPushd built; a TestMain that lets its
// tests call BuildPushd calls it after m.Run.
func RemoveBuilt() {
	if builtPath != "" {
		_ = os.RemoveAll(filepath.Dir(builtPath))
	}
}

// WaitLog waits until the process has logged a line holding s.
func (p *Process) WaitLog(t testing.TB, s string) {
	t.Helper()
	testwait.Until(t, Timeout, 10*time.Millisecond, func() error {
		if !strings.Contains(p.Log(), s) {
			return fmt.Errorf("pushd has not logged %q", s)
		}
		return nil
	})
}
