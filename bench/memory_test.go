package bench

import (
	"strings"
	"testing"
)

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tpushd\nVmPeak:\t  200000 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"
	got, err := parseVmRSS([]byte(status))
	if err != nil || got != 12345*1024 {
		t.Fatalf("parseVmRSS = %d, %v; want %d", got, err, 12345*1024)
	}
	if _, err := parseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Fatal("parseVmRSS without VmRSS: no error")
	}
}

func TestParseGauge(t *testing.T) {
	text := `# HELP pushd_connections Open subscriptions.
# TYPE pushd_connections gauge
pushd_connections{transport="longpoll"} 17
pushd_connections{transport="sse"} 0
pushd_connections{transport="ws"} 1000
`
	got, err := parseGauge(strings.NewReader(text), `pushd_connections{transport="ws"}`)
	if err != nil || got != 1000 {
		t.Fatalf("parseGauge = %g, %v; want 1000", got, err)
	}
	if _, err := parseGauge(strings.NewReader(text), `pushd_connections{transport="x"}`); err == nil {
		t.Fatal("parseGauge of a missing series: no error")
	}
}
