package plog

import (
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"strait/internal/recordbatch"
)

type rec struct {
	key, value []byte
	ts         int64
}

// batchOpts are the producer fields of a test batch.
type batchOpts struct {
	pid   int64
	epoch int16
	seq   int32
	attrs int16
}

var noPID = batchOpts{pid: -1, epoch: -1, seq: -1}

// mkBatch encodes an uncompressed record batch v2 the way a producer does
// (with partitionLeaderEpoch 0, as brokerd stores it).
func mkBatch(o batchOpts, recs ...rec) []byte {
	var body []byte
	first, maxTs := recs[0].ts, recs[0].ts
	for _, r := range recs {
		maxTs = max(maxTs, r.ts)
	}
	for i, r := range recs {
		var rb []byte
		rb = append(rb, 0)
		rb = binary.AppendVarint(rb, r.ts-first)
		rb = binary.AppendVarint(rb, int64(i))
		rb = appendBytes(rb, r.key)
		rb = appendBytes(rb, r.value)
		rb = binary.AppendVarint(rb, 0)
		body = binary.AppendVarint(body, int64(len(rb)))
		body = append(body, rb...)
	}
	h := recordbatch.Header{
		Length:          int32(recordbatch.HeaderSize - recordbatch.LengthOverhead + len(body)),
		Magic:           recordbatch.Magic,
		Attributes:      o.attrs,
		LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp:  first,
		MaxTimestamp:    maxTs,
		ProducerID:      o.pid,
		ProducerEpoch:   o.epoch,
		BaseSequence:    o.seq,
		RecordCount:     int32(len(recs)),
	}
	b := make([]byte, recordbatch.HeaderSize, recordbatch.HeaderSize+len(body))
	h.Put(b)
	b = append(b, body...)
	recordbatch.UpdateCRC(b)
	return b
}

func appendBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}

// simple returns a batch of n records with values "v<i>" and timestamp ts.
func simple(n int, ts int64) []byte {
	recs := make([]rec, n)
	for i := range recs {
		recs[i] = rec{key: []byte(fmt.Sprintf("k%d", i)), value: []byte(fmt.Sprintf("v%d", i)), ts: ts}
	}
	return mkBatch(noPID, recs...)
}

var t0 = time.Unix(1_700_000_000, 0)

func openT(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg, Options{Files: NewFileCache(64)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	res, err := l.Append(b, t0)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

// readAll reads every batch from offset to the high watermark and returns
// their headers, checking each batch's CRC on the way.
func readAll(t testing.TB, l *Log, from int64) []recordbatch.Header {
	t.Helper()
	var out []recordbatch.Header
	for {
		rr, err := l.Read(from, 64<<10, true)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if rr.Bytes == 0 {
			rr.Release()
			return out
		}
		for _, s := range rr.Spans {
			buf := make([]byte, s.Len)
			if _, err := s.File.ReadAt(buf, s.Pos); err != nil && err != io.EOF {
				t.Fatalf("ReadAt: %v", err)
			}
			for len(buf) > 0 {
				h, err := parseHeader(buf)
				if err != nil {
					t.Fatalf("span batch: %v", err)
				}
				if err := checkCRC(buf[:h.Size()], &h); err != nil {
					t.Fatalf("span batch: %v", err)
				}
				out = append(out, h)
				from = h.LastOffset() + 1
				buf = buf[h.Size():]
			}
		}
		rr.Release()
	}
}

// recordsFrom decodes every record from offset to the high watermark and
// returns their offsets, keys and values in log order.
func recordsFrom(t testing.TB, l *Log, from int64) (offs []int64, keys, vals []string) {
	t.Helper()
	for {
		rr, err := l.Read(from, 1<<20, true)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if rr.Bytes == 0 {
			rr.Release()
			return
		}
		for _, s := range rr.Spans {
			buf := make([]byte, s.Len)
			s.File.ReadAt(buf, s.Pos)
			for len(buf) > 0 {
				h, _ := parseHeader(buf)
				recs, err := recordsOf(buf[:h.Size()], &h)
				if err != nil {
					t.Fatal(err)
				}
				parseRecords(recs, h.RecordCount, func(r *recordbatch.Record) error {
					off := h.BaseOffset + int64(r.OffsetDelta)
					if off >= from {
						offs = append(offs, off)
						keys = append(keys, string(r.Key))
						vals = append(vals, valueOf(r))
					}
					return nil
				})
				from = h.LastOffset() + 1
				buf = buf[h.Size():]
			}
		}
		rr.Release()
	}
}

// valueOf is a record's value as a string, "<nil>" for a tombstone.
func valueOf(r *recordbatch.Record) string {
	if r.Value == nil {
		return "<nil>"
	}
	return string(r.Value)
}
