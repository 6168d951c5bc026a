package checkpoint

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
	"strconv"
	"strings"
)

// recordVersion is the first byte of every checkpoint record value.
const recordVersion = 1

// Record kinds (the second byte of a value, the first byte of a key).
const (
	kindPartition = 'P'
	kindProducers = 'I'
)

// MaxProducerIDs bounds how many producer ids a pipeline keeps: a new
// mirror process uses a new id, so the list would otherwise grow forever.
// The newest are kept; batches from ids older than the last 1024 restarts
// are not recognised as the pipeline's own.
const MaxProducerIDs = 1024

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// partitionKey is the store key of one partition of a pipeline. NUL cannot
// appear in a Kafka topic name, so the key is unambiguous.
func partitionKey(pipeline string, tp TP) string {
	return string(rune(kindPartition)) + "\x00" + pipeline + "\x00" + tp.Topic + "\x00" + strconv.Itoa(int(tp.Partition))
}

// producersKey is the store key of a pipeline's producer ids.
func producersKey(pipeline string) string {
	return string(rune(kindProducers)) + "\x00" + pipeline
}

// keyPipeline returns the pipeline a key belongs to, or ok false when the
// key is not a checkpoint key.
func keyPipeline(key string) (string, bool) {
	parts := strings.Split(key, "\x00")
	switch {
	case len(parts) == 4 && parts[0] == string(rune(kindPartition)):
		return parts[1], true
	case len(parts) == 2 && parts[0] == string(rune(kindProducers)):
		return parts[1], true
	}
	return "", false
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func sealRecord(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// encodePartition encodes one partition's checkpoint (layout in doc.go).
func encodePartition(pipeline string, tp TP, p *Partition) []byte {
	b := []byte{recordVersion, kindPartition}
	b = appendString(b, pipeline)
	b = appendString(b, tp.Topic)
	b = binary.AppendVarint(b, int64(tp.Partition))
	b = binary.AppendVarint(b, p.Pos.Source)
	b = binary.AppendVarint(b, p.Pos.Dest)
	b = appendString(b, p.DestTopic)
	m := p.Map
	if m == nil {
		m = &OffsetMap{}
	}
	enc := m.appendBinary(nil)
	b = binary.AppendUvarint(b, uint64(len(enc)))
	b = append(b, enc...)
	return sealRecord(b)
}

// encodeProducers encodes a pipeline's producer ids.
func encodeProducers(pipeline string, ids []int64) []byte {
	b := []byte{recordVersion, kindProducers}
	b = appendString(b, pipeline)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendVarint(b, id)
	}
	return sealRecord(b)
}

// decoded is one decoded record: a partition or a producer-id list.
type decoded struct {
	pipeline  string
	kind      byte
	tp        TP
	part      *Partition
	producers []int64
}

// key is the store key the record's content belongs under.
func (d *decoded) key() string {
	if d.kind == kindPartition {
		return partitionKey(d.pipeline, d.tp)
	}
	return producersKey(d.pipeline)
}

// decodeRecord decodes a record value. Errors wrap ErrCorrupt; malformed
// input never panics.
func decodeRecord(v []byte) (*decoded, error) {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrCorrupt, what) }
	if len(v) < 2+4 {
		return nil, bad("record too short")
	}
	body, sum := v[:len(v)-4], binary.BigEndian.Uint32(v[len(v)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, bad("checksum mismatch")
	}
	if body[0] != recordVersion {
		return nil, bad(fmt.Sprintf("unknown record version %d", body[0]))
	}
	d := &decoded{kind: body[1]}
	r := reader{b: body[2:]}
	pl, ok := r.bytes()
	if !ok {
		return nil, bad("truncated pipeline name")
	}
	d.pipeline = string(pl)
	switch d.kind {
	case kindPartition:
		topic, ok := r.bytes()
		if !ok || len(topic) == 0 {
			return nil, bad("bad topic")
		}
		part, ok := r.varint()
		if !ok || part < 0 || part > 1<<31-1 {
			return nil, bad("bad partition")
		}
		d.tp = TP{Topic: string(topic), Partition: int32(part)}
		p := &Partition{}
		var ok1, ok2 bool
		p.Pos.Source, ok1 = r.varint()
		p.Pos.Dest, ok2 = r.varint()
		if !ok1 || !ok2 || p.Pos.Source < 0 || p.Pos.Dest < 0 {
			return nil, bad("bad position")
		}
		dt, ok := r.bytes()
		if !ok {
			return nil, bad("bad destination topic")
		}
		p.DestTopic = string(dt)
		enc, ok := r.bytes()
		if !ok {
			return nil, bad("truncated offset map")
		}
		mr := reader{b: enc}
		m, err := decodeOffsetMap(&mr)
		if err != nil {
			return nil, err
		}
		if len(mr.b) != 0 {
			return nil, bad("offset map trailing bytes")
		}
		p.Map = m
		d.part = p
	case kindProducers:
		n, ok := r.uvarint()
		if !ok || n > uint64(len(r.b)) {
			return nil, bad("bad producer id count")
		}
		d.producers = make([]int64, 0, n)
		for i := uint64(0); i < n; i++ {
			id, ok := r.varint()
			if !ok {
				return nil, bad("truncated producer id")
			}
			d.producers = append(d.producers, id)
		}
	default:
		return nil, bad(fmt.Sprintf("unknown record kind %#x", d.kind))
	}
	if len(r.b) != 0 {
		return nil, bad("trailing bytes")
	}
	return d, nil
}

// mergeProducers appends ids not yet in have, keeping the newest
// MaxProducerIDs.
func mergeProducers(have, add []int64) []int64 {
	seen := make(map[int64]bool, len(have))
	out := append([]int64(nil), have...)
	for _, id := range have {
		seen[id] = true
	}
	for _, id := range add {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if len(out) > MaxProducerIDs {
		out = out[len(out)-MaxProducerIDs:]
	}
	return out
}

// sortedTPs returns the state's partitions in a stable order.
func sortedTPs(ps map[TP]*Partition) []TP {
	tps := make([]TP, 0, len(ps))
	for tp := range ps {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	return tps
}

// Translate maps a committed source offset of tp through the state, the way
// a consumer group would fail over: it returns the destination topic and the
// offset to resume at there. ok is false for a partition the state does not
// hold or an offset its map cannot translate.
func (st *State) Translate(tp TP, offset int64) (destTopic string, destOffset int64, ok bool) {
	if st == nil {
		return "", 0, false
	}
	p := st.Partitions[tp]
	if p == nil {
		return "", 0, false
	}
	m := p.Map
	if m == nil {
		m = &OffsetMap{}
	}
	d, ok := m.Translate(offset, p.Pos)
	return p.DestTopic, d, ok
}
