// Package e2e is the end-to-end suite of enrollstatus: a real Apache Kafka
// broker (scripts/kafka.sh), the real Open edX event-bus producer
// (e2e/producer/produce.py, edx-event-bus-kafka's KafkaEventProducer) and
// kcat feed topics that separate `enrollstatus serve` processes consume; every
// user's HTTP answer is compared with internal/reference computed from the same
// history, while the service is killed with SIGKILL, the broker is stopped and
// restarted, partitions are added, a second replica is built, then rebuilt
// online, and a third one comes back far behind and catches up by merge.
//
// The suite needs Java, Maven, Python and kcat, so `go test ./...` skips it.
// Run it with
//
//	scripts/e2e.sh
//
// which installs and starts what it needs, runs
// `ENROLLSTATUS_E2E=1 go test ./e2e/ -v -count=1 -timeout 30m` and stops
// everything it started. See e2e/README.md for the infrastructure and the
// environment variables (E2E_CRASHES, E2E_USERS, E2E_SEED, ...) in e2e_test.go.
//
// The package holds only tests; this file documents it.
package e2e
