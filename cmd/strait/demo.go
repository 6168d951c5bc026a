package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"strait/drill"
	"strait/internal/cli"
	"strait/pipelines"
)

// demoYAML is a copy of pipelines/examples/demo.yaml (a test keeps them
// identical), for a binary run outside the source tree.
//
//go:embed demo.yaml
var demoYAML []byte

const demoConfigPath = "pipelines/examples/demo.yaml"

// demoOpts are strait demo's flags.
type demoOpts struct {
	duration               *time.Duration
	rate, backlog, brokers *int
}

func demoFlags(o *demoOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	o.duration = fs.Duration("duration", 60*time.Second, "how long the whole demo runs, failover included (at least 8s)")
	o.rate = fs.Int("rate", 2000, "records per second produced to east")
	o.backlog = fs.Int("backlog", -1, "records produced before the mirror starts (default: 15 seconds' worth)")
	o.brokers = fs.Int("brokers", 3, "brokers per embedded cluster")
	return fs
}

// runDemo is `strait demo`: two embedded clusters, the demo pipeline, live
// progress, then a failover with its cost. The story itself is drill.Scenario.
func runDemo(args []string) error {
	var o demoOpts
	if _, err := cli.Parse(demoFlags(&o), args, 0); err != nil {
		return err
	}
	duration, rate, backlog, brokers := o.duration, o.rate, o.backlog, o.brokers
	if *duration < 8*time.Second {
		return fmt.Errorf("%w: --duration must be at least 8s", errUsage)
	}
	if *rate <= 0 || *brokers <= 0 {
		return fmt.Errorf("%w: --rate and --brokers must be positive", errUsage)
	}
	if *backlog < 0 {
		*backlog = *rate * 15
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "strait-demo-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	out := os.Stdout
	fmt.Fprintf(out, "strait demo: starting two embedded clusters (east, west) with %d brokers each in %s\n", *brokers, dir)
	pair, err := drill.StartPair(ctx, dir, *brokers, nil)
	if err != nil {
		return err
	}
	defer pair.Close()
	fmt.Fprintf(out, "  east %s\n  west %s\n", strings.Join(pair.East.Addrs(), ","), strings.Join(pair.West.Addrs(), ","))

	cfg, from, err := loadDemoConfig(dir, pair)
	if err != nil {
		return err
	}
	pl := cfg.Pipelines[0]
	fmt.Fprintf(out, "  pipeline %q from %s: %s → %s, %s mode\n", pl.Name, from, pl.Source, pl.Destination, pl.Mode)
	fmt.Fprintf(out, "  producing %d records/s (keyed) to demo.orders and demo.payments after a backlog of %d; consumer group demo-billing reads east\n\n", *rate, *backlog)

	r := &demoRenderer{w: out, tty: statusIsTTY(out)}
	sc := &drill.Scenario{
		Config:    cfg,
		Pipeline:  pl.Name,
		Topics:    []drill.TopicSpec{{Name: "demo.orders", Partitions: 6}, {Name: "demo.payments", Partitions: 3}},
		Group:     "demo-billing",
		Rate:      *rate,
		Backlog:   *backlog,
		Duration:  *duration,
		CutSource: pair.StopEast,
		Tick:      r.tick,
	}
	rep, err := sc.Run(ctx)
	r.finish()
	if rep != nil {
		printFailover(out, rep, "east stopped", "west")
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\ndemo finished; removing the clusters' folders")
	return nil
}

// loadDemoConfig loads the demo pipeline with EAST_BOOTSTRAP and
// WEST_BOOTSTRAP pointing at the embedded clusters: the repository's file
// when run from the source tree, else the embedded copy.
func loadDemoConfig(dir string, pair *drill.Pair) (*pipelines.Config, string, error) {
	os.Setenv("EAST_BOOTSTRAP", strings.Join(pair.East.Addrs(), ","))
	os.Setenv("WEST_BOOTSTRAP", strings.Join(pair.West.Addrs(), ","))
	path := demoConfigPath
	if _, err := os.Stat(path); err != nil {
		path = filepath.Join(dir, "demo.yaml")
		if err := os.WriteFile(path, demoYAML, 0o644); err != nil {
			return nil, "", err
		}
	}
	cfg, err := pipelines.Load(path)
	if err != nil {
		return nil, "", fmt.Errorf("demo configuration: %w", err)
	}
	if len(cfg.Pipelines) == 0 {
		return nil, "", fmt.Errorf("demo configuration %s has no pipeline", path)
	}
	from := path
	if path != demoConfigPath {
		from = "the built-in demo.yaml"
	}
	return cfg, from, nil
}

// demoRenderer draws the live progress: redrawn in place on a terminal,
// one line a second otherwise.
type demoRenderer struct {
	w       io.Writer
	tty     bool
	lines   int  // lines drawn last time (terminal mode)
	showBar bool // the backlog bar has been drawn
}

func (r *demoRenderer) tick(s drill.Snapshot) {
	if !r.tty {
		progress := ""
		if s.Phase == drill.PhaseBacklog {
			progress = fmt.Sprintf("  backlog %.0f%% drained", 100*demoDrained(s))
		}
		fmt.Fprintf(r.w, "%5.1fs %-9s east acked %d (%s/s)  mirrored %d (%s/s)  lag %d  consumed on east %d%s\n",
			s.Elapsed.Seconds(), s.Phase, s.Acked, formatRate(s.ProduceRate), s.Mirrored,
			formatRate(s.MirrorRate), s.Lag, s.Consumed, progress)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  %5.1fs  %s\n", s.Elapsed.Seconds(), s.Phase)
	fmt.Fprintf(&b, "  east acked %-9d %7s/s    mirrored %-9d %7s/s    lag %-7d  demo-billing consumed %d\n",
		s.Acked, formatRate(s.ProduceRate), s.Mirrored, formatRate(s.MirrorRate), s.Lag, s.Consumed)
	if r.showBar || s.Phase == drill.PhaseBacklog {
		// Once shown, the bar stays (at 100%) so the frame keeps its shape.
		r.showBar = true
		done := 1.0
		if s.Phase == drill.PhaseBacklog {
			done = demoDrained(s)
		}
		fmt.Fprintf(&b, "  backlog %s %3.0f%%\n", bar(done, 40), 100*done)
	}
	for _, p := range s.Partitions {
		fmt.Fprintf(&b, "    %-14s %d  lag %-6d %7s/s  %s\n", p.Topic, p.Partition, p.Lag, formatRate(p.RecordsPerSec), p.State)
	}
	text := b.String()
	if r.lines > 0 {
		fmt.Fprintf(r.w, "\033[%dA", r.lines) // back to the top of the last frame
	}
	for _, l := range strings.SplitAfter(text, "\n") {
		if l != "" {
			fmt.Fprint(r.w, "\033[2K"+l)
		}
	}
	n := strings.Count(text, "\n")
	for ; n < r.lines; n++ {
		fmt.Fprint(r.w, "\033[2K\n") // blank what a longer frame left below
	}
	r.lines = n
}

// demoDrained is the share of acknowledged records already mirrored.
func demoDrained(s drill.Snapshot) float64 {
	if s.Acked <= 0 {
		return 0
	}
	return min(max(float64(s.Mirrored)/float64(s.Acked), 0), 1)
}

func (r *demoRenderer) finish() {
	if r.tty && r.lines > 0 {
		fmt.Fprintln(r.w)
	}
}

func bar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	n := int(frac * float64(width))
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

// printFailover prints what the failover cost.
func printFailover(w io.Writer, rep *drill.Report, cutWhat, dest string) {
	exact := 0
	committed := 0
	for _, p := range rep.Partitions {
		if p.Committed >= 0 {
			committed++
			if p.Exact {
				exact++
			}
		}
	}
	fmt.Fprintf(w, "\nFailover: %s, consumer group %s moved to %s\n", cutWhat, rep.Group, dest)
	fmt.Fprintf(w, "  RPO         %d records acknowledged by the source but not mirrored (window %s)\n", rep.RPORecords, rep.RPOWindow.Round(time.Millisecond))
	fmt.Fprintf(w, "  RTO         %s from the cut to the group reading on %s\n", rep.RTO.Round(time.Millisecond), dest)
	fmt.Fprintf(w, "  lost        %d mirrored records never consumed (expected 0)\n", rep.Lost)
	fmt.Fprintf(w, "  duplicates  %d records consumed twice (expected 0); %d records twice on %s\n", rep.Duplicates, rep.MirrorDuplicates, dest)
	fmt.Fprintf(w, "  translation exact on %d of %d committed partitions\n", exact, committed)
	fmt.Fprintf(w, "  records     %d produced, %d acknowledged, %d mirrored; group consumed %d on the source and %d after failover\n",
		rep.Produced, rep.Acked, rep.Mirrored, rep.ConsumedSource, rep.ConsumedDest)
	if rep.BacklogN > 0 && rep.DrainTime > 0 {
		// Progress is sampled every 100ms, so the time is an upper bound
		// and the rate a lower one.
		fmt.Fprintf(w, "  backlog     %d records drained within %s of the mirror starting (at least %s records/s)\n",
			rep.BacklogN, rep.DrainTime.Round(time.Millisecond), formatRate(rep.DrainRate))
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  PROBLEM     %s\n", p)
	}
}
