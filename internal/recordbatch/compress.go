package recordbatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressed bounds the output of a decompression so a hostile batch
// cannot make its reader allocate without limit.
const MaxDecompressed = 256 << 20

// RecordBytes returns the records section of a whole batch, decompressed
// when the batch is compressed. An uncompressed section aliases batch and
// costs nothing; a compressed one is a new buffer.
func RecordBytes(batch []byte, h *Header) ([]byte, error) {
	if int64(len(batch)) < h.Size() || h.Size() < HeaderSize {
		return nil, fmt.Errorf("%w: batch of %d bytes, header says %d", ErrShort, len(batch), h.Size())
	}
	body := batch[HeaderSize:h.Size()]
	codec := h.Codec()
	if codec == CodecNone {
		return body, nil
	}
	out, err := Decompress(codec, body)
	if err != nil {
		return nil, fmt.Errorf("%w: codec %d: %w", ErrCompression, codec, err)
	}
	return out, nil
}

var (
	xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}
	zstdDec, _  = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxDecompressed))

	errTooBig = fmt.Errorf("decompressed size above %d bytes", MaxDecompressed)
)

// Decompress decodes a records section compressed with codec (one of
// Codec*, not CodecNone).
func Decompress(codec int16, in []byte) ([]byte, error) {
	switch codec {
	case CodecGzip:
		r, err := gzip.NewReader(bytes.NewReader(in))
		if err != nil {
			return nil, err
		}
		return readLimited(r)
	case CodecSnappy:
		if bytes.HasPrefix(in, xerialMagic) && len(in) >= 16 {
			return decodeXerial(in[16:])
		}
		return decodeSnappy(in)
	case CodecLZ4:
		return readLimited(lz4.NewReader(bytes.NewReader(in)))
	case CodecZstd:
		return zstdDec.DecodeAll(in, nil)
	}
	return nil, fmt.Errorf("unknown compression codec %d", codec)
}

// decodeXerial decodes the framing Java clients use for snappy: after a
// 16-byte header, [int32 length][snappy block] repeated.
func decodeXerial(p []byte) ([]byte, error) {
	var out []byte
	for len(p) > 0 {
		if len(p) < 4 {
			return nil, io.ErrUnexpectedEOF
		}
		n := int(binary.BigEndian.Uint32(p))
		p = p[4:]
		if n < 0 || n > len(p) {
			return nil, io.ErrUnexpectedEOF
		}
		blk, err := decodeSnappy(p[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, blk...)
		if len(out) > MaxDecompressed {
			return nil, errTooBig
		}
		p = p[n:]
	}
	return out, nil
}

func decodeSnappy(b []byte) ([]byte, error) {
	n, err := s2.DecodedLen(b)
	if err != nil {
		return nil, err
	}
	if n > MaxDecompressed {
		return nil, errTooBig
	}
	return s2.Decode(nil, b)
}

func readLimited(r io.Reader) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, MaxDecompressed+1))
	if err != nil {
		return nil, err
	}
	if len(out) > MaxDecompressed {
		return nil, errTooBig
	}
	return out, nil
}
