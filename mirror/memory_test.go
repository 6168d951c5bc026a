package mirror

import (
	"testing"
	"time"
)

func TestShouldReturnMemory(t *testing.T) {
	const mib = 1 << 20
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration, gcs, live, held uint64) memSample {
		return memSample{at: t0.Add(d), gcCycles: gcs, live: live, held: held}
	}
	iv := idleMemoryInterval
	prev := at(0, 7, 40*mib, 100*mib)
	for _, c := range []struct {
		name       string
		prev, cur  memSample
		wantReturn bool
	}{
		{"idle, 200 MiB retained over a 40 MiB live heap", prev, at(iv, 7, 40*mib, 240*mib), true},
		{"retained exactly the floor", prev, at(iv, 7, 40*mib, 40*mib+idleMemoryFloor), true},
		{"retained just under the floor", prev, at(iv, 7, 40*mib, 40*mib+idleMemoryFloor-1), false},
		{"a collection ran in the interval", prev, at(iv, 8, 40*mib, 240*mib), false},
		{"less than an interval since the last sample", prev, at(iv-time.Second, 7, 40*mib, 240*mib), false},
		{"no earlier sample", memSample{}, at(iv, 7, 40*mib, 240*mib), false},
		// A scrape-inflated live heap: 143 MiB live, 100 MiB retained
		// passes the half-live bound (71.5 MiB), 70 MiB does not.
		{"large live heap, retained above half of it", prev, at(iv, 7, 143*mib, 243*mib), true},
		{"large live heap, retained below half of it", prev, at(iv, 7, 143*mib, 213*mib), false},
		{"held below live (counters read apart)", prev, at(iv, 7, 300*mib, 200*mib), false},
		{"long idle", prev, at(10*iv, 7, 10*mib, 90*mib), true},
	} {
		if got := shouldReturnMemory(c.prev, c.cur, iv); got != c.wantReturn {
			t.Errorf("%s: shouldReturnMemory = %v, want %v", c.name, got, c.wantReturn)
		}
	}
}
