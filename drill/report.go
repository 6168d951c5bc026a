package drill

import (
	"time"

	"strait/mirror"
)

// Snapshot is the live view of a run.
type Snapshot struct {
	Elapsed      time.Duration
	Phase        Phase
	Acked        int64   // records the source acknowledged
	ProduceRate  float64 // acked per second, last interval
	Mirrored     int64   // records the engine reports copied
	MirrorRate   float64 // records per second, engine's recent rate
	Lag          int64   // records behind, over all partitions
	BacklogStart int64   // lag when the mirror started (for a progress bar)
	Consumed     int64   // records the source consumer committed
	Partitions   []mirror.PartitionStatus
}

// PartitionReport is the translation check of one source partition.
type PartitionReport struct {
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	DestTopic  string `json:"dest_topic"`
	Committed  int64  `json:"committed_source_offset"` // -1: the group never committed here
	Translated int64  `json:"translated_dest_offset"`  // -1: not translated (the group falls back to the destination's start)
	Resume     int64  `json:"resume_dest_offset"`      // where the group resumed on the destination
	Expected   int64  `json:"expected_dest_offset"`    // from the records themselves
	Exact      bool   `json:"exact"`
}

// Report is what a run measured.
type Report struct {
	Pipeline   string        `json:"pipeline"`
	Group      string        `json:"group"`
	Duration   time.Duration `json:"duration_ns"`
	Produced   int64         `json:"produced"`    // records handed to the producer
	Acked      int64         `json:"acked"`       // acknowledged by the source
	Mirrored   int64         `json:"mirrored"`    // distinct records found on the destination
	BacklogN   int64         `json:"backlog"`     // records produced before the mirror started
	DrainTime  time.Duration `json:"drain_ns"`    // from the engine's start to caught up with the backlog
	DrainRate  float64       `json:"drain_rate"`  // records per second while draining
	RPORecords int64         `json:"rpo_records"` // acknowledged by the source, not mirrored at the cut
	RPOWindow  time.Duration `json:"rpo_window_ns"`
	RTO        time.Duration `json:"rto_ns"` // cut → the consumer reading on the destination
	// Consumer side.
	ConsumedSource int64 `json:"consumed_source"` // committed on the source before the cut
	ConsumedDest   int64 `json:"consumed_dest"`   // read on the destination after failover
	Lost           int64 `json:"lost"`            // mirrored but never consumed
	Duplicates     int64 `json:"duplicates"`      // consumed twice
	// Mirror side.
	MirrorDuplicates int64             `json:"mirror_duplicates"` // a record present twice on the destination
	Corrupt          int64             `json:"corrupt"`           // checksum mismatches
	TranslationExact bool              `json:"translation_exact"`
	Partitions       []PartitionReport `json:"partitions"`
	// Problems lists every broken promise, in words.
	Problems []string `json:"problems,omitempty"`
}

// OK reports whether nothing was lost, duplicated, corrupted or
// mistranslated.
func (r *Report) OK() bool { return len(r.Problems) == 0 }
