// The public codec configuration (gcclCodecConfig_t) read once per call and
// turned into the kernels' codec parameters for each message.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gccl/gccl.h"
#include "kernels/cpu/codec.h"

namespace gccl {

// A validated codec configuration. Inactive (gcclCodecNone, or no codec at
// all) means messages travel as they are.
struct WireCodec {
  bool active = false;
  kernels::codec::Params params;  // k is set per message (forMessage)
  size_t topkCount = 0;           // kTopK: fixed k, or 0 for topkFraction
  double topkFraction = 0;
  // 16 bits naming what the receiver needs to agree on (the codec and every
  // setting that changes the encoding's layout or meaning, not the seed or
  // the rounding): gossip messages carry it, so ranks configured differently
  // get an error instead of misread data. 0 when inactive.
  uint16_t signature = 0;

  // The parameters for one message of n elements: k of top-k resolved for n
  // and the seed mixed with `salt` (a rank, a step, a slice).
  kernels::codec::Params forMessage(size_t n, uint64_t salt) const;
  // What decode() takes as its reference: the receiver's tensor for the
  // lattice, nothing for the others.
  const void* reference(const void* x) const {
    return params.codec == kernels::codec::Codec::kLattice ? x : nullptr;
  }
  // The largest encoding of n elements of `type` (forMessage's parameters).
  gcclResult_t maxBytes(size_t n, gcclDataType_t type, size_t* bytes) const;
};

// Reads and checks `config` (NULL: inactive), naming the field at fault.
gcclResult_t readCodecConfig(const gcclCodecConfig_t* config, const char* call, WireCodec* out);
// Reads gossip options (NULL: the defaults) and their codec. Gossip refuses
// top-k (see wire_codec.cc).
gcclResult_t readGossipOptions(const gcclGossipOptions_t* options, const char* call,
                               WireCodec* out);
// Whether the codec takes tensors of `type` (for example no float16 casts of
// float16 tensors; top-k on float32 only), named in the error.
gcclResult_t checkCodecType(const WireCodec& codec, gcclDataType_t type, const char* call);

// A 64-bit mix (SplitMix64's finaliser) for seeds and signatures.
uint64_t mixBits(uint64_t z);

}  // namespace gccl
