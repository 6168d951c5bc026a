package recordbatch

import "encoding/binary"

// Editing a batch's header fields inside the CRC (attributes, producer id,
// epoch, base sequence) need not read the records again: CRC-32C is linear
// over GF(2), so for two messages of equal length
//
//	crc(old) ⊕ crc(new) = raw(old ⊕ new)
//
// where raw is the CRC register with neither pre- nor post-inversion. The
// difference is zero past the fixed header, so raw(old ⊕ new) is the raw
// CRC of the header's difference followed by len-40 zero bytes: the
// difference's CRC multiplied by x^(8·zeros) mod P. That costs a few
// hundred word operations instead of a pass over the batch.
//
// The patched CRC is the new header's CRC exactly when the old CRC was
// right; a batch that arrived corrupt stays corrupt, and whoever checks it
// next (a broker on append) refuses it rather than the edit hiding it.

// CoveredHeader is a copy of the CRC-covered part of a batch header, taken
// before an edit so PatchCRC can apply the difference.
type CoveredHeader [HeaderSize - OffAttributes]byte

// Save copies the covered header of batch.
func (h *CoveredHeader) Save(batch []byte) { copy(h[:], batch[OffAttributes:HeaderSize]) }

// PatchCRC updates the CRC of batch, whose covered header was saved in old
// before being edited (only header fields, never the records), without
// reading the records.
func PatchCRC(batch []byte, old *CoveredHeader) {
	var diff CoveredHeader
	zero := true
	for i := range diff {
		diff[i] = old[i] ^ batch[OffAttributes+i]
		zero = zero && diff[i] == 0
	}
	if zero {
		return
	}
	// The raw register over the difference, byte by byte from the table
	// (crc32.Update would do, inverted on both sides, but its argument
	// escapes and the rewrite must not allocate).
	var d uint32
	for _, c := range diff {
		d = castagnoli[byte(d)^c] ^ d>>8
	}
	d = gfMul(xPow8n(int64(len(batch)-HeaderSize)), d)
	crc := binary.BigEndian.Uint32(batch[OffCRC:])
	binary.BigEndian.PutUint32(batch[OffCRC:], crc^d)
}

// castagnoliReflected is the CRC-32C polynomial, bit-reflected as the
// register holds it.
const castagnoliReflected = 0x82f63b78

// gfMul is a(x)·b(x) mod P in the reflected representation (bit 31 is x^0).
func gfMul(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0 && a != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
			a ^= m
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReflected
		} else {
			b >>= 1
		}
	}
	return p
}

// xPow2k[k] is x^(2^k) mod P.
var xPow2k = func() (t [64]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = gfMul(p, p)
	}
	return t
}()

// xPow8n is x^(8n) mod P: what shifting the register over n zero bytes
// multiplies it by.
func xPow8n(n int64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; k++ {
		if n&1 != 0 {
			p = gfMul(xPow2k[k], p)
		}
		n >>= 1
	}
	return p
}
