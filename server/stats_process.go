package server

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"time"

	"github.com/pushd/push/protocol"
)

// processSamples are the runtime metrics the stats read.
var processSamples = []string{
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/sched/goroutines:goroutines",
}

// processStats reads the process's memory, goroutines and cores; CPU is
// left to the caller, which knows the interval.
func processStats() protocol.ProcessStats {
	s := make([]rtmetrics.Sample, len(processSamples))
	for i, name := range processSamples {
		s[i].Name = name
	}
	rtmetrics.Read(s)
	value := func(i int) uint64 {
		if s[i].Value.Kind() != rtmetrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return protocol.ProcessStats{Memory: value(0), Heap: value(1), Goroutines: int(value(2)), Cores: runtime.GOMAXPROCS(0)}
}

// cpuBusy returns the cores kept busy between two readings of cpuTime,
// taken interval apart; negative when the system does not say.
func cpuBusy(before, after, interval time.Duration) float64 {
	if before < 0 || after < 0 || interval <= 0 {
		return -1
	}
	return max(after-before, 0).Seconds() / interval.Seconds()
}
