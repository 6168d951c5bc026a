package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"strait/daemon"
	"strait/drill"
	"strait/internal/cli"
	"strait/pipelines"
)

// drillReport is the JSON a drill writes: the scenario's report and how the
// drill was run.
type drillReport struct {
	Kind    string    `json:"kind"` // embedded | config
	Config  string    `json:"config,omitempty"`
	Topic   string    `json:"topic"`
	Rate    int       `json:"rate"`
	Started time.Time `json:"started"`
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	*drill.Report
}

// drillOpts are strait drill's flags.
type drillOpts struct {
	config, pipeline, jsonOut, mode, scenarios *string
	duration                                   *time.Duration
	rate, partitions                           *int
}

func drillFlags(o *drillOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	o.config = fs.String("config", "", "drill a configured pipeline's real clusters (default: two embedded clusters)")
	o.pipeline = fs.String("pipeline", "", "with --config: the pipeline to drill (default: the first)")
	o.jsonOut = fs.String("json", "", "also write the report as JSON to this file")
	o.duration = fs.Duration("duration", 30*time.Second, "how long the drill runs, failover included (at least 8s)")
	o.rate = fs.Int("rate", 1000, "records per second produced to the source")
	o.partitions = fs.Int("partitions", 4, "partitions of the drill topic")
	o.mode = fs.String("mode", "batch", "without --config: mirror mode, batch or record")
	o.scenarios = fs.String("scenario", "", "comma-separated scenarios to run on embedded clusters (default: every implemented one): "+strings.Join(drill.Scenarios, ", "))
	return fs
}

// runDrill is `strait drill`: a disaster-recovery drill with measured
// RPO/RTO, on embedded clusters or on a configured pipeline's real ones.
func runDrill(args []string) error {
	var o drillOpts
	fs := drillFlags(&o)
	if _, err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	// The named scenarios run unless a flag of the single failover story
	// (or --config) asks for that story.
	story := *o.config != ""
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "duration", "rate", "partitions", "mode":
			story = true
		}
	})
	if *o.scenarios != "" || !story {
		if *o.config != "" {
			return fmt.Errorf("%w: --scenario runs on embedded clusters; with --config the drill runs the failover story", errUsage)
		}
		return runScenarios(*o.scenarios, *o.jsonOut)
	}
	config, pipeline, jsonOut, duration, rate, partitions, mode := o.config, o.pipeline, o.jsonOut, o.duration, o.rate, o.partitions, o.mode
	if *duration < 8*time.Second {
		return fmt.Errorf("%w: --duration must be at least 8s", errUsage)
	}
	if *rate <= 0 || *partitions <= 0 || *partitions > 1000 {
		return fmt.Errorf("%w: --rate must be positive and --partitions within 1..1000", errUsage)
	}
	if *mode != "batch" && *mode != "record" {
		return fmt.Errorf("%w: --mode is batch or record", errUsage)
	}
	if *pipeline != "" && *config == "" {
		return fmt.Errorf("%w: --pipeline needs --config", errUsage)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "strait-drill-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	out := os.Stdout
	dr := drillReport{Kind: "embedded", Rate: *rate, Started: time.Now().UTC()}
	sc := &drill.Scenario{
		Rate:     *rate,
		Duration: *duration,
		Group:    "strait-drill",
		Tick: func(s drill.Snapshot) {
			fmt.Fprintf(out, "%5.1fs %-9s acked %d (%s/s)  mirrored %d  lag %d  consumed on source %d\n",
				s.Elapsed.Seconds(), s.Phase, s.Acked, formatRate(s.ProduceRate), s.Mirrored, s.Lag, s.Consumed)
		},
	}
	var cutWhat, dest string
	if *config == "" {
		fmt.Fprintf(out, "strait drill: two embedded clusters in %s\n", dir)
		pair, err := drill.StartPair(ctx, dir, 1, nil)
		if err != nil {
			return err
		}
		defer pair.Close()
		cfg, err := drill.EmbeddedConfig(dir, pair, *mode)
		if err != nil {
			return err
		}
		dr.Topic = drill.EmbeddedTopic
		sc.Config, sc.Pipeline = cfg, cfg.Pipelines[0].Name
		sc.Topics = []drill.TopicSpec{{Name: drill.EmbeddedTopic, Partitions: int32(*partitions)}}
		sc.CutSource = pair.StopEast
		cutWhat, dest = "source cluster east stopped", "west"
	} else {
		base, err := pipelines.Load(*config)
		if err != nil {
			for _, l := range daemon.ErrorLines(err) {
				fmt.Fprintln(os.Stderr, l)
			}
			return cmdExit(exitError)
		}
		dr.Kind, dr.Config = "config", *config
		dr.Topic = fmt.Sprintf("strait-drill-%d", time.Now().Unix())
		group := dr.Topic
		cfg, err := drill.RealConfig(base, *pipeline, dr.Topic, dir)
		if err != nil {
			return err
		}
		pl := cfg.Pipelines[0]
		fmt.Fprintf(out, "strait drill: pipeline %s (%s → %s), drill topic %s, group %s\n", pl.Name, pl.Source, pl.Destination, dr.Topic, group)
		sc.Config, sc.Pipeline, sc.Group = cfg, pl.Name, group
		sc.Topics = []drill.TopicSpec{{Name: dr.Topic, Partitions: int32(*partitions)}}
		cutWhat, dest = "producing stopped and the mirror paused", pl.Destination
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, err := range drill.Cleanup(cctx, cfg, dr.Topic, group) {
				fmt.Fprintf(os.Stderr, "strait drill: cleanup: %v\n", err)
			}
		}()
	}

	rep, runErr := sc.Run(ctx)
	dr.Report = rep
	dr.OK = runErr == nil
	if runErr != nil {
		dr.Error = runErr.Error()
	}
	if rep != nil {
		printFailover(out, rep, cutWhat, dest)
		if rep.TranslationExact {
			fmt.Fprintln(out, "  offset translation exact")
		}
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(dr, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
		fmt.Fprintf(out, "report written to %s\n", *jsonOut)
	}
	if errors.Is(runErr, drill.ErrVerify) {
		fmt.Fprintln(out, "DRILL FAILED: records were lost, duplicated or mistranslated")
		return cmdExit(exitError)
	}
	if runErr != nil {
		return runErr
	}
	fmt.Fprintln(out, "drill passed")
	return nil
}
