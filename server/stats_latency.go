package server

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets is how many buckets a latencies has: bucket i counts
// durations from 2^(i-1) to 2^i microseconds (bucket 0: under 1 µs), and
// the last one everything from about 16 s up.
const latencyBuckets = 26

// latencies counts durations in buckets of powers of two, with atomics
// only, so that recording one takes no lock. The stats read quantiles of
// what came between two readings; Prometheus reads it as a histogram.
type latencies struct {
	buckets [latencyBuckets]atomic.Uint64
	sum     atomic.Int64 // nanoseconds
}

// observe counts one duration.
func (l *latencies) observe(d time.Duration) {
	i := min(bits.Len64(uint64(max(d, 0)/time.Microsecond)), latencyBuckets-1)
	l.buckets[i].Add(1)
	l.sum.Add(int64(d))
}

// latencyCounts is a reading of a latencies.
type latencyCounts [latencyBuckets]uint64

// read returns the counts so far.
func (l *latencies) read() latencyCounts {
	var c latencyCounts
	for i := range c {
		c[i] = l.buckets[i].Load()
	}
	return c
}

// since returns what was counted between an earlier reading and c.
func (c latencyCounts) since(earlier latencyCounts) latencyCounts {
	var d latencyCounts
	for i := range c {
		d[i] = c[i] - min(earlier[i], c[i])
	}
	return d
}

// total is how many durations c holds.
func (c latencyCounts) total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// quantile returns the duration below which q (0 to 1) of c's durations
// fall, placed within its bucket in proportion; zero for none.
func (c latencyCounts) quantile(q float64) time.Duration {
	n := c.total()
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	var seen float64
	for i, v := range c {
		if v == 0 {
			continue
		}
		if seen+float64(v) >= rank {
			lo, hi := bucketBounds(i)
			return lo + time.Duration((rank-seen)/float64(v)*float64(hi-lo))
		}
		seen += float64(v)
	}
	_, hi := bucketBounds(latencyBuckets - 1)
	return hi
}

// bucketBounds returns the durations bucket i counts, from lo to hi.
func bucketBounds(i int) (lo, hi time.Duration) {
	if i == 0 {
		return 0, time.Microsecond
	}
	return time.Duration(1<<(i-1)) * time.Microsecond, time.Duration(1<<i) * time.Microsecond
}

// latencyCollector shows a latencies to Prometheus as a histogram.
type latencyCollector struct {
	desc *prometheus.Desc
	l    *latencies
}

func (c latencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c latencyCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.l.read()
	cumulative := make(map[float64]uint64, latencyBuckets-1)
	var n uint64
	for i := range latencyBuckets - 1 {
		n += counts[i]
		_, hi := bucketBounds(i)
		cumulative[hi.Seconds()] = n
	}
	n += counts[latencyBuckets-1]
	ch <- prometheus.MustNewConstHistogram(c.desc, n, time.Duration(c.l.sum.Load()).Seconds(), cumulative)
}
