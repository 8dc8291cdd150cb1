// Package consumer turns Kafka topics into projection events and hands them,
// with the offsets they were read up to, to a sink that stores both in one
// transaction.
//
// # Reading
//
// Every partition of every configured topic gets its own segmentio/kafka-go
// Reader, with no consumer group: each replica of the service reads
// everything and builds a full projection, and readers start from the offsets
// the sink (the store) holds, not from offsets committed to the broker. New
// partitions are discovered by polling metadata; the same poll reads end
// offsets, which give the lag, the start-up catch-up target and whether the
// brokers are reachable. Readers name themselves with Config.ClientID and
// read the socket 128 KiB at a time (dial.go; kafka-go's own buffer is 4 KiB,
// a system call per few messages). Messages are decoded in the readers, in parallel,
// handed over a partition's slice at a time, and applied by one goroutine in
// batches bounded by size and time, and while catching up by the records a
// commit writes (unless the sink holds no transaction: a bulk load's sort).
// Transaction markers, which kafka-go hands over like messages, are
// recognised and ignored. A stopping consumer does not wait for its readers'
// Close, which waits for a fetch in flight at the head (up to MaxWait): they
// end in the background, nothing they read is applied, and WaitClosed waits
// for them (its owner calls it when waiting costs nothing).
//
// # Formats
//
// Decoder chooses the wire format per message, by content, so formats may
// share topics: the Open edX event bus's Confluent-framed Avro (avro.go,
// registry.go), Debezium change events of the LMS tables (debezium.go), and
// CloudEvents JSON (cloudevent.go). openedx.go holds what they share.
//
// # Bad input
//
// A message that does not decode, or decodes into an invalid event, is poison:
// the configured PoisonPolicy skips it, copies it to a dead-letter topic, or
// stops its partition. Every message is counted in enrollstatus_events_total
// by topic, type and outcome; nothing is dropped without a count and a log
// line.
//
// # Caveats
//
// If a stored offset has fallen out of the log (retention), kafka-go resumes
// from the first offset still there: the consumer logs it as an error and
// counts it, and the operator must rebuild or restore a snapshot. kafka-go
// does not filter the records of aborted transactions: they are applied.
package consumer
