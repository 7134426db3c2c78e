// Wire codecs: what a compressing collective puts on the wire instead of the
// tensor itself, and how the receiver gets a tensor back.
//
// One interface for every codec: a Params value says which codec and with what
// settings; encodedBytes() gives the exact size of the encoding (top-k: its
// largest size), encode() writes it, decode() reads it. Every function returns
// gcclSuccess or gcclInvalidArgument with the reason recorded by setError()
// (base/check.h), naming the parameter or the element at fault. count == 0
// touches no memory (null pointers are then accepted) and its encoding is 0
// bytes long, for every codec. After a failure the
// output buffer holds unspecified bytes (decode(): whole buckets decoded
// before the failing one are written, the failing bucket is not).
//
// Codecs and their encodings (all multi-byte fields in host byte order, which
// is little-endian on every platform gccl builds for; buffers must be aligned
// for the element type, and the 8-byte headers below are copied with memcpy,
// so they need no alignment):
//
//  kCast      float32 or float64 tensors to float16 or bfloat16 (Params::castTo).
//             Layout: count 16-bit values, 2*count bytes. Rounds to nearest
//             even (float64 directly, with no intermediate float32 rounding);
//             values beyond the largest finite become Inf, Inf stays Inf, NaN
//             stays NaN (quiet, with its sign and top payload bits). Decode
//             widens exactly. The F16C path and the portable one give the same
//             bits, as do the AVX2 and portable quantization paths
//             (detail::encodePortable() lets tests compare them).
//
//  kQuantize  b-bit uniform quantization (Params::bits in {8, 4, 2}) per bucket
//             of Params::bucket elements, any floating input (float16 and
//             bfloat16 are widened to float32 first). Per bucket: offset = min,
//             scale = (max - min) / (2^b - 1) rounded up, so that every element
//             maps into [0, 2^b - 1]; code = round((x - offset) / scale)
//             (kNearest: to nearest, ties up) or floor((x - offset) / scale + u)
//             (kStochastic: u uniform in [0, 1), 24 random bits drawn from a
//             hash of (seed, element index), so E[decode] = x and the same seed
//             gives the same bytes). Decode: offset + code * scale, rounded to
//             the element type. Error: |x - decode| <= scale / 2 (kNearest) or
//             < scale (kStochastic), plus float rounding of the arithmetic (a
//             few units in the last place of the bucket's largest magnitude)
//             and the final rounding to the element type. A constant bucket
//             (scale 0) decodes exactly. A NaN or Inf element is an error that
//             names its index.
//             Layout: nb = ceil(count / bucket) headers {offset, scale}, each
//             two float32 (8 bytes), or two float64 (16 bytes) for float64
//             tensors; then the codes of bucket 0, 1, ..., each bucket starting
//             on a byte, packed low bits first (4-bit: two per byte, 2-bit:
//             four per byte): ceil(m * b / 8) bytes for a bucket of m elements.
//
//  kLattice   modulo (lattice) quantization as in SwarmSGD. The sender maps x to
//             n = round(x / delta) (kNearest, ties to even) or
//             n = floor(x / delta + u) (kStochastic), and sends n mod 2^b
//             (b in {8, 4, 2}). decode() takes the receiver's own tensor r
//             (the argument `reference`, same type and count as dst) and
//             picks the n' = code (mod 2^b) closest to r / delta, in
//             [round(r / delta) - 2^(b-1), round(r / delta) + 2^(b-1) - 1];
//             it outputs n' * delta rounded to the element type.
//             Exact: n' = n whenever
//               |x - r| < (2^(b-1) - 1) * delta     (kNearest)
//               |x - r| < (2^(b-1) - 1.5) * delta   (kStochastic)
//             (for b = 2: delta and delta/2; x / delta and r / delta are
//             computed in double, whose rounding is ignored here). Per bucket
//             the encoder also sends a 64-bit hash of the bucket's integers n
//             (and its index); the decoder recomputes it from its n' and
//             fails, naming the bucket and its elements, when they differ,
//             instead of returning wrong values (a wrong n' goes unnoticed
//             only if the 64-bit hashes collide). |x / delta| and |r / delta|
//             must stay below 2^52.
//             Layout: nb 64-bit check values, then the packed codes as for
//             kQuantize.
//
//  kTopK      top-k sparsification with error feedback, float32 only. encode()
//             needs the caller's residual r (one per tensor, same length, zero
//             at first) and computes acc = x + r (float32), selects at most k
//             entries of largest |acc|, and leaves r = acc with the selected
//             entries set to +0, so that, element by element,
//                 scatter(values at indices) + new r == x + old r
//             (bit for bit, except that a zero may change sign). kExact keeps
//             exactly k (ties broken by the lower index). kThreshold estimates
//             the threshold from Params::sample elements drawn with the seed,
//             keeps every element at or above it, and trims to the exact
//             top-k of those if they are more than k. Either way it keeps at
//             most k entries, and every kept |acc| is >= every |acc| left in
//             the residual (so >= the (k+1)-th largest); with k >= 1 and
//             count >= 1 it keeps at least one. A NaN or Inf in acc is an
//             error naming its index (nothing is written).
//             Layout: a uint64 kept count, kept uint32 indices in ascending
//             order, then kept float32 values: 8 + 8 * kept bytes (0 bytes
//             when count == 0); encodedBytes() gives 8 + 8 * k, encode()
//             reports the bytes it wrote. decode() writes a dense float32 tensor (zeros elsewhere).
//             topkSelect() is the same selection into separate arrays.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gccl/gccl.h"

namespace gccl::kernels::codec {

enum class Codec : uint8_t { kCast, kQuantize, kLattice, kTopK };
enum class Rounding : uint8_t { kNearest, kStochastic };
enum class TopKSelect : uint8_t { kExact, kThreshold };

// Settings of a codec; each codec reads only the fields named beside it.
// Sender and receiver must use equal Params.
struct Params {
  Codec codec = Codec::kCast;
  gcclDataType_t castTo = gcclFloat16;     // kCast: gcclFloat16 or gcclBfloat16
  int bits = 8;                            // kQuantize, kLattice: 8, 4 or 2
  size_t bucket = 1024;                    // kQuantize, kLattice: elements per bucket, > 0
  Rounding rounding = Rounding::kNearest;  // kQuantize, kLattice
  uint64_t seed = 0;                       // kStochastic rounding; kThreshold sampling
  double delta = 0.0;                      // kLattice: grid step, finite and > 0
  size_t k = 0;                            // kTopK: entries kept, <= count
  TopKSelect select = TopKSelect::kExact;  // kTopK
  size_t sample = 4096;                    // kTopK kThreshold: sampled elements, > 0
};

// The size in bytes of the encoding of `count` elements of `type` (kTopK: the
// largest, for k entries). Fails on parameters encode() would refuse.
gcclResult_t encodedBytes(const Params& p, size_t count, gcclDataType_t type, size_t* bytes);

// Encodes src (count elements of type) into out, which has outBytes bytes
// (at least encodedBytes()). *written (may be null) gets the bytes written.
// residual: kTopK only (float32, count elements, updated in place); null
// otherwise.
gcclResult_t encode(const Params& p, const void* src, size_t count, gcclDataType_t type, void* out,
                    size_t outBytes, size_t* written = nullptr, float* residual = nullptr);

// Decodes `in` (inBytes bytes, as encode() wrote them) into dst (count
// elements of type). reference: kLattice only, the receiver's own tensor
// (count elements of type, may be dst); null otherwise.
gcclResult_t decode(const Params& p, const void* in, size_t inBytes, size_t count,
                    gcclDataType_t type, void* dst, const void* reference = nullptr);

// The kTopK selection: updates residual as encode() does, and writes the kept
// entries' indices (ascending) and values to arrays of at least p.k entries;
// *kept gets their number.
gcclResult_t topkSelect(const Params& p, const float* x, float* residual, size_t count,
                        uint32_t* indices, float* values, size_t* kept);

namespace detail {
// encode() and decode() without the hand-vectorised paths (the F16C float16
// casts, the AVX2 float32 quantization), also on CPUs that have them, so
// that tests can compare the bits.
gcclResult_t encodePortable(const Params& p, const void* src, size_t count, gcclDataType_t type,
                            void* out, size_t outBytes, size_t* written = nullptr,
                            float* residual = nullptr);
gcclResult_t decodePortable(const Params& p, const void* in, size_t inBytes, size_t count,
                            gcclDataType_t type, void* dst, const void* reference = nullptr);
// The uniform u in [0, 1) that kStochastic rounding adds to element `index`.
float uniform(uint64_t seed, uint64_t index);
}  // namespace detail

}  // namespace gccl::kernels::codec
