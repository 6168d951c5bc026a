package recordbatch

import (
	"bytes"
	"math/rand"
	"testing"
)

// TestPatchCRC: after any edit of the covered header fields, the patched
// CRC equals a full recomputation, for batches from empty records to a
// megabyte; a batch whose CRC was wrong before the edit is still wrong
// after it.
func TestPatchCRC(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{0, 1, 3, 64, 1000, 4096, 65537, 1 << 20} {
		recs := []testRec{{0, nil, make([]byte, n), nil}}
		rng.Read(recs[0].value)
		b := encode(Producer{ID: 7, Epoch: 2, BaseSequence: 3}, 1000, recs...)
		for edit := 0; edit < 20; edit++ {
			var old CoveredHeader
			old.Save(b)
			SetProducer(b, Producer{ID: rng.Int63(), Epoch: int16(rng.Intn(1 << 15)), BaseSequence: rng.Int31()})
			if edit%2 == 0 {
				ClearAttributes(b, AttrTransactional)
			} else {
				SetAttributes(b, int16(rng.Intn(1<<16)))
			}
			PatchCRC(b, &old)
			h := DecodeHeader(b)
			if err := CheckCRC(b, &h); err != nil {
				t.Fatalf("records of %d bytes, edit %d: %v", n, edit, err)
			}
		}
		// Unchanged header: nothing to do.
		var same CoveredHeader
		same.Save(b)
		before := bytes.Clone(b)
		PatchCRC(b, &same)
		if !bytes.Equal(b, before) {
			t.Fatalf("records of %d bytes: a patch without an edit changed the batch", n)
		}
		// Corruption survives the patch.
		if n > 0 {
			b[len(b)-1] ^= 1
			var old CoveredHeader
			old.Save(b)
			SetProducer(b, Producer{ID: 99, Epoch: 1, BaseSequence: 0})
			PatchCRC(b, &old)
			h := DecodeHeader(b)
			if err := CheckCRC(b, &h); err == nil {
				t.Fatalf("records of %d bytes: a corrupt batch passes its CRC after a patch", n)
			}
		}
	}
}

func BenchmarkPatchCRC(b *testing.B) {
	batch := encode(Producer{ID: 7, Epoch: 2, BaseSequence: 3}, 1000, testRec{0, nil, make([]byte, 256<<10), nil})
	b.SetBytes(int64(len(batch)))
	for i := 0; i < b.N; i++ {
		var old CoveredHeader
		old.Save(batch)
		SetProducer(batch, Producer{ID: int64(i), Epoch: 1, BaseSequence: int32(i)})
		PatchCRC(batch, &old)
	}
}

func BenchmarkUpdateCRC(b *testing.B) {
	batch := encode(Producer{ID: 7, Epoch: 2, BaseSequence: 3}, 1000, testRec{0, nil, make([]byte, 256<<10), nil})
	b.SetBytes(int64(len(batch)))
	for i := 0; i < b.N; i++ {
		SetProducer(batch, Producer{ID: int64(i), Epoch: 1, BaseSequence: int32(i)})
		UpdateCRC(batch)
	}
}
