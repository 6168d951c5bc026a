package recordbatch

import (
	"errors"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	f.Add(encode(NoProducer, 1, sample...))
	f.Add(encode(Producer{ID: 1, Epoch: 0, BaseSequence: 0}, 1, testRec{key: []byte("k")}))
	f.Add(make([]byte, HeaderSize))
	f.Add([]byte{})
}

// FuzzParseHeader: any bytes parse to a header or an error wrapping
// ErrCorrupt; an accepted header frames at least itself, and a header
// that passes survives Put unchanged.
func FuzzParseHeader(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if h.Size() < HeaderSize || h.LastOffset() < h.BaseOffset {
			t.Fatalf("accepted header %+v", h)
		}
		out := make([]byte, HeaderSize)
		h.Put(out)
		if string(out) != string(b[:HeaderSize]) {
			t.Fatalf("Put(ParseHeader(b)) differs from b")
		}
		if int64(len(b)) >= h.Size() {
			CheckCRC(b[:h.Size()], &h)
			RecordBytes(b[:h.Size()], &h)
		}
	})
}

// FuzzIterate: walking arbitrary bytes as a records section ends in
// records that tile the input or an error wrapping ErrRecord, never a
// panic; re-encoding a walked record gives back its bytes.
func FuzzIterate(f *testing.F) {
	for _, s := range [][]byte{encode(NoProducer, 1, sample...)[HeaderSize:], {0}, {2, 0, 0}} {
		f.Add(s, int32(3))
	}
	f.Fuzz(func(t *testing.T, section []byte, count int32) {
		if count > 1<<16 {
			count = 1 << 16
		}
		it := Iterate(section, count)
		var r Record
		used := 0
		for it.Next(&r) {
			if len(r.Raw) == 0 || string(section[used:used+len(r.Raw)]) != string(r.Raw) {
				t.Fatalf("record does not tile the section at %d", used)
			}
			used += len(r.Raw)
			r.EachHeader(func(k, v []byte) error { return nil })
		}
		if err := it.Err(); err != nil && !errors.Is(err, ErrRecord) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
