// Device wire codecs (kernels/cuda/codec.cuh) checked byte for byte against
// the CPU codecs (kernels/cpu/codec.h), which have their own reference tests
// (tests/unit/test_codec.cc): a rank with device buffers must send the bytes
// a rank with host buffers sends, and read them back to the same values.
//
// Every output starts as the same fill pattern on both sides and is compared
// whole, guard bytes past the end included, so a byte written out of place or
// left unwritten shows. Tests that need a device skip without one; the
// argument checks, which run before anything is enqueued, run everywhere.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/codec.h"
#include "kernels/cpu/half.h"
#include "kernels/cuda/codec.cuh"

namespace gccl::cuda::codec {
namespace {

namespace cpu = kernels::codec;
using Bytes = std::vector<uint8_t>;

const size_t kSizes[] = {0, 1, 7, 1000, (size_t{1} << 20) + 3};
const gcclDataType_t kFloatTypes[] = {gcclFloat32, gcclFloat64, gcclFloat16, gcclBfloat16};
const int kBits[] = {8, 4, 2};
const Rounding kRoundings[] = {Rounding::kNearest, Rounding::kStochastic};
constexpr size_t kGuard = 64;

#define ASSERT_CUDA(call)                                                           \
  do {                                                                              \
    const cudaError_t err_ = (call);                                                \
    ASSERT_EQ(err_, cudaSuccess) << #call << ": " << cudaGetErrorName(err_) << " (" \
                                 << cudaGetErrorString(err_) << ")";                \
  } while (0)

// Empty when a device is usable, else why not.
std::string noDeviceReason() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) return cudaGetErrorString(err);
  if (n == 0) return "cudaGetDeviceCount found 0 devices";
  return "";
}

size_t sizeOf(gcclDataType_t t) {
  return t == gcclFloat64 ? 8 : t == gcclFloat32 ? 4 : 2;
}

const char* typeName(gcclDataType_t t) {
  return t == gcclFloat64   ? "float64"
         : t == gcclFloat32 ? "float32"
         : t == gcclFloat16 ? "float16"
                            : "bfloat16";
}

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) { err_ = cudaMalloc(&p_, bytes ? bytes : 1); }
  ~DeviceBuffer() {
    if (p_ != nullptr) cudaFree(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return p_; }
  cudaError_t error() const { return err_; }
  cudaError_t put(const Bytes& b) {
    return cudaMemcpy(p_, b.data(), b.size(), cudaMemcpyHostToDevice);
  }
  cudaError_t take(Bytes* b) const {
    b->resize(bytes_);
    return cudaMemcpy(b->data(), p_, bytes_, cudaMemcpyDeviceToHost);
  }

 private:
  void* p_ = nullptr;
  size_t bytes_;
  cudaError_t err_;
};

// ---- Inputs -----------------------------------------------------------------------

void put(Bytes& buf, gcclDataType_t t, size_t i, double v) {
  switch (t) {
    case gcclFloat32: {
      const float f = static_cast<float>(v);
      std::memcpy(buf.data() + 4 * i, &f, 4);
      break;
    }
    case gcclFloat64:
      std::memcpy(buf.data() + 8 * i, &v, 8);
      break;
    case gcclFloat16: {
      const uint16_t h = kernels::floatToHalf(static_cast<float>(v));
      std::memcpy(buf.data() + 2 * i, &h, 2);
      break;
    }
    default: {
      const uint16_t h = kernels::floatToBfloat16(static_cast<float>(v));
      std::memcpy(buf.data() + 2 * i, &h, 2);
      break;
    }
  }
}

// Values on several scales, with runs of equal values, zeros of both signs
// (the sign kept as a bucket's minimum must match), a constant stretch (scale
// 0) and values a few units apart (a tiny scale).
Bytes finiteInput(gcclDataType_t t, size_t n, uint32_t seed) {
  Bytes buf(n * sizeOf(t));
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (size_t i = 0; i < n; ++i) {
    double v;
    switch ((i / 97) % 6) {
      case 0:
        v = normal(rng);
        break;
      case 1:
        v = (i % 2 ? -0.0 : 0.0) + std::abs(normal(rng));
        break;
      case 2:
        v = i % 3 == 0 ? -0.0 : (i % 3 == 1 ? 0.0 : 1.5);
        break;
      case 3:
        v = 3.25;
        break;
      case 4:
        v = 1000.0 + 1e-4 * static_cast<double>(i % 5);
        break;
      default:
        v = std::ldexp(normal(rng), static_cast<int>(rng() % 30) - 20);
        break;
    }
    put(buf, t, i, v);
  }
  return buf;
}

// Bit patterns where conversions disagree if they disagree at all.
Bytes castInput(gcclDataType_t t, size_t n, uint32_t seed) {
  Bytes buf(n * sizeOf(t));
  std::mt19937_64 rng(seed);
  const uint32_t f32[] = {0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000,
                          0xFFC00000, 0x7F800001, 0x7FA5A5A5, 0xFFFFFFFF, 0x00000001,
                          0x477FF000, 0x477FEFFF, 0x477FF001, 0x38800000, 0x387FFFFF,
                          0x33000000, 0x33000001, 0x7F7FFFFF, 0x3F801000, 0x3F803000};
  const uint64_t f64[] = {0x0000000000000000, 0x8000000000000000, 0x7FF0000000000000,
                          0x7FF8000000000000, 0x7FF0000000000001, 0xFFF5A5A5A5A5A5A5,
                          0x40EFFE0000000000, 0x40EFFDFFFFFFFFFF, 0x47EFF00000000000,
                          0x47EFEFFFFFFFFFFF, 0x3E70000000000000, 0x3E6FFFFFFFFFFFFF,
                          0x0000000000000001, 0x7FEFFFFFFFFFFFFF, 0x3FF0020000000000,
                          0x3FF0020000000001, 0x3FF0060000000000, 0x3810000000000000};
  for (size_t i = 0; i < n; ++i) {
    if (t == gcclFloat32) {
      const uint32_t bits =
          i % 3 == 0 ? f32[(i / 3) % (sizeof f32 / 4)] : static_cast<uint32_t>(rng());
      std::memcpy(buf.data() + 4 * i, &bits, 4);
    } else {
      const uint64_t bits = i % 3 == 0 ? f64[(i / 3) % (sizeof f64 / 8)] : rng();
      std::memcpy(buf.data() + 8 * i, &bits, 8);
    }
  }
  return buf;
}

std::string describe(const Params& p, gcclDataType_t t, size_t n) {
  std::ostringstream s;
  s << typeName(t) << " count " << n << " codec " << static_cast<int>(p.codec) << " bits " << p.bits
    << " bucket " << p.bucket << " rounding " << static_cast<int>(p.rounding) << " k " << p.k
    << " select " << static_cast<int>(p.select) << " sample " << p.sample << " castTo " << p.castTo;
  return s.str();
}

// The first differing byte of two buffers, or "".
std::string firstDifference(const Bytes& want, const Bytes& got) {
  if (want.size() != got.size()) return "sizes differ";
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] != got[i]) {
      std::ostringstream s;
      s << "byte " << i << " of " << want.size() << ": want 0x" << std::hex << int{want[i]}
        << ", got 0x" << int{got[i]};
      return s.str();
    }
  }
  return "";
}

// ---- Tests --------------------------------------------------------------------------

class CudaCodecTest : public testing::Test {
 protected:
  void SetUp() override {
    const std::string why = noDeviceReason();
    if (!why.empty()) GTEST_SKIP() << "no CUDA device: " << why;
    ASSERT_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    void* mem = nullptr;
    ASSERT_CUDA(cudaMalloc(&mem, sizeof(Status)));
    status_ = static_cast<Status*>(mem);
  }
  void TearDown() override {
    if (status_ != nullptr) cudaFree(status_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  Status readStatus() {
    Status s;
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(&s, status_, sizeof s, cudaMemcpyDeviceToHost), cudaSuccess);
    return s;
  }

  // Encodes src on both sides and compares the encodings; then decodes the
  // CPU's encoding on both sides (against `reference` for the lattice) and
  // compares the tensors.
  void roundTrip(const Params& p, gcclDataType_t t, const Bytes& src, const Bytes* reference,
                 bool referenceIsDst = false) {
    const size_t n = src.size() / sizeOf(t);
    const std::string what = describe(p, t, n);
    size_t need = 0;
    ASSERT_EQ(cpu::encodedBytes(p, n, t, &need), gcclSuccess) << what;
    Bytes want(need + kGuard, 0xAB);
    ASSERT_EQ(cpu::encode(p, src.data(), n, t, want.data(), need), gcclSuccess) << what;

    DeviceBuffer dSrc(src.size()), dOut(want.size());
    ASSERT_CUDA(dSrc.error());
    ASSERT_CUDA(dOut.error());
    ASSERT_CUDA(dSrc.put(src));
    ASSERT_CUDA(dOut.put(Bytes(want.size(), 0xAB)));
    ASSERT_EQ(launchEncode(p, dSrc.get(), n, t, dOut.get(), need, nullptr, status_, stream_),
              gcclSuccess)
        << what;
    const Status es = readStatus();
    EXPECT_EQ(statusResult(p, es, false), gcclSuccess) << what;
    Bytes got;
    ASSERT_CUDA(dOut.take(&got));
    const std::string encDiff = firstDifference(want, got);
    EXPECT_EQ(encDiff, "") << "encoding, " << what;

    // Decode the CPU's bytes on both sides.
    const size_t dstBytes = n * sizeOf(t) + kGuard;
    Bytes wantDst(dstBytes, 0xCD);
    if (referenceIsDst) std::memcpy(wantDst.data(), reference->data(), reference->size());
    const void* cpuRef = reference == nullptr ? nullptr
                         : referenceIsDst     ? static_cast<const void*>(wantDst.data())
                                              : reference->data();
    ASSERT_EQ(cpu::decode(p, want.data(), need, n, t, wantDst.data(), cpuRef), gcclSuccess) << what;
    DeviceBuffer dIn(want.size()), dDst(dstBytes), dRef(reference ? reference->size() : 1);
    ASSERT_CUDA(dIn.put(want));
    Bytes initDst(dstBytes, 0xCD);
    if (referenceIsDst) std::memcpy(initDst.data(), reference->data(), reference->size());
    ASSERT_CUDA(dDst.put(initDst));
    const void* devRef = nullptr;
    if (reference != nullptr) {
      if (referenceIsDst) {
        devRef = dDst.get();
      } else {
        ASSERT_CUDA(dRef.put(*reference));
        devRef = dRef.get();
      }
    }
    ASSERT_EQ(launchDecode(p, dIn.get(), need, n, t, dDst.get(), devRef, status_, stream_),
              gcclSuccess)
        << what;
    EXPECT_EQ(statusResult(p, readStatus(), true), gcclSuccess) << what;
    Bytes gotDst;
    ASSERT_CUDA(dDst.take(&gotDst));
    EXPECT_EQ(firstDifference(wantDst, gotDst), "") << "decoded tensor, " << what;
  }

  cudaStream_t stream_ = nullptr;
  Status* status_ = nullptr;
};

TEST_F(CudaCodecTest, CastsMatchCpuBitForBit) {
  for (gcclDataType_t t : {gcclFloat32, gcclFloat64}) {
    for (gcclDataType_t to : {gcclFloat16, gcclBfloat16}) {
      for (size_t n : kSizes) {
        Params p;
        p.codec = Codec::kCast;
        p.castTo = to;
        roundTrip(p, t, castInput(t, n, 11), nullptr);
      }
    }
  }
}

TEST_F(CudaCodecTest, QuantizationMatchesCpuBitForBit) {
  for (gcclDataType_t t : kFloatTypes) {
    for (size_t n : kSizes) {
      const Bytes src = finiteInput(t, n, 7);
      for (int bits : kBits) {
        for (size_t bucket : {size_t{1024}, size_t{7}, size_t{1}}) {
          if (bucket == 1 && n > 1000) continue;
          for (Rounding r : kRoundings) {
            Params p;
            p.codec = Codec::kQuantize;
            p.bits = bits;
            p.bucket = bucket;
            p.rounding = r;
            p.seed = 0x1234 + bits;
            roundTrip(p, t, src, nullptr);
          }
        }
      }
    }
  }
}

TEST_F(CudaCodecTest, QuantizationOfExtremeRangesMatchesCpu) {
  // Buckets whose float32 range overflows, or whose scale is subnormal, are
  // computed in double on both sides.
  Bytes src(8 * 4);
  const float v[] = {-3.0e38f, 3.0e38f, 0.0f, 1.0f, 1e-45f, 3e-45f, 0.0f, -0.0f};
  std::memcpy(src.data(), v, sizeof v);
  for (int bits : kBits) {
    for (Rounding r : kRoundings) {
      Params p;
      p.codec = Codec::kQuantize;
      p.bits = bits;
      p.bucket = 4;
      p.rounding = r;
      roundTrip(p, gcclFloat32, src, nullptr);
    }
  }
}

TEST_F(CudaCodecTest, LatticeMatchesCpuBitForBit) {
  for (gcclDataType_t t : kFloatTypes) {
    for (size_t n : kSizes) {
      const Bytes src = finiteInput(t, n, 5);
      // A reference within the lattice's range: x plus a little.
      Bytes ref(src.size());
      std::mt19937 rng(3);
      std::uniform_real_distribution<double> noise(-0.01, 0.01);
      for (size_t i = 0; i < n; ++i) {
        double x;
        if (t == gcclFloat64) {
          std::memcpy(&x, src.data() + 8 * i, 8);
        } else if (t == gcclFloat32) {
          float f;
          std::memcpy(&f, src.data() + 4 * i, 4);
          x = f;
        } else {
          uint16_t h;
          std::memcpy(&h, src.data() + 2 * i, 2);
          x = t == gcclFloat16 ? kernels::halfToFloat(h) : kernels::bfloat16ToFloat(h);
        }
        put(ref, t, i, x + noise(rng));
      }
      for (int bits : kBits) {
        for (Rounding r : kRoundings) {
          Params p;
          p.codec = Codec::kLattice;
          p.bits = bits;
          p.bucket = 1000;
          p.rounding = r;
          p.delta = 0.25;
          p.seed = 99;
          roundTrip(p, t, src, &ref);
          roundTrip(p, t, src, &ref, /*referenceIsDst=*/true);
        }
      }
    }
  }
}

TEST_F(CudaCodecTest, LatticeFailedCheckIsReportedForTheBucketTheCpuNames) {
  const size_t n = 5000;
  Bytes src(4 * n), ref(4 * n);
  for (size_t i = 0; i < n; ++i) {
    put(src, gcclFloat32, i, 0.001 * static_cast<double>(i));
    // Bucket 3 (elements 3000..3999) is far from the sender's tensor.
    put(ref, gcclFloat32, i, 0.001 * static_cast<double>(i) + (i / 1000 == 3 ? 50.0 : 0.0));
  }
  Params p;
  p.codec = Codec::kLattice;
  p.bits = 4;
  p.bucket = 1000;
  p.delta = 0.5;
  size_t need = 0;
  ASSERT_EQ(cpu::encodedBytes(p, n, gcclFloat32, &need), gcclSuccess);
  Bytes enc(need);
  ASSERT_EQ(cpu::encode(p, src.data(), n, gcclFloat32, enc.data(), need), gcclSuccess);
  Bytes cpuDst(4 * n);
  EXPECT_EQ(cpu::decode(p, enc.data(), need, n, gcclFloat32, cpuDst.data(), ref.data()),
            gcclInvalidArgument);

  DeviceBuffer dIn(need), dRef(4 * n), dDst(4 * n);
  ASSERT_CUDA(dIn.put(enc));
  ASSERT_CUDA(dRef.put(ref));
  ASSERT_CUDA(dDst.put(Bytes(4 * n, 0xCD)));
  ASSERT_EQ(
      launchDecode(p, dIn.get(), need, n, gcclFloat32, dDst.get(), dRef.get(), status_, stream_),
      gcclSuccess);
  const Status s = readStatus();
  EXPECT_EQ(s.bucket, 3u);
  EXPECT_EQ(s.element, Status::kNone);
  EXPECT_EQ(statusResult(p, s, true), gcclInvalidArgument);
  // The failing bucket is not written; the others are, with the values the
  // CPU decodes from a reference that passes everywhere (the sender's own).
  Bytes good(4 * n);
  ASSERT_EQ(cpu::decode(p, enc.data(), need, n, gcclFloat32, good.data(), src.data()), gcclSuccess);
  Bytes got;
  ASSERT_CUDA(dDst.take(&got));
  for (size_t i = 0; i < n; ++i) {
    const uint32_t untouched = 0xCDCDCDCDu;
    if (i / 1000 == 3) {
      EXPECT_EQ(std::memcmp(got.data() + 4 * i, &untouched, 4), 0) << i;
    } else {
      EXPECT_EQ(std::memcmp(got.data() + 4 * i, good.data() + 4 * i, 4), 0) << i;
    }
  }
}

TEST_F(CudaCodecTest, NonFiniteElementsAreReportedByIndex) {
  const size_t n = 3000;
  Bytes src = finiteInput(gcclFloat32, n, 1);
  const float nan = std::nanf("");
  std::memcpy(src.data() + 4 * 2500, &nan, 4);
  const float inf = INFINITY;
  std::memcpy(src.data() + 4 * 1700, &inf, 4);
  for (Codec c : {Codec::kQuantize, Codec::kLattice}) {
    Params p;
    p.codec = c;
    p.bucket = 512;
    p.delta = 1.0;
    size_t need = 0;
    ASSERT_EQ(cpu::encodedBytes(p, n, gcclFloat32, &need), gcclSuccess);
    Bytes enc(need);
    EXPECT_EQ(cpu::encode(p, src.data(), n, gcclFloat32, enc.data(), need), gcclInvalidArgument);
    DeviceBuffer dSrc(4 * n), dOut(need);
    ASSERT_CUDA(dSrc.put(src));
    ASSERT_EQ(
        launchEncode(p, dSrc.get(), n, gcclFloat32, dOut.get(), need, nullptr, status_, stream_),
        gcclSuccess);
    const Status s = readStatus();
    EXPECT_EQ(s.element, 1700u);
    EXPECT_EQ(statusResult(p, s, false), gcclInvalidArgument);
  }
}

TEST_F(CudaCodecTest, TopKMatchesCpuBitForBit) {
  for (size_t n : kSizes) {
    if (n == 0) continue;
    // Few distinct magnitudes of both signs: many ties at the threshold.
    std::mt19937 rng(17);
    std::vector<float> x(n), r0(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = static_cast<float>(static_cast<int>(rng() % 21) - 10) * 0.5f;
      r0[i] = i % 5 == 0 ? 0.25f * static_cast<float>(static_cast<int>(rng() % 7) - 3) : 0.0f;
    }
    for (size_t k : {size_t{0}, size_t{1}, n / 100, n / 3, n}) {
      for (TopKSelect select : {TopKSelect::kExact, TopKSelect::kThreshold}) {
        for (size_t sample : {size_t{4096}, size_t{7}}) {
          if (select == TopKSelect::kExact && sample != 4096) continue;
          Params p;
          p.codec = Codec::kTopK;
          p.k = k;
          p.select = select;
          p.sample = sample;
          p.seed = 42;
          const std::string what = describe(p, gcclFloat32, n);
          size_t need = 0;
          ASSERT_EQ(cpu::encodedBytes(p, n, gcclFloat32, &need), gcclSuccess);
          Bytes want(need + kGuard, 0xAB);
          std::vector<float> wantRes = r0;
          size_t written = 0;
          ASSERT_EQ(
              cpu::encode(p, x.data(), n, gcclFloat32, want.data(), need, &written, wantRes.data()),
              gcclSuccess);

          DeviceBuffer dX(4 * n), dRes(4 * n), dOut(want.size());
          ASSERT_CUDA(cudaMemcpy(dX.get(), x.data(), 4 * n, cudaMemcpyHostToDevice));
          ASSERT_CUDA(cudaMemcpy(dRes.get(), r0.data(), 4 * n, cudaMemcpyHostToDevice));
          ASSERT_CUDA(dOut.put(Bytes(want.size(), 0xAB)));
          ASSERT_EQ(launchEncode(p, dX.get(), n, gcclFloat32, dOut.get(), need,
                                 static_cast<float*>(dRes.get()), status_, stream_),
                    gcclSuccess)
              << what;
          EXPECT_EQ(statusResult(p, readStatus(), false), gcclSuccess) << what;
          Bytes got, gotRes;
          ASSERT_CUDA(dOut.take(&got));
          ASSERT_CUDA(dRes.take(&gotRes));
          // The encoding is its first `written` bytes; past them, up to the
          // largest size, the CPU leaves what it moved (kThreshold keeping
          // fewer than k), so only the guard after that is compared.
          ASSERT_EQ(got.size(), want.size());
          EXPECT_EQ(firstDifference(Bytes(want.begin(), want.begin() + written),
                                    Bytes(got.begin(), got.begin() + written)),
                    "")
              << "encoding, " << what;
          EXPECT_EQ(firstDifference(Bytes(want.begin() + need, want.end()),
                                    Bytes(got.begin() + need, got.end())),
                    "")
              << "guard after the encoding, " << what;
          Bytes wantResBytes(4 * n);
          std::memcpy(wantResBytes.data(), wantRes.data(), 4 * n);
          EXPECT_EQ(firstDifference(wantResBytes, gotRes), "") << "residual, " << what;

          Bytes wantDst(4 * n + kGuard, 0xCD);
          ASSERT_EQ(cpu::decode(p, want.data(), written, n, gcclFloat32, wantDst.data()),
                    gcclSuccess);
          DeviceBuffer dDst(wantDst.size());
          ASSERT_CUDA(dDst.put(Bytes(wantDst.size(), 0xCD)));
          ASSERT_EQ(launchDecode(p, dOut.get(), written, n, gcclFloat32, dDst.get(), nullptr,
                                 status_, stream_),
                    gcclSuccess);
          EXPECT_EQ(statusResult(p, readStatus(), true), gcclSuccess) << what;
          Bytes gotDst;
          ASSERT_CUDA(dDst.take(&gotDst));
          EXPECT_EQ(firstDifference(wantDst, gotDst), "") << "decoded, " << what;
        }
      }
    }
  }
}

TEST_F(CudaCodecTest, TopKNonFiniteAccumulatorChangesNothing) {
  const size_t n = 1000;
  std::vector<float> x(n, 1.0f), r(n, 0.5f);
  x[600] = INFINITY;
  Params p;
  p.codec = Codec::kTopK;
  p.k = 10;
  size_t need = 0;
  ASSERT_EQ(cpu::encodedBytes(p, n, gcclFloat32, &need), gcclSuccess);
  DeviceBuffer dX(4 * n), dRes(4 * n), dOut(need);
  ASSERT_CUDA(cudaMemcpy(dX.get(), x.data(), 4 * n, cudaMemcpyHostToDevice));
  ASSERT_CUDA(cudaMemcpy(dRes.get(), r.data(), 4 * n, cudaMemcpyHostToDevice));
  ASSERT_EQ(launchEncode(p, dX.get(), n, gcclFloat32, dOut.get(), need,
                         static_cast<float*>(dRes.get()), status_, stream_),
            gcclSuccess);
  const Status s = readStatus();
  EXPECT_EQ(s.element, 600u);
  EXPECT_EQ(statusResult(p, s, false), gcclInvalidArgument);
  std::vector<float> after(n);
  ASSERT_CUDA(cudaMemcpy(after.data(), dRes.get(), 4 * n, cudaMemcpyDeviceToHost));
  EXPECT_EQ(after, r);
}

TEST_F(CudaCodecTest, TopKCorruptIndicesAreReported) {
  const size_t n = 100;
  Params p;
  p.codec = Codec::kTopK;
  p.k = 3;
  // kept 3, indices 5, 5, 7 (not ascending: entry 1).
  Bytes enc(8 + 8 * 3, 0);
  const uint64_t kept = 3;
  const uint32_t idx[] = {5, 5, 7};
  std::memcpy(enc.data(), &kept, 8);
  std::memcpy(enc.data() + 8, idx, sizeof idx);
  DeviceBuffer dIn(enc.size()), dDst(4 * n);
  ASSERT_CUDA(dIn.put(enc));
  ASSERT_EQ(
      launchDecode(p, dIn.get(), enc.size(), n, gcclFloat32, dDst.get(), nullptr, status_, stream_),
      gcclSuccess);
  const Status s = readStatus();
  EXPECT_EQ(s.entry, 1u);
  EXPECT_EQ(statusResult(p, s, true), gcclInvalidArgument);
}

// No device needed: every one of these is refused before anything is enqueued.
TEST(CudaCodecArguments, BadParametersAreRefusedBeforeLaunching) {
  std::vector<uint8_t> buf(1024);
  void* any = buf.data();
  Status* st = reinterpret_cast<Status*>(buf.data() + 512);
  Params p;
  p.codec = Codec::kQuantize;
  p.bits = 3;
  EXPECT_EQ(launchEncode(p, any, 10, gcclFloat32, any, 512, nullptr, st, nullptr),
            gcclInvalidArgument);
  p.bits = 8;
  EXPECT_EQ(launchEncode(p, any, 10, gcclInt32, any, 512, nullptr, st, nullptr),
            gcclInvalidArgument);
  EXPECT_EQ(launchEncode(p, any, 10, gcclFloat32, any, 4, nullptr, st, nullptr),
            gcclInvalidArgument);
  EXPECT_EQ(launchEncode(p, any, 10, gcclFloat32, any, 512, nullptr, nullptr, nullptr),
            gcclInvalidArgument);
  p.bucket = 0;
  EXPECT_EQ(launchEncode(p, any, 10, gcclFloat32, any, 512, nullptr, st, nullptr),
            gcclInvalidArgument);
  Params lattice;
  lattice.codec = Codec::kLattice;
  lattice.delta = 0;
  EXPECT_EQ(launchEncode(lattice, any, 10, gcclFloat32, any, 512, nullptr, st, nullptr),
            gcclInvalidArgument);
  lattice.delta = 1;
  EXPECT_EQ(launchDecode(lattice, any, 512, 10, gcclFloat32, any, nullptr, st, nullptr),
            gcclInvalidArgument);
  Params topk;
  topk.codec = Codec::kTopK;
  topk.k = 11;
  EXPECT_EQ(launchEncode(topk, any, 10, gcclFloat32, any, 512, reinterpret_cast<float*>(any), st,
                         nullptr),
            gcclInvalidArgument);
  topk.k = 2;
  topk.select = TopKSelect::kThreshold;
  topk.sample = 0;
  EXPECT_EQ(launchEncode(topk, any, 10, gcclFloat32, any, 512, reinterpret_cast<float*>(any), st,
                         nullptr),
            gcclInvalidArgument);
  topk.select = TopKSelect::kExact;
  EXPECT_EQ(launchEncode(topk, any, 10, gcclFloat32, any, 512, nullptr, st, nullptr),
            gcclInvalidArgument);
  Params cast;
  cast.castTo = gcclFloat32;
  EXPECT_EQ(launchEncode(cast, any, 10, gcclFloat32, any, 512, nullptr, nullptr, nullptr),
            gcclInvalidArgument);
  cast.castTo = gcclFloat16;
  EXPECT_EQ(
      launchEncode(cast, buf.data() + 1, 10, gcclFloat32, any, 512, nullptr, nullptr, nullptr),
      gcclInvalidArgument);
  // count == 0 enqueues nothing, whatever the pointers.
  EXPECT_EQ(launchEncode(cast, nullptr, 0, gcclFloat32, nullptr, 0, nullptr, nullptr, nullptr),
            gcclSuccess);
}

TEST(CudaCodecArguments, StatusResultNamesTheFirstFault) {
  Params p;
  p.codec = Codec::kLattice;
  p.bucket = 100;
  p.delta = 1;
  Status s;
  EXPECT_EQ(statusResult(p, s, true), gcclSuccess);
  s.bucket = 2;
  s.element = 450;  // bucket 4: the failed check of bucket 2 comes first
  EXPECT_EQ(statusResult(p, s, true), gcclInvalidArgument);
  s.element = 150;
  EXPECT_EQ(statusResult(p, s, true), gcclInvalidArgument);
}

}  // namespace
}  // namespace gccl::cuda::codec
