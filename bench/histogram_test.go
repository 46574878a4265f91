package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistogramQuantiles(t *testing.T) {
	var sh shardedHistogram
	rng := rand.New(rand.NewPCG(1, 2))
	var all []int64
	for id := range 50 {
		batch := make([]int64, 0, 200)
		for range 200 {
			v := rng.Int64N(int64(1) << rng.IntN(40))
			batch = append(batch, v)
		}
		sh.add(id, batch)
		all = append(all, batch...)
	}
	slices.Sort(all)
	h := sh.sum()
	if h.total != uint64(len(all)) || h.max != all[len(all)-1] {
		t.Fatalf("total %d max %d, want %d and %d", h.total, h.max, len(all), all[len(all)-1])
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		exact := all[int(q*float64(len(all))+0.999999)-1]
		got := h.quantile(q)
		if diff := got - exact; diff < -exact/50-1 || diff > exact/50+1 {
			t.Errorf("quantile(%g) = %d, exact %d: more than 2%% off", q, got, exact)
		}
	}
	if h.quantile(1) != h.max {
		t.Errorf("quantile(1) = %d, want the max %d", h.quantile(1), h.max)
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("an empty histogram has a quantile")
	}
}

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	last := -1
	for _, v := range []int64{-5, 0, 1, 63, 64, 65, 127, 128, 1 << 20, 1<<62 - 1, 1<<63 - 1} {
		i := histIndex(v)
		if i < last || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d after %d (buckets %d)", v, i, last, histBuckets)
		}
		last = i
		if v >= 0 {
			mid := histValue(i)
			if d := mid - v; d < -v/64-1 || d > v/64+1 {
				t.Errorf("histValue(histIndex(%d)) = %d: off by more than 1/64", v, mid)
			}
		}
	}
}
