package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"strait/mirror"
)

func TestWriteTable(t *testing.T) {
	st := []mirror.PipelineStatus{{
		Name: "east-to-west", Source: "east", Destination: "west", Mode: "batch", State: mirror.StateRunning, Connected: true,
		Partitions: []mirror.PartitionStatus{
			{Topic: "orders", Partition: 0, DestTopic: "east.orders", State: mirror.StateRunning, SourceOffset: 90, DestOffset: 90, HighWatermark: 100, Lag: 10, TimeLag: 1500 * time.Millisecond, RecordsPerSec: 25000, RecordsTotal: 90},
			{Topic: "orders", Partition: 1, DestTopic: "east.orders", State: mirror.StatePaused, PausedReason: "operator", SourceOffset: 5, DestOffset: 5, HighWatermark: 50, Lag: 45, RecordsTotal: 5},
		},
	}}
	var b bytes.Buffer
	if err := writeTable(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"east-to-west", "east→west", "2 (1 paused)", "55", "1.5s", "25.0k", "east.orders", "operator"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Columns are aligned: every partition row starts its STATE column at
	// the same place as the header.
	lines := strings.Split(out, "\n")
	var hdr string
	var rows []string
	for _, l := range lines {
		if strings.HasPrefix(l, "  TOPIC") {
			hdr = l
		} else if strings.HasPrefix(l, "  orders") {
			rows = append(rows, l)
		}
	}
	col := strings.Index(hdr, "STATE")
	for _, r := range rows {
		if r[col-1] != ' ' || r[col] == ' ' {
			t.Errorf("row not aligned with header:\n%s\n%s", hdr, r)
		}
	}
}

func TestFormatRateAndLag(t *testing.T) {
	for r, want := range map[float64]string{0: "0", 999.6: "1000", 9999: "9999", 10_000: "10.0k", 25_000: "25.0k", 999_949: "999.9k", 1e6: "1.0M", 2.55e6: "2.5M"} {
		if got := formatRate(r); got != want {
			t.Errorf("formatRate(%v) = %q, want %q", r, got, want)
		}
	}
	for d, want := range map[time.Duration]string{-time.Second: "-", 0: "-", 250 * time.Millisecond: "250ms", 1500 * time.Millisecond: "1.5s", 90 * time.Second: "1m30s", 2*time.Hour + 400*time.Millisecond: "2h0m0s"} {
		if got := formatLag(d); got != want {
			t.Errorf("formatLag(%v) = %q, want %q", d, got, want)
		}
	}
	if got := oneLine("a\tb\nc" + strings.Repeat("x", 100)); strings.ContainsAny(got, "\t\n") || len(got) != 80 || !strings.HasSuffix(got, "...") {
		t.Errorf("oneLine = %q, want one line of 80 bytes ending in ...", got)
	}
}
