package audit

import (
	"encoding/binary"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Hash is a record's content fingerprint: xxHash64 over its key, value,
// headers (in order) and timestamp in milliseconds, each length-prefixed so
// that no two different records frame to the same bytes, and with nil told
// from empty (a tombstone is not an empty value). Headers whose key is
// ignore (the provenance header record mode adds) are left out, so a copy
// hashes as its original.
func Hash(r *kgo.Record, ignore string) uint64 {
	var h xxhash.Digest
	h.Reset()
	var buf [binary.MaxVarintLen64]byte
	field := func(b []byte, isNil bool) {
		n := int64(len(b))
		if isNil {
			n = -1
		}
		_, _ = h.Write(buf[:binary.PutVarint(buf[:], n)])
		_, _ = h.Write(b)
	}
	field(r.Key, r.Key == nil)
	field(r.Value, r.Value == nil)
	nh := 0
	for _, hd := range r.Headers {
		if ignore == "" || hd.Key != ignore {
			nh++
		}
	}
	_, _ = h.Write(buf[:binary.PutVarint(buf[:], int64(nh))])
	for _, hd := range r.Headers {
		if ignore != "" && hd.Key == ignore {
			continue
		}
		field([]byte(hd.Key), false)
		field(hd.Value, hd.Value == nil)
	}
	_, _ = h.Write(buf[:binary.PutVarint(buf[:], r.Timestamp.UnixMilli())])
	return h.Sum64()
}

// Size is the bytes a record counts for: key, value and headers.
func Size(r *kgo.Record) int64 {
	n := int64(len(r.Key) + len(r.Value))
	for _, h := range r.Headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

// Digest sums records order-independently: counts, bytes, and the sum and
// xor of their hashes. Two digests of the same multiset of records are
// equal whatever order the records were added in; a record missing, added
// or changed changes the count or the hashes (a collision needs a 64-bit
// coincidence on both the sum and the xor).
type Digest struct {
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
	Sum     uint64 `json:"sum"`
	Xor     uint64 `json:"xor"`
}

// Add folds one record in.
func (d *Digest) Add(hash uint64, size int64) {
	d.Records++
	d.Bytes += size
	d.Sum += hash
	d.Xor ^= hash
}

// Merge folds another digest in.
func (d *Digest) Merge(o Digest) {
	d.Records += o.Records
	d.Bytes += o.Bytes
	d.Sum += o.Sum
	d.Xor ^= o.Xor
}

// Bucket is the start of the event-time bucket of width w holding ts.
func Bucket(ts time.Time, w time.Duration) time.Time {
	if w <= 0 {
		w = time.Minute
	}
	return ts.Truncate(w)
}
