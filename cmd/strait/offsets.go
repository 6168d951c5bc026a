package main

import (
	"context"
	"encoding/json"
	"errors"
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

func offsets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "translate" {
		return fmt.Errorf("%w: expected \"offsets translate --config PATH --pipeline NAME --group G [--json]\"", errUsage)
	}
	fs := flag.NewFlagSet("offsets translate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "configuration file or folder (required)")
	pipeline := fs.String("pipeline", "", "pipeline name (required)")
	group := fs.String("group", "", "consumer group on the source cluster (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitStatus(exitOK)
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments: %s", errUsage, strings.Join(fs.Args(), " "))
	}
	var missing []string
	for name, v := range map[string]string{"--config": *config, "--pipeline": *pipeline, "--group": *group} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: missing %s", errUsage, strings.Join(missing, ", "))
	}

	cfg, err := pipelines.Load(*config)
	if err != nil {
		return reportLoadError(err, stderr)
	}
	p := cfg.Pipeline(*pipeline)
	if p == nil {
		var names []string
		for _, q := range cfg.Pipelines {
			names = append(names, q.Name)
		}
		return fmt.Errorf("no pipeline %q in %s (pipelines: %s)", *pipeline, *config, strings.Join(names, ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := translateGroup(ctx, cfg, p, *group)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if len(res.Partitions) == 0 {
		fmt.Fprintf(stdout, "group %s has no committed offsets on topics of pipeline %s\n", *group, p.Name)
		return nil
	}
	for _, o := range res.Partitions {
		dest := "-"
		if o.DestOffset != nil {
			dest = fmt.Sprint(*o.DestOffset)
		}
		line := fmt.Sprintf("%s %d %d → %s %s", o.Topic, o.Partition, o.SourceOffset, o.DestTopic, dest)
		if o.Reason != "" {
			line += " (" + o.Reason + ")"
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
