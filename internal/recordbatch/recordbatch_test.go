package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

type testRec struct {
	tsDelta    int64
	key, value []byte
	headers    []RecordHeader
}

func encode(p Producer, first int64, recs ...testRec) []byte {
	var e Encoder
	e.Start(nil, first)
	for _, r := range recs {
		e.Add(r.tsDelta, r.key, r.value, r.headers)
	}
	return e.Finish(p)
}

var sample = []testRec{
	{0, []byte("k0"), []byte("v0"), []RecordHeader{{"h", []byte("x")}, {"n", nil}}},
	{5, nil, []byte{}, nil},
	{3, []byte{}, nil, nil},
}

// The encoder's header, checked field by field against the layout.
func TestEncoderHeaderBytes(t *testing.T) {
	b := encode(Producer{ID: 7, Epoch: 2, BaseSequence: math.MaxInt32 - 1}, 1000, sample...)
	be := binary.BigEndian
	checks := []struct {
		name      string
		got, want int64
	}{
		{"baseOffset", int64(be.Uint64(b[0:])), 0},
		{"length", int64(be.Uint32(b[8:])), int64(len(b) - 12)},
		{"leader epoch", int64(int32(be.Uint32(b[12:]))), -1},
		{"magic", int64(b[16]), 2},
		{"crc", int64(be.Uint32(b[17:])), int64(ComputeCRC(b))},
		{"attributes", int64(be.Uint16(b[21:])), 0},
		{"lastOffsetDelta", int64(be.Uint32(b[23:])), 2},
		{"firstTimestamp", int64(be.Uint64(b[27:])), 1000},
		{"maxTimestamp", int64(be.Uint64(b[35:])), 1005},
		{"producerId", int64(be.Uint64(b[43:])), 7},
		{"producerEpoch", int64(be.Uint16(b[51:])), 2},
		{"baseSequence", int64(be.Uint32(b[53:])), math.MaxInt32 - 1},
		{"recordCount", int64(be.Uint32(b[57:])), 3},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	// The first record, byte for byte: length 17 (zigzag 34), attributes, ts delta 0,
	// offset delta 0, key "k0", value "v0", 2 headers (h=x, n=null).
	want := []byte{34, 0, 0, 0, 4, 'k', '0', 4, 'v', '0', 4, 2, 'h', 2, 'x', 2, 'n', 1}
	if got := b[HeaderSize : HeaderSize+len(want)]; !bytes.Equal(got, want) {
		t.Errorf("first record % x, want % x", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	b := encode(NoProducer, 50, sample...)
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCRC(b, &h); err != nil {
		t.Fatal(err)
	}
	if h.Size() != int64(len(b)) || !h.Dense() || h.ProducerID != -1 || h.ProducerEpoch != -1 || h.BaseSequence != -1 {
		t.Fatalf("header %+v", h)
	}
	recs, err := RecordBytes(b, &h)
	if err != nil {
		t.Fatal(err)
	}
	it := Iterate(recs, h.RecordCount)
	var r Record
	i := 0
	for it.Next(&r) {
		w := sample[i]
		if r.OffsetDelta != int32(i) || r.TimestampDelta != w.tsDelta ||
			!bytes.Equal(r.Key, w.key) || (r.Key == nil) != (w.key == nil) ||
			!bytes.Equal(r.Value, w.value) || (r.Value == nil) != (w.value == nil) {
			t.Fatalf("record %d: %+v, want %+v", i, r, w)
		}
		var hs []RecordHeader
		if err := r.EachHeader(func(k, v []byte) error {
			hs = append(hs, RecordHeader{string(k), v})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(hs) != len(w.headers) {
			t.Fatalf("record %d: headers %v, want %v", i, hs, w.headers)
		}
		for j := range hs {
			if hs[j].Key != w.headers[j].Key || !bytes.Equal(hs[j].Value, w.headers[j].Value) || (hs[j].Value == nil) != (w.headers[j].Value == nil) {
				t.Fatalf("record %d header %d: %v, want %v", i, j, hs[j], w.headers[j])
			}
		}
		i++
	}
	if it.Err() != nil || i != len(sample) {
		t.Fatalf("%d records, err %v", i, it.Err())
	}
}

// Encoding after a prefix extends it, and the encoder's scratch space is
// reused without the previous batch leaking into the next.
func TestEncoderAppendsToDst(t *testing.T) {
	var e Encoder
	e.Start([]byte("prefix"), 1)
	e.Add(0, []byte("a"), []byte("1"), nil)
	b := e.Finish(NoProducer)
	if string(b[:6]) != "prefix" {
		t.Fatalf("prefix lost: %q", b[:6])
	}
	if _, err := ParseHeader(b[6:]); err != nil {
		t.Fatal(err)
	}
	e.Start(nil, 1)
	e.Add(0, []byte("a"), []byte("1"), nil)
	if c := e.Finish(NoProducer); !bytes.Equal(c, b[6:]) {
		t.Fatal("second batch differs from the first")
	}
}

func TestParseHeaderErrors(t *testing.T) {
	good := encode(NoProducer, 1, sample...)
	edit := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"good", good, nil},
		{"empty", nil, ErrShort},
		{"short header", good[:HeaderSize-1], ErrShort},
		{"bad magic", edit(func(b []byte) { b[OffMagic] = 1 }), ErrMagic},
		{"negative length", edit(func(b []byte) { binary.BigEndian.PutUint32(b[OffLength:], 0xfffffff0) }), ErrLength},
		{"length below header", edit(func(b []byte) { binary.BigEndian.PutUint32(b[OffLength:], HeaderSize-LengthOverhead-1) }), ErrLength},
		{"length of header only", edit(func(b []byte) { binary.BigEndian.PutUint32(b[OffLength:], HeaderSize-LengthOverhead) }), nil},
		{"negative lastOffsetDelta", edit(func(b []byte) { binary.BigEndian.PutUint32(b[OffLastOffsetDelta:], 0xffffffff) }), ErrCounts},
		{"negative record count", edit(func(b []byte) { binary.BigEndian.PutUint32(b[OffRecordCount:], 0x80000000) }), ErrCounts},
		{"negative base offset", edit(func(b []byte) { binary.BigEndian.PutUint64(b[OffBaseOffset:], 1<<63) }), ErrCounts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHeader(tc.b)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v does not wrap ErrCorrupt", err)
			}
		})
	}
}

func TestCRC(t *testing.T) {
	b := encode(NoProducer, 1, sample...)
	h, _ := ParseHeader(b)
	if err := CheckCRC(b, &h); err != nil {
		t.Fatal(err)
	}
	// Fields outside the CRC change freely.
	SetBaseOffset(b, 99)
	SetPartitionLeaderEpoch(b, 3)
	if err := CheckCRC(b, &h); err != nil {
		t.Fatalf("baseOffset and leader epoch are outside the CRC: %v", err)
	}
	// Every byte from attributes on is covered.
	for i := OffAttributes; i < len(b); i++ {
		b[i] ^= 0x40
		if err := CheckCRC(b, &h); !errors.Is(err, ErrCRC) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
		b[i] ^= 0x40
	}
	if err := CheckCRC(b[:HeaderSize-1], &h); !errors.Is(err, ErrShort) {
		t.Fatalf("short batch: %v", err)
	}
}

func TestRewriteInPlace(t *testing.T) {
	var e Encoder
	e.Start(nil, 1)
	e.Add(0, []byte("k"), []byte("v"), nil)
	e.Add(0, []byte("k"), []byte("v"), nil)
	b := e.Finish(Producer{ID: 1, Epoch: 1, BaseSequence: 1})
	SetAttributes(b, AttrTransactional|CodecNone)
	orig := append([]byte(nil), b...)

	SetBaseOffset(b, 1234)
	SetPartitionLeaderEpoch(b, 0)
	SetProducer(b, Producer{ID: 42, Epoch: 3, BaseSequence: math.MaxInt32})
	ClearAttributes(b, AttrTransactional)
	UpdateCRC(b)
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCRC(b, &h); err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 1234 || h.PartitionLeaderEpoch != 0 || h.ProducerID != 42 || h.ProducerEpoch != 3 ||
		h.BaseSequence != math.MaxInt32 || h.Transactional() || h.Attributes != 0 {
		t.Fatalf("rewritten header %+v", h)
	}
	if h.LastSequence() != 0 {
		t.Fatalf("last sequence %d, want the wrap to 0", h.LastSequence())
	}
	if !bytes.Equal(b[OffRecordCount:], orig[OffRecordCount:]) || !bytes.Equal(b[OffLastOffsetDelta:OffProducerID], orig[OffLastOffsetDelta:OffProducerID]) {
		t.Fatal("rewrite touched the records or timestamps")
	}
}

func TestDense(t *testing.T) {
	tests := []struct {
		count, lastDelta int32
		want             bool
	}{
		{1, 0, true},
		{3, 2, true},
		{0, -1, false}, // no records
		{0, 0, false},
		{2, 4, false}, // compacted: holes
		{5, 3, false}, // more records than slots
		{math.MaxInt32, math.MaxInt32 - 1, true},
		{math.MaxInt32, math.MaxInt32, false},
	}
	for _, tc := range tests {
		h := Header{RecordCount: tc.count, LastOffsetDelta: tc.lastDelta}
		if got := h.Dense(); got != tc.want {
			t.Errorf("count %d lastDelta %d: Dense %v, want %v", tc.count, tc.lastDelta, got, tc.want)
		}
	}
}

func TestAddSequence(t *testing.T) {
	tests := []struct{ seq, n, want int32 }{
		{0, 0, 0},
		{0, 5, 5},
		{math.MaxInt32 - 1, 1, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32 - 2, 5, 2},
		{math.MaxInt32, math.MaxInt32, math.MaxInt32 - 1},
	}
	for _, tc := range tests {
		if got := AddSequence(tc.seq, tc.n); got != tc.want {
			t.Errorf("AddSequence(%d, %d) = %d, want %d", tc.seq, tc.n, got, tc.want)
		}
	}
	h := Header{BaseSequence: math.MaxInt32 - 1, LastOffsetDelta: 2}
	if h.LastSequence() != 0 {
		t.Errorf("LastSequence %d, want 0", h.LastSequence())
	}
}

func TestReadFrame(t *testing.T) {
	b := encode(NoProducer, 1, sample...)
	SetBaseOffset(b, 77)
	f, err := ReadFrame(b)
	if err != nil || f.BaseOffset != 77 || f.Size != int64(len(b)) || f.Magic != 2 {
		t.Fatalf("frame %+v, %v", f, err)
	}
	// A legacy message set entry: offset, size, crc, magic 1.
	legacy := make([]byte, 30)
	binary.BigEndian.PutUint64(legacy, 5)
	binary.BigEndian.PutUint32(legacy[8:], 18)
	legacy[16] = 1
	if f, err := ReadFrame(legacy); err != nil || f.Size != 30 || f.Magic != 1 {
		t.Fatalf("legacy frame %+v, %v", f, err)
	}
	if _, err := ReadFrame(b[:FrameSize-1]); !errors.Is(err, ErrShort) {
		t.Fatalf("short frame: %v", err)
	}
	binary.BigEndian.PutUint32(b[OffLength:], 0x80000000)
	if _, err := ReadFrame(b); !errors.Is(err, ErrLength) {
		t.Fatalf("negative length: %v", err)
	}
}

func TestIterErrors(t *testing.T) {
	b := encode(NoProducer, 1, sample...)
	h, _ := ParseHeader(b)
	section := b[HeaderSize:]
	count := func(s []byte, n int32) (int, error) {
		it := Iterate(s, n)
		var r Record
		i := 0
		for it.Next(&r) {
			i++
		}
		return i, it.Err()
	}
	if n, err := count(section, h.RecordCount); n != 3 || err != nil {
		t.Fatalf("%d records, %v", n, err)
	}
	if n, err := count(section, 0); n != 0 || err != nil {
		t.Fatalf("count 0: %d records, %v", n, err)
	}
	// Every cut inside the section is an error, never a panic.
	for cut := 0; cut < len(section); cut++ {
		if _, err := count(section[:cut], h.RecordCount); !errors.Is(err, ErrRecord) {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
	// More records claimed than present.
	if _, err := count(section, h.RecordCount+1); !errors.Is(err, ErrRecord) {
		t.Fatalf("count beyond section: %v", err)
	}
	// A negative offset delta.
	bad := append([]byte(nil), section...)
	bad[3] = 1 // zigzag 1 = -1: first record's offset delta
	if _, err := count(bad, 1); !errors.Is(err, ErrRecord) {
		t.Fatalf("negative offset delta: %v", err)
	}
}

func TestRecordBytesCompressed(t *testing.T) {
	plain := encode(NoProducer, 1, sample...)
	section := plain[HeaderSize:]
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(section)
	gw.Close()
	var l4 bytes.Buffer
	lw := lz4.NewWriter(&l4)
	lw.Write(section)
	lw.Close()
	zenc, _ := zstd.NewWriter(nil)
	snappy := s2.EncodeSnappy(nil, section)
	xerial := append(append(append([]byte(nil), xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1), binary.BigEndian.AppendUint32(nil, uint32(len(snappy)))...)
	xerial = append(xerial, snappy...)
	for _, c := range []struct {
		codec int16
		body  []byte
	}{
		{CodecGzip, gz.Bytes()},
		{CodecSnappy, snappy},
		{CodecSnappy, xerial},
		{CodecLZ4, l4.Bytes()},
		{CodecZstd, zenc.EncodeAll(section, nil)},
	} {
		b := append(append([]byte(nil), plain[:HeaderSize]...), c.body...)
		h := DecodeHeader(b)
		h.Length = int32(len(b) - LengthOverhead)
		h.Attributes = c.codec
		h.Put(b)
		UpdateCRC(b)
		h, err := ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := RecordBytes(b, &h)
		if err != nil || !bytes.Equal(got, section) {
			t.Fatalf("codec %d: %v", c.codec, err)
		}
		b[len(b)-1] ^= 0xff
		if _, err := RecordBytes(b[:len(b)-1], &h); !errors.Is(err, ErrShort) {
			t.Fatalf("codec %d, short batch: %v", c.codec, err)
		}
	}
	h := DecodeHeader(plain)
	h.Attributes = 5
	if _, err := RecordBytes(plain, &h); !errors.Is(err, ErrCompression) {
		t.Fatalf("unknown codec: %v", err)
	}
	h.Attributes = CodecGzip
	if _, err := RecordBytes(plain, &h); !errors.Is(err, ErrCompression) {
		t.Fatalf("garbage gzip: %v", err)
	}
}

// The hot paths allocate nothing: parse and check a header, walk the
// records, rewrite a batch for another producer.
func TestZeroAllocation(t *testing.T) {
	b := encode(NoProducer, 1, sample...)
	var sink int64
	n := testing.AllocsPerRun(100, func() {
		h, err := ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckCRC(b, &h); err != nil {
			t.Fatal(err)
		}
		recs, _ := RecordBytes(b, &h)
		it := Iterate(recs, h.RecordCount)
		var r Record
		for it.Next(&r) {
			sink += int64(len(r.Key))
		}
		SetBaseOffset(b, 0)
		SetPartitionLeaderEpoch(b, NoLeaderEpoch)
		SetProducer(b, Producer{ID: 1, Epoch: 1, BaseSequence: 1})
		ClearAttributes(b, AttrTransactional)
		UpdateCRC(b)
	})
	if n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
	_ = sink
}

func BenchmarkParseAndCheck(b *testing.B) {
	var e Encoder
	e.Start(nil, 1)
	for i := 0; i < 16; i++ {
		e.Add(0, []byte("key"), make([]byte, 1000), nil)
	}
	batch := e.Finish(NoProducer)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h, err := ParseHeader(batch)
		if err != nil {
			b.Fatal(err)
		}
		if err := CheckCRC(batch, &h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewrite(b *testing.B) {
	var e Encoder
	e.Start(nil, 1)
	for i := 0; i < 16; i++ {
		e.Add(0, []byte("key"), make([]byte, 1000), nil)
	}
	batch := e.Finish(NoProducer)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		SetBaseOffset(batch, 0)
		SetPartitionLeaderEpoch(batch, NoLeaderEpoch)
		SetProducer(batch, Producer{ID: 1, Epoch: 1, BaseSequence: int32(i)})
		ClearAttributes(batch, AttrTransactional)
		UpdateCRC(batch)
	}
}
