package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProvenanceHeader is the header the mirror's record mode adds to every
// record it writes: "<source cluster>/<pipeline>". A record that already
// carries it keeps its first origin, and a record whose origin cluster is
// the pipeline's destination came from there and is not copied back (loop
// prevention for active-active). Reconcile ignores it when comparing a
// destination record with its source record, since the source record does
// not carry it.
const ProvenanceHeader = "strait-origin"

// ReconcileIdle bounds how long Reconcile waits for a fetch that returns
// nothing before it treats the partition as read to its end. Reading stops
// at the end offsets listed up front, so this only matters when the last
// offsets before them hold no record at all (e.g. compacted away).
var ReconcileIdle = 10 * time.Second

// Reconcile runs when a task starts from a checkpoint: it reads the
// destination partition from pos.Dest to its end, checks those records are
// the source records following pos.Source (the first one compared by key,
// value and timestamp), records them in m, and returns the position after
// them, so the task neither repeats nor skips a record. It returns
// ErrStranger when the destination holds records that do not match.
//
// src and dst are only used for metadata and list-offsets requests; the
// records are read by short-lived consumers built from their options, so
// the callers' clients never see these fetches. When m has no start yet it
// is begun at pos (see OffsetMap.Begin), so call Reconcile also on a fresh
// start. It returns ErrDestTruncated when the destination ends before
// pos.Dest and ErrSourceTruncated when the source's log start has passed
// pos.Source while records wait to be matched.
func Reconcile(ctx context.Context, src, dst *kgo.Client, tp TP, destTopic string, pos Position, m *OffsetMap) (Position, error) {
	return ReconcileWith(ctx, src, dst, tp, destTopic, pos, m, ReconcileOptions{})
}

// ReconcileOptions tell Reconcile which source records the mirror does not
// copy, so that pairing passes over them exactly as the mirror did.
type ReconcileOptions struct {
	// Skip reports a source record the mirror deliberately leaves out:
	// loop prevention drops records stamped with the destination
	// cluster's provenance (record mode) and batches written by the
	// pipeline's own producers (batch mode, r.ProducerID). Skipped records
	// are gaps in the offset map, like control records. nil skips none.
	Skip func(r *kgo.Record) bool
	// Foreign reports a destination record that another writer put there
	// on purpose: in an active-active setup (loop protection on) local
	// producers write the destination partition too. Such records are
	// neither paired with source records nor taken for a stranger; they
	// are gaps on the destination side. nil: every destination record must
	// be the mirror's, and anything else is ErrStranger.
	Foreign func(r *kgo.Record) bool
}

// ReconcileWith is Reconcile for a mirror that leaves some source records
// out (see ReconcileOptions).
func ReconcileWith(ctx context.Context, src, dst *kgo.Client, tp TP, destTopic string, pos Position, m *OffsetMap, opts ReconcileOptions) (Position, error) {
	if m == nil {
		m = &OffsetMap{}
	}
	if _, ok := m.Start(); !ok {
		m.Begin(pos)
	}
	dstStart, dstEnd, err := partitionBounds(ctx, kadm.NewClient(dst), destTopic, tp.Partition, false)
	if err != nil {
		return pos, err
	}
	if dstEnd < pos.Dest || dstStart > pos.Dest {
		return pos, fmt.Errorf("%w: %s[%d] holds offsets [%d, %d), checkpoint is at %d",
			ErrDestTruncated, destTopic, tp.Partition, dstStart, dstEnd, pos.Dest)
	}
	if dstEnd == pos.Dest {
		return pos, nil
	}

	// The destination side: every record after the checkpoint, keeping
	// only the offsets and the first and last record for comparison.
	var dOffs []int64
	var dFirst, dLast *kgo.Record
	stranger := error(nil)
	err = readPartition(ctx, dst.Opts(), destTopic, tp.Partition, pos.Dest, dstEnd, false, func(r *kgo.Record) bool {
		if opts.Foreign != nil && opts.Foreign(r) {
			return true
		}
		if r.Attrs.IsControl() {
			// The mirror's producer is not transactional; a transaction
			// marker means another producer wrote here.
			stranger = fmt.Errorf("%w: %s[%d] offset %d is a transaction marker", ErrStranger, destTopic, tp.Partition, r.Offset)
			return false
		}
		dOffs = append(dOffs, r.Offset)
		if dFirst == nil {
			dFirst = r
		}
		dLast = r
		return true
	})
	if err != nil {
		return pos, err
	}
	if stranger != nil {
		return pos, stranger
	}
	if len(dOffs) == 0 {
		return Position{Source: pos.Source, Dest: dstEnd}, nil
	}

	// The source side: the next len(dOffs) committed records after
	// pos.Source, skipping control records and aborted data.
	srcStart, srcEnd, err := partitionBounds(ctx, kadm.NewClient(src), tp.Topic, tp.Partition, true)
	if err != nil {
		return pos, err
	}
	if srcStart > pos.Source {
		return pos, fmt.Errorf("%w: %s[%d] starts at %d, checkpoint is at %d",
			ErrSourceTruncated, tp.Topic, tp.Partition, srcStart, pos.Source)
	}
	sOffs := make([]int64, 0, len(dOffs))
	if srcEnd > pos.Source {
		err = readPartition(ctx, src.Opts(), tp.Topic, tp.Partition, pos.Source, srcEnd, true, func(r *kgo.Record) bool {
			if r.Attrs.IsControl() || opts.Skip != nil && opts.Skip(r) {
				return true
			}
			i := len(sOffs)
			if i == 0 || i == len(dOffs)-1 {
				want := dFirst
				if i > 0 {
					want = dLast
				}
				if why := differs(want, r); why != "" {
					stranger = fmt.Errorf("%w: %s[%d] offset %d does not match source %s[%d] offset %d: %s",
						ErrStranger, destTopic, tp.Partition, want.Offset, tp.Topic, tp.Partition, r.Offset, why)
					return false
				}
			}
			sOffs = append(sOffs, r.Offset)
			return len(sOffs) < len(dOffs)
		})
		if err != nil {
			return pos, err
		}
	}
	if stranger != nil {
		return pos, stranger
	}
	if len(sOffs) < len(dOffs) {
		return pos, fmt.Errorf("%w: %s[%d] holds %d records after offset %d, but source %s[%d] has only %d after %d",
			ErrStranger, destTopic, tp.Partition, len(dOffs), pos.Dest, tp.Topic, tp.Partition, len(sOffs), pos.Source)
	}
	for i := range dOffs {
		m.Add(sOffs[i], dOffs[i], 1)
	}
	return Position{Source: sOffs[len(sOffs)-1] + 1, Dest: dstEnd}, nil
}

// differs says how a destination record differs from its source record,
// or "" when it is a faithful copy.
func differs(d, s *kgo.Record) string {
	switch {
	case !bytes.Equal(d.Key, s.Key):
		return "key differs"
	case !bytes.Equal(d.Value, s.Value):
		return "value differs"
	case d.Attrs.TimestampType() != 1 && s.Attrs.TimestampType() != 1 &&
		!d.Timestamp.Equal(s.Timestamp):
		return fmt.Sprintf("timestamp %d != %d", d.Timestamp.UnixMilli(), s.Timestamp.UnixMilli())
	}
	// The provenance header is left out on both sides: the mirror adds it
	// to a record that has none and keeps one a record already carries.
	dh, sh := withoutProvenance(d.Headers), withoutProvenance(s.Headers)
	if len(dh) != len(sh) {
		return "headers differ"
	}
	for i, h := range dh {
		if h.Key != sh[i].Key || !bytes.Equal(h.Value, sh[i].Value) {
			return "headers differ"
		}
	}
	return ""
}

func withoutProvenance(hs []kgo.RecordHeader) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, 0, len(hs))
	for _, h := range hs {
		if h.Key != ProvenanceHeader {
			out = append(out, h)
		}
	}
	return out
}

// partitionBounds lists a partition's log start and end offset (the last
// stable offset when committed is set).
func partitionBounds(ctx context.Context, adm *kadm.Client, topic string, partition int32, committed bool) (start, end int64, err error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: list start offsets of %s: %v", ErrIO, topic, err)
	}
	var ends kadm.ListedOffsets
	if committed {
		ends, err = adm.ListCommittedOffsets(ctx, topic)
	} else {
		ends, err = adm.ListEndOffsets(ctx, topic)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%w: list end offsets of %s: %v", ErrIO, topic, err)
	}
	s, ok1 := starts.Lookup(topic, partition)
	e, ok2 := ends.Lookup(topic, partition)
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("%w: %s[%d] not found", ErrIO, topic, partition)
	}
	if s.Err != nil || e.Err != nil {
		return 0, 0, fmt.Errorf("%w: list offsets of %s[%d]: %v", ErrIO, topic, partition, errors.Join(s.Err, e.Err))
	}
	return s.Offset, e.Offset, nil
}

// readPartition feeds each record of topic[partition] from offset from up
// to end (exclusive) to fn, until fn returns false, the partition is read
// to end, or a fetch stays empty for ReconcileIdle. Control records are
// passed too, so that reading can tell it reached end.
func readPartition(ctx context.Context, base []kgo.Opt, topic string, partition int32, from, end int64, committed bool, fn func(*kgo.Record) bool) error {
	opts := append(append([]kgo.Opt(nil), base...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.KeepControlRecords(),
	)
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("%w: reconcile consumer: %v", ErrConfig, err)
	}
	defer cl.Close()
	for {
		pctx, cancel := context.WithTimeout(ctx, ReconcileIdle)
		fs := cl.PollFetches(pctx)
		idle := pctx.Err() != nil
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if idle && fs.NumRecords() == 0 {
			return nil // idle: nothing more before end
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = err
			}
		})
		if ferr != nil {
			return fmt.Errorf("%w: read %s[%d]: %v", ErrIO, topic, partition, ferr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if done || r.Offset < from {
				return
			}
			if r.Offset >= end || !fn(r) || r.Offset+1 >= end {
				done = true
			}
		})
		if done {
			return nil
		}
	}
}
