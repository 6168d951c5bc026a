package audit

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"strait/checkpoint"
	"strait/pipelines"
)

// Options tune an on-demand audit.
type Options struct {
	// Topics, when set, limits the audit to source topics it matches
	// (anchored).
	Topics *regexp.Regexp
	// Since, when set, starts each partition at the first source record
	// with a timestamp at or after it instead of at the start of the
	// offset map.
	Since time.Time
	// Show is how many differences of each kind are listed per partition
	// (the counts are always complete); default DefaultShow.
	Show int
}

// DefaultShow is how many differences of each kind a report lists per
// partition.
const DefaultShow = 10

// PartitionReport is one partition's audit.
type PartitionReport struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	DestTopic string `json:"dest_topic"`
	// The ranges read: source [SourceFrom, SourceTo), destination
	// [DestFrom, DestTo).
	SourceFrom int64 `json:"source_from"`
	SourceTo   int64 `json:"source_to"`
	DestFrom   int64 `json:"dest_from"`
	DestTo     int64 `json:"dest_to"`
	Counts
	Completeness float64 `json:"completeness"` // confirmed / compared (1 when nothing to compare)
	Diffs        []Diff  `json:"diffs,omitempty"`
	// BytesRead is SourceBytesRead + DestBytesRead: the record-batch
	// bytes fetched from each side.
	BytesRead       int64  `json:"bytes_read"`
	SourceBytesRead int64  `json:"source_bytes_read"`
	DestBytesRead   int64  `json:"dest_bytes_read"`
	Note            string `json:"note,omitempty"`
}

// Report is an on-demand audit of one pipeline.
type Report struct {
	Pipeline        string            `json:"pipeline"`
	Mode            string            `json:"mode"`
	Partitions      []PartitionReport `json:"partitions"`
	Total           Counts            `json:"total"`
	Completeness    float64           `json:"completeness"`
	BytesRead       int64             `json:"bytes_read"`
	SourceBytesRead int64             `json:"source_bytes_read"`
	DestBytesRead   int64             `json:"dest_bytes_read"`
	Elapsed         time.Duration     `json:"elapsed_ns"`
}

// Clean reports whether the audit found no difference.
func (r *Report) Clean() bool { return r.Total.Differences() == 0 }

// Completeness is the share of records the audit confirmed: confirmed /
// (compared + extra), so a stranger's record counts against it too; 1 when
// there was nothing to compare.
func Completeness(c Counts) float64 {
	if c.Compared+c.Extra == 0 {
		return 1
	}
	return float64(c.Confirmed) / float64(c.Compared+c.Extra)
}

// Audit reads the mirrored range of every checkpointed partition of
// pipeline p on both clusters once and compares them through the offset
// map (Compare). It only reads: the checkpoint store is opened read-only.
func Audit(ctx context.Context, cfg *pipelines.Config, p *pipelines.Pipeline, o Options) (*Report, error) {
	started := time.Now()
	if o.Show <= 0 {
		o.Show = DefaultShow
	}
	src, err := Connect(cfg, p.Source)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := Connect(cfg, p.Destination)
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
		return nil, fmt.Errorf("%w: load checkpoints of %s: %w", ErrRead, p.Name, err)
	}
	ignore := ""
	if p.Mode == pipelines.ModeRecord {
		ignore = checkpoint.ProvenanceHeader
	}
	tps := make([]checkpoint.TP, 0, len(st.Partitions))
	srcTopics, dstTopics := map[string]bool{}, map[string]bool{}
	for tp, part := range st.Partitions {
		if (p.Compiled != nil && !p.Matches(tp.Topic)) || (o.Topics != nil && !anchored(o.Topics).MatchString(tp.Topic)) {
			continue
		}
		tps = append(tps, tp)
		srcTopics[tp.Topic] = true
		dstTopics[destTopic(p, tp, part)] = true
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	rep := &Report{Pipeline: p.Name, Mode: string(p.Mode), Partitions: []PartitionReport{}}
	if len(tps) == 0 {
		rep.Completeness = 1
		rep.Elapsed = time.Since(started)
		return rep, nil
	}
	// The destination's ends first, then the source's: every record the
	// mirror wrote by then is in the source range read.
	sadm, dadm := kadm.NewClient(src), kadm.NewClient(dst)
	dStarts, err := dadm.ListStartOffsets(ctx, keys(dstTopics)...)
	if err != nil {
		return nil, fmt.Errorf("%w: destination start offsets: %w", ErrRead, err)
	}
	dEnds, err := dadm.ListEndOffsets(ctx, keys(dstTopics)...)
	if err != nil {
		return nil, fmt.Errorf("%w: destination end offsets: %w", ErrRead, err)
	}
	sStarts, err := sadm.ListStartOffsets(ctx, keys(srcTopics)...)
	if err != nil {
		return nil, fmt.Errorf("%w: source start offsets: %w", ErrRead, err)
	}
	sEnds, err := sadm.ListCommittedOffsets(ctx, keys(srcTopics)...)
	if err != nil {
		return nil, fmt.Errorf("%w: source end offsets: %w", ErrRead, err)
	}
	var sSince kadm.ListedOffsets
	if !o.Since.IsZero() {
		if sSince, err = sadm.ListOffsetsAfterMilli(ctx, o.Since.UnixMilli(), keys(srcTopics)...); err != nil {
			return nil, fmt.Errorf("%w: source offsets at %s: %w", ErrRead, o.Since.Format(time.RFC3339), err)
		}
	}
	for _, tp := range tps {
		part := st.Partitions[tp]
		dt := destTopic(p, tp, part)
		pr := PartitionReport{Topic: tp.Topic, Partition: tp.Partition, DestTopic: dt}
		m := Mapping{Runs: part.Map.Runs(), Pos: part.Pos, LoopProtection: p.LoopProtection}
		ls, lok := sStarts.Lookup(tp.Topic, tp.Partition)
		le, eok := sEnds.Lookup(tp.Topic, tp.Partition)
		ds, dsok := dStarts.Lookup(dt, tp.Partition)
		de, deok := dEnds.Lookup(dt, tp.Partition)
		if !lok || !eok || ls.Err != nil || le.Err != nil {
			pr.Note = "source partition not found"
			rep.Partitions = append(rep.Partitions, pr)
			continue
		}
		if !dsok || !deok || ds.Err != nil || de.Err != nil {
			pr.Note = "destination partition not found"
			rep.Partitions = append(rep.Partitions, pr)
			continue
		}
		from := ls.Offset
		if start, ok := part.Map.Start(); ok && start > from {
			from = start
		}
		if sSince != nil {
			if so, ok := sSince.Lookup(tp.Topic, tp.Partition); ok && so.Err == nil && so.Offset > from {
				from = so.Offset
			}
		}
		pr.SourceFrom, pr.SourceTo = from, max(le.Offset, from)
		pr.DestFrom, pr.DestTo = m.DestStart(from), de.Offset
		sr := NewReader(src, tp.Topic, tp.Partition, pr.SourceFrom, pr.SourceTo, ignore)
		dr := NewReader(dst, dt, tp.Partition, max(pr.DestFrom, ds.Offset), pr.DestTo, ignore)
		c, diffs, err := Compare(m, sr.Iter(ctx), dr.Iter(ctx), o.Show)
		if err != nil {
			return nil, err
		}
		pr.Counts, pr.Diffs = c, diffs
		pr.Completeness = Completeness(c)
		pr.SourceBytesRead, pr.DestBytesRead = sr.BytesRead, dr.BytesRead
		pr.BytesRead = sr.BytesRead + dr.BytesRead
		rep.Total.Add(c)
		rep.BytesRead += pr.BytesRead
		rep.SourceBytesRead += pr.SourceBytesRead
		rep.DestBytesRead += pr.DestBytesRead
		rep.Partitions = append(rep.Partitions, pr)
	}
	rep.Completeness = Completeness(rep.Total)
	rep.Elapsed = time.Since(started)
	return rep, nil
}

func destTopic(p *pipelines.Pipeline, tp checkpoint.TP, part *checkpoint.Partition) string {
	if part != nil && part.DestTopic != "" {
		return part.DestTopic
	}
	return p.DestTopic(tp.Topic)
}

func anchored(re *regexp.Regexp) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + re.String() + `)$`)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Connect makes a client of a configured cluster for reading, with Fetch
// capped at v12 so that topics travel by name in raw requests.
func Connect(cfg *pipelines.Config, cluster string) (*kgo.Client, error) {
	c := cfg.Cluster(cluster)
	if c == nil {
		return nil, fmt.Errorf("%w: unknown cluster %q", ErrConfig, cluster)
	}
	opts, err := c.ClientOptions()
	if err != nil {
		return nil, fmt.Errorf("%w: cluster %q: %w", ErrConfig, cluster, err)
	}
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.Fetch.Int16(), 12)
	cl, err := kgo.NewClient(append(opts, kgo.MaxVersions(v))...)
	if err != nil {
		return nil, fmt.Errorf("%w: cluster %q: %w", ErrConfig, cluster, err)
	}
	return cl, nil
}
