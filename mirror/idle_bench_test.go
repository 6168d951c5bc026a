package mirror

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/pipelines"
)

// BenchmarkIdleWide mirrors N topics × 10 partitions (N = 1,000, or
// STRAIT_IDLE_TOPICS) between two in-process 3-broker clusters, one record
// per partition, and then measures one idle second per iteration. The
// reported cpu-% is the whole process (mirror and the six brokers); run
// it with -cpuprofile and read the profile by package to see the idle
// path of each, or set STRAIT_IDLE_PROFILE to a file for a profile of
// the idle seconds alone (the e2e scale test measures the mirror process
// alone).
func BenchmarkIdleWide(b *testing.B) {
	topics := 1000
	if v, err := strconv.Atoi(os.Getenv("STRAIT_IDLE_TOPICS")); err == nil && v > 0 {
		topics = v
	}
	const parts = 10
	src := startCluster(b, b.TempDir(), "", 3)
	b.Cleanup(func() { src.Close() })
	dst := startCluster(b, b.TempDir(), "", 3)
	b.Cleanup(func() { dst.Close() })
	cl := client(b, src.Addrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := context.Background()
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprintf("wide.%04d", i)
	}
	if rs, err := kadm.NewClient(cl).CreateTopics(ctx, parts, -1, nil, names...); err != nil || rs.Error() != nil {
		b.Fatalf("create topics: %v %v", err, rs.Error())
	}
	var recs []*kgo.Record
	for _, name := range names {
		for p := range parts {
			recs = append(recs, &kgo.Record{Topic: name, Partition: int32(p), Value: []byte(name)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	yaml := fmt.Sprintf(`clusters:
  east: {bootstrap: [%q]}
  west: {bootstrap: [%q]}
checkpoints: {store: file, dir: %q, interval: 1s}
pipelines:
  - name: wide
    source: east
    destination: west
    topics: {include: ['wide\..*']}
`, src.Addrs()[0], dst.Addrs()[0], b.TempDir())
	cfg, err := pipelines.Parse("wide.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	e, _ := runEngine(b, cfg, Options{})
	waitFor(b, 5*time.Minute, "every record copied", func() bool {
		n := 0
		for _, ps := range e.Status() {
			for _, p := range ps.Partitions {
				if p.State == StateRunning && p.SourceOffset == 1 {
					n++
				}
			}
		}
		return n == topics*parts
	})
	time.Sleep(2 * time.Second) // the last acknowledgements and saves
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	// STRAIT_IDLE_PROFILE names a file for a CPU profile of the idle
	// seconds alone (-cpuprofile would include the setup).
	if path := os.Getenv("STRAIT_IDLE_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	heapProfile := func(path string) {
		runtime.GC()
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	// STRAIT_IDLE_HEAPPROFILE names a file for a heap profile taken after
	// the idle seconds, while the engine still runs (-memprofile is
	// written after the cleanup has stopped it), and FILE.start for one
	// taken before them. The inuse figures of the first are the steady
	// footprint (with -memprofilerate=1 and focused on strait/mirror,
	// the bytes per task); the alloc figures of the first with the
	// second as -diff_base are what the idle seconds allocated.
	heapPath := os.Getenv("STRAIT_IDLE_HEAPPROFILE")
	if heapPath != "" {
		heapProfile(heapPath + ".start")
	}
	c0 := cpu()
	b.ResetTimer()
	for b.Loop() {
		time.Sleep(time.Second)
	}
	b.ReportMetric(100*float64(cpu()-c0)/float64(b.Elapsed()), "cpu-%")
	if heapPath != "" {
		heapProfile(heapPath)
	}
}
