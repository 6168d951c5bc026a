package assign

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

var sampleMember = Member{
	ID: "daemon-1", Version: "strait 1.2", Fingerprint: "abc123",
	Owned: []Owned{
		{Partition{"p", "orders", 0}, 1500},
		{Partition{"p", "orders", 7}, Unmeasured},
		{Partition{"p", "payments", 2}, 0},
		{Partition{"q", "orders", 1 << 30}, MaxRate},
	},
	Released: []Owned{{Partition{"p", "audit", 3}, 42}},
}

var sampleAssignment = Assignment{
	Fingerprint: "abc123", FollowUp: true,
	Assigned: []Partition{{"p", "orders", 0}, {"p", "orders", 1}, {"q", "t", 5}},
	Revoke:   []Partition{{"p", "payments", 2}},
}

func TestMemberRoundTrip(t *testing.T) {
	b := EncodeMember(sampleMember)
	got, err := DecodeMember(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sampleMember) {
		t.Errorf("got %+v\nwant %+v", got, sampleMember)
	}
	// Byte for byte: version, three strings, then the owned set.
	want := []byte{1, 8}
	want = append(want, "daemon-1"...)
	want = append(want, 10)
	want = append(want, "strait 1.2"...)
	want = append(want, 6)
	want = append(want, "abc123"...)
	if !bytes.HasPrefix(b, want) {
		t.Fatalf("header % x, want % x", b[:len(want)], want)
	}
	set := b[len(want):]
	// 2 pipelines; "p": 2 topics; "orders": 2 partitions: gap 0 rate
	// 1501 (0xdd 0x0b), gap 6 unmeasured.
	wantSet := []byte{2, 1, 'p', 2, 6, 'o', 'r', 'd', 'e', 'r', 's', 2, 0, 0xdd, 0x0b, 6, 0}
	if !bytes.HasPrefix(set, wantSet) {
		t.Errorf("set % x, want prefix % x", set[:len(wantSet)], wantSet)
	}
	// Normalised on the way: unsorted, repeated, negative, too large.
	odd := Member{ID: "x", Owned: []Owned{{Partition{"b", "t", 1}, -7}, {Partition{"a", "t", 2}, 1 << 50}, {Partition{"b", "t", 1}, 5}}}
	got, err = DecodeMember(EncodeMember(odd))
	want2 := []Owned{{Partition{"a", "t", 2}, MaxRate}, {Partition{"b", "t", 1}, Unmeasured}}
	if err != nil || !reflect.DeepEqual(got.Owned, want2) {
		t.Errorf("normalised: %+v %v, want %+v", got.Owned, err, want2)
	}
}

func TestAssignmentRoundTrip(t *testing.T) {
	for _, a := range []Assignment{sampleAssignment, {}, {Mismatch: "fingerprint differs", Revoke: []Partition{{"", "", 0}}}} {
		got, err := DecodeAssignment(EncodeAssignment(a))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Errorf("got %+v\nwant %+v", got, a)
		}
	}
	if b := EncodeAssignment(Assignment{}); !bytes.Equal(b, []byte{1, 0, 0, 0, 0, 0}) {
		t.Errorf("empty assignment % x", b)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := EncodeAssignment(sampleAssignment)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"version 0", []byte{0, 0}, ErrVersion},
		{"truncated", good[:len(good)-1], ErrCorrupt},
		{"trailing byte in v1", append(bytes.Clone(good), 0), ErrCorrupt},
		{"unknown flag in v1", append([]byte{1, 2}, good[2:]...), ErrCorrupt},
		{"huge count", []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrCorrupt},
		{"pipelines out of order", []byte{1, 0, 0, 0, 2, 1, 'b', 1, 1, 't', 1, 0, 1, 'a', 1, 1, 't', 1, 0, 0}, ErrCorrupt},
		{"topic without partitions", []byte{1, 0, 0, 0, 1, 1, 'a', 1, 1, 't', 0, 0}, ErrCorrupt},
		{"partition past int32", []byte{1, 0, 0, 0, 1, 1, 'a', 1, 1, 't', 2, 0xfe, 0xff, 0xff, 0xff, 0x07, 5, 0}, ErrCorrupt},
	} {
		if _, err := DecodeAssignment(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A later version appends fields and flag bits: a v1 reader skips them.
	later := append([]byte{2, 0x81}, good[2:]...)
	later = append(later, "future field"...)
	if a, err := DecodeAssignment(later); err != nil || !reflect.DeepEqual(a, sampleAssignment) {
		t.Errorf("version 2: %+v %v", a, err)
	}
	m := EncodeMember(sampleMember)
	m[0] = 3
	if got, err := DecodeMember(append(m, 1, 2, 3)); err != nil || got.ID != sampleMember.ID {
		t.Errorf("member version 3: %v", err)
	}
}

// FuzzDecodeMember: garbage never panics; what decodes re-encodes to the
// same bytes when it is version 1 (one encoding per value).
//
//	go test -run '^$' -fuzz FuzzDecodeMember -fuzztime 30s ./mirror/assign/
func FuzzDecodeMember(f *testing.F) {
	f.Add(EncodeMember(sampleMember))
	f.Add(EncodeMember(Member{}))
	f.Add([]byte{2, 0, 0, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMember(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		again := EncodeMember(m)
		if b[0] == Version && !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n% x\n% x", b, again)
		}
		if m2, err := DecodeMember(again); err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzDecodeAssignment: as FuzzDecodeMember, for SyncGroup assignments.
func FuzzDecodeAssignment(f *testing.F) {
	f.Add(EncodeAssignment(sampleAssignment))
	f.Add(EncodeAssignment(Assignment{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAssignment(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		again := EncodeAssignment(a)
		if b[0] == Version && !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n% x\n% x", b, again)
		}
		if a2, err := DecodeAssignment(again); err != nil || !reflect.DeepEqual(a, a2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
