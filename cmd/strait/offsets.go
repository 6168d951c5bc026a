package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"strait/checkpoint"
	"strait/internal/cli"
	"strait/pipelines"
)

// runOffsets runs "strait offsets translate": read-only, it loads the
// configuration, opens the pipeline's checkpoint store, reads group G's
// committed offsets on the source and prints, per partition, where the
// group must resume on the destination and what failing over now would
// cost it (records re-read, records missed).
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
	// The failover impact if the group moved to the destination now (null
	// when the offset cannot be translated): Reread counts destination
	// records the group already consumed on the source and would read
	// again, Missed counts records the source acknowledged past the
	// group's commit that are not on the destination.
	Reread *int64 `json:"reread"`
	Missed *int64 `json:"missed"`
}

type translateResult struct {
	Pipeline   string             `json:"pipeline"`
	Group      string             `json:"group"`
	Partitions []translatedOffset `json:"partitions"`
	// Totals over the partitions whose impact is known.
	Reread int64 `json:"reread"`
	Missed int64 `json:"missed"`
}

// failoverImpact predicts, for one partition, what a group committed at
// source offset committed would re-read and miss if it failed over now.
// pos is the partition's checkpoint, srcEnd the source high watermark and
// dstEnd the destination's. The destination holds the checkpoint's records
// plus n = dstEnd - pos.Dest written since, the next n source records after
// pos.Source. Translation of a commit at or past pos.Source lands at
// pos.Dest (the checkpoint knows nothing later), so the group re-reads
// those of the n records it had consumed; a commit before pos.Source
// translates exactly and re-reads nothing. Missed are the source records
// past both the commit and the mirrored end. Counts are offsets, exact when
// the source has no gaps (compaction, transaction markers) past the
// checkpoint, and an upper bound otherwise.
func failoverImpact(committed int64, pos checkpoint.Position, srcEnd, dstEnd int64) (reread, missed int64) {
	n := max(0, dstEnd-pos.Dest)
	mirrored := min(pos.Source+n, max(srcEnd, pos.Source))
	if committed > pos.Source {
		reread = min(n, committed-pos.Source)
	}
	missed = max(0, srcEnd-max(committed, mirrored))
	return reread, missed
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
	orDash := func(v *int64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprint(*v)
	}
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tDEST TOPIC\tDEST OFFSET\tRE-READ\tMISSED\tNOTE")
	for _, t := range res.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", t.Topic, t.Partition, t.SourceOffset, t.DestTopic,
			orDash(t.DestOffset), orDash(t.Reread), orDash(t.Missed), t.Reason)
	}
	fmt.Fprintf(tw, "total\t\t\t\t\t%d\t%d\t\n", res.Reread, res.Missed)
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(stdout, strings.TrimRight(line, " \n"))
	}
	fmt.Fprintf(stdout, "failing over now, group %s would re-read %d records and miss %d\n", o.group, res.Reread, res.Missed)
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
	// The high watermarks on both sides, for the failover impact.
	var srcTopics, dstTopics []string
	for _, o := range committed.Sorted() {
		if part := st.Partitions[checkpoint.TP{Topic: o.Topic, Partition: o.Partition}]; part != nil {
			srcTopics = append(srcTopics, o.Topic)
			dstTopics = append(dstTopics, part.DestTopic)
		}
	}
	var srcEnds, dstEnds kadm.ListedOffsets
	if len(srcTopics) > 0 {
		sort.Strings(srcTopics)
		sort.Strings(dstTopics)
		if srcEnds, err = kadm.NewClient(src).ListEndOffsets(ctx, slices.Compact(srcTopics)...); err != nil {
			return nil, fmt.Errorf("list end offsets on %s: %w", p.Source, err)
		}
		if dstEnds, err = kadm.NewClient(dst).ListEndOffsets(ctx, slices.Compact(dstTopics)...); err != nil {
			return nil, fmt.Errorf("list end offsets on %s: %w", p.Destination, err)
		}
	}
	// end is a partition's high watermark; a destination topic not created
	// yet holds nothing.
	end := func(l kadm.ListedOffsets, topic string, partition int32, dest bool) (int64, error) {
		o, ok := l.Lookup(topic, partition)
		if !ok {
			// kadm answers a missing topic with partition -1.
			o, ok = l.Lookup(topic, -1)
		}
		switch {
		case !ok:
			return 0, fmt.Errorf("no answer for %s/%d", topic, partition)
		case dest && errors.Is(o.Err, kerr.UnknownTopicOrPartition):
			return 0, nil
		case o.Err != nil:
			return 0, fmt.Errorf("%s/%d: %w", topic, partition, o.Err)
		}
		return o.Offset, nil
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
			se, err := end(srcEnds, o.Topic, o.Partition, false)
			if err != nil {
				row.Reason = "impact unknown: source high watermark: " + err.Error()
				break
			}
			de, err := end(dstEnds, destTopic, o.Partition, true)
			if err != nil {
				row.Reason = "impact unknown: destination high watermark: " + err.Error()
				break
			}
			reread, missed := failoverImpact(o.At, part.Pos, se, de)
			row.Reread, row.Missed = &reread, &missed
			res.Reread += reread
			res.Missed += missed
		}
		res.Partitions = append(res.Partitions, row)
	}
	return res, nil
}
