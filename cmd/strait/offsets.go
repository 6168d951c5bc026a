package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/checkpoint"
	"strait/internal/cli"
	"strait/pipelines"
)

// runOffsets runs "strait offsets translate": read-only, it loads the
// configuration, opens the pipeline's checkpoint store, reads group G's
// committed offsets on the source and prints, per partition, where the
// group must resume on the destination.
func runOffsets(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return offsets(ctx, args, os.Stdout, os.Stderr)
}

// translatedOffset is one partition of the answer (the --json form).
type translatedOffset struct {
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	SourceOffset int64  `json:"source_offset"`
	DestTopic    string `json:"dest_topic"`
	DestOffset   *int64 `json:"dest_offset"` // null when it cannot be translated
	Reason       string `json:"reason,omitempty"`
}

type translateResult struct {
	Pipeline   string             `json:"pipeline"`
	Group      string             `json:"group"`
	Partitions []translatedOffset `json:"partitions"`
}

// offsetsOpts are strait offsets translate's flags.
type offsetsOpts struct {
	config, pipeline, group string
	asJSON                  bool
	timeout                 time.Duration
}

func offsetsFlags(o *offsetsOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("offsets translate", flag.ContinueOnError)
	fs.StringVar(&o.config, "config", "", "configuration file or folder (required)")
	fs.StringVar(&o.pipeline, "pipeline", "", "pipeline name (required)")
	fs.StringVar(&o.group, "group", "", "consumer group on the source cluster (required)")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up after this long")
	return fs
}

// offsets is `strait offsets translate`; args are those after "translate".
func offsets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o offsetsOpts
	if _, err := cli.Parse(offsetsFlags(&o), args, 0); err != nil {
		return err
	}
	var missing []string
	for name, v := range map[string]string{"--config": o.config, "--pipeline": o.pipeline, "--group": o.group} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: missing %s", errUsage, strings.Join(missing, ", "))
	}

	cfg, err := pipelines.Load(o.config)
	if err != nil {
		return reportLoadError(err, stderr)
	}
	p := cfg.Pipeline(o.pipeline)
	if p == nil {
		var names []string
		for _, q := range cfg.Pipelines {
			names = append(names, q.Name)
		}
		return fmt.Errorf("no pipeline %q in %s (pipelines: %s)", o.pipeline, o.config, strings.Join(names, ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	res, err := translateGroup(ctx, cfg, p, o.group)
	if err != nil {
		return err
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if len(res.Partitions) == 0 {
		fmt.Fprintf(stdout, "group %s has no committed offsets on topics of pipeline %s\n", o.group, p.Name)
		return nil
	}
	for _, t := range res.Partitions {
		dest := "-"
		if t.DestOffset != nil {
			dest = fmt.Sprint(*t.DestOffset)
		}
		line := fmt.Sprintf("%s %d %d → %s %s", t.Topic, t.Partition, t.SourceOffset, t.DestTopic, dest)
		if t.Reason != "" {
			line += " (" + t.Reason + ")"
		}
		fmt.Fprintln(stdout, line)
	}
	return nil
}

// translateGroup reads the group's source commits and the pipeline's
// checkpoints and translates each commit the pipeline mirrors.
func translateGroup(ctx context.Context, cfg *pipelines.Config, p *pipelines.Pipeline, group string) (*translateResult, error) {
	connect := func(name string) (*kgo.Client, error) {
		c := cfg.Cluster(name)
		if c == nil {
			return nil, fmt.Errorf("pipeline %s: unknown cluster %q", p.Name, name)
		}
		opts, err := c.ClientOptions()
		if err != nil {
			return nil, err
		}
		return kgo.NewClient(opts...)
	}
	src, err := connect(p.Source)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := connect(p.Destination)
	if err != nil {
		return nil, err
	}
	defer dst.Close()

	store, err := checkpoint.OpenReadOnly(ctx, cfg.Checkpoints, dst)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	st, err := store.Load(ctx, p.Name)
	if err != nil {
		return nil, fmt.Errorf("load checkpoints of %s: %w", p.Name, err)
	}
	committed, err := kadm.NewClient(src).FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %s on %s: %w", group, p.Source, err)
	}
	res := &translateResult{Pipeline: p.Name, Group: group, Partitions: []translatedOffset{}}
	for _, o := range committed.Sorted() {
		if o.Err != nil || o.At < 0 {
			continue
		}
		tp := checkpoint.TP{Topic: o.Topic, Partition: o.Partition}
		part := st.Partitions[tp]
		if part == nil && !p.Matches(o.Topic) {
			continue // a topic this pipeline does not mirror
		}
		row := translatedOffset{Topic: o.Topic, Partition: o.Partition, SourceOffset: o.At, DestTopic: p.DestTopic(o.Topic)}
		destTopic, at, ok := st.Translate(tp, o.At)
		switch {
		case part == nil:
			row.Reason = "not checkpointed yet"
		case !ok:
			row.DestTopic = destTopic
			row.Reason = "below the earliest offset the checkpoint maps"
		default:
			row.DestTopic = destTopic
			row.DestOffset = &at
		}
		res.Partitions = append(res.Partitions, row)
	}
	return res, nil
}
