// Wire codec settings by name -> gccl's C structs, shared by the framework plugins (the torch
// extension, plugins/torch/csrc, and the TensorFlow op library, plugins/tensorflow/csrc).
// Header-only: the two build with different compilers' flags and runtimes (torch's
// cpp_extension, tensorflow's sysconfig), and each includes this folder.
//
// The names are the Python Codec's fields (plugins/torch/gccl/codec.py): codec
// none|float16|bfloat16|quantize|lattice|topk, rounding nearest|stochastic. Only what the names
// cannot express is checked here; gccl checks the values themselves (bits, lattice step, top-k
// fraction, the tensor's type) when the codec is used.
#pragma once

#include <cstdint>
#include <string>

#include "gccl/gccl.h"

namespace gccl_plugin {

// Fills *out from the settings; returns "" on success, otherwise the reason (and leaves *out).
inline std::string makeCodecConfig(const std::string& codec, int64_t bits, int64_t bucket,
                                   const std::string& rounding, int64_t seed, double latticeStep,
                                   int64_t topkCount, double topkFraction, gcclCodecConfig_t* out) {
  struct Name {
    const char* name;
    gcclCodec_t codec;
  };
  static const Name kCodecs[] = {{"none", gcclCodecNone},         {"float16", gcclCodecFloat16},
                                 {"bfloat16", gcclCodecBfloat16}, {"quantize", gcclCodecQuantize},
                                 {"lattice", gcclCodecLattice},   {"topk", gcclCodecTopK}};
  gcclCodecConfig_t config = GCCL_CODEC_CONFIG_INITIALIZER;
  bool known = false;
  for (const Name& n : kCodecs) {
    if (codec == n.name) {
      config.codec = n.codec;
      known = true;
    }
  }
  if (!known) {
    return "gccl: unknown codec '" + codec +
           "' (one of none, float16, bfloat16, quantize, lattice, topk)";
  }
  if (rounding == "nearest") {
    config.rounding = gcclRoundNearest;
  } else if (rounding == "stochastic") {
    config.rounding = gcclRoundStochastic;
  } else {
    return "gccl: unknown rounding '" + rounding + "' (nearest or stochastic)";
  }
  if (bits < INT32_MIN || bits > INT32_MAX) {
    return "gccl: codec bits out of range, got " + std::to_string(bits);
  }
  if (bucket <= 0) return "gccl: codec bucket must be positive, got " + std::to_string(bucket);
  if (topkCount < 0) {
    return "gccl: codec topk_count must be >= 0, got " + std::to_string(topkCount);
  }
  config.bits = static_cast<int>(bits);
  config.bucket = static_cast<size_t>(bucket);
  config.seed = static_cast<uint64_t>(seed);
  config.latticeStep = latticeStep;
  config.topkCount = static_cast<size_t>(topkCount);
  config.topkFraction = topkFraction;
  *out = config;
  return "";
}

// The gcclGossipOptions_t of a gossip call and the codec configuration it points at, kept
// together (copying is safe: get() points the options at this object's own configuration).
struct GossipCodecOptions {
  gcclCodecConfig_t codec = GCCL_CODEC_CONFIG_INITIALIZER;
  gcclGossipOptions_t options = GCCL_GOSSIP_OPTIONS_INITIALIZER;

  // The options for a *Ex call; null (the plain, uncompressed call) for gcclCodecNone.
  const gcclGossipOptions_t* get() {
    if (codec.codec == gcclCodecNone) return nullptr;
    options.codec = &codec;
    return &options;
  }
};

}  // namespace gccl_plugin
