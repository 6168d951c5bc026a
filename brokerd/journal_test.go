package brokerd

import (
	"bytes"
	"testing"

	"strait/brokerd/group"
)

func TestJournalBatchRoundTrip(t *testing.T) {
	in := []group.KV{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: nil}, {Key: nil, Value: []byte{}}}
	batch := encodeBatch(in, 42)
	var got []group.KV
	next, err := decodeBatches(append(batch, encodeBatch(in[:1], 43)...), func(k, v []byte) error {
		got = append(got, group.KV{Key: k, Value: v})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Both batches have base offset 0 here (the log assigns offsets), so
	// next is the second batch's end.
	if next != 1 || len(got) != 4 {
		t.Fatalf("next %d, %d records", next, len(got))
	}
	for i, kv := range append(in, in[0]) {
		if !bytes.Equal(got[i].Key, kv.Key) || !bytes.Equal(got[i].Value, kv.Value) || (got[i].Value == nil) != (kv.Value == nil) {
			t.Fatalf("record %d: %q=%q, want %q=%q", i, got[i].Key, got[i].Value, kv.Key, kv.Value)
		}
	}
}

// FuzzJournalDecode: damaged journal bytes give an error, never a panic.
func FuzzJournalDecode(f *testing.F) {
	f.Add(encodeBatch([]group.KV{{Key: []byte("k"), Value: []byte("v")}}, 1))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeBatches(data, func(k, v []byte) error { return nil })
	})
}
