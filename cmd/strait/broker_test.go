package main

import (
	"errors"
	"strings"
	"testing"
)

// TestBrokerRejectsBadOffsetsRetention: a retention of zero or one that does
// not parse is a usage error naming the flag, before anything starts.
func TestBrokerRejectsBadOffsetsRetention(t *testing.T) {
	for _, v := range []string{"0", "0s", "seven days"} {
		err := runBroker([]string{"--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--offsets-retention", v})
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "offsets-retention") {
			t.Errorf("--offsets-retention %q: %v, want a usage error naming the flag", v, err)
		}
	}
}

// TestBrokerRejectsBadAdvertise: --advertise names one address per broker.
func TestBrokerRejectsBadAdvertise(t *testing.T) {
	err := runBroker([]string{"--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--brokers", "2", "--advertise", "proxy:9092"})
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "advertise") {
		t.Errorf("one address for two brokers: %v, want a usage error naming the flag", err)
	}
}
