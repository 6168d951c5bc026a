package plog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
)

const (
	stateFile   = "plog.state"
	cleanMarker = "clean.shutdown"
	stateMagic  = "PLST"
	stateVer    = 2 // 2 adds the open transaction per producer; 1 is read too
	// maxStateProducers bounds what a state file may claim, so a damaged
	// count cannot make Open allocate without limit.
	maxStateProducers = 1 << 22
)

// castagnoli is the CRC-32C table of plog.state (batches have their own,
// in recordbatch).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// state is what plog.state holds (layout in doc.go).
type state struct {
	logStart      int64
	next          int64 // log end offset; the producer snapshot is as of here
	recoveryPoint int64 // every segment below it is complete and synced
	cleanedTo     int64 // the cleaner's checkpoint: first dirty offset
	producers     map[int64]*producer
}

func encodeState(s *state) []byte {
	b := make([]byte, 0, 48+len(s.producers)*(19+maxProducerBatches*24))
	b = append(b, stateMagic...)
	b = append(b, stateVer, 0, 0, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(s.logStart))
	b = binary.BigEndian.AppendUint64(b, uint64(s.next))
	b = binary.BigEndian.AppendUint64(b, uint64(s.recoveryPoint))
	b = binary.BigEndian.AppendUint64(b, uint64(s.cleanedTo))
	ids := make([]int64, 0, len(s.producers))
	for id := range s.producers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b = binary.BigEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		p := s.producers[id]
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(p.epoch))
		b = append(b, byte(len(p.batches)))
		for _, pb := range p.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(pb.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(pb.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.base))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.last))
		}
		if p.inTxn {
			b = append(b, 1)
			b = binary.BigEndian.AppendUint64(b, uint64(p.txnFirst))
		} else {
			b = append(b, 0)
			b = binary.BigEndian.AppendUint64(b, 0)
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeState(b []byte) (*state, error) {
	bad := func(why string) (*state, error) { return nil, fmt.Errorf("%w: state file: %s", ErrCorrupt, why) }
	if len(b) < 48 || string(b[:4]) != stateMagic {
		return bad("bad magic or short")
	}
	ver := b[4]
	if ver != 1 && ver != stateVer {
		return bad(fmt.Sprintf("version %d", b[4]))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return bad("checksum mismatch")
	}
	s := &state{
		logStart:      int64(binary.BigEndian.Uint64(body[8:])),
		next:          int64(binary.BigEndian.Uint64(body[16:])),
		recoveryPoint: int64(binary.BigEndian.Uint64(body[24:])),
		cleanedTo:     int64(binary.BigEndian.Uint64(body[32:])),
	}
	n := binary.BigEndian.Uint32(body[40:])
	p := body[44:]
	if n > maxStateProducers {
		return bad("producer count")
	}
	if s.logStart < 0 || s.next < s.logStart || s.recoveryPoint < 0 || s.recoveryPoint > s.next {
		return bad("offsets out of order")
	}
	for i := uint32(0); i < n; i++ {
		if len(p) < 11 {
			return bad("truncated producer")
		}
		id := int64(binary.BigEndian.Uint64(p))
		pr := &producer{epoch: int16(binary.BigEndian.Uint16(p[8:]))}
		nb := int(p[10])
		p = p[11:]
		if nb > maxProducerBatches || len(p) < nb*24 {
			return bad("truncated producer batches")
		}
		for j := 0; j < nb; j++ {
			pr.batches = append(pr.batches, producerBatch{
				firstSeq: int32(binary.BigEndian.Uint32(p)),
				lastSeq:  int32(binary.BigEndian.Uint32(p[4:])),
				base:     int64(binary.BigEndian.Uint64(p[8:])),
				last:     int64(binary.BigEndian.Uint64(p[16:])),
			})
			p = p[24:]
		}
		if ver >= 2 {
			if len(p) < 9 {
				return bad("truncated producer transaction")
			}
			pr.inTxn, pr.txnFirst = p[0] == 1, int64(binary.BigEndian.Uint64(p[1:]))
			if p[0] > 1 || pr.txnFirst < 0 {
				return bad("producer transaction")
			}
			p = p[9:]
		}
		if s.producers == nil {
			s.producers = make(map[int64]*producer)
		}
		s.producers[id] = pr
	}
	if len(p) != 0 {
		return bad("trailing bytes")
	}
	return s, nil
}

// writeFileAtomic replaces dir/name with data: write a temp file, fsync
// it, rename it over the old one, fsync the folder. A crash at any point
// leaves either the old or the new file, never a mix.
func (l *Log) writeFileAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	if err := l.fs.SyncFile(f); err != nil {
		f.Close()
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("%w: %w", ErrIO, err)
	}
	return l.syncDir(dir)
}
