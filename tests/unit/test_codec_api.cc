// The public codec calls (gcclCodecEncodedBytes / Encode / Decode): the
// configuration struct is read field by field, each codec round-trips through
// it with the kernels' semantics, and bad configurations are named.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "gccl/gccl.h"

namespace {

std::vector<float> ramp(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(std::sin(0.1 * static_cast<double>(i)) * 3.0);
  return v;
}

std::vector<float> roundTrip(const gcclCodecConfig_t& cfg, const std::vector<float>& x,
                             const std::vector<float>* reference = nullptr,
                             float* residual = nullptr) {
  size_t bytes = 0;
  EXPECT_EQ(gcclCodecEncodedBytes(&cfg, x.size(), gcclFloat32, &bytes), gcclSuccess)
      << gcclGetLastError(nullptr);
  std::vector<unsigned char> enc(bytes);
  size_t written = 0;
  EXPECT_EQ(gcclCodecEncode(&cfg, x.data(), x.size(), gcclFloat32, enc.data(), enc.size(), &written,
                            residual),
            gcclSuccess)
      << gcclGetLastError(nullptr);
  EXPECT_LE(written, bytes);
  std::vector<float> out(x.size());
  EXPECT_EQ(gcclCodecDecode(&cfg, enc.data(), written, x.size(), gcclFloat32, out.data(),
                            reference ? reference->data() : nullptr),
            gcclSuccess)
      << gcclGetLastError(nullptr);
  return out;
}

TEST(CodecApi, EachCodecRoundTripsWithinItsBound) {
  auto x = ramp(1000);
  gcclCodecConfig_t cfg = GCCL_CODEC_CONFIG_INITIALIZER;
  cfg.codec = gcclCodecFloat16;
  auto y = roundTrip(cfg, x);
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_NEAR(y[i], x[i], 2e-3) << i;

  cfg.codec = gcclCodecQuantize;
  cfg.bits = 4;
  cfg.bucket = 64;
  y = roundTrip(cfg, x);
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_NEAR(y[i], x[i], 6.0 / 15 / 2 + 1e-5) << i;

  // The lattice reconstructs exactly (to the grid) near the reference.
  cfg = GCCL_CODEC_CONFIG_INITIALIZER;
  cfg.codec = gcclCodecLattice;
  cfg.latticeStep = 1.0 / 64;
  std::vector<float> ref(x);
  for (auto& v : ref)
    v += 0.5f;
  y = roundTrip(cfg, x, &ref);
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(y[i], std::nearbyint(x[i] * 64) / 64) << i;
}

// What was sent plus the residual equals what came in plus the old residual.
TEST(CodecApi, TopKKeepsWhatItDidNotSendInTheResidual) {
  auto x = ramp(500);
  gcclCodecConfig_t cfg = GCCL_CODEC_CONFIG_INITIALIZER;
  cfg.codec = gcclCodecTopK;
  cfg.topkCount = 25;
  std::vector<float> residual(x.size(), 0.0f);
  for (int round = 0; round < 3; ++round) {
    std::vector<float> before(residual);
    auto sent = roundTrip(cfg, x, nullptr, residual.data());
    size_t nonzero = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      nonzero += sent[i] != 0;
      ASSERT_EQ(sent[i] + residual[i], x[i] + before[i]) << "round " << round << " element " << i;
    }
    EXPECT_EQ(nonzero, 25u);
  }
  // topkFraction when topkCount is 0: ceil(0.013 * 500) = 7 entries.
  cfg.topkCount = 0;
  cfg.topkFraction = 0.013;
  size_t bytes = 0;
  ASSERT_EQ(gcclCodecEncodedBytes(&cfg, 500, gcclFloat32, &bytes), gcclSuccess);
  EXPECT_EQ(bytes, 8u + 8u * 7u);
}

TEST(CodecApi, BadConfigurationsAreNamed) {
  float x[4] = {1, 2, 3, 4};
  unsigned char out[256];
  size_t bytes;
  auto expectRefusal = [&](const gcclCodecConfig_t* cfg, gcclDataType_t t, const char* words) {
    EXPECT_EQ(gcclCodecEncode(cfg, x, 4, t, out, sizeof(out), nullptr, nullptr),
              gcclInvalidArgument)
        << words;
    EXPECT_NE(strstr(gcclGetLastError(nullptr), words), nullptr) << gcclGetLastError(nullptr);
  };
  expectRefusal(nullptr, gcclFloat32, "config is NULL");
  gcclCodecConfig_t cfg = GCCL_CODEC_CONFIG_INITIALIZER;
  expectRefusal(&cfg, gcclFloat32, "gcclCodecNone");
  cfg.codec = gcclCodecQuantize;
  cfg.magic = 0;
  expectRefusal(&cfg, gcclFloat32, "GCCL_CODEC_CONFIG_MAGIC");
  cfg.magic = GCCL_CODEC_CONFIG_MAGIC;
  cfg.size = 8;
  expectRefusal(&cfg, gcclFloat32, "size is 8");
  cfg.size = sizeof(cfg);
  cfg.bits = 5;
  expectRefusal(&cfg, gcclFloat32, "bits is 5");
  cfg.bits = 8;
  cfg.rounding = static_cast<gcclRounding_t>(3);
  expectRefusal(&cfg, gcclFloat32, "rounding 3");
  cfg.rounding = gcclRoundNearest;
  expectRefusal(&cfg, gcclInt32, "gcclCodecEncode");
  cfg.codec = gcclCodecTopK;
  cfg.topkFraction = 1.5;
  expectRefusal(&cfg, gcclFloat32, "topkFraction");
  cfg.topkFraction = 0.5;
  expectRefusal(&cfg, gcclFloat64, "float32");
  cfg.topkCount = 9;
  EXPECT_EQ(gcclCodecEncodedBytes(&cfg, 4, gcclFloat32, &bytes), gcclInvalidArgument);
  EXPECT_NE(strstr(gcclGetLastError(nullptr), "exceeds"), nullptr) << gcclGetLastError(nullptr);
  cfg = GCCL_CODEC_CONFIG_INITIALIZER;
  cfg.codec = gcclCodecBfloat16;
  EXPECT_EQ(gcclCodecEncodedBytes(&cfg, 4, gcclFloat32, nullptr), gcclInvalidArgument);
  // A buffer too small for the encoding is refused, and names the sizes.
  EXPECT_EQ(gcclCodecEncode(&cfg, x, 4, gcclFloat32, out, 3, nullptr, nullptr),
            gcclInvalidArgument);
  // The lattice without the receiver's reference.
  cfg.codec = gcclCodecLattice;
  cfg.latticeStep = 0.5;
  ASSERT_EQ(gcclCodecEncode(&cfg, x, 4, gcclFloat32, out, sizeof(out), nullptr, nullptr),
            gcclSuccess);
  float y[4];
  EXPECT_EQ(gcclCodecDecode(&cfg, out, sizeof(out), 4, gcclFloat32, y, nullptr),
            gcclInvalidArgument);
  EXPECT_NE(strstr(gcclGetLastError(nullptr), "gcclCodecDecode"), nullptr);
}

}  // namespace
