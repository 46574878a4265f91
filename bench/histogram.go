package bench

import (
	"math/bits"
	"sync"
	"time"
)

// histogram counts durations in log-linear buckets: exact below 64 ns, then
// 64 buckets per power of two, so a quantile is within 1/64 (about 1.6 %)
// of the true value. The zero value is empty; it is not safe for
// concurrent use (see shardedHistogram).
type histogram struct {
	counts [histBuckets]uint64
	total  uint64
	max    int64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits) * histSub
)

func histIndex(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - histSubBits - 1 // v>>e is in [64, 128)
	return (e+1)*histSub + int(v>>e) - histSub
}

// histValue is the middle of bucket i.
func histValue(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub - 1
	m := int64(i%histSub + histSub)
	return m<<e + (int64(1)<<e)/2
}

func (h *histogram) record(v int64) {
	h.counts[histIndex(v)]++
	h.total++
	h.max = max(h.max, v)
}

func (h *histogram) merge(o *histogram) {
	for i, n := range o.counts {
		h.counts[i] += n
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the value below which a fraction q of the samples lie;
// zero for an empty histogram. The largest sample is exact (quantile(1)).
func (h *histogram) quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(q * float64(h.total))
	if float64(rank) < q*float64(h.total) || rank == 0 {
		rank++
	}
	var seen uint64
	for i, n := range h.counts {
		if seen += n; seen >= rank {
			return min(histValue(i), h.max)
		}
	}
	return h.max
}

// shardedHistogram lets many subscribers record at once: each flushes a
// small local batch into one of a few locked shards.
type shardedHistogram struct {
	shards [16]struct {
		mu sync.Mutex
		h  histogram // 29 KiB: the locks of two shards never share a cache line
	}
}

// add records a batch of samples into the shard of subscriber id.
func (s *shardedHistogram) add(id int, samples []int64) {
	sh := &s.shards[id%len(s.shards)]
	sh.mu.Lock()
	for _, v := range samples {
		sh.h.record(v)
	}
	sh.mu.Unlock()
}

// sum returns all shards merged.
func (s *shardedHistogram) sum() *histogram {
	var all histogram
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		all.merge(&sh.h)
		sh.mu.Unlock()
	}
	return &all
}

// Latency is a summary of delivery latencies.
type Latency struct {
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func (h *histogram) summary() Latency {
	return Latency{P50: time.Duration(h.quantile(0.5)), P99: time.Duration(h.quantile(0.99)), Max: time.Duration(h.max)}
}
