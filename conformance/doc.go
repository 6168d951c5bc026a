// Package conformance checks that Kafka clients strait does not use itself
// work unchanged against `strait broker` with its default limits: IBM/sarama
// and segmentio/kafka-go (Go), and kafkajs (Node, conformance/kafkajs).
//
// It is a module of its own so that the product module gains none of these
// clients as dependencies. The tests build ../cmd/strait, start the binary
// and read its "ready ADDR,..." line, so they exercise exactly what users
// run. Run from this folder: go test -count=1 ./...
package conformance
