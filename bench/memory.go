package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
)

// liveHeapAndStacks collects garbage, then returns the bytes of live heap
// objects and goroutine stacks of this process.
func liveHeapAndStacks() uint64 {
	runtime.GC()
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}
	metrics.Read(samples)
	var total uint64
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			total += s.Value.Uint64()
		}
	}
	return total
}

// errNoRSS says resident memory cannot be read on this system.
var errNoRSS = errors.New("resident memory is read from /proc/<pid>/status, which this system does not have")

// residentBytes returns the resident memory (VmRSS) of process pid.
func residentBytes(pid int) (int64, error) {
	if runtime.GOOS != "linux" {
		return 0, errNoRSS
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	return parseVmRSS(b)
}

// parseVmRSS finds "VmRSS: <n> kB" in the text of /proc/<pid>/status.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS line in the process status")
}

// connectionGauge reads pushd_connections{transport=...} from the server's
// /metrics: the open subscriptions, or for long polling those waiting.
func (r *runner) connectionGauge(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.pubClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read metrics: %w", answerError(resp))
	}
	return parseGauge(io.LimitReader(resp.Body, 16<<20), `pushd_connections{transport="`+string(r.o.Transport)+`"}`)
}

// parseGauge finds the sample named series (with its labels) in the
// Prometheus text format.
func parseGauge(text io.Reader, series string) (float64, error) {
	sc := bufio.NewScanner(text)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), series+" ")
		if !ok {
			continue
		}
		return strconv.ParseFloat(strings.TrimSpace(rest), 64)
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	return 0, fmt.Errorf("no %s in the metrics", series)
}
