package bench

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// TestIsolationRuns runs a short bench isolation on a real read-throttled
// loop device: every phase completes, and the cold phases really read
// from the slow disk (the latencies are printed, not asserted: they are
// the benchmark's to report). It needs root and cgroup v1 blkio; it skips
// elsewhere, unless STRAIT_REQUIRE_ISOLATION is set (CI as root).
func TestIsolationRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	ic := isolationConfig{rate: 200, phase: 2 * time.Second, consumers: 2, coldMB: 4, readMBps: 8, valueSize: 100, imageMB: 256, rounds: 1}
	rows, err := runIsolation(context.Background(), ic, io.Discard)
	if errors.Is(err, ErrNeedsRoot) && os.Getenv("STRAIT_REQUIRE_ISOLATION") == "" {
		t.Skipf("skipping the isolation bench: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d phases, want 5", len(rows))
	}
	for _, r := range rows {
		if r.acks == 0 {
			t.Errorf("%s: no acknowledgements", r.name)
		}
		if r.name != "alone" && r.coldMB <= 0 {
			t.Errorf("%s: read nothing from the slow disk", r.name)
		}
	}
	var out testWriter
	printIsolation(&out, rows)
	t.Log("\n" + string(out))
}

type testWriter []byte

func (w *testWriter) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }
