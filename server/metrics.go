package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
)

// metrics are the server's Prometheus metrics, on a registry of its own so
// that several servers in one process (tests, embedding) do not clash.
type metrics struct {
	reg       *prometheus.Registry
	conns     *prometheus.GaugeVec
	published prometheus.Counter
	delivered *prometheus.CounterVec
	slowDrops prometheus.Counter
	// acceptErrors counts connections not accepted for want of open files.
	acceptErrors prometheus.Counter
	rejected     *prometheus.CounterVec
	latency      prometheus.Histogram
	deliveries   map[string]prometheus.Counter // per transport, resolved once
	connGauges   map[string]prometheus.Gauge
	// appends times the store's appends, for the stats and as the
	// histogram pushd_store_append_seconds.
	appends latencies
}

// Transport names, as metrics label them.
const (
	transportWS       = "ws"
	transportSSE      = "sse"
	transportLongPoll = "longpoll"
)

// newMetrics registers the server's metrics; tasks returns the server's
// tasks at scrape time (the metrics come before them: loading the tasks
// publishes).
func newMetrics(hub *Hub, tasks func() *tasks.Runner) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.conns = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pushd_connections",
		Help: "Open subscriptions (waiting long polls for longpoll), by transport."}, []string{"transport"})
	m.published = prometheus.NewCounter(prometheus.CounterOpts{Name: "pushd_events_published_total",
		Help: "Events appended to any stream."})
	m.delivered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushd_events_delivered_total",
		Help: "Events written to subscribers, by transport."}, []string{"transport"})
	m.slowDrops = prometheus.NewCounter(prometheus.CounterOpts{Name: "pushd_slow_consumer_drops_total",
		Help: "Subscribers disconnected as slow consumers: for falling too far behind, for a write not taken within the write timeout, or for a ping not answered within it (they resume from their cursor)."})
	m.acceptErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "pushd_accept_errors_total",
		Help: "Connections the server could not accept because the process or the system was out of open files (see the open-file limit in the log at start)."})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushd_requests_rejected_total",
		Help: "Requests answered with an error, by error code."}, []string{"reason"})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pushd_delivery_latency_seconds",
		Help:    "Time from an event's publish to its write to a subscriber (the oldest event of each write).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	taskStates := prometheus.NewDesc("pushd_tasks", "Tasks kept, by state.", []string{"state"}, nil)
	appends := prometheus.NewDesc("pushd_store_append_seconds", "Time of each store append (one append holds the publishes to a stream that came meanwhile).", nil, nil)
	m.reg.MustRegister(m.conns, m.published, m.delivered, m.slowDrops, m.acceptErrors, m.rejected, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		taskCollector{desc: taskStates, tasks: tasks}, latencyCollector{desc: appends, l: &m.appends},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pushd_streams",
			Help: "Streams (rooms and the tasks stream) in memory; see --max-rooms."}, func() float64 { return float64(hub.held()) }))
	m.deliveries = map[string]prometheus.Counter{}
	m.connGauges = map[string]prometheus.Gauge{}
	for _, t := range []string{transportWS, transportSSE, transportLongPoll} {
		m.deliveries[t] = m.delivered.WithLabelValues(t)
		m.connGauges[t] = m.conns.WithLabelValues(t)
	}
	return m
}

// delivered counts a write of batch to a subscriber.
func (m *metrics) wrote(transport string, batch []*entry, now time.Time) {
	if len(batch) == 0 {
		return
	}
	m.deliveries[transport].Add(float64(len(batch)))
	if t := batch[0].published; !t.IsZero() {
		m.latency.Observe(now.Sub(t).Seconds())
	}
}

// totals returns what the counters hold: events published and
// slow-consumer drops.
func (m *metrics) totals() (published, drops uint64) {
	return counterValue(m.published), counterValue(m.slowDrops)
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) uint64 {
	var v dto.Metric
	if err := c.Write(&v); err != nil {
		return 0
	}
	return uint64(v.GetCounter().GetValue())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// taskCollector reports task counts by state at scrape time.
type taskCollector struct {
	desc  *prometheus.Desc
	tasks func() *tasks.Runner
}

func (c taskCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c taskCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[protocol.TaskState]int{protocol.TaskQueued: 0, protocol.TaskRunning: 0,
		protocol.TaskSucceeded: 0, protocol.TaskFailed: 0, protocol.TaskCancelled: 0}
	for _, t := range c.tasks().List() {
		counts[t.State]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(state))
	}
}
