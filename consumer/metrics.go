package consumer

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a message, the outcome label of enrollstatus_events_total.
const (
	OutcomeApplied      = "applied"       // its events are committed
	OutcomeIgnored      = "ignored"       // well-formed, nothing for the projection
	OutcomeSkipped      = "skipped"       // poison, skipped by policy
	OutcomeDeadLettered = "dead_lettered" // poison, copied to the dead-letter topic
	OutcomeFailed       = "failed"        // poison, the partition stopped
)

// Metrics are the consumer's Prometheus metrics. Labels never carry user data.
type Metrics struct {
	events         *prometheus.CounterVec
	droppedRetired prometheus.Counter
	batchSize      prometheus.Histogram
	applySeconds   prometheus.Histogram
	lag            *prometheus.GaugeVec
	position       *prometheus.GaugeVec
	connected      prometheus.Gauge
	lastEventTime  prometheus.Gauge
	outOfRange     *prometheus.CounterVec
	readerErrors   *prometheus.CounterVec
	partitions     prometheus.Gauge
	caughtUp       prometheus.Gauge
}

// NewMetrics registers the consumer's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "enrollstatus_events_total",
			Help: "Messages consumed, by topic, event type and outcome (applied, ignored, skipped, dead_lettered, failed).",
		}, []string{"topic", "type", "outcome"}),
		droppedRetired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "enrollstatus_events_dropped_retired_total",
			Help: "Events dropped because their user is retired.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "enrollstatus_batch_messages",
			Help:    "Messages per committed store transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "enrollstatus_apply_duration_seconds",
			Help:    "Time to apply and commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "enrollstatus_consumer_lag_messages",
			Help: "Messages between the applied position and the partition's end offset.",
		}, []string{"topic", "partition"}),
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "enrollstatus_consumer_position",
			Help: "Next offset to read, as committed in the store.",
		}, []string{"topic", "partition"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "enrollstatus_consumer_connected",
			Help: "1 when the last metadata poll reached a broker, else 0.",
		}),
		lastEventTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "enrollstatus_last_applied_event_timestamp_seconds",
			Help: "Event time of the newest event applied, Unix seconds.",
		}),
		outOfRange: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "enrollstatus_offset_out_of_range_total",
			Help: "Times a stored offset was no longer in the log (retention deleted it): history was skipped; rebuild or restore a snapshot.",
		}, []string{"topic", "partition"}),
		readerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "enrollstatus_consumer_errors_total",
			Help: "Errors talking to brokers, by operation.",
		}, []string{"op"}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "enrollstatus_consumer_partitions",
			Help: "Partitions being consumed.",
		}),
		caughtUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "enrollstatus_consumer_caught_up",
			Help: "1 once start-up catch-up reached the head of every partition.",
		}),
	}
	reg.MustRegister(m.events, m.droppedRetired, m.batchSize, m.applySeconds, m.lag, m.position,
		m.connected, m.lastEventTime, m.outOfRange, m.readerErrors, m.partitions, m.caughtUp)
	return m
}

func partLabel(p int) string { return strconv.Itoa(p) }
