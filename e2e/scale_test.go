package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/daemon"
	"strait/mirror"
)

// TestScaleIdle is the scale scenario: N topics × 10 partitions, one record
// each, then idle, mirrored between two `strait broker` processes by a
// `strait mirror` process. Normally N = 210 (2,100 partitions, more than
// OpenTelemetry's old default of 2,000 series per instrument) and only
// correctness is asserted: every task runs, every record is copied, and
// /metrics holds one lag series per partition and no overflow series.
// With STRAIT_LONG=1, N = 1,000 (10,000 partitions) and the test also
// prints the figures the acceptance targets name: mirror and source-broker
// CPU per second of idle time (from /proc), mirror RSS and heap per
// partition above the empty baseline, and the time from the pipeline's
// start to every task running. Timings are printed, never asserted.
func TestScaleIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	topics, idle := 210, 5*time.Second
	long := os.Getenv("STRAIT_LONG") == "1"
	if long {
		topics, idle = 1000, 30*time.Second
	}
	const parts = 10
	n := topics * parts
	bin := binBuild(t)
	// STRAIT_SCALE_BROKER names another build of strait for the two
	// clusters, to measure the mirror against another broker.
	brokerBin := bin
	if b := os.Getenv("STRAIT_SCALE_BROKER"); b != "" {
		brokerBin = b
	}
	east, eastPID, _ := scaleProc(t, brokerBin, "ready ", "broker", "--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--brokers", "3")
	west, _, _ := scaleProc(t, brokerBin, "ready ", "broker", "--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--brokers", "3")
	east, west = strings.Split(east, ",")[0], strings.Split(west, ",")[0]
	t0 := time.Now()
	scaleTopics(t, east, topics, parts)
	t.Logf("source topics created and written in %.1f s", time.Since(t0).Seconds())

	cfgDir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(cfgDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("clusters.yaml", fmt.Sprintf("clusters:\n  east: {bootstrap: [%q]}\n  west: {bootstrap: [%q]}\ncheckpoints: {store: file, dir: %q, interval: 1s}\n", east, west, t.TempDir()))
	pipe := func(include string) string {
		return fmt.Sprintf("pipelines:\n  - name: wide\n    source: east\n    destination: west\n    topics: {include: [%q]}\n", include)
	}
	write("wide.yaml", pipe(`nothing`)) // the empty baseline first
	// STRAIT_SCALE_GCTRACE=1 runs the mirror with GODEBUG=gctrace=1 and
	// prints its collections: when they ran and what each left in use.
	gctrace := os.Getenv("STRAIT_SCALE_GCTRACE") == "1"
	var mirrorEnv []string
	if gctrace {
		mirrorEnv = []string{"GODEBUG=gctrace=1"}
	}
	addr, mirrorPID, logs := scaleProcEnv(t, bin, mirrorEnv, "", "mirror", "--config", cfgDir, "--http", "127.0.0.1:0",
		"--log-format", "json", "--watch-interval", "0")
	api := daemon.NewClient(addr, "")
	ctx := context.Background()
	status := func() (mirror.PipelineStatus, error) {
		var p mirror.PipelineStatus
		err := api.Do(ctx, http.MethodGet, "/v1/pipelines/wide", &p)
		return p, err
	}
	binWait(t, 30*time.Second, "the empty pipeline to run", func() error {
		p, err := status()
		if err == nil && p.State != mirror.StateRunning {
			err = fmt.Errorf("state %s", p.State)
		}
		return err
	})
	time.Sleep(2 * time.Second) // let the empty daemon settle before its baseline
	rss0, heap0 := procRSS(t, mirrorPID), scrapeValue(t, api.Base, "go_memstats_heap_inuse_bytes")

	write("wide.yaml", pipe(`scale\..*`))
	began := time.Now()
	if err := api.Do(ctx, http.MethodPost, "/v1/reload", nil); err != nil {
		t.Fatal(err)
	}
	var running time.Duration
	binWait(t, 5*time.Minute, "every task running", func() error {
		p, err := status()
		if err != nil {
			return err
		}
		r := 0
		for _, x := range p.Partitions {
			if x.State == mirror.StateRunning {
				r++
			}
		}
		if r != n {
			return fmt.Errorf("%d of %d tasks running", r, n)
		}
		running = time.Since(began)
		return nil
	})
	binWait(t, 5*time.Minute, "every record copied", func() error {
		p, err := status()
		if err != nil {
			return err
		}
		for _, x := range p.Partitions {
			if x.SourceOffset != 1 || x.Lag != 0 {
				return fmt.Errorf("%s/%d at %d, lag %d", x.Topic, x.Partition, x.SourceOffset, x.Lag)
			}
		}
		return nil
	})

	body := scrape(t, api.Base)
	if strings.Contains(body, "otel_metric_overflow") {
		t.Error("/metrics holds an overflow series")
	}
	lag := regexp.MustCompile(`(?m)^strait_mirror_lag\{[^}]*partition="(\d+)",pipeline="wide",topic="([^"]+)"`)
	seen := map[string]bool{}
	for _, m := range lag.FindAllStringSubmatch(body, -1) {
		seen[m[2]+"/"+m[1]] = true
	}
	if len(seen) != n {
		t.Errorf("%d partitions have a lag series, want %d", len(seen), n)
	}
	t.Logf("%d partitions: every task running %.2f s after the pipeline started", n, running.Seconds())
	if !long {
		return
	}

	time.Sleep(2 * time.Second) // the copy's last acknowledgements and saves
	gcs0 := scrapeValue(t, api.Base, "go_gc_duration_seconds_count")
	m0, s0, w0 := procCPU(t, mirrorPID), procCPU(t, eastPID), time.Now()
	time.Sleep(idle)
	m1, s1, w1 := procCPU(t, mirrorPID), procCPU(t, eastPID), time.Now()
	wall := w1.Sub(w0).Seconds()
	// The RSS first: the scrape after it allocates.
	rss1, anon1 := procRSS(t, mirrorPID), procStatus(t, mirrorPID, "RssAnon:")
	after := scrape(t, api.Base)
	heap1 := scrapeBody(t, after, "go_memstats_heap_inuse_bytes")
	per := func(a, b float64) float64 { return (b - a) / float64(n) / 1024 }
	mib := func(v float64) float64 { return v / (1 << 20) }
	t.Logf("scale: %d topics × %d partitions = %d partitions, idle %s", topics, parts, n, idle)
	t.Logf("  every task running %.2f s after the pipeline started      (target ≤ 5 s)", running.Seconds())
	t.Logf("  mirror CPU idle            %5.2f %% of a CPU                (target ≤ 2 %%)", 100*(m1-m0)/wall)
	t.Logf("  source brokers' CPU idle   %5.2f %% of a CPU for 3 brokers  (target ≤ 2 %% each)", 100*(s1-s0)/wall)
	t.Logf("  mirror RSS per partition   %5.2f KiB above the empty baseline (target ≤ 8 KiB)", per(rss0, rss1))
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"created destination topics"`) || strings.Contains(l, `"partition tasks started"`) ||
			strings.Contains(l, `"returned idle memory to the OS"`) {
			t.Logf("  log: %s", l)
		}
	}
	t.Logf("  pipeline started at %s", began.Format(time.RFC3339Nano))
	t.Logf("  mirror heap per partition  %5.2f KiB above the empty baseline", per(heap0, heap1))
	// What the RSS holds beyond the live heap: pages the heap keeps but
	// does not use (idle, not yet released to the OS), and whether a
	// collection ran during the idle window to free any.
	idleB, released := scrapeBody(t, after, "go_memstats_heap_idle_bytes"), scrapeBody(t, after, "go_memstats_heap_released_bytes")
	t.Logf("  mirror after the idle window: RSS %.1f MiB (anonymous %.1f MiB; empty baseline %.1f MiB), heap in use %.1f MiB (baseline %.1f MiB)",
		mib(rss1), mib(anon1), mib(rss0), mib(heap1), mib(heap0))
	t.Logf("  mirror heap idle %.1f MiB, of it released to the OS %.1f MiB; heap sys %.1f MiB, next GC at %.1f MiB; %.0f collections during the idle window",
		mib(idleB), mib(released), mib(scrapeBody(t, after, "go_memstats_heap_sys_bytes")), mib(scrapeBody(t, after, "go_memstats_next_gc_bytes")),
		scrapeBody(t, after, "go_gc_duration_seconds_count")-gcs0)
	if gctrace {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.HasPrefix(l, "gc ") || strings.HasPrefix(l, "scvg") {
				t.Logf("  %s", l)
			}
		}
	}
}

// scaleTopics creates topics scale.0000… with parts partitions each and
// writes one record to every partition.
func scaleTopics(t *testing.T, addr string, topics, parts int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprintf("scale.%04d", i)
	}
	for i := 0; i < len(names); i += 500 {
		rs, err := kadm.NewClient(cl).CreateTopics(ctx, int32(parts), -1, nil, names[i:min(i+500, len(names))]...)
		if err == nil {
			err = rs.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var recs []*kgo.Record
	for _, name := range names {
		for p := range parts {
			recs = append(recs, &kgo.Record{Topic: name, Partition: int32(p), Value: []byte(name)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// scaleProc starts the binary with args and returns its address and pid:
// for a broker, the addresses of its ready line (after prefix, on stdout);
// for the daemon, the admin address from its JSON log. The test's cleanup
// stops it with SIGTERM. Its standard error is returned too.
func scaleProc(t *testing.T, bin, prefix string, args ...string) (string, int, *lockedBuf) {
	t.Helper()
	return scaleProcEnv(t, bin, nil, prefix, args...)
}

// scaleProcEnv is scaleProc with env added to the test's environment.
func scaleProcEnv(t *testing.T, bin string, env []string, prefix string, args ...string) (string, int, *lockedBuf) {
	t.Helper()
	cmd, stderr, line := binProc(t, append([]string{bin}, args...), env, 60*time.Second)
	if prefix != "" {
		return binReady(t, args[0], line, stderr, prefix), cmd.Process.Pid, stderr
	}
	return binAdminAddr(t, stderr, "the admin API address in the log"), cmd.Process.Pid, stderr
}

// procCPU is a process's CPU time (user + system) in seconds, from
// /proc/PID/stat.
func procCPU(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which sits in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64) // utime, field 14
	st, _ := strconv.ParseFloat(f[12], 64) // stime, field 15
	return (ut + st) / 100                 // USER_HZ is 100 on Linux
}

// procRSS is a process's resident set in bytes, from /proc/PID/status.
func procRSS(t *testing.T, pid int) float64 {
	t.Helper()
	return procStatus(t, pid, "VmRSS:")
}

// procStatus is one size line of /proc/PID/status (field ends with its
// colon) in bytes.
func procStatus(t *testing.T, pid int, field string) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// scrapeValue reads one unlabelled series from /metrics.
func scrapeValue(t *testing.T, base, name string) float64 {
	t.Helper()
	return scrapeBody(t, scrape(t, base), name)
}

// scrapeBody reads one unlabelled series from a scraped /metrics body.
func scrapeBody(t *testing.T, body, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics lacks %s", name)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
