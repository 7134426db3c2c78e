// Reading gcclCodecConfig_t / gcclGossipOptions_t, and the public codec calls.
#include "core/wire_codec.h"

#include <cmath>
#include <cstddef>

#include "base/check.h"
#include "core/api_call.h"
#include "core/executor.h"

namespace gccl {

namespace codec = kernels::codec;

uint64_t mixBits(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

codec::Params WireCodec::forMessage(size_t n, uint64_t salt) const {
  codec::Params p = params;
  p.seed = mixBits(params.seed ^ mixBits(salt));
  if (p.codec == codec::Codec::kTopK) {
    if (topkCount > 0) {
      p.k = topkCount;
    } else {
      double k = std::ceil(topkFraction * static_cast<double>(n));
      p.k = k >= static_cast<double>(n) ? n : static_cast<size_t>(k);
      if (p.k == 0 && n > 0) p.k = 1;
    }
  }
  return p;
}

gcclResult_t WireCodec::maxBytes(size_t n, gcclDataType_t type, size_t* bytes) const {
  return codec::encodedBytes(forMessage(n, 0), n, type, bytes);
}

gcclResult_t readCodecConfig(const gcclCodecConfig_t* config, const char* call, WireCodec* out) {
  *out = WireCodec();
  if (config == nullptr) return gcclSuccess;
  GCCL_REQUIRE(config->magic == GCCL_CODEC_CONFIG_MAGIC, gcclInvalidArgument,
               "%s: codec config magic is 0x%x, not GCCL_CODEC_CONFIG_MAGIC: initialize it with "
               "GCCL_CODEC_CONFIG_INITIALIZER",
               call, config->magic);
  const size_t need = offsetof(gcclCodecConfig_t, topkSample) + sizeof(config->topkSample);
  GCCL_REQUIRE(config->size >= need, gcclInvalidArgument,
               "%s: codec config size is %zu; it must be at least %zu: initialize it with "
               "GCCL_CODEC_CONFIG_INITIALIZER",
               call, config->size, need);
  codec::Params& p = out->params;
  switch (config->codec) {
    case gcclCodecNone:
      return gcclSuccess;
    case gcclCodecFloat16:
    case gcclCodecBfloat16:
      p.codec = codec::Codec::kCast;
      p.castTo = config->codec == gcclCodecFloat16 ? gcclFloat16 : gcclBfloat16;
      break;
    case gcclCodecQuantize:
    case gcclCodecLattice:
      p.codec =
          config->codec == gcclCodecQuantize ? codec::Codec::kQuantize : codec::Codec::kLattice;
      GCCL_REQUIRE(config->bits == 8 || config->bits == 4 || config->bits == 2, gcclInvalidArgument,
                   "%s: codec bits is %d; it must be 8, 4 or 2", call, config->bits);
      GCCL_REQUIRE(config->bucket > 0, gcclInvalidArgument,
                   "%s: codec bucket is 0; it must be at least 1 element", call);
      GCCL_REQUIRE(config->rounding == gcclRoundNearest || config->rounding == gcclRoundStochastic,
                   gcclInvalidArgument,
                   "%s: codec rounding %d is neither gcclRoundNearest nor "
                   "gcclRoundStochastic",
                   call, static_cast<int>(config->rounding));
      p.bits = config->bits;
      p.bucket = config->bucket;
      p.rounding = config->rounding == gcclRoundNearest ? codec::Rounding::kNearest
                                                        : codec::Rounding::kStochastic;
      if (config->codec == gcclCodecLattice) {
        GCCL_REQUIRE(std::isfinite(config->latticeStep) && config->latticeStep > 0,
                     gcclInvalidArgument,
                     "%s: codec latticeStep is %g; the lattice needs a finite step > 0", call,
                     config->latticeStep);
        p.delta = config->latticeStep;
      }
      break;
    case gcclCodecTopK:
      p.codec = codec::Codec::kTopK;
      GCCL_REQUIRE(config->topkSelect == gcclTopKExact || config->topkSelect == gcclTopKThreshold,
                   gcclInvalidArgument,
                   "%s: codec topkSelect %d is neither gcclTopKExact nor gcclTopKThreshold", call,
                   static_cast<int>(config->topkSelect));
      GCCL_REQUIRE(config->topkCount > 0 || (config->topkFraction > 0 && config->topkFraction <= 1),
                   gcclInvalidArgument,
                   "%s: codec topkFraction is %g; with topkCount 0 it must be in (0, 1]", call,
                   config->topkFraction);
      GCCL_REQUIRE(config->topkSelect != gcclTopKThreshold || config->topkSample > 0,
                   gcclInvalidArgument,
                   "%s: codec topkSample is 0; threshold selection samples "
                   "at least one element",
                   call);
      p.select = config->topkSelect == gcclTopKExact ? codec::TopKSelect::kExact
                                                     : codec::TopKSelect::kThreshold;
      p.sample = config->topkSample;
      out->topkCount = config->topkCount;
      out->topkFraction = config->topkFraction;
      break;
    default:
      return setError(gcclInvalidArgument, "%s: codec %d is not a gcclCodec_t value", call,
                      static_cast<int>(config->codec));
  }
  p.seed = config->seed;
  out->active = true;
  // The signature: what both sides must agree on to read a message.
  uint64_t h = mixBits(static_cast<uint64_t>(config->codec));
  h = mixBits(h ^ static_cast<uint64_t>(p.bits));
  h = mixBits(h ^ p.bucket);
  uint64_t deltaBits;
  static_assert(sizeof(deltaBits) == sizeof(p.delta));
  __builtin_memcpy(&deltaBits, &p.delta, sizeof(deltaBits));
  h = mixBits(h ^ deltaBits);
  uint64_t fracBits;
  __builtin_memcpy(&fracBits, &out->topkFraction, sizeof(fracBits));
  h = mixBits(h ^ out->topkCount ^ mixBits(fracBits));
  out->signature = static_cast<uint16_t>(h) | 1;  // never 0: 0 means uncompressed
  return gcclSuccess;
}

gcclResult_t readGossipOptions(const gcclGossipOptions_t* options, const char* call,
                               WireCodec* out) {
  *out = WireCodec();
  if (options == nullptr) return gcclSuccess;
  GCCL_REQUIRE(options->magic == GCCL_GOSSIP_OPTIONS_MAGIC, gcclInvalidArgument,
               "%s: options->magic is 0x%x, not GCCL_GOSSIP_OPTIONS_MAGIC: initialize the "
               "options with GCCL_GOSSIP_OPTIONS_INITIALIZER",
               call, options->magic);
  const size_t need = offsetof(gcclGossipOptions_t, codec) + sizeof(options->codec);
  GCCL_REQUIRE(options->size >= need, gcclInvalidArgument,
               "%s: options->size is %zu; it must be at least %zu: initialize the options with "
               "GCCL_GOSSIP_OPTIONS_INITIALIZER",
               call, options->size, need);
  GCCL_CHECK(readCodecConfig(options->codec, call, out));
  // A model's top-k by magnitude would send the same entries at every step
  // and never mix the others: top-k belongs to gradients (error feedback and
  // sparse AllReduce), where what is not sent now is sent later.
  GCCL_REQUIRE(!out->active || out->params.codec != codec::Codec::kTopK, gcclInvalidArgument,
               "%s: gcclCodecTopK is for gradients (gcclCodecEncode with a residual, sparse "
               "AllReduce), not for gossip of models: the entries of largest magnitude would be "
               "the same at every step and the others would never be averaged; use a cast, "
               "quantization or the lattice",
               call);
  return gcclSuccess;
}

gcclResult_t checkCodecType(const WireCodec& c, gcclDataType_t type, const char* call) {
  if (!c.active) return gcclSuccess;
  size_t bytes;
  gcclResult_t r = c.maxBytes(1, type, &bytes);
  if (r != gcclSuccess) return setError(r, "%s: %s", call, threadLastError());
  return gcclSuccess;
}

}  // namespace gccl

using namespace gccl;

namespace {

// The codec of a public codec call: gcclCodecNone is refused (there is no
// encoding to make).
gcclResult_t activeCodec(const gcclCodecConfig_t* config, const char* call, WireCodec* c) {
  GCCL_REQUIRE(config != nullptr, gcclInvalidArgument, "%s: config is NULL", call);
  GCCL_CHECK(readCodecConfig(config, call, c));
  GCCL_REQUIRE(c->active, gcclInvalidArgument,
               "%s: the codec is gcclCodecNone, which has no encoding", call);
  return gcclSuccess;
}

gcclResult_t named(gcclResult_t r, const char* call) {
  if (r == gcclSuccess) return r;
  return setError(r, "%s: %s", call, threadLastError());
}

}  // namespace

extern "C" {

gcclResult_t gcclCodecEncodedBytes(const gcclCodecConfig_t* config, size_t count,
                                   gcclDataType_t datatype, size_t* bytes) {
  const char* call = "gcclCodecEncodedBytes";
  clearThreadLastError();
  WireCodec c;
  GCCL_CHECK(activeCodec(config, call, &c));
  GCCL_REQUIRE(bytes != nullptr, gcclInvalidArgument, "%s: bytes is NULL", call);
  GCCL_CHECK(checkType(datatype, call));
  return named(codec::encodedBytes(c.forMessage(count, 0), count, datatype, bytes), call);
}

gcclResult_t gcclCodecEncode(const gcclCodecConfig_t* config, const void* src, size_t count,
                             gcclDataType_t datatype, void* out, size_t outBytes, size_t* written,
                             float* residual) {
  const char* call = "gcclCodecEncode";
  clearThreadLastError();
  WireCodec c;
  GCCL_CHECK(activeCodec(config, call, &c));
  GCCL_CHECK(checkType(datatype, call));
  // The configured seed as it is: a standalone call is reproducible by it alone.
  codec::Params p = c.forMessage(count, 0);
  p.seed = c.params.seed;
  MemoryType srcMem, outMem;
  GCCL_CHECK(checkMemoryTypes(defaultExecutor(), src, out, call, &srcMem, &outMem));
  return named(
      defaultExecutor().encode(p, src, count, datatype, out, outBytes, written, residual, srcMem),
      call);
}

gcclResult_t gcclCodecDecode(const gcclCodecConfig_t* config, const void* in, size_t inBytes,
                             size_t count, gcclDataType_t datatype, void* dst,
                             const void* reference) {
  const char* call = "gcclCodecDecode";
  clearThreadLastError();
  WireCodec c;
  GCCL_CHECK(activeCodec(config, call, &c));
  GCCL_CHECK(checkType(datatype, call));
  MemoryType inMem, dstMem;
  GCCL_CHECK(checkMemoryTypes(defaultExecutor(), in, dst, call, &inMem, &dstMem));
  return named(defaultExecutor().decode(c.forMessage(count, 0), in, inBytes, count, datatype, dst,
                                        reference, dstMem),
               call);
}

}  // extern "C"
